"""``benchmarks.run_setup.resolve_data_root``: a missing benchmark folder beside the synthetic suite."""

from __future__ import annotations

import pytest

from benchmarks.cli import main
from benchmarks.run_setup import resolve_data_root


def test_missing_real_data_suggests_the_synthetic_suite(tmp_path, capsys):
    (tmp_path / "data" / "synthetic" / "smoke").mkdir(parents=True)
    assert resolve_data_root(tmp_path / "data") == tmp_path / "data"
    with pytest.raises(FileNotFoundError, match=r"add --data .*data/synthetic"):
        resolve_data_root(tmp_path / "data", "smoke")
    (tmp_path / "data" / "smoke").mkdir()
    assert resolve_data_root(tmp_path / "data", "smoke") == tmp_path / "data"  # real data wins
    (tmp_path / "data" / "smoke").rmdir()
    assert main(["run", "smoke", "--matcher", "random", "--data", str(tmp_path / "data"),
                 "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--data {tmp_path / 'data' / 'synthetic'}" in err
