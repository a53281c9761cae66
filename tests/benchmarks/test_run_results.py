"""RunOutcome and the run summary from records (failures and data errors counted apart)."""

from __future__ import annotations

from benchmarks.hashing import RunSpec
from benchmarks.run_results import RunOutcome, run_summary
from benchmarks.store import RunDir
from benchmarks.types import Record

SPEC = RunSpec(bench="smoke", adapter_version="1", adapter_config={}, estimator_config={}, matcher="random",
               matcher_config={}, weights=None, seed=0)
RECORDS = {
    "ok": Record("ok", {"err": 1.0}, {"success": True}),
    "bad": Record("bad", {"err": None}, {"success": False, "failure_reason": "too_few_matches"}),
    "io": Record("io", {"err": None}, {"success": False, "failure_reason": "data_error: x.png: truncated"}),
}


class Summing:
    def summarize(self, records):
        return {"n": len(list(records))}


def test_run_summary_leaves_data_errors_out_of_the_metrics():
    summary = run_summary(SPEC, "default", RECORDS, Summing())
    assert summary["num_records"] == 3 and summary["num_failures"] == 1 and summary["num_data_errors"] == 1
    assert summary["data_errors"] == [{"key": "io", "error": "x.png: truncated"}]
    assert summary["metrics"] == {"n": 2} and summary["key"] == SPEC.key and summary["slug"] == "default"


def test_outcome_of_records_and_its_result(tmp_path):
    outcome = RunOutcome.of({"metrics": {}}, 5, RECORDS, 2)
    assert (outcome.expected, outcome.done, outcome.computed, outcome.failures) == (5, 3, 2, 1)
    assert outcome.data_errors == (("io", "x.png: truncated"),)
    result = outcome.result(RunDir(tmp_path), SPEC, {"rank": 0, "world_size": 1})
    assert result.done == 3 and result.data_errors == [("io", "x.png: truncated")] and result.spec is SPEC
    assert result.extra == {"rank": 0, "world_size": 1} and result.run_dir.path == tmp_path
