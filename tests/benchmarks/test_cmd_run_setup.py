"""Issue 15 item 3: a broken matcher or estimator setup stops the run before the first sample
(exit 2, the message, no record, no summary); the checkpoint is loaded once, not per sample."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.matchers.mast3r import make_random_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def no_outputs(results: Path) -> None:
    assert not list(results.rglob("records.jsonl")) and not list(results.rglob("summary.json"))


@pytest.fixture(scope="module")
def dust3r_ckpt(tmp_path_factory) -> Path:
    return make_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_dust3r.pth", preset="tiny-dust3r")


def test_readme_as_checkpoint_exits_2_with_no_record_cli(tmp_path):
    """The issue's scenario through the CLI (subprocess): by option, then by $MAST3R_BENCH_CHECKPOINT."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    base = [sys.executable, "-m", "benchmarks", "run", "smoke", "--matcher", "mast3r", "--data",
            str(tmp_path / "d"), "--results", str(tmp_path / "r"), "--limit", "3", "--no-progress"]
    for extra, environ in (([f"matcher.checkpoint={ROOT / 'README.md'}"], env),
                           ([], {**env, "MAST3R_BENCH_CHECKPOINT": str(ROOT / "README.md")})):
        out = subprocess.run(base + extra, env=environ, capture_output=True, text=True, timeout=300)
        assert out.returncode == 2, out.stdout + out.stderr
        (line,) = out.stderr.strip().splitlines()
        assert line.startswith("mast3r-bench run: error: matcher 'mast3r' cannot be set up: ")
        assert "README.md" in line and "finished" not in out.stdout
        no_outputs(tmp_path / "r")


def _run(tmp_path, *overrides: str) -> int:
    return main(["run", "smoke", "--matcher", "mast3r", "--data", str(tmp_path / "d"), "--results",
                 str(tmp_path / "r"), "--limit", "3", "--no-progress", *overrides])


def test_truncated_checkpoint(tmp_path, dust3r_ckpt, capsys):
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(dust3r_ckpt.read_bytes()[: dust3r_ckpt.stat().st_size // 2])
    assert _run(tmp_path, f"matcher.checkpoint={bad}") == 2
    assert "matcher 'mast3r' cannot be set up" in capsys.readouterr().err
    no_outputs(tmp_path / "r")


def test_wrong_key_checkpoint(tmp_path, dust3r_ckpt, capsys):
    import torch

    obj = torch.load(dust3r_ckpt, map_location="cpu", weights_only=False)
    state = obj["model"]
    first = next(iter(state))
    state[first + "_renamed"] = state.pop(first)
    bad = tmp_path / "wrong_key.pth"
    torch.save(obj, bad)
    assert _run(tmp_path, f"matcher.checkpoint={bad}") == 2
    err = capsys.readouterr().err
    assert "matcher 'mast3r' cannot be set up" in err and len(err.strip().splitlines()) == 1
    no_outputs(tmp_path / "r")


def test_dust3r_checkpoint_for_mast3r_is_refused_at_setup(tmp_path, dust3r_ckpt, capsys):
    assert _run(tmp_path, f"matcher.checkpoint={dust3r_ckpt}") == 2
    assert "no descriptor head" in capsys.readouterr().err
    no_outputs(tmp_path / "r")


def test_the_checkpoint_is_loaded_once_not_per_sample(tmp_path, monkeypatch, capsys):
    import mast3r.weights

    calls = []

    def broken(path, *args, **kwargs):
        calls.append(path)
        raise mast3r.weights.CheckpointError(f"{path}: not a checkpoint")

    monkeypatch.setattr(mast3r.weights, "load_model", broken)
    monkeypatch.setenv("MAST3R_BENCH_CHECKPOINT", str(ROOT / "README.md"))
    assert _run(tmp_path) == 2
    assert len(calls) == 1
    assert "CheckpointError" in capsys.readouterr().err
    no_outputs(tmp_path / "r")


@pytest.mark.parametrize("value", ["nan", "-1", "inf"])
def test_bad_estimator_threshold_exits_2_before_anything(tmp_path, value, capsys):
    rc = main(["run", "mapfree", "--matcher", "oracle", "--data", str(tmp_path / "d"), "--results",
               str(tmp_path / "r"), f"estimator.pnp_max_error_px={value}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "estimator.pnp_max_error_px must be a finite number of pixels > 0" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("key", ["estimator.ransac_max_trials", "estimator.ransac.max_num_trials"])
def test_bad_ransac_option_exits_2_before_anything(tmp_path, key, capsys):
    """Issue 17 item 2: the nested RANSAC options (and their flat names of before) are validated
    when the config is built."""
    rc = main(["run", "mapfree", "--matcher", "oracle", "--data", str(tmp_path / "d"), "--results",
               str(tmp_path / "r"), f"{key}=-1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "estimator.ransac options" in err and "max_num_trials (-1)" in err
    assert not (tmp_path / "r").exists()
