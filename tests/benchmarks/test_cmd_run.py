"""`mast3r-bench run` through the real dispatcher (in-process)."""

from __future__ import annotations

import json
import sys

import pytest

from benchmarks.cli import main


@pytest.fixture
def dirs(tmp_path):
    return ["--data", str(tmp_path / "data"), "--results", str(tmp_path / "results")]


def only_run(tmp_path, matcher="oracle"):
    (run,) = (tmp_path / "results" / "runs" / "smoke" / matcher).iterdir()
    return run


def test_run_with_overrides_and_options_in_any_order(tmp_path, dirs, capsys):
    rc = main(["run", "smoke", "max_error_px=2", "--matcher", "oracle", *dirs, "--limit", "2", "--seed", "1",
               "adapter.num_pairs=3"])
    out = capsys.readouterr().out
    assert rc == 0 and "smoke/oracle: 2/2 samples (2 computed now, 0 failures, finished)" in out
    run = only_run(tmp_path)
    assert run.name.startswith("adapter.num_pairs=3,estimator.max_error_px=2.0,seed=1-")
    assert f"oracle [{run.name.rsplit('-', 1)[0]}]" in out  # the table row
    config = json.loads((run / "config.json").read_text())
    assert config["estimator_config"]["max_error_px"] == 2.0 and config["adapter_config"]["num_pairs"] == 3
    assert json.loads((run / "manifest.json").read_text())["limit"] == 2
    # the same settings, spelled differently, continue the same run
    rc = main(["run", "--matcher", "oracle", "smoke", "estimator.max_error_px=2.0", "num_pairs=3", "--seed=1",
               *dirs])
    assert rc == 0 and only_run(tmp_path) == run
    assert "3/3 samples (1 computed now" in capsys.readouterr().out


def test_force_restarts(tmp_path, dirs, capsys):
    assert main(["run", "smoke", "--matcher", "random", *dirs, "--limit", "2"]) == 0
    assert main(["run", "smoke", "--matcher", "random", *dirs, "--limit", "2", "--force"]) == 0
    status = [line for line in capsys.readouterr().out.splitlines() if line.startswith("smoke/random:")]
    assert len(status) == 2 and all("2/2 samples (2 computed now, 2 failures" in line for line in status)


def test_default_job_runs_the_synthetic_suite(tmp_path, dirs, capsys):
    assert main(["run", *dirs, "--suite-size", "small", "--matcher", "oracle", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Synthetic suite") and "[size small]" in out
    for bench in ("mapfree", "aachen", "inloc", "co3dv2", "re10k", "dtu"):
        assert f"{bench}/oracle: " in out
        assert (tmp_path / "data" / "synthetic" / bench / "MANIFEST.json").is_file()
    assert out.count("| oracle ") == 6  # one table per benchmark


def test_default_job_matchers_are_the_available_ones(monkeypatch):
    from benchmarks.commands import run

    monkeypatch.setenv("MAST3R_BENCH_CHECKPOINT", "")
    assert run._available("sift") and run._available("oracle")
    assert not run._available("mast3r")  # no checkpoint configured


def test_bare_command_runs_the_main_job(tmp_path, monkeypatch):
    from benchmarks.commands import run

    calls = []
    monkeypatch.setattr(run, "default_job", lambda args, overrides: calls.append((args, overrides)) or 0)
    monkeypatch.setattr(sys, "argv", ["mast3r-bench"])
    assert main([]) == 0
    (args, overrides), = calls
    assert args.suite_size == "default" and args.matcher is None and overrides == {}


@pytest.mark.parametrize("argv, message", [
    (["run", "smok", "--matcher", "oracle"], "unknown adapter 'smok'; did you mean 'smoke'"),
    (["run", "smoke", "--matcher", "orcl"], "unknown matcher 'orcl'"),
    (["run", "smoke"], "choose a matcher with --matcher NAME"),
    (["run", "smoke", "--matcher", "oracle", "max_eror_px=1"], "did you mean max_error_px"),
    (["run", "smoke", "--matcher", "oracle", "min_inliers=lots"],
     "estimator.min_inliers: 'lots' is not a valid int"),
    (["run", "smoke", "--matcher", "oracle", "seed=1"],
     "ambiguous: prefix it with one of matcher., adapter."),
    (["run", "smoke", "--matcher", "oracle", "justaword", "x"], "'justaword' is not of the form key=value"),
])
def test_bad_input_gets_one_clear_error(tmp_path, dirs, capsys, argv, message):
    assert main([*argv, *dirs]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mast3r-bench run: error:") and message in err
    assert not (tmp_path / "results" / "runs").exists()


@pytest.mark.parametrize("argv", [["run", "--help"], ["run", "smoke", "-h"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "[BENCH] [KEY=VALUE ...]" in out and "--limit N" in out and "smoke" in out
