"""Issue 15 item 2 through the CLI (subprocess): a run never resumes into records of other data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datasets.synthetic.suite import write_benchmark

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "benchmarks", "run", "mapfree", "--matcher", "sift", "--no-progress", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def roots(tmp_path):
    """Two synthetic Map-free roots of the same layout and sample keys but other content."""
    write_benchmark(tmp_path / "A", "mapfree", seed=0, size="small")
    write_benchmark(tmp_path / "B", "mapfree", seed=1, size="small")
    return tmp_path


def only_run(results: Path) -> Path:
    (run,) = (results / "runs" / "mapfree" / "sift").iterdir()
    return run


def test_another_data_root_never_resumes_into_the_records(roots):
    first = cli("--data", "A", "--results", "R", "--limit", "1", cwd=roots)
    assert first.returncode == 0, first.stderr
    run = only_run(roots / "R")
    summary = (run / "summary.json").read_text()
    out = cli("--data", "B", "--results", "R", "--limit", "4", cwd=roots)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "3/2 samples" not in out.stdout and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    rel = (run / "records.jsonl").relative_to(roots)
    assert f"{rel}:1: sample 's00460/seq1/frame_00000.jpg' changed since it was recorded" in line
    assert "--force" in line and str(roots / "B") in line
    # nothing was written: the records and the summary are those of A
    assert (run / "summary.json").read_text() == summary
    assert (run / "records.jsonl").read_bytes().count(b"\n") == 1
    # the same data, moved elsewhere, still resumes (fingerprints are of content, not paths)
    (roots / "A").rename(roots / "A2")
    moved = cli("--data", "A2", "--results", "R", cwd=roots)
    assert moved.returncode == 0, moved.stderr
    assert "2/2 samples (1 computed now" in moved.stdout


def test_an_edited_ground_truth_pose_is_not_resumed(roots):
    assert cli("--data", "A", "--results", "R", "--limit", "2", cwd=roots).returncode == 0
    poses = roots / "A" / "mapfree" / "val" / "s00460" / "poses.txt"
    lines = poses.read_text().splitlines()
    (k,) = [i for i, line in enumerate(lines) if line.startswith("seq1/frame_00000.jpg ")]
    tokens = lines[k].split()
    tokens[-1] = repr(float(tokens[-1]) + 0.5)  # move the query's GT camera by half a metre
    lines[k] = " ".join(tokens)
    poses.write_text("\n".join(lines) + "\n")
    out = cli("--data", "A", "--results", "R", "--limit", "2", cwd=roots)
    assert out.returncode == 2 and "0 computed now" not in out.stdout
    assert "records.jsonl:1: sample 's00460/seq1/frame_00000.jpg' changed since it was recorded" in out.stderr
    assert "ground truth" in out.stderr and "Traceback" not in out.stderr


def test_a_foreign_record_is_an_error_naming_file_and_line(roots):
    assert cli("--data", "A", "--results", "R", "--limit", "2", cwd=roots).returncode == 0
    run = only_run(roots / "R")
    records = run / "records.jsonl"
    foreign = json.loads(records.read_text().splitlines()[0])
    foreign["key"] = "s00999/seq1/frame_00000.jpg"
    with open(records, "a") as f:
        f.write(json.dumps(foreign) + "\n")
    out = cli("--data", "A", "--results", "R", "--limit", "2", cwd=roots)
    assert out.returncode == 2, out.stdout + out.stderr
    where = f"{records.relative_to(roots)}:3: record 's00999/seq1/frame_00000.jpg'"
    assert f"{where} is not a sample of mapfree in {roots / 'A' / 'mapfree'}" in out.stderr
    assert "| sift" not in out.stdout  # no table, no export of the mixed records
