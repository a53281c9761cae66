"""The runner on an in-test adapter and matcher: resume, limits, run identity, cache, failures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from benchmarks.hashing import derive_seed
from benchmarks.runner import Runner, resolve_configs, variant_slug
from benchmarks.store import RecordStore, RunLockedError
from benchmarks.types import Correspondences, Prediction, Record, Sample, View


@dataclass(frozen=True)
class ToyConfig:
    num_samples: int = 5


@dataclass(frozen=True)
class ToyEstimator:
    scale: float = 1.0
    explode_on: str = ""


class ToyAdapter:
    """Sample k has two views; the "estimate" is scale * (number of matches) and the error is its
    distance to 10 * (k + 1)."""

    name: ClassVar[str] = "toy"
    version: ClassVar[str] = "1"
    Config = ToyConfig
    EstimatorConfig = ToyEstimator

    def __init__(self, root: Path, config=ToyConfig(), estimator=ToyEstimator()):
        self.root, self.config, self.estimator = Path(root), config, estimator
        self.seeds: dict[str, int] = {}

    def samples(self):
        for k in range(self.config.num_samples):
            views = tuple(View(f"s{k}_{i}", self.root / f"s{k}_{i}.png", 8, 6) for i in range(2))
            yield Sample(f"s{k}", views, gt={"n": 10 * (k + 1)}, meta={"group": k % 2})

    def pairs(self, sample):
        return [(0, 1)]

    def solve(self, sample, corrs, seed):
        self.seeds[sample.key] = seed
        if sample.key == self.estimator.explode_on:
            raise ZeroDivisionError("bad geometry")
        n = sum(len(c) for c in corrs)
        return Prediction(True, {"estimate": self.estimator.scale * n}, num_matches=n, num_inliers=n)

    def evaluate(self, sample, prediction):
        if not prediction.success:
            return {"err": None}
        return {"err": abs(prediction.values["estimate"] - sample.gt["n"])}

    def summarize(self, records):
        errs = [r.metrics["err"] for r in records if r.metrics["err"] is not None]
        return {"err_mean": float(np.mean(errs)) if errs else None, "count": len(list(records))}


class ToyGtAdapter(ToyAdapter):
    def gt_correspondences(self, sample, i, j):
        n = sample.gt["n"]
        return Correspondences(np.zeros((n, 2)), np.ones((n, 2)), np.ones(n))


@dataclass(frozen=True)
class CountConfig:
    per_sample: int = 10
    fail_on: str = ""


class CountingMatcher:
    """Returns 10 * (k + 1) matches for sample k (by view name); counts its calls."""

    name: ClassVar[str] = "count"
    Config = CountConfig

    def __init__(self, config=CountConfig(), device="cpu"):
        self.config, self.calls = config, 0

    def weights_checksum(self):
        return None

    def match(self, view0, view1):
        self.calls += 1
        if view0.name.split("_")[0] == self.config.fail_on:
            raise RuntimeError("boom\nsecond line")
        n = self.config.per_sample * (int(view0.name[1:].split("_")[0]) + 1)
        return Correspondences(np.zeros((n, 2)), np.zeros((n, 2)), np.ones(n), timings={"forward": 0.5})


class GtMatcher(CountingMatcher):
    name: ClassVar[str] = "gt"
    needs_ground_truth: ClassVar[bool] = True

    def match(self, view0, view1, gt=None):
        self.calls += 1
        return gt


def make(tmp_path, *, est=ToyEstimator(), cfg=ToyConfig(), mcfg=CountConfig(), matcher_cls=CountingMatcher,
         results="results", adapter_cls=ToyAdapter, **kw):
    adapter = adapter_cls(tmp_path / "data" / "toy", cfg, est)
    matcher = matcher_cls(mcfg)
    runner = Runner(adapter, matcher, cfg, est, results_root=tmp_path / results, data_root=tmp_path / "data",
                    progress=False, **kw)
    return runner, adapter, matcher


def comparable(records: dict[str, Record]) -> list:
    return [(r.key, r.metrics, r.prediction) for r in records.values()]


def test_run_then_rerun_is_a_no_op(tmp_path):
    runner, _, matcher = make(tmp_path)
    res = runner.run()
    assert (res.expected, res.done, res.computed, res.failures) == (5, 5, 5, 0)
    assert res.summary["metrics"] == {"err_mean": 0.0, "count": 5} and res.summary["num_records"] == 5
    files = sorted(p.name for p in res.run_dir.path.iterdir())
    assert files == [".lock", "config.json", "manifest.json", "records.jsonl", "summary.json"]
    before = {p.name: p.read_bytes() for p in res.run_dir.path.iterdir()}
    again, _, matcher2 = make(tmp_path)
    res2 = again.run()
    assert res2.run_dir == res.run_dir and res2.computed == 0 and matcher2.calls == 0
    assert res2.summary == res.summary
    assert {p.name: p.read_bytes() for p in res.run_dir.path.iterdir()} == before  # never rewritten


def test_limit_is_a_prefix_and_a_larger_limit_continues(tmp_path):
    results = [make(tmp_path, limit=lim)[0].run() for lim in (2, 4, 1, None)]
    assert [(r.expected, r.done, r.computed) for r in results] == [(2, 2, 2), (4, 4, 2), (1, 4, 0), (5, 5, 1)]
    assert len({r.run_dir for r in results}) == 1
    manifest = results[-1].run_dir.read_manifest()
    assert manifest["status"] == "finished" and manifest["counts"] == {"expected": 5, "done": 5}
    assert manifest["limit"] is None and manifest["resumed"] == 2  # the limit-1 call changed nothing
    fresh = make(tmp_path, results="fresh")[0].run()
    assert fresh.summary["metrics"] == results[-1].summary["metrics"]
    assert comparable(RecordStore(fresh.run_dir.records_path).load()) == \
        comparable(RecordStore(results[-1].run_dir.records_path).load())


def test_changed_settings_make_new_runs_and_reuse_the_match_cache(tmp_path):
    base, _, m0 = make(tmp_path)
    r0 = base.run()
    assert m0.calls == 5
    solver, _, m1 = make(tmp_path, est=ToyEstimator(scale=2.0))
    r1 = solver.run()
    assert r1.run_dir != r0.run_dir and r1.run_dir.slug == "estimator.scale=2.0"
    assert m1.calls == 0  # re-solved from cached correspondences
    assert r1.summary["metrics"]["err_mean"] == pytest.approx(30.0)
    rec = RecordStore(r1.run_dir.records_path).load()["s0"]
    assert rec.meta["cache_hits"] == 1 and rec.timings["matcher.forward"] == 0.5
    changed, _, m2 = make(tmp_path, mcfg=CountConfig(per_sample=11))
    r2 = changed.run()
    assert r2.run_dir not in (r0.run_dir, r1.run_dir) and m2.calls == 5
    seeded = make(tmp_path, seed=3)[0].run()
    assert seeded.run_dir not in (r0.run_dir, r1.run_dir, r2.run_dir) and seeded.run_dir.slug == "seed=3"
    assert make(tmp_path)[0].run().run_dir == r0.run_dir


def test_force_starts_over(tmp_path):
    make(tmp_path)[0].run()
    runner, _, matcher = make(tmp_path, force=True)
    res = runner.run()
    assert res.computed == 5 and res.done == 5
    assert res.run_dir.records_path.read_text().count("\n") == 5
    assert res.run_dir.read_manifest()["resumed"] == 0


def test_matcher_and_solver_errors_become_failure_records(tmp_path, caplog):
    runner, _, _ = make(tmp_path, mcfg=CountConfig(fail_on="s1"), est=ToyEstimator(explode_on="s3"))
    res = runner.run()
    assert res.done == 5 and res.failures == 2 and res.summary["num_failures"] == 2
    records = RecordStore(res.run_dir.records_path).load()
    assert records["s1"].prediction["failure_reason"] == "matcher_error: RuntimeError: boom"
    assert records["s3"].prediction["failure_reason"] == "solver_error: ZeroDivisionError: bad geometry"
    assert records["s3"].prediction["num_matches"] == 40 and records["s1"].metrics == {"err": None}
    assert records["s0"].prediction["success"] and records["s4"].metrics == {"err": 0.0}
    assert "matcher failed" in caplog.text


def test_seeds_derive_from_the_base_seed_and_the_sample_key(tmp_path):
    runner, adapter, _ = make(tmp_path, seed=7, limit=2)
    runner.run()
    runner2, adapter2, _ = make(tmp_path, seed=7)
    res = runner2.run()
    seeds = {**adapter.seeds, **adapter2.seeds}
    assert seeds == {f"s{k}": derive_seed(7, f"s{k}") for k in range(5)}
    records = RecordStore(res.run_dir.records_path).load()
    assert all(r.meta["seed"] == seeds[k] for k, r in records.items())


def test_ground_truth_matchers_get_the_adapter_correspondences(tmp_path):
    runner, _, matcher = make(tmp_path, matcher_cls=GtMatcher, adapter_cls=ToyGtAdapter)
    res = runner.run()
    assert res.summary["metrics"]["err_mean"] == 0.0 and matcher.calls == 5
    with pytest.raises(ValueError, match="needs ground-truth correspondences"):
        make(tmp_path, matcher_cls=GtMatcher)


def test_resume_after_a_torn_tail(tmp_path, caplog):
    first = make(tmp_path, limit=3)[0].run()
    path = first.run_dir.records_path
    with open(path, "ab") as f:
        f.write(b'{"key":"s3","metr')  # killed while writing s3
    manifest = json.loads(first.run_dir.manifest_path.read_text())
    first.run_dir.manifest_path.write_text(json.dumps({**manifest, "status": "running"}))
    res = make(tmp_path)[0].run()
    assert res.done == 5 and res.computed == 2
    assert [r.key for r in RecordStore(path).load().values()] == ["s0", "s1", "s2", "s3", "s4"]
    assert path.read_text().count("\n") == 5 and "torn" in caplog.text


def test_manifest_records_provenance(tmp_path):
    res = make(tmp_path, limit=3, seed=2, device="cpu")[0].run()
    m = res.run_dir.read_manifest()
    for key in ("git", "packages", "device", "precision", "hostname", "data_root", "dataset_root",
                "dataset_checksum", "limit", "seed", "counts", "started", "finished", "status", "key"):
        assert key in m, key
    assert m["limit"] == 3 and m["seed"] == 2 and m["device"] == "cpu" and m["world_size"] == 1
    assert set(m["git"]) == {"commit", "dirty"} and m["packages"]["numpy"] == np.__version__
    assert m["dataset_root"] == str((tmp_path / "data" / "toy").resolve())
    cfg = json.loads(res.run_dir.config_path.read_text())
    assert cfg["key"] == res.spec.key and cfg["estimator_config"] == {"scale": 1.0, "explode_on": ""}


def test_a_locked_run_is_refused(tmp_path):
    runner, _, _ = make(tmp_path)
    res = runner.run()
    with res.run_dir.lock():
        with pytest.raises(RunLockedError):
            make(tmp_path)[0].run()


def test_variant_slug_lists_non_default_settings():
    assert variant_slug({"matcher": CountConfig(), "estimator": ToyEstimator()}) == "default"
    assert variant_slug({"matcher": CountConfig(per_sample=3), "estimator": ToyEstimator(scale=0.5)}, 1) == \
        "matcher.per_sample=3,estimator.scale=0.5,seed=1"


def test_resolve_configs_routes_overrides():
    cfgs = resolve_configs(ToyAdapter, CountingMatcher, {"per_sample": "4", "estimator.scale": "2"})
    assert cfgs == {"matcher": CountConfig(per_sample=4), "adapter": ToyConfig(),
                    "estimator": ToyEstimator(2.0)}


def test_adapter_may_provide_its_dataset_checksum(tmp_path):
    class Fingerprinted(ToyAdapter):
        def dataset_checksum(self):
            return "official-v1.1"

    res = make(tmp_path, adapter_cls=Fingerprinted)[0].run()
    assert res.run_dir.read_manifest()["dataset_checksum"] == "official-v1.1"
    plain = make(tmp_path, results="plain")[0].run()
    assert plain.run_dir.read_manifest()["dataset_checksum"] is None  # the toy data folder does not exist


@dataclass(frozen=True)
class BatchConfig(CountConfig):
    batch_size: int = 3


class BatchingMatcher(CountingMatcher):
    """CountingMatcher with ``match_many``: records each call's pair count."""

    name: ClassVar[str] = "batching"
    Config = BatchConfig

    def __init__(self, config=BatchConfig(), device="cpu"):
        super().__init__(config, device)
        self.batches: list[int] = []

    def match_many(self, pairs):
        self.batches.append(len(pairs))
        return [self.match(v0, v1) for v0, v1 in pairs]


