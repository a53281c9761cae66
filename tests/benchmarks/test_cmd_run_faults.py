"""Issue 15 items 5 (run part) and 6: an empty benchmark, bad options and resource faults give one
clear line and a non-zero exit, never a traceback; finished records are never lost."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.store import RecordStore, RunDir

ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            **extra}


def smoke(tmp_path: Path, *extra: str, results: str = "results") -> list[str]:
    return ["run", "smoke", "--matcher", "oracle", "--data", str(tmp_path / "data"), "--results",
            str(tmp_path / results), "--no-progress", *extra]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_an_empty_benchmark_warns_and_exits_1_cli(tmp_path):
    cmd = [sys.executable, "-m", "benchmarks", *smoke(tmp_path, "adapter.num_pairs=0")]
    out = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "0/0 samples" not in out.stdout and "finished" not in out.stdout
    line = one_error_line(out.stderr)
    assert line.startswith("WARNING ") and "smoke: no samples in" in line and "nothing to run" in line


def test_limit_zero_says_there_is_nothing_to_run(tmp_path, caplog):
    assert main(smoke(tmp_path, "--limit", "0")) == 1
    assert "--limit 0: nothing to run" in caplog.text
    assert not (tmp_path / "results").exists()


def test_negative_limit_names_the_option(tmp_path, capsys):
    assert main(smoke(tmp_path, "--limit", "-1")) == 2
    assert one_error_line(capsys.readouterr().err) == \
        "mast3r-bench run: error: --limit must be a number of samples >= 1, got -1"


def test_results_pointing_at_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(smoke(tmp_path, results="afile")) == 2
    assert one_error_line(capsys.readouterr().err) == \
        f"mast3r-bench run: error: --results {tmp_path / 'afile'} is a file, not a folder"


def test_a_bogus_device(tmp_path, capsys):
    assert main(smoke(tmp_path, "--device", "bogus")) == 2
    assert "--device 'bogus' is not a torch device" in one_error_line(capsys.readouterr().err)


def test_cuda_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(smoke(tmp_path, "--device", "cuda")) == 2
    assert "--device cuda: CUDA is not available" in one_error_line(capsys.readouterr().err)
    assert main(["time", "frm", "--device", "cuda"]) == 2
    assert one_error_line(capsys.readouterr().err).startswith(
        "mast3r-bench time: error: --device cuda: CUDA is not available")


def test_a_read_only_results_dir(tmp_path, monkeypatch, capsys):
    def read_only(self):
        raise OSError(errno.EROFS, "Read-only file system", str(self.path))

    monkeypatch.setattr(RunDir, "lock", read_only)
    assert main(smoke(tmp_path)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("mast3r-bench run: error: Read-only file system: ") and str(tmp_path) in line


def comparable(path: Path) -> list:
    return [(r.key, r.metrics, r.prediction) for r in RecordStore(path).load().values()]


def test_disk_full_mid_write_keeps_the_records_and_the_next_run_repairs(tmp_path, monkeypatch, capsys):
    assert main(smoke(tmp_path, results="reference")) == 0
    (reference,) = (tmp_path / "reference").rglob("records.jsonl")
    original, calls = RecordStore.append, []

    def append(self, record):
        calls.append(record.key)
        if len(calls) == 3:  # the disk fills up half-way through the third record
            with open(self.path, "ab") as f:
                f.write(b'{"key":"pair_002","metr')
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        original(self, record)

    monkeypatch.setattr(RecordStore, "append", append)
    assert main(smoke(tmp_path)) == 2
    line = one_error_line(capsys.readouterr().err)
    (records,) = (tmp_path / "results").rglob("records.jsonl")
    assert line == (f"mast3r-bench run: error: No space left on device: {records} (2 records kept; "
                    "re-run the same command to resume)")
    assert len(RecordStore(records).load()) == 2 and not (records.parent / "summary.json").exists()
    monkeypatch.setattr(RecordStore, "append", original)
    assert main(smoke(tmp_path)) == 0
    assert "8/8 samples (6 computed now" in capsys.readouterr().out
    assert comparable(records) == comparable(reference)


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs POSIX signals")
@pytest.mark.parametrize("workers", ["0", "2"])  # 2: the pipelined path (benchmarks.pipeline)
def test_ctrl_c_keeps_the_records_and_says_how_to_resume(tmp_path, capsys, workers):
    cmd = [sys.executable, "-m", "benchmarks", *smoke(tmp_path, "--workers", workers)]
    proc = subprocess.Popen(cmd, env=env(MAST3R_BENCH_TEST_SLEEP_PER_SAMPLE="0.25"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline, records = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        found = list((tmp_path / "results").rglob("records.jsonl"))
        if found and found[0].read_bytes().count(b"\n") >= 2:
            records = found[0]
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    assert records is not None, "no records appeared"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    kept = records.read_bytes().count(b"\n")
    assert 2 <= kept < 8 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last == f"interrupted: {kept} records kept; re-run the same command to resume"
    assert main(smoke(tmp_path)) == 0
    assert f"8/8 samples ({8 - kept} computed now" in capsys.readouterr().out
