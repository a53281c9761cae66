"""Registries: lazy import, did-you-mean, duplicates, the project's entries."""

from __future__ import annotations

import sys

import pytest

from benchmarks.registry import ADAPTERS, MATCHERS, Registry, UnknownNameError


def test_register_get_and_lazy_import():
    reg: Registry = Registry("widget")
    reg.register("od", "collections:OrderedDict")
    reg.register("ghost", "no_such_module_xyz:Thing")
    assert reg.names() == ["ghost", "od"] and "od" in reg and list(reg) == ["ghost", "od"]
    assert "no_such_module_xyz" not in sys.modules  # listing imports nothing
    from collections import OrderedDict

    assert reg.get("od") is OrderedDict
    with pytest.raises(ImportError):
        reg.get("ghost")


def test_missing_attribute_is_an_import_error_naming_it():
    reg: Registry = Registry("widget")
    reg.register("bad", "collections:NoSuchClass")
    with pytest.raises(ImportError, match="NoSuchClass"):
        reg.get("bad")


def test_unknown_name_suggests_close_matches():
    reg: Registry = Registry("matcher")
    reg.register("oracle", "collections:OrderedDict")
    reg.register("random", "collections:Counter")
    with pytest.raises(UnknownNameError) as e:
        reg.get("orcale")
    assert "did you mean 'oracle'" in str(e.value) and "known: oracle, random" in str(e.value)
    with pytest.raises(UnknownNameError) as e:
        reg.target("zzz")
    assert "did you mean" not in str(e.value)


def test_duplicates_and_bad_targets_are_refused():
    reg: Registry = Registry("adapter")
    reg.register("a", "m:C")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", "m:D")
    with pytest.raises(ValueError, match="module:Class"):
        reg.register("b", "m.C")


def test_project_registries_hold_the_smoke_adapter_and_doubles():
    from benchmarks.adapters.smoke import SmokeAdapter
    from benchmarks.matchers.doubles import OracleMatcher, RandomMatcher

    assert ADAPTERS.get("smoke") is SmokeAdapter and SmokeAdapter.name == "smoke"
    assert MATCHERS.get("oracle") is OracleMatcher and OracleMatcher.name == "oracle"
    assert MATCHERS.get("random") is RandomMatcher and RandomMatcher.name == "random"


def test_required_members_are_checked_on_import():
    reg: Registry = Registry("matcher", ("match", "Config"))
    reg.register("od", "collections:OrderedDict")
    with pytest.raises(ImportError, match=r"collections:OrderedDict is not a matcher \(no match, Config\)"):
        reg.get("od")
    assert "od" in reg  # still listed: only using it fails
