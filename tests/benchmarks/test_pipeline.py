"""Pipelined execution (``run --workers N``): records in sample order, at most ``in_flight`` samples
matched and not yet recorded, errors in order, and runs identical to the serial path on the
synthetic suite (real solvers), resumable across worker counts, with the run identity unchanged."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.pipeline import SERIAL, Execution, scored_records
from benchmarks.runner import run_benchmark
from benchmarks.store import RecordStore
from benchmarks.types import Record, Sample


class FakeScorer:
    """Solves sample k in ``delays[k]`` seconds on whatever thread; logs what ran where."""

    def __init__(self, delays: list[float], explode_on: int = -1):
        self.delays, self.explode_on = delays, explode_on
        self.matched: list[int] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def match(self, sample, matched):
        self.matched.append(int(sample.key))
        return matched

    def solve(self, sample, fingerprint, matched):
        k = int(sample.key)
        time.sleep(self.delays[k])
        with self.lock:
            self.threads.add(threading.current_thread().name)
        if k == self.explode_on:
            raise ZeroDivisionError(f"evaluate of {k}")
        return Record(sample.key, {"k": k}, {"fp": fingerprint["f"]}, {}, {})

    def __call__(self, sample, fingerprint, matched=None):
        return self.solve(sample, fingerprint, self.match(sample, matched))


def samples(n: int) -> list[Sample]:
    return [Sample(str(k), (), {}) for k in range(n)]


def fingerprint(sample):
    return {"f": f"fp{sample.key}"}


@pytest.mark.parametrize("execution", [SERIAL, Execution(workers=1), Execution(workers=3, in_flight=2)])
def test_records_come_in_sample_order_whatever_finishes_first(execution):
    n = 8
    scorer = FakeScorer([0.02 * (n - k) for k in range(n)])  # later samples solve faster
    out = list(scored_records(((s, None) for s in samples(n)), scorer, fingerprint, execution))
    assert [r.key for r in out] == [str(k) for k in range(n)]
    assert [r.prediction["fp"] for r in out] == [f"fp{k}" for k in range(n)]
    pool = any(t.startswith("mast3r-bench-solve") for t in scorer.threads)
    assert pool == (execution.workers > 0)


def test_at_most_in_flight_samples_are_matched_and_not_yet_recorded():
    scorer = FakeScorer([0.01] * 12)
    execution = Execution(workers=2, in_flight=3)
    seen = 0
    for record in scored_records(((s, None) for s in samples(12)), scorer, fingerprint, execution):
        seen += 1
        assert int(record.key) == seen - 1
        assert len(scorer.matched) - (seen - 1) <= execution.window  # this one included
    assert seen == 12 and execution.as_dict() == {"workers": 2, "in_flight": 3}
    assert Execution(workers=4).window == 8 and Execution().as_dict() == {"workers": 0, "in_flight": 0}


def test_an_error_surfaces_in_order_after_the_earlier_records():
    scorer = FakeScorer([0.05, 0.05, 0.0, 0.0, 0.0], explode_on=2)
    got = []
    with pytest.raises(ZeroDivisionError, match="evaluate of 2"):
        for record in scored_records(((s, None) for s in samples(5)), scorer, fingerprint, Execution(2)):
            got.append(record.key)
    assert got == ["0", "1"]


def test_negative_settings_are_refused():
    with pytest.raises(ValueError, match="workers"):
        Execution(workers=-1)


# -- real runs on the synthetic suite ---------------------------------------------------------------
@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    from datasets.synthetic.suite import ensure_suite

    root = tmp_path_factory.mktemp("suite")
    ensure_suite(root, seed=0, size="small", benchmarks=["mapfree", "co3dv2", "aachen", "dtu"])
    return root


def content(run_dir) -> tuple[list, dict]:
    """Records without timings (paths under the results root made relative), and summary metrics."""
    root = str(run_dir.path.parents[3])
    recs = [json.loads(json.dumps([r.key, r.metrics, r.prediction, r.meta]).replace(root, "ROOT"))
            for r in RecordStore(run_dir.records_path).load().values()]
    return recs, json.loads((run_dir.path / "summary.json").read_text())["metrics"]


@pytest.mark.parametrize("bench, matcher", [("mapfree", "sift"), ("co3dv2", "oracle"), ("aachen", "oracle"),
                                            ("dtu", "oracle")])
def test_workers_give_the_serial_results(suite, tmp_path, bench, matcher):
    serial = run_benchmark(bench, matcher, data_root=suite, results_root=tmp_path / "serial", progress=False)
    piped = run_benchmark(bench, matcher, data_root=suite, results_root=tmp_path / "piped", progress=False,
                          execution=Execution(workers=2))
    assert serial.run_dir.path.name == piped.run_dir.path.name  # same identity
    assert piped.done == serial.done == serial.expected > 0
    assert content(piped.run_dir) == content(serial.run_dir)
    keys = list(RecordStore(piped.run_dir.records_path).load())
    assert keys == list(RecordStore(serial.run_dir.records_path).load())  # sample order
    manifest = json.loads(piped.run_dir.manifest_path.read_text())
    assert manifest["execution"]["runner"] == {"workers": 2, "in_flight": 4}
    assert json.loads(serial.run_dir.manifest_path.read_text())["execution"]["runner"]["workers"] == 0


def test_a_run_resumes_across_worker_counts_in_the_same_directory(suite, tmp_path, capsys):
    args = ["run", "aachen", "--matcher", "oracle", "--data", str(suite), "--results", str(tmp_path / "r"),
            "--no-progress"]
    assert main([*args, "--limit", "1"]) == 0
    assert main([*args, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "aachen/oracle: 3/3 samples (2 computed now" in out
    ref = run_benchmark("aachen", "oracle", data_root=suite, results_root=tmp_path / "ref", progress=False)
    run_dirs = list((tmp_path / "r" / "runs" / "aachen" / "oracle").iterdir())
    assert len(run_dirs) == 1 and run_dirs[0].name == ref.run_dir.path.name
    got = RecordStore(run_dirs[0] / "records.jsonl").load()
    want = RecordStore(ref.run_dir.records_path).load()
    assert [(r.key, r.metrics, r.prediction) for r in got.values()] == \
        [(r.key, r.metrics, r.prediction) for r in want.values()]


def test_negative_workers_is_one_error_line(tmp_path, capsys):
    args = ["run", "smoke", "--matcher", "oracle", "--data", str(tmp_path / "d"), "--workers", "-1"]
    assert main(args) == 2
    assert "--workers must be a number of threads >= 0, got -1" in capsys.readouterr().err
