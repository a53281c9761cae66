"""Frozen-dataclass configs: canonical JSON, dotted ``key=value`` overrides and their routing.

Every matcher has a ``Config`` and every adapter a ``Config`` and an ``EstimatorConfig``: frozen
dataclasses whose fields are plain values (bool, int, float, str, Path, ``Optional``, ``tuple``,
``Literal``) or nested dataclasses. This module turns them into JSON (for ``config.json`` and run
hashing), back into instances, and applies command-line overrides::

    apply_overrides(cfg, {"ransac.max_error": "2.5", "use_gt_K": "off"})

On the command line, ``matcher.<key>=v``, ``adapter.<key>=v`` and ``estimator.<key>=v`` target one
config explicitly; a bare ``<key>=v`` must name a field of exactly one of the three.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

__all__ = [
    "ConfigError",
    "to_dict",
    "from_dict",
    "canonical_json",
    "field_paths",
    "parse_value",
    "apply_overrides",
    "parse_assignments",
    "route_overrides",
]

CONFIG_GROUPS = ("matcher", "adapter", "estimator")
_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}
_NONE = {"none", "null"}


class ConfigError(ValueError):
    """A bad config key or value; the message names the key and what is valid."""


def to_dict(obj: Any) -> Any:
    """A dataclass (or any value inside one) as JSON-ready data: nested dataclasses become dicts,
    tuples lists, Paths strings. Other values pass through unchanged."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, floats as ``repr``; dataclasses, tuples and
    Paths converted by :func:`to_dict`. Equal configs give byte-identical strings."""
    return json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def from_dict(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """Build ``cls`` (a dataclass) from :func:`to_dict` output; unknown keys are errors, missing
    keys take their defaults."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(_unknown_msg(f"{where}{unknown[0]}", [f"{where}{n}" for n in names]))
    kwargs = {k: _coerce(v, hints[k], f"{where}{k}") for k, v in data.items()}
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """A JSON value converted back to annotation ``tp`` (tuples, Paths, nested dataclasses)."""
    origin = typing.get_origin(tp)
    if _is_dataclass_type(tp):
        return from_dict(tp, value, where + ".")
    if value is None:
        return None
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, members[0], where) if len(members) == 1 else value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        return tuple(_coerce(v, a, where) for v, a in zip(value, args)) if args else tuple(value)
    if tp is Path:
        return Path(value)
    return value


def field_paths(cfg: Any, prefix: str = "") -> list[str]:
    """All settable dotted keys of a dataclass instance or type (nested dataclasses expanded)."""
    cls = cfg if isinstance(cfg, type) else type(cfg)
    hints = _hints(cls)
    out: list[str] = []
    for name in (f.name for f in dataclasses.fields(cls)):
        tp = hints[name]
        if _is_dataclass_type(tp):
            out += field_paths(tp, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def parse_value(text: str, tp: Any, key: str = "value") -> Any:
    """Parse the command-line string ``text`` as annotation ``tp``.

    Supports bool (``on/off/true/false/yes/no/1/0``), int, float (``inf``, ``1e-3``), str, Path,
    ``Optional[X]`` (``none``/``null`` -> None), ``Literal[...]``, ``tuple[X, ...]`` and fixed tuples
    (``1,2,3``, optionally in ``()`` or ``[]``).
    """
    origin = typing.get_origin(tp)
    low = text.strip().lower()
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and low in _NONE:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return parse_value(text, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors))
    if origin is Literal:
        choices = typing.get_args(tp)
        for choice in choices:
            if str(choice) == text.strip():
                return choice
        raise ConfigError(f"{key}: {text!r} is not one of {', '.join(repr(c) for c in choices)}")
    if origin is tuple:
        inner = text.strip()
        if inner[:1] + inner[-1:] in ("()", "[]"):
            inner = inner[1:-1]
        items = [s.strip() for s in inner.split(",")] if inner.strip() else []
        if items and items[-1] == "":
            items.pop()  # "1," is a one-tuple
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(s, args[0], key) for s in items)
        if len(items) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} comma-separated values, got {text!r}")
        return tuple(parse_value(s, a, key) for s, a in zip(items, args))
    if tp is bool:
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{key}: {text!r} is not a boolean (use on/off, true/false, 1/0)")
    if tp in (int, float):
        try:
            return tp(text.strip())
        except ValueError:
            raise ConfigError(f"{key}: {text!r} is not a valid {tp.__name__}") from None
    if tp is str or tp is Any:
        return text
    if tp is Path:
        return Path(text)
    if _is_dataclass_type(tp):
        raise ConfigError(f"{key} is a group of settings; set one of {', '.join(field_paths(tp, key + '.'))}")
    raise ConfigError(f"{key}: cannot parse values of type {tp!r} from the command line")


def _unknown_msg(key: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown config key {key!r}{hint} (valid keys: {', '.join(valid) or 'none'})"


def apply_overrides(cfg: Any, overrides: Mapping[str, str], prefix: str = "") -> Any:
    """A copy of dataclass ``cfg`` with dotted-path ``overrides`` (string values) parsed and applied.

    Raises ``ConfigError`` naming the key for unknown keys (with did-you-mean and the valid keys)
    and unparsable values. ``prefix`` is only used in messages (e.g. ``"estimator."``).
    """
    valid = field_paths(cfg)
    nested: dict[str, dict[str, str]] = {}
    changes: dict[str, Any] = {}
    hints = _hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    for key, text in overrides.items():
        head, dot, rest = key.partition(".")
        if head not in names:
            raise ConfigError(_unknown_msg(prefix + key, [prefix + v for v in valid]))
        tp = hints[head]
        if dot:
            if not _is_dataclass_type(tp):
                raise ConfigError(_unknown_msg(prefix + key, [prefix + v for v in valid]))
            nested.setdefault(head, {})[rest] = text
        else:
            changes[head] = parse_value(text, tp, prefix + key)
    for head, sub in nested.items():
        changes[head] = apply_overrides(getattr(cfg, head), sub, f"{prefix}{head}.")
    return dataclasses.replace(cfg, **changes)


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["a.b=1", "c=x=y"]`` -> ``{"a.b": "1", "c": "x=y"}``; a repeated key keeps the last value."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        out[key.strip()] = value
    return out


def route_overrides(overrides: Mapping[str, str], configs: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Split overrides between named configs (``{"matcher": cfg, "adapter": cfg, ...}``).

    ``group.key`` targets ``configs[group]``; a bare ``key`` must be a field path of exactly one
    config, otherwise it is an error (unknown everywhere, or ambiguous).
    """
    routed: dict[str, dict[str, str]] = {name: {} for name in configs}
    paths = {name: field_paths(cfg) for name, cfg in configs.items()}
    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if dot and head in configs:
            routed[head][rest] = value
            continue
        owners = [name for name, p in paths.items() if key in p]
        if len(owners) > 1:
            raise ConfigError(
                f"config key {key!r} is ambiguous: prefix it with one of "
                f"{', '.join(f'{o}.' for o in owners)}"
            )
        if not owners:
            valid = [f"{name}.{p}" for name, ps in paths.items() for p in ps]
            bare = [p for ps in paths.values() for p in ps]
            close = difflib.get_close_matches(key, bare + valid, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown config key {key!r}{hint} (valid keys: {', '.join(valid) or 'none'})")
        routed[owners[0]][key] = value
    return routed
