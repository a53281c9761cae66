"""``benchmarks.progress``: one progress line per interval when the output is not a terminal."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from benchmarks.progress import INTERVAL_ENV, ProgressLines, format_duration, progress_interval


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_lines_at_a_steady_interval_with_rate_and_eta():
    clock, out = Clock(), io.StringIO()
    with ProgressLines("mapfree/sift", 10, initial=2, interval=30, stream=out, clock=clock) as p:
        for _ in range(8):
            clock.t += 10.0  # one sample per 10 s
            p.update()
    lines = out.getvalue().splitlines()
    # at 30 s and 60 s, then the final line at 80 s
    assert lines == [
        "[progress] mapfree/sift: 5/10 samples (50%), 0.1 samples/s, elapsed 30s, ETA 50s",
        "[progress] mapfree/sift: 8/10 samples (80%), 0.1 samples/s, elapsed 1m00s, ETA 20s",
        "[progress] mapfree/sift: 10/10 samples (100%), 0.1 samples/s, elapsed 1m20s, ETA 0s",
    ]


def test_quiet_when_disabled_or_fast():
    clock, out = Clock(), io.StringIO()
    with ProgressLines("a", 3, interval=30, stream=out, clock=clock, enabled=False) as p:
        clock.t += 100
        p.update()
    with ProgressLines("b", 3, interval=30, stream=out, clock=clock) as p:  # done before the first interval
        p.update(3)
    assert out.getvalue() == ""


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert progress_interval() == 30.0
    monkeypatch.setenv(INTERVAL_ENV, "0.5")
    assert progress_interval() == 0.5
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    with pytest.raises(ValueError, match="MAST3R_BENCH_PROGRESS_INTERVAL='soon' is not a number"):
        progress_interval()
    assert format_duration(3725) == "1h02m" and format_duration(65) == "1m05s"


def test_run_without_a_terminal_prints_progress_lines(tmp_path):
    """The CLI with stdout and stderr piped (CI, nohup): one line per sample at interval 0, on stderr;
    stdout keeps the results."""
    env = {**os.environ, INTERVAL_ENV: "0"}
    cmd = [sys.executable, "-m", "benchmarks", "run", "smoke", "--matcher", "random", "--limit", "3",
           "--data", str(tmp_path / "data"), "--results", str(tmp_path / "results")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[progress] smoke/random: ")]
    assert [line.split(": ", 1)[1].split(" samples")[0] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "samples/s" in lines[0] and "ETA" in lines[0]
    assert "[progress]" not in proc.stdout and "smoke/random: 3/3 samples" in proc.stdout
