"""`mast3r-bench table`: files written, formats printed, unfinished runs left out."""

from __future__ import annotations

import io

import pandas as pd

from benchmarks.cli import main
from benchmarks.runner import run_benchmark


def test_table_writes_all_formats_and_prints_one(tmp_path, capsys):
    results = tmp_path / "results"
    for matcher in ("oracle", "random"):
        run_benchmark("smoke", matcher, data_root=tmp_path / "data", results_root=results, limit=3,
                      progress=False)
    assert main(["table", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SMOKE") and "| oracle    |   3 |" in out
    files = sorted(p.name for p in (results / "tables").iterdir())
    assert files == ["smoke.csv", "smoke.md", "smoke.tex"]
    argv = ["table", "smoke", "--format", "csv", "--results", str(results), "--out", str(tmp_path / "t")]
    assert main(argv) == 0
    csv = capsys.readouterr().out
    frame = pd.read_csv(io.StringIO(csv), index_col=0)
    assert frame.loc["oracle", "success_3px_pct"] == 100.0 and frame.loc["random", "success_3px_pct"] == 0.0
    assert (tmp_path / "t" / "smoke.tex").read_text().startswith("% SMOKE")


def test_table_without_finished_runs_fails_clearly(tmp_path, capsys):
    assert main(["table", "--results", str(tmp_path)]) == 1
    assert "no finished runs" in capsys.readouterr().err
    assert main(["table", "mapfree", "--results", str(tmp_path)]) == 1
    assert "mapfree: no finished runs" in capsys.readouterr().err
