"""SampleScorer: one sample into its record; matcher and solver errors become failure records."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks.fingerprint import META_KEY
from benchmarks.hashing import derive_seed
from benchmarks.sample_eval import SampleScorer
from benchmarks.types import Correspondences, Prediction, Sample, View


class Adapter:
    def __init__(self, fail_solve: bool = False) -> None:
        self.fail_solve, self.seeds = fail_solve, []

    def pairs(self, sample):
        return [(0, 1)]

    def solve(self, sample, corrs, seed):
        self.seeds.append(seed)
        if self.fail_solve:
            raise RuntimeError("singular system")
        return Prediction(True, num_matches=len(corrs[0]))

    def evaluate(self, sample, prediction):
        return {"ok": float(prediction.success)}


class Matcher:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def match(self, view0, view1):
        if self.fail:
            raise ValueError("no descriptors")
        return Correspondences(np.zeros((3, 2)), np.ones((3, 2)), np.ones(3), timings={"match": 0.5})


@pytest.fixture()
def sample(tmp_path):
    views = []
    for i in range(2):
        path = tmp_path / f"v{i}.png"
        Image.new("RGB", (8, 6)).save(path)
        views.append(View(f"v{i}", path, 8, 6))
    return Sample("s0", tuple(views), meta={"group": "a"})


def _scorer(adapter, matcher, tmp_path):
    return SampleScorer(adapter, matcher, None, tmp_path, False, 7, 10**6)


def test_a_matched_and_solved_sample(sample, tmp_path):
    adapter = Adapter()
    record = _scorer(adapter, Matcher(), tmp_path)(sample, {"views": "x"})
    assert record.key == "s0" and record.metrics == {"ok": 1.0} and record.prediction["num_matches"] == 3
    assert record.meta["num_matches"] == [3] and record.meta["group"] == "a"
    assert record.meta["cache_hits"] == 0
    assert record.meta[META_KEY] == {"views": "x"} and adapter.seeds == [derive_seed(7, "s0")]
    assert record.meta["seed"] == derive_seed(7, "s0") and record.timings["matcher.match"] == 0.5
    assert {"match", "solve", "evaluate"} <= set(record.timings)


def test_matcher_and_solver_errors_are_failure_records(sample, tmp_path):
    record = _scorer(Adapter(), Matcher(fail=True), tmp_path)(sample, {})
    assert record.prediction["failure_reason"] == "matcher_error: ValueError: no descriptors"
    assert record.metrics == {"ok": 0.0} and record.meta["num_matches"] == []
    assert "solve" not in record.timings
    record = _scorer(Adapter(fail_solve=True), Matcher(), tmp_path)(sample, {})
    assert record.prediction["failure_reason"] == "solver_error: RuntimeError: singular system"
    assert record.prediction["num_matches"] == 3 and record.meta["num_matches"] == [3]
