"""Config round trips, command-line value parsing, overrides and their routing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from benchmarks.config import (
    ConfigError,
    apply_overrides,
    canonical_json,
    field_paths,
    from_dict,
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
