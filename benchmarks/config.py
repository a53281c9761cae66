"""Frozen-dataclass configs: canonical JSON, dotted ``key=value`` overrides and their routing.

Every matcher has a ``Config`` and every adapter a ``Config`` and an ``EstimatorConfig``: frozen
dataclasses whose fields are plain values (bool, int, float, str, Path, ``Optional``, ``tuple``,
``Literal``) or nested dataclasses. This module turns them into JSON (for ``config.json`` and run
hashing), back into instances, and applies command-line overrides::

    apply_overrides(cfg, {"ransac.max_error": "2.5", "use_gt_K": "off"})

On the command line, ``matcher.<key>=v``, ``adapter.<key>=v`` and ``estimator.<key>=v`` target one
config explicitly; a bare ``<key>=v`` must name a field of exactly one of the three.

Result vs execution: a field whose metadata is :func:`execution` (``field(default=1,
metadata=execution())``) says how a result is computed, not what it is (batch sizes, block sizes,
backends proven equal). :func:`identity_dict` drops such fields (the run key, the correspondence-cache
key and ``config.json`` use it); :func:`execution_dict` keeps only them (``manifest.json``). A nested
config owned by another package marks its execution-only sub-keys on the field that holds it:
``field(default_factory=FRMConfig, metadata=execution("block_size"))``.

Renamed keys: a config class may map old dotted keys to new ones in a ``KEY_ALIASES`` class
attribute (``{"ransac_confidence": "ransac.confidence"}``); overrides and :func:`from_dict` accept
both spellings.
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
    "execution",
    "identity_dict",
    "execution_dict",
    "execution_paths",
    "key_aliases",
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


EXECUTION_META = "execution"


def execution(*sub_keys: str) -> dict[str, Any]:
    """Field metadata marking an execution-only setting (no argument: the whole field) or, for a
    nested config, which of its dotted sub-keys are execution-only (``execution("block_size")``)."""
    return {EXECUTION_META: sub_keys or True}


def _execution_marks(cls: type) -> dict[str, Any]:
    """``{field name: True | tuple of sub-keys}`` of the execution-marked fields of dataclass ``cls``."""
    fields = dataclasses.fields(cls)
    return {f.name: f.metadata[EXECUTION_META] for f in fields if EXECUTION_META in f.metadata}


def _split(obj: Any, keep_execution: bool, marks: Any = None) -> Any:
    """The identity (``keep_execution=False``) or execution part of ``obj`` as :func:`to_dict` data;
    ``marks``: sub-keys of ``obj`` marked by the field holding it (a tuple of dotted keys)."""
    if not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        return to_dict(obj) if not keep_execution else None
    own = _execution_marks(type(obj))
    outer: dict[str, list[str]] = {}
    for key in marks or ():
        head, _, rest = key.partition(".")
        outer.setdefault(head, []).append(rest)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        mark = own.get(f.name)
        whole = mark is True or "" in outer.get(f.name, [])
        if whole:
            if keep_execution:
                out[f.name] = to_dict(value)
            continue
        sub = tuple(k for k in (*(mark or ()), *outer.get(f.name, ())) if k)
        part = _split(value, keep_execution, sub)
        if keep_execution and part in (None, {}):
            continue
        out[f.name] = part
    return out


def identity_dict(cfg: Any) -> dict[str, Any]:
    """The result-deciding part of dataclass ``cfg`` as :func:`to_dict` data: every field except the
    execution-only ones (:func:`execution`), recursively (any other value: :func:`to_dict` of it).
    Hashed into the run identity."""
    return _split(cfg, keep_execution=False)


def execution_dict(cfg: Any) -> dict[str, Any]:
    """The execution-only part of dataclass ``cfg`` (nested dicts; ``{}`` when it has none): how the
    result was computed, recorded in the manifest."""
    return _split(cfg, keep_execution=True) or {}


def execution_paths(cfg: Any, prefix: str = "", marks: Sequence[str] = ()) -> list[str]:
    """The dotted keys of ``cfg`` (a dataclass instance or type) that are execution-only."""
    cls = cfg if isinstance(cfg, type) else type(cfg)
    hints, own = _hints(cls), _execution_marks(cls)
    outer: dict[str, list[str]] = {}
    for key in marks:
        head, _, rest = key.partition(".")
        outer.setdefault(head, []).append(rest)
    out: list[str] = []
    for f in dataclasses.fields(cls):
        tp, mark, path = hints[f.name], own.get(f.name), prefix + f.name
        if mark is True or "" in outer.get(f.name, []):
            out += field_paths(tp, path + ".") if _is_dataclass_type(tp) else [path]
        elif _is_dataclass_type(tp):
            sub = [k for k in (*(mark or ()), *outer.get(f.name, ())) if k]
            out += execution_paths(tp, path + ".", sub)
    return out


def key_aliases(cls: type, prefix: str = "") -> dict[str, str]:
    """Old dotted key -> current dotted key of dataclass ``cls`` (its ``KEY_ALIASES``, nested ones
    prefixed)."""
    out = {prefix + old: prefix + new for old, new in dict(getattr(cls, "KEY_ALIASES", {}) or {}).items()}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if _is_dataclass_type(hints[f.name]):
            out.update(key_aliases(hints[f.name], f"{prefix}{f.name}."))
    return out


def _resolve_aliases(cls: type, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` with old keys of ``cls`` renamed (a key given both ways: the current one wins)."""
    aliases = key_aliases(cls)
    if not aliases:
        return dict(overrides)
    out = {aliases.get(k, k): v for k, v in overrides.items() if k in aliases}
    out.update({k: v for k, v in overrides.items() if k not in aliases})
    return out


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
    data = _nest_aliases(cls, data)
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(_unknown_msg(f"{where}{unknown[0]}", [f"{where}{n}" for n in names]))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {k: _coerce(_over_default(fields[k], v), hints[k], f"{where}{k}") for k, v in data.items()}
    return cls(**kwargs)


def _over_default(f: dataclasses.Field, value: Any) -> Any:
    """A partial dict of a nested config merged over that field's default (not its class's)."""
    if not isinstance(value, Mapping):
        return value
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return value
    return _deep_merge(to_dict(default), value) if dataclasses.is_dataclass(default) else value


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _nest_aliases(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """Old flat keys of ``cls`` (``KEY_ALIASES``) in JSON data moved to where they live now."""
    out = dict(data)
    for old, new in dict(getattr(cls, "KEY_ALIASES", {}) or {}).items():
        if old not in out:
            continue
        value = out.pop(old)
        *heads, last = new.split(".")
        node = out
        for h in heads:
            node[h] = node = dict(node.get(h) or {})
        node.setdefault(last, value)
    return out


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
    for key, text in _resolve_aliases(type(cfg), overrides).items():
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
    known = {name: set(p) | set(key_aliases(type(configs[name]))) for name, p in paths.items()}
    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if dot and head in configs:
            routed[head][rest] = value
            continue
        owners = [name for name, p in known.items() if key in p]
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
