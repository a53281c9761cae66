"""Acceptance: a real `run` killed with SIGKILL mid-run and started again ends exactly like an
uninterrupted run (same records, no duplicates, same summary)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.runner import run_benchmark
from benchmarks.store import RecordStore

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def run_cmd(data: Path, results: Path, sleep: float = 0.0, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "MAST3R_BENCH_TEST_SLEEP_PER_SAMPLE": str(sleep)}
    cmd = [sys.executable, "-m", "benchmarks", "run", "smoke", "--matcher", "oracle", "--data", str(data),
           "--results", str(results), "--no-progress", *extra]
    return subprocess.Popen(cmd, env=env, cwd=data.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.mark.parametrize("workers", ["0", "2"])  # 2: the pipelined path (benchmarks.pipeline)
def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path, capsys, workers):
    data = tmp_path / "data"
    # The uninterrupted reference runs in-process (it also generates the data once).
    reference = run_benchmark("smoke", "oracle", data_root=data, results_root=tmp_path / "reference",
                              progress=False).run_dir.path

    results = tmp_path / "killed"
    proc = run_cmd(data, results, 0.25, "--workers", workers)
    deadline = time.monotonic() + 60
    records = None
    while time.monotonic() < deadline:
        runs = list((results / "runs" / "smoke" / "oracle").glob("*/records.jsonl"))
        if runs and runs[0].read_bytes().count(b"\n") >= 3:
            records = runs[0]
            break
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.02)
    assert records is not None, "no records appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = records.read_bytes().count(b"\n")
    assert 3 <= killed_at < 8, "the kill must land mid-run"
    manifest = json.loads((records.parent / "manifest.json").read_text())
    assert manifest["status"] == "running" and not (records.parent / "summary.json").exists()

    # Started again (in-process through the same CLI: the state it resumes from is only on disk).
    assert main(["run", "smoke", "--matcher", "oracle", "--data", str(data), "--results", str(results),
                 "--no-progress", "--workers", workers]) == 0
    out = capsys.readouterr().out
    assert "8/8 samples" in out and f"({8 - killed_at} computed now" in out
    got, want = RecordStore(records).load(), RecordStore(reference / "records.jsonl").load()
    assert records.read_bytes().count(b"\n") == len(got) == 8  # exactly the expected, no duplicates
    assert list(got) == list(want)
    for key in want:
        assert (got[key].metrics, got[key].prediction) == (want[key].metrics, want[key].prediction)
    summary, ref_summary = (json.loads((d / "summary.json").read_text()) for d in (records.parent, reference))
    assert summary["metrics"] == ref_summary["metrics"] and summary["key"] == ref_summary["key"]
    assert summary["metrics"]["success_3px_pct"] == 100.0
    assert json.loads((records.parent / "manifest.json").read_text())["resumed"] == 1
