"""The one assembly of a run (``run_build`` / ``runner.build_run``) used by run, sweep and paper."""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace

import pytest

from benchmarks.matchers.doubles import OracleMatcher, RandomConfig, RandomMatcher
from benchmarks.run_build import assemble, build_adapter, build_matcher, run_device
from benchmarks.runner import build_run, run_benchmark
from benchmarks.sweep import run_sweep


def test_run_device_auto_explicit_and_per_rank():
    assert run_device("auto", OracleMatcher) == "cpu" and run_device(None, RandomMatcher) == "cpu"
    assert run_device("cpu", OracleMatcher, SimpleNamespace(distributed=True, local_rank=3)) == "cpu"
    assert run_device("cuda", OracleMatcher, SimpleNamespace(distributed=True, local_rank=3)) == "cuda:3"
    assert run_device("cuda", OracleMatcher, SimpleNamespace(distributed=False, local_rank=3)) == "cuda"


@dataclass(frozen=True)
class _Cfg:
    x: int = 0


class _Shared:
    def __init__(self, config, device="cpu", forward_cache=None):
        self.config, self.device, self.forward_cache, self.model = config, device, forward_cache, object()

    def with_config(self, config):
        twin = _Shared(config, self.device, self.forward_cache)
        twin.model = self.model
        return twin


def test_build_matcher_reuses_a_reconfigurable_previous_and_passes_the_forward_cache():
    first = build_matcher(_Shared, _Cfg(1), "cpu", forward_cache="fc")
    assert first.forward_cache == "fc" and first.config == _Cfg(1)
    second = build_matcher(_Shared, _Cfg(2), "cpu", previous=first, forward_cache="other")
    assert second.model is first.model and second.config == _Cfg(2) and second.forward_cache == "fc"
    plain = build_matcher(RandomMatcher, RandomConfig(), "cpu", previous=RandomMatcher(RandomConfig()),
                          forward_cache="fc")  # no with_config, no forward_cache parameter
    assert isinstance(plain, RandomMatcher)


def test_assemble_reads_data_dir_under_the_data_root(tmp_path):
    parts = assemble("smoke", "random", overrides={"num_matches": "8", "adapter.num_pairs": "2"},
                     data_root=tmp_path / "data", device="auto")
    assert parts.bench == "smoke" and parts.matcher_name == "random" and parts.device == "cpu"
    assert parts.matcher.config.num_matches == 8 and parts.configs["adapter"].num_pairs == 2
    assert parts.adapter.root.parent == tmp_path / "data" / "smoke" and parts.data_root == tmp_path / "data"
    cls = type(parts.adapter)
    configs = parts.configs
    again = build_adapter(cls, tmp_path / "data", "smoke", configs["adapter"], configs["estimator"])
    assert again.root == parts.adapter.root
    with pytest.raises(FileNotFoundError, match="synthetic suite"):  # real data missing, suite present
        (tmp_path / "d2" / "synthetic" / "mapfree").mkdir(parents=True)
        assemble("mapfree", "random", data_root=tmp_path / "d2")


def test_run_and_sweep_build_the_same_run(tmp_path):
    opts = {"data_root": tmp_path / "data", "results_root": tmp_path / "results", "progress": False}
    runner = build_run("smoke", "random", overrides={"adapter.num_pairs": "2", "num_matches": "8"}, **opts)
    assert runner.spec.matcher_config["num_matches"] == 8 and runner.device == "cpu"
    first = run_benchmark("smoke", "random", overrides={"adapter.num_pairs": "2", "num_matches": "8"}, **opts)
    assert first.computed == 2
    (variant,) = run_sweep("smoke", "random", [("num_matches", ["8"])], overrides={"adapter.num_pairs": "2"},
                           **opts)
    assert variant.result.run_dir == first.run_dir and variant.result.computed == 0  # resumed, not re-run
    assert variant.result.summary == first.summary
    configs = {**runner.configs, "matcher": replace(runner.matcher.config, num_matches=9)}
    other = run_benchmark("smoke", "random", configs=configs, **opts)
    assert other.run_dir != first.run_dir and other.computed == 2