def test_samples_of_one_pair_share_batches_and_failures_stay_per_sample(tmp_path):
    runner, _, matcher = make(tmp_path, matcher_cls=BatchingMatcher, mcfg=BatchConfig(fail_on="s1"))
    res = runner.run()
    # 5 one-pair samples in groups of 3 and 2; the first group fails on s1 and is redone one by one
    assert matcher.batches == [3, 2] and res.done == 5 and res.failures == 1
    records = RecordStore(res.run_dir.records_path).load()
    assert records["s1"].prediction["failure_reason"].startswith("matcher_error: RuntimeError: boom")
    assert all(records[k].metrics["err"] == 0.0 for k in ("s0", "s2", "s3", "s4"))
    assert all(records[k].timings["match"] >= 0 and records[k].timings["matcher.forward"] == 0.5
               for k in ("s0", "s2", "s3", "s4"))
    # the failed chunk returned nothing: s0, s1 (again) and s2 are matched alone, then s3 + s4 together
    assert matcher.calls == 2 + 3 + 2


def test_variant_slug_names_files_not_paths():
    from benchmarks.matchers.mast3r import Mast3rConfig

    slug = variant_slug({"matcher": Mast3rConfig(checkpoint="/data/weights/MASt3R_ViTLarge.pth")})
    assert slug == "matcher.checkpoint=MASt3R_ViTLarge.pth" and "/" not in slug
