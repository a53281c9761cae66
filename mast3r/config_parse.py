"""Safe parsing of the ``args.model`` constructor strings stored in official checkpoints.

``Name(key=literal, ...)`` is read with :mod:`ast` and never evaluated: only literal keyword
arguments are accepted (see :func:`parse_constructor_string`).
"""

from __future__ import annotations

import ast
import math
from typing import Any

__all__ = ["ConfigError", "parse_constructor_string"]


class ConfigError(ValueError):
    """An invalid model configuration or an ``args.model`` string we refuse to interpret."""


def parse_constructor_string(text: str) -> tuple[str, dict[str, Any]]:
    """Parse ``Name(key=literal, ...)`` into ``("Name", {key: value})`` without evaluating anything.

    Literals: str, int, float, bool, None, tuples/lists of literals, the names ``inf`` / ``nan`` and
    unary minus. Positional arguments, calls, attributes and any other name are refused.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"cannot parse model string {text!r}: {exc.msg}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ConfigError(f"model string must be a single constructor call Name(...), got {text!r}")
    if call.args:
        raise ConfigError(f"model string {text!r} has positional arguments; only keywords are accepted")
    kwargs: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise ConfigError(f"model string {text!r}: '**' arguments are not accepted")
        if kw.arg in kwargs:
            raise ConfigError(f"model string {text!r}: argument {kw.arg!r} given twice")
        kwargs[kw.arg] = _literal_value(kw.value, kw.arg, text)
    return call.func.id, kwargs


_NAMES = {"inf": math.inf, "nan": math.nan, "True": True, "False": False, "None": None}


def _literal_value(node: ast.AST, key: str, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool | type(None)):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _literal_value(node.operand, key, text)
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_literal_value(elt, key, text) for elt in node.elts)
    raise ConfigError(
        f"model string argument {key}={ast.unparse(node)} is not a literal (refused; strings are never "
        f"evaluated): {text!r}"
    )
