"""Capability protocols: which real adapters and matchers have which extras, and the flag defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from benchmarks import capabilities as cap
from benchmarks.registry import ADAPTERS, MATCHERS


def test_adapter_capabilities_of_the_project_classes(tmp_path):
    smoke, mapfree, dtu, co3d = (ADAPTERS.get(n) for n in ("smoke", "mapfree", "dtu", "co3dv2"))
    assert isinstance(smoke, cap.HasGTCorrespondences) and not isinstance(smoke, cap.Exportable)
    assert isinstance(mapfree, cap.Exportable) and isinstance(mapfree, cap.HasDataFiles)
    assert not isinstance(smoke, cap.HasDataFiles) and isinstance(co3d, cap.HasDatasetChecksum)
    assert isinstance(dtu, cap.Exportable) and not isinstance(smoke, cap.HasDatasetChecksum)
    assert cap.data_dir(mapfree, "x") == "mapfree" and cap.data_dir(smoke, "smoke") == "smoke"
    assert cap.title(smoke, "smoke").startswith("SMOKE") and cap.title(object, "bench") == "bench"
    adapter = smoke(tmp_path)
    assert isinstance(adapter, cap.HasRoot) and adapter.root.parent == tmp_path
    assert not isinstance(adapter, cap.HasArtifactsDir)


def test_matcher_flags_and_capabilities():
    oracle, random, sift, mast3r = (MATCHERS.get(n) for n in ("oracle", "random", "sift", "mast3r"))
    assert cap.needs_ground_truth(oracle) and not cap.needs_ground_truth(random)
    assert not cap.is_cacheable(oracle) and cap.is_cacheable(sift)  # default True
    assert not cap.uses_torch(random) and cap.uses_torch(sift)  # default True
    assert all(isinstance(m, cap.Available) for m in (oracle, sift, mast3r))
    assert isinstance(mast3r, cap.SetupCapable) and isinstance(mast3r, cap.BatchMatcher)
    assert isinstance(mast3r, cap.Reconfigurable) and not isinstance(sift, cap.BatchMatcher)
    assert not isinstance(oracle, cap.SetupCapable)


def test_flag_set_false_and_none_method_are_not_capabilities():
    class Off:
        needs_ground_truth: ClassVar[bool] = False
        cacheable: ClassVar[bool] = True
        setup = None  # a disabled hook

    assert not cap.needs_ground_truth(Off()) and cap.is_cacheable(Off())
    assert not isinstance(Off(), cap.SetupCapable)


def test_batch_size_from_the_config():
    @dataclass
    class Cfg:
        batch_size: int

    class WithCfg:
        def __init__(self, n: int | None) -> None:
            self.config = Cfg(n)  # type: ignore[arg-type]

    assert cap.batch_size(WithCfg(8)) == 8 and cap.batch_size(WithCfg(0)) == 1
    assert cap.batch_size(WithCfg(None)) == 1 and cap.batch_size(object()) == 1
    no_batch = type("M", (), {"config": object()})()
    assert cap.batch_size(no_batch) == 1
