"""``build_criterion``: the official ``--train_criterion`` string, parsed with ``ast`` (never evaluated).

Grammar (a safe subset of the Python expressions the official code ``eval``s):

    expr   := term ('+' term)*
    term   := call | number '*' call | call '*' number | '(' expr ')'
    call   := NAME '(' [arg (',' arg)*] [',' kw (',' kw)*] ')'
    arg    := literal | call | 'L21'
    kw     := IDENT '=' arg
    literal:= number | string | True | False | None | 'inf' | tuple of literals   (numbers may be signed)
            | torch.float16 | torch.bfloat16 | torch.float32 | torch.float64         (the ``fp`` dtypes)

A scalar times a sum (``2*(A + B)``) or a scaled term scaled again (``2*(3*A)``) is refused: the official
operators scale only the first term of a sum and overwrite a previous factor, so their meaning is surprising;
write ``2*A + 2*B`` / ``6*A`` instead.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import torch

from mast3r.train.criterion_base import Criterion, WeightedSum
from mast3r.train.losses_match import APLoss, ConfMatchingLoss, InfoNCE, MatchingLoss
from mast3r.train.losses_regr import (
    L21,
    ConfLoss,
    L21Loss,
    Regr3D,
    Regr3D_ScaleInv,
    Regr3D_ScaleShiftInv,
    Regr3D_ShiftInv,
)

KNOWN_CALLS: dict[str, Any] = {
    "ConfLoss": ConfLoss,
    "Regr3D": Regr3D,
    "Regr3D_ShiftInv": Regr3D_ShiftInv,
    "Regr3D_ScaleInv": Regr3D_ScaleInv,
    "Regr3D_ScaleShiftInv": Regr3D_ScaleShiftInv,
    "L21Loss": L21Loss,
    "InfoNCE": InfoNCE,
    "APLoss": APLoss,
    "MatchingLoss": MatchingLoss,
    "ConfMatchingLoss": ConfMatchingLoss,
}
KNOWN_VALUES: dict[str, Any] = {"L21": L21, "inf": math.inf}
#: the only dotted names allowed (the official test criterion passes ``fp=torch.float16`` to APLoss)
KNOWN_DTYPES: dict[str, torch.dtype] = {f"torch.{n}": getattr(torch, n)
                                        for n in ("float16", "bfloat16", "float32", "float64")}


class CriterionSpecError(ValueError):
    """A criterion string outside the grammar, or with bad arguments."""


def build_criterion(spec: str, *, generator: torch.Generator | None = None) -> Criterion:
    """Parse an official ``--train_criterion`` string into a criterion (see the module doc for the grammar).

    ``generator``: random source of the block shuffling of ``MatchingLoss`` (default: torch's global RNG).
    Raises :class:`CriterionSpecError` (a ``ValueError``) with the offending piece and its column.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise CriterionSpecError("empty criterion string")
    try:
        tree = ast.parse(spec.strip(), mode="eval")
    except SyntaxError as exc:
        msg = f"criterion {spec!r}: syntax error at column {exc.offset}: {exc.msg}"
        raise CriterionSpecError(msg) from None
    crit = _Builder(spec.strip()).criterion(tree.body)
    crit.set_generator(generator)
    return crit


class _Builder:
    def __init__(self, text: str):
        self.text = text

    def fail(self, node: ast.AST, why: str) -> CriterionSpecError:
        piece = ast.get_source_segment(self.text, node) or type(node).__name__
        col = getattr(node, "col_offset", -1) + 1
        return CriterionSpecError(f"criterion {self.text!r}, column {col} ({piece!r}): {why}")

    def criterion(self, node: ast.expr) -> Criterion:
        value = self.value(node)
        if not isinstance(value, Criterion):
            raise self.fail(node, "expected a criterion (e.g. ConfLoss(...)), got a "
                                  f"{type(value).__name__}")
        return value

    def value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, (bool, int, float, str)):
                return node.value
            raise self.fail(node, f"literal of type {type(node.value).__name__} not allowed")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.value(node.operand)
            if isinstance(operand, bool) or not isinstance(operand, (int, float)):
                raise self.fail(node, "a sign applies to numbers only")
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Tuple):
            items = tuple(self.value(e) for e in node.elts)
            if any(isinstance(i, Criterion) for i in items):
                raise self.fail(node, "tuples hold literals only")
            return items
        if isinstance(node, ast.Name):
            if node.id in KNOWN_VALUES:
                return KNOWN_VALUES[node.id]
            if node.id in KNOWN_CALLS:
                raise self.fail(node, f"{node.id} must be called, e.g. {node.id}(...)")
            raise self.fail(node, f"unknown name {node.id!r}; {_known()}")
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.criterion(node.left), self.criterion(node.right)
            return left + right
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return self.scaled(node)
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted in KNOWN_DTYPES:
                return KNOWN_DTYPES[dotted]
            raise self.fail(node, "attribute access is not allowed (except " + ", ".join(KNOWN_DTYPES) + ")")
        raise self.fail(node, f"{type(node).__name__} is not part of the criterion grammar")

    def scaled(self, node: ast.BinOp) -> Criterion:
        left, right = self.value(node.left), self.value(node.right)
        if isinstance(left, Criterion) and not isinstance(right, Criterion):
            left, right = right, left
            crit_node = node.left
        else:
            crit_node = node.right
        if isinstance(left, bool) or not isinstance(left, (int, float)) or not isinstance(right, Criterion):
            raise self.fail(node, "'*' multiplies a criterion by a number")
        if isinstance(right, WeightedSum):
            what = "a sum" if len(right.terms) > 1 else "an already scaled criterion"
            raise self.fail(crit_node, f"a number times {what} is ambiguous (the official code scales only "
                                       "the first term / replaces the factor): scale each term once")
        return float(left) * right

    def call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node.func, "only calls of known names are allowed (no attributes or expressions)")
        name = node.func.id
        if name not in KNOWN_CALLS:
            raise self.fail(node.func, f"unknown criterion {name!r}; {_known()}")
        args = [self.value(a) for a in node.args if not isinstance(a, ast.Starred) or self._star(a)]
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(kw.value, "'**' arguments are not allowed")
            kwargs[kw.arg] = self.value(kw.value)
        try:
            return KNOWN_CALLS[name](*args, **kwargs)
        except TypeError as exc:
            raise self.fail(node, f"bad arguments: {exc}") from None
        except ValueError as exc:
            raise self.fail(node, str(exc)) from None

    def _star(self, node: ast.Starred) -> bool:
        raise self.fail(node, "'*' arguments are not allowed")


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _known() -> str:
    return "known criteria: " + ", ".join(KNOWN_CALLS) + "; known values: " + ", ".join(KNOWN_VALUES)
