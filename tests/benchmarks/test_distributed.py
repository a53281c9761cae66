"""Distributed runs (torchrun, gloo on CPU): partitioning, shard merging, and two real multi-process
jobs on the SMOKE benchmark: a fresh 2-rank run equals a 1-process run, and a 2-rank run with one
rank SIGKILLed, restarted with 3 ranks, loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import distributed as dist
from benchmarks.cli import main
from benchmarks.runner import run_benchmark
from benchmarks.store import RecordStore, RunDir
from benchmarks.types import Record

# --- partition ------------------------------------------------------------------------------------


def test_partition_hand_worked_lpt():
    # by decreasing weight: 5->r0, 4->r1, 3(i2)->r1 (4<5), 3(i3)->r0 (5<7), 3(i4)->r1 (7<8), 2->r0 (8<10)
    assert dist.partition([5, 4, 3, 3, 3, 2], 2) == [[0, 3, 5], [1, 2, 4]]
    # equal weights alternate; zero weights are spread by count
    assert dist.partition([1] * 8, 2) == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert dist.partition([0] * 5, 3) == [[0, 3], [1, 4], [2]]
    assert dist.partition([7], 3) == [[0], [], []] and dist.partition([], 2) == [[], []]
    with pytest.raises(ValueError):
        dist.partition([1, 2], 0)
    with pytest.raises(ValueError):
        dist.partition([1, -1], 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=60), st.integers(1, 8))
def test_partition_covers_once_is_deterministic_and_balanced(weights, world):
    parts = dist.partition(weights, world)
    assert parts == dist.partition(list(weights), world)
    assert len(parts) == world and all(p == sorted(p) for p in parts)
    assert sorted(i for p in parts for i in p) == list(range(len(weights)))
    loads = [sum(weights[i] for i in p) for p in parts]
    if weights:  # greedy list-scheduling bound: the fullest rank got its last item while it was the emptiest
        assert max(loads) <= sum(weights) / world + max(weights)
    if len(set(weights)) <= 1:
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


# --- shards ---------------------------------------------------------------------------------------


def rec(key: str, value: float = 1.0) -> Record:
    return Record(key, {"err": value}, {"success": True}, {}, {"match": 0.1})


def write(path: Path, records, tail: bytes = b"") -> None:
    with RecordStore(path) as store:
        for r in records:
            store.append(r)
    with open(path, "ab") as f:
        f.write(tail)


def test_merge_shards_orders_dedupes_and_deletes(tmp_path):
    run = RunDir(tmp_path / "run")
    write(run.records_path, [rec("b"), rec("a")], tail=b'{"key":"x","met')
    write(dist.shard_path(run, 3), [rec("d"), rec("a", 99.0)])  # "a": merged already (crash before delete)
    write(dist.shard_path(run, 0), [rec("c")], tail=b'{"key":"e"')
    assert [p.name for p in dist.shard_paths(run)] == ["records.rank0.jsonl", "records.rank3.jsonl"]
    assert list(dist.collect_records(run)) == ["b", "a", "c", "d"]
    merged = dist.merge_shards(run, ["a", "b", "c", "d", "e"])
    assert list(merged) == ["a", "b", "c", "d"] and merged["a"].metrics == {"err": 1.0}
    assert dist.shard_paths(run) == []
    assert list(RecordStore(run.records_path).load()) == ["a", "b", "c", "d"]
    assert run.records_path.read_bytes().count(b"\n") == 4  # the torn tails are gone
    before = run.records_path.read_bytes()
    assert list(dist.merge_shards(run, ["a", "b"])) == ["a", "b", "c", "d"]  # unknown keys last
    assert run.records_path.read_bytes() == before  # no shards, in order: nothing rewritten
    assert list(dist.merge_shards(run, ["d", "c"])) == ["d", "c", "a", "b"]
    assert list(RecordStore(run.records_path).load()) == ["d", "c", "a", "b"]  # reordered


def test_a_malformed_shard_line_is_an_error_and_nothing_is_lost(tmp_path):
    run = RunDir(tmp_path / "run")
    write(run.records_path, [rec("a")])
    shard = dist.shard_path(run, 1)
    shard.write_text('{"key": "b"\n' + json.dumps({"key": "c", "metrics": {}, "prediction": {}}) + "\n")
    with pytest.raises(ValueError, match=r"records\.rank1\.jsonl:1: malformed record"):
        dist.merge_shards(run, ["a", "b", "c"])
    assert shard.is_file() and list(RecordStore(run.records_path).load()) == ["a"]


# --- environment, devices, rank-0 decisions -------------------------------------------------------

TORCHRUN_ENV = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node0",
                "MASTER_PORT": "29500"}


def test_dist_env_from_torchrun_variables(caplog):
    assert dist.DistEnv.from_environ(TORCHRUN_ENV) == dist.DistEnv(rank=1, world_size=4, local_rank=1)
    assert dist.DistEnv.from_environ({}) is None
    partial = {k: v for k, v in TORCHRUN_ENV.items() if k != "MASTER_PORT"}
    assert dist.DistEnv.from_environ(partial) is None and "MASTER_PORT unset" in caplog.text
    with pytest.raises(dist.DistributedError, match="MASTER_PORT is not set"):
        dist.DistEnv.from_environ(partial, required=True)
    with pytest.raises(dist.DistributedError, match="RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT"):
        dist.DistEnv.from_environ({}, required=True)
    with pytest.raises(dist.DistributedError, match="WORLD_SIZE='two' is not an integer"):
        dist.DistEnv.from_environ({**TORCHRUN_ENV, "WORLD_SIZE": "two"})
    with pytest.raises(dist.DistributedError, match="inconsistent"):
        dist.DistEnv.from_environ({**TORCHRUN_ENV, "RANK": "4"})


def test_backend_and_rank_device():
    assert dist.choose_backend("cpu", True) == "gloo" and dist.choose_backend("auto", False) == "gloo"
    assert dist.choose_backend("auto", True) == "nccl" and dist.choose_backend("cuda", True) == "nccl"
    with pytest.raises(dist.DistributedError, match="no CUDA device"):
        dist.choose_backend("cuda:0", False)
    assert dist.rank_device("cuda", 3) == "cuda:3" and dist.rank_device("cpu", 3) == "cpu"
    assert dist.rank_device("cuda:3", 3) == "cuda:3"
    with pytest.raises(dist.DistributedError, match="CUDA_VISIBLE_DEVICES"):
        dist.rank_device("cuda:0", 1)


class ScriptedComm:
    """One rank of a 2-rank job whose broadcasts are recorded (rank 0) or scripted (rank 1)."""

    distributed, world_size, local_rank, backend = True, 2, 0, "gloo"

    def __init__(self, rank, incoming=None):
        self.rank, self.incoming, self.sent = rank, incoming, []

    def broadcast(self, obj=None):
        if self.rank == 0:
            self.sent.append(obj)
            return obj
        return self.incoming


def test_on_rank0_broadcasts_values_and_errors():
    root = ScriptedComm(0)
    assert dist.on_rank0(root, lambda: {"plan": 1}) == {"plan": 1} and root.sent == [("ok", {"plan": 1})]
    with pytest.raises(KeyError):
        dist.on_rank0(root, lambda: {}["missing"])
    assert root.sent[-1] == ("error", "KeyError: 'missing'")
    assert dist.on_rank0(ScriptedComm(1, ("ok", 7)), lambda: pytest.fail("rank 1 ran it")) == 7
    with pytest.raises(dist.PeerFailedError, match="rank 0 failed: KeyError"):
        dist.on_rank0(ScriptedComm(1, ("error", "KeyError: 'missing'")), lambda: None)
    assert dist.on_rank0(dist.SoloComm(), lambda: 3) == 3


def test_distributed_flag_without_torchrun_is_a_clear_error(tmp_path, monkeypatch, capsys):
    for name in dist.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    rc = main(["run", "smoke", "--matcher", "oracle", "--distributed", "--data", str(tmp_path / "d"),
               "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("mast3r-bench run: error: --distributed needs a torchrun launch")
    assert "torchrun --nproc_per_node=N -m benchmarks run" in err and not (tmp_path / "r").exists()


# --- any run folds in the shards a killed distributed job left ------------------------------------


def test_a_single_process_resumes_from_shards_of_another_world_size(tmp_path):
    data = tmp_path / "data"
    ref = run_benchmark("smoke", "oracle", data_root=data, results_root=tmp_path / "ref", progress=False)
    want = RecordStore(ref.run_dir.records_path).load()
    keys = list(want)
    # a killed 4-rank job: 3 merged records, shards of ranks 1 and 3 (one torn, one with a merged key)
    part = run_benchmark("smoke", "oracle", data_root=data, results_root=tmp_path / "res", limit=3,
                         progress=False)
    run = part.run_dir
    write(dist.shard_path(run, 1), [want[keys[5]]], tail=b'{"key":"pair_007","metr')
    write(dist.shard_path(run, 3), [want[keys[1]], want[keys[6]]])
    manifest = run.read_manifest()
    run.manifest_path.write_text(json.dumps({**manifest, "status": "running"}))
    res = run_benchmark("smoke", "oracle", data_root=data, results_root=tmp_path / "res", progress=False)
    assert (res.expected, res.done, res.computed) == (8, 8, 3)  # pair_003, pair_004, pair_007
    assert dist.shard_paths(run) == [] and run.records_path.read_bytes().count(b"\n") == 8
    got = RecordStore(run.records_path).load()
    assert list(got) == keys and all(got[k].metrics == want[k].metrics for k in keys)
    assert res.summary == {**ref.summary}
    m = run.read_manifest()
    assert m["world_size"] == 1 and m["backend"] is None and len(m["ranks"]) == 1
    assert m["ranks"][0]["samples"] == 3 and m["throughput"]["pairs"] == 3


# --- real torchrun jobs ---------------------------------------------------------------------------


def torchrun(nproc: int, data: Path, results: Path, log: Path, sleep: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "MAST3R_BENCH_TEST_SLEEP_PER_SAMPLE": str(sleep), "OMP_NUM_THREADS": "1"}
    for name in (*dist.ENV_VARS, "MAST3R_BENCH_DATA", "MAST3R_BENCH_RESULTS"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "--monitor-interval=0.1", "-m", "benchmarks", "run", "smoke", "--matcher", "oracle",
           "--data", str(data), "--results", str(results), "--no-progress"]
    return subprocess.Popen(cmd, env=env, cwd=data.parent, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 240) -> str:
    proc.wait(timeout=timeout)
    return log.read_text()


def reference(tmp_path: Path) -> tuple[dict, dict[str, Record]]:
    res = run_benchmark("smoke", "oracle", data_root=tmp_path / "data", results_root=tmp_path / "ref",
                        progress=False)
    return res.summary, RecordStore(res.run_dir.records_path).load()


def assert_same_records(path: Path, want: dict[str, Record]) -> None:
    got = RecordStore(path).load()
    assert path.read_bytes().count(b"\n") == len(got) == len(want)  # none lost, none duplicated
    assert list(got) == list(want)  # merged in the single-process order
    for key in want:
        assert (got[key].metrics, got[key].prediction, got[key].meta) == \
            (want[key].metrics, want[key].prediction, want[key].meta)


def test_two_gloo_ranks_give_the_single_process_result(tmp_path):
    summary, want = reference(tmp_path)
    log = tmp_path / "torchrun.log"
    out = finish(torchrun(2, tmp_path / "data", tmp_path / "res", log), log)
    assert "smoke/oracle: 8/8 samples (8 computed now, 0 failures, finished)" in out, out
    assert out.count("smoke/oracle: 8/8") == 1  # rank 0 alone reports
    (run,) = (tmp_path / "res" / "runs" / "smoke" / "oracle").iterdir()
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "manifest.json", "records.jsonl",
                                                    "summary.json"]
    assert json.loads((run / "summary.json").read_text()) == summary
    assert_same_records(run / "records.jsonl", want)
    m = json.loads((run / "manifest.json").read_text())
    assert (m["world_size"], m["backend"], m["status"]) == (2, "gloo", "finished")
    assert [(r["rank"], r["local_rank"], r["device"], r["samples"], r["pairs"]) for r in m["ranks"]] == \
        [(0, 0, "cpu", 4, 4), (1, 1, "cpu", 4, 4)]
    assert all(r["pairs_per_s"] > 0 for r in m["ranks"]) and m["throughput"]["samples"] == 8


def rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the torchrun worker with RANK=rank (a child of the launcher), via /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == launcher and f"\0RANK={rank}\0" in "\0" + (stat.parent / "environ").read_text():
                return int(stat.parent.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's pid through /proc")
def test_sigkill_of_one_rank_then_a_restart_loses_and_duplicates_nothing(tmp_path):
    summary, want = reference(tmp_path)
    results = tmp_path / "res"
    log = tmp_path / "killed.log"
    proc = torchrun(2, tmp_path / "data", results, log, sleep=0.5)
    shard = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # rank 1 owns pair_001, 003, 005, 007
        found = list(results.glob("runs/smoke/oracle/*/records.rank1.jsonl"))
        if found and found[0].read_bytes().count(b"\n") >= 1:
            shard = found[0]
            break
        assert proc.poll() is None, log.read_text()
        time.sleep(0.02)
    assert shard is not None, "rank 1 wrote no record"
    pid = rank_pid(proc.pid, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    out = finish(proc, log)
    assert proc.returncode != 0, out  # torchrun stopped rank 0 too
    run = shard.parent
    assert 1 <= shard.read_bytes().count(b"\n") < 4, "the kill must land mid-run"
    assert not (run / "summary.json").exists()
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    done = len(dist.collect_records(RunDir(run)))
    assert done < 8

    # The whole job started again, with another world size.
    log2 = tmp_path / "restart.log"
    out = finish(torchrun(3, tmp_path / "data", results, log2), log2)
    assert f"smoke/oracle: 8/8 samples ({8 - done} computed now, 0 failures, finished)" in out, out
    assert dist.shard_paths(RunDir(run)) == []
    assert_same_records(run / "records.jsonl", want)
    assert json.loads((run / "summary.json").read_text()) == summary
    m = json.loads((run / "manifest.json").read_text())
    assert (m["world_size"], m["resumed"], m["status"]) == (3, 1, "finished")
    assert sum(r["samples"] for r in m["ranks"]) == 8 - done


def test_two_gloo_ranks_on_synthetic_mapfree(tmp_path):
    from datasets.synthetic.suite import ensure_suite

    data = tmp_path / "data"
    ensure_suite(data, seed=0, size="small", benchmarks=["mapfree"])
    ref = run_benchmark("mapfree", "oracle", data_root=data, results_root=tmp_path / "ref", limit=2,
                        progress=False)
    env = {k: v for k, v in os.environ.items() if k not in dist.ENV_VARS}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "benchmarks", "run", "mapfree", "--matcher", "oracle", "--limit", "2", "--data", str(data),
           "--results", str(tmp_path / "res"), "--no-progress"]
    proc = subprocess.run(cmd, env={**env, "OMP_NUM_THREADS": "1"}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0 and "mapfree/oracle: 2/2 samples (2 computed now" in proc.stdout, \
        proc.stdout + proc.stderr
    (run,) = (tmp_path / "res" / "runs" / "mapfree" / "oracle").iterdir()
    assert run.name == ref.run_dir.path.name
    assert json.loads((run / "summary.json").read_text()) == ref.summary
    assert ref.summary["num_records"] == 2 and ref.summary["num_failures"] == 0
    assert_same_records(run / "records.jsonl", RecordStore(ref.run_dir.records_path).load())
    assert [r["samples"] for r in json.loads((run / "manifest.json").read_text())["ranks"]] == [1, 1]


def test_run_plan_travels_pickled_and_checks_the_keys(tmp_path):
    import pickle

    from benchmarks.distributed import RunPlan
    from benchmarks.run_results import RunOutcome

    plan = RunPlan.of(tmp_path / "run", ["a", "b", "c"], [[0, 2], [1]])
    back = pickle.loads(pickle.dumps(plan))
    assert back == plan and back.run_dir == tmp_path / "run" and back.expected == 3
    assert back.share(0) == (0, 2) and back.share(1) == (1,) and back.outcome is None
    back.check_keys(["a", "b", "c"], "rank 1")
    for other in (["a", "c", "b"], ["a", "b"]):
        with pytest.raises(dist.DistributedError, match="rank 1: the adapter lists other samples"):
            back.check_keys(other, "rank 1")
    done = RunPlan.of(tmp_path, ["a"], outcome=RunOutcome({"metrics": {}}, 1, 1, 0))
    assert pickle.loads(pickle.dumps(done)).outcome == RunOutcome({"metrics": {}}, 1, 1, 0)
