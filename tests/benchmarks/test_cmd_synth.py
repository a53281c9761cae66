"""`mast3r-bench synth`: writes the requested benchmark folders, honours --reuse, rejects bad input."""

from __future__ import annotations

import pytest

from benchmarks.cli import main
from datasets.paths import ENV_VAR, data_root, synthetic_root
from datasets.synthetic.suite import read_manifest


def test_synth_writes_and_reuses(tmp_path, capsys):
    out = tmp_path / "suite"
    assert main(["synth", "--out", str(out), "--size", "small", "--seed", "5", "--only", "re10k",
                 "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "re10k" in text and str(out / "re10k") in text
    m = read_manifest(out / "re10k")
    assert (m["seed"], m["size"]) == (5, "small")
    assert not (out / "dtu").exists()
    assert main(["synth", "--out", str(out), "--size", "small", "--seed", "5", "--only", "re10k",
                 "--reuse"]) == 0
    assert "reused" in capsys.readouterr().out


def test_synth_rejects_unknown_benchmark(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(tmp_path), "--only", "mapfree,bogus"])
    assert "bogus" in capsys.readouterr().err


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path / "data"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "cli") == tmp_path / "cli"
    assert synthetic_root() == tmp_path / "env" / "synthetic"
