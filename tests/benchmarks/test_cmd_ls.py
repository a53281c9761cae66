"""`mast3r-bench ls`: registries with availability, and runs with their progress."""

from __future__ import annotations

from benchmarks.cli import main
from benchmarks.commands.ls import availability
from benchmarks.registry import Registry
from benchmarks.runner import run_benchmark
from benchmarks.store import RunDir, write_json_atomic


class Unavailable:
    @classmethod
    def available(cls):
        return False, "weights not downloaded"


def test_availability():
    reg: Registry = Registry("matcher")
    reg.register("ok", "collections:OrderedDict")
    reg.register("gone", "no_such_module_abc:X")
    reg.register("off", f"{__name__}:Unavailable")
    assert availability(reg, "ok") == (True, "")
    ok, reason = availability(reg, "gone")
    assert not ok and "not importable" in reason and "no_such_module_abc" in reason
    assert availability(reg, "off") == (False, "weights not downloaded")


def test_ls_lists_registries(capsys):
    assert main(["ls", "matchers"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[3:] if line.strip()}
    assert rows["oracle"] == "yes" and rows["random"] == "yes" and "adapters:" not in out
    assert main(["ls", "adapters"]) == 0
    lines = capsys.readouterr().out.splitlines()[3:]
    rows = {line.split()[0]: line.split()[1] for line in lines if line.strip()}
    assert rows["smoke"] == "yes"


def test_ls_runs_shows_progress_and_status(tmp_path, capsys):
    results = tmp_path / "results"
    run_benchmark("smoke", "oracle", data_root=tmp_path / "data", results_root=results, limit=3,
                  progress=False)
    stale = RunDir(results / "runs" / "smoke" / "random" / "default-0123abcd")
    write_json_atomic(stale.config_path, {"key": "x"})
    write_json_atomic(stale.manifest_path, {"status": "running", "counts": {"expected": 8, "done": 0}})
    stale.records_path.write_text('{"key": "a"}\n{"key": "b"}\n{"key"')  # killed mid-write
    assert main(["ls", "runs", "--results", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    oracle = next(line for line in lines if " oracle " in line).split()
    random_ = next(line for line in lines if " random " in line).split()
    assert oracle[0] == "smoke" and oracle[3:] == ["3/3", "finished"] and oracle[2].startswith("default-")
    assert random_[2:] == ["default-0123abcd", "2/8", "incomplete"]


def test_ls_without_runs(tmp_path, capsys):
    assert main(["ls", "runs", "--results", str(tmp_path)]) == 0
    assert "(none)" in capsys.readouterr().out
