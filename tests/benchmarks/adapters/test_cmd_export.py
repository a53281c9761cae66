"""`mast3r-bench export` and the runner's export at the end of a run (Map-free, synthetic suite)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from benchmarks.cli import main
from benchmarks.runner import run_benchmark
from benchmarks.store import read_json


def test_finished_run_exports_and_export_command_rewrites(synthetic_root: Path, tmp_path: Path,
                                                          capsys) -> None:
    result = run_benchmark("mapfree", "oracle", data_root=synthetic_root, results_root=tmp_path / "res",
                           progress=False)
    summary = read_json(result.run_dir.summary_path)
    assert summary["exports"] == ["export/mapfree_val_submission.zip"]
    first = result.run_dir.path / summary["exports"][0]
    names = zipfile.ZipFile(first).namelist()
    assert names and all(n.startswith("pose_s") and n.endswith(".txt") and "/" not in n for n in names)

    out = tmp_path / "again"
    assert main(["export", str(result.run_dir.path), "--out", str(out)]) == 0
    again = out / "mapfree_val_submission.zip"
    assert capsys.readouterr().out.strip() == str(again)
    assert again.read_bytes() == first.read_bytes()  # deterministic zip, same records


def test_export_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().out
