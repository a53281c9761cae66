"""Config round trips, command-line value parsing, overrides and their routing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from benchmarks.config import (
    ConfigError,
    apply_overrides,
    canonical_json,
    execution,
    execution_dict,
    execution_paths,
    field_paths,
    from_dict,
    identity_dict,
    key_aliases,
    parse_assignments,
    parse_value,
    route_overrides,
    to_dict,
)


@dataclass(frozen=True)
class Ransac:
    max_error: float = 4.0
    iters: int = 1000


@dataclass(frozen=True)
class Cfg:
    name: str = "a"
    flag: bool = False
    size: tuple[int, int] = (512, 384)
    scales: tuple[float, ...] = (1.0,)
    mode: Literal["fast", "exact"] = "fast"
    weights: Path | None = None
    topk: int | None = 5
    ransac: Ransac = field(default_factory=Ransac)


def test_to_dict_and_canonical_json():
    cfg = Cfg(weights=Path("/w/x.pth"))
    d = to_dict(cfg)
    assert d["size"] == [512, 384] and d["weights"] == "/w/x.pth"
    assert d["ransac"] == {"max_error": 4.0, "iters": 1000}
    assert canonical_json({"b": 1, "a": [1.5, (2, 3)], "c": Path("p")}) == '{"a":[1.5,[2,3]],"b":1,"c":"p"}'
    assert canonical_json(0.1) == "0.1" and canonical_json(1e-20) == "1e-20"  # floats as repr


def test_from_dict_round_trip_and_unknown_keys():
    cfg = Cfg(name="z", flag=True, size=(1, 2), scales=(0.5, 2.0), mode="exact", weights=Path("w"),
              topk=None, ransac=Ransac(1.5, 7))
    assert from_dict(Cfg, to_dict(cfg)) == cfg
    assert from_dict(Cfg, {}) == Cfg()
    with pytest.raises(ConfigError, match="ransac.iter'.*did you mean ransac.iters"):
        from_dict(Cfg, {"ransac": {"iter": 3}})


@pytest.mark.parametrize("text, tp, expected", [
    ("on", bool, True), ("OFF", bool, False), ("true", bool, True), ("0", bool, False), ("yes", bool, True),
    ("12", int, 12), ("-3", int, -3), ("1e-3", float, 0.001), ("inf", float, float("inf")), ("2", float, 2.0),
    ("hello", str, "hello"), ("a/b", Path, Path("a/b")),
    ("none", int | None, None), ("7", int | None, 7), ("null", Path | None, None),
    ("1,2", tuple[int, int], (1, 2)), ("(3, 4)", tuple[int, int], (3, 4)),
    ("[0.5,1]", tuple[float, ...], (0.5, 1.0)), ("", tuple[float, ...], ()), ("2,", tuple[int, ...], (2,)),
    ("exact", Literal["fast", "exact"], "exact"),
])
def test_parse_value(text, tp, expected):
    value = parse_value(text, tp)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text, tp, match", [
    ("maybe", bool, "not a boolean"), ("1.5", int, "not a valid int"), ("x", float, "not a valid float"),
    ("slow", Literal["fast", "exact"], "not one of 'fast', 'exact'"),
    ("1,2,3", tuple[int, int], "expected 2"),
    ("none", int, "not a valid int"),
])
def test_parse_value_errors(text, tp, match):
    with pytest.raises(ConfigError, match=match):
        parse_value(text, tp, "k")


def test_apply_overrides_nested_and_typed():
    cfg = Cfg()
    new = apply_overrides(cfg, {"ransac.max_error": "2.5", "flag": "on", "size": "640,480", "topk": "none"})
    assert new == Cfg(flag=True, size=(640, 480), topk=None, ransac=Ransac(2.5, 1000))
    assert cfg == Cfg()  # the input is untouched
    assert apply_overrides(cfg, {}) == cfg


@pytest.mark.parametrize("key, match", [
    ("ransac.max_eror", r"did you mean ransac.max_error"),
    ("flagg", r"did you mean flag"),
    ("flag.x", r"unknown config key 'flag.x'"),
    ("ransac", r"ransac is a group of settings; set one of ransac.max_error, ransac.iters"),
])
def test_apply_overrides_errors_name_the_key(key, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Cfg(), {key: "1"})


def test_field_paths():
    assert field_paths(Cfg) == ["name", "flag", "size", "scales", "mode", "weights", "topk",
                                "ransac.max_error", "ransac.iters"]


def test_parse_assignments():
    assert parse_assignments(["a.b=1", "c=x=y", "d=", "a.b=2"]) == {"a.b": "2", "c": "x=y", "d": ""}
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["novalue"])
    with pytest.raises(ConfigError):
        parse_assignments(["=3"])


def test_route_overrides():
    configs = {"matcher": Ransac(), "adapter": Cfg(), "estimator": Ransac()}
    routed = route_overrides({"matcher.iters": "3", "flag": "on", "ransac.iters": "9"}, configs)
    assert routed == {"matcher": {"iters": "3"}, "adapter": {"flag": "on", "ransac.iters": "9"},
                      "estimator": {}}
    with pytest.raises(ConfigError, match="ambiguous: prefix it with one of matcher., estimator."):
        route_overrides({"iters": "3"}, configs)
    with pytest.raises(ConfigError, match="unknown config key 'nope'.*valid keys: matcher.max_error"):
        route_overrides({"nope": "3"}, configs)


# -- issue 17 item 2: result vs execution, renamed keys ---------------------------------------------
@dataclass(frozen=True)
class Inner:  # stands for a config of another package (no markers of its own)
    step: int = 8
    block: int = 64
    backend: str = "auto"


@dataclass(frozen=True)
class Opts:
    tol: float = 1.0
    threads: int = field(default=4, metadata=execution())


@dataclass(frozen=True)
class Split:
    KEY_ALIASES: ClassVar[dict[str, str]] = {"old_tol": "opts.tol", "step": "inner.step"}

    size: int = 512
    batch: int = field(default=1, metadata=execution())
    inner: Inner = field(default_factory=Inner, metadata=execution("block", "backend"))
    opts: Opts = Opts(tol=2.0)
    cache: Inner | None = field(default=None, metadata=execution())


def test_identity_and_execution_parts_partition_the_config():
    cfg = Split(batch=8, inner=Inner(step=4, block=32))
    assert identity_dict(cfg) == {"size": 512, "inner": {"step": 4}, "opts": {"tol": 2.0}}
    assert execution_dict(cfg) == {"batch": 8, "inner": {"block": 32, "backend": "auto"},
                                   "opts": {"threads": 4}, "cache": None}
    assert sorted(execution_paths(Split)) == sorted(["batch", "inner.block", "inner.backend",
                                                      "opts.threads", "cache"])
    assert identity_dict(Split()) == identity_dict(Split(batch=2, inner=Inner(block=1), opts=Opts(2.0, 1)))
    assert identity_dict(Split()) != identity_dict(Split(inner=Inner(step=1)))
    assert execution_dict(Ransac()) == {} and identity_dict(Ransac()) == to_dict(Ransac())
    assert identity_dict({"a": (1, 2)}) == {"a": [1, 2]}  # plain data: to_dict


def test_key_aliases_on_the_command_line_and_in_config_json():
    assert key_aliases(Split) == {"old_tol": "opts.tol", "step": "inner.step"}
    new = apply_overrides(Split(), {"old_tol": "3", "step": "2", "batch": "5"})
    assert new == Split(batch=5, inner=Inner(step=2), opts=Opts(tol=3.0))
    assert apply_overrides(Split(), {"old_tol": "3", "opts.tol": "7"}).opts.tol == 7.0  # today's name wins
    routed = route_overrides({"old_tol": "3", "ransac.iters": "5"}, {"split": Split(), "cfg": Cfg()})
    assert routed == {"split": {"old_tol": "3"}, "cfg": {"ransac.iters": "5"}}
    # a config.json written before the rename; nested partial dicts keep the FIELD's default (tol 2)
    assert from_dict(Split, {"old_tol": 5.0, "size": 7}) == Split(size=7, opts=Opts(tol=5.0))
    assert from_dict(Split, {"opts": {"threads": 1}}).opts == Opts(tol=2.0, threads=1)
    with pytest.raises(ConfigError, match="unknown config key 'old'"):
        apply_overrides(Split(), {"old": "1"})
