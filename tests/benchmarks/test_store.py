"""Results layout: record files (durability, torn tails), run directories, locks, the cache."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.hashing import RunSpec
from benchmarks.store import (
    CorrespondenceCache,
    RecordStore,
    RunDir,
    RunLockedError,
    list_runs,
    read_json,
    results_root,
    to_jsonable,
    write_json_atomic,
)
from benchmarks.types import Correspondences, Record


def rec(key: str, err: float = 1.0) -> Record:
    return Record(key, {"err": err}, {"success": True, "values": {}}, {"k": key}, {"solve": 0.1})


def test_append_and_load_round_trip(tmp_path):
    path = tmp_path / "r" / "records.jsonl"
    with RecordStore(path) as store:
        for i in range(3):
            store.append(rec(f"s{i}", i + 0.5))
    loaded = RecordStore(path).load()
    assert list(loaded) == ["s0", "s1", "s2"] and loaded["s1"] == rec("s1", 1.5)
    assert path.read_text().count("\n") == 3


def test_non_finite_metrics_become_null():
    assert to_jsonable({"a": float("nan"), "b": [np.float32(2.5), float("inf")], "c": np.arange(2)}) == \
        {"a": None, "b": [2.5, None], "c": [0, 1]}


def test_nan_record_is_written_as_null(tmp_path):
    store = RecordStore(tmp_path / "r.jsonl")
    store.append(rec("a", math.nan))
    store.close()
    assert json.loads((tmp_path / "r.jsonl").read_text())["metrics"]["err"] is None


@pytest.mark.parametrize("cut", [1, 10, 30])
def test_torn_last_line_is_ignored_then_repaired(tmp_path, cut):
    path = tmp_path / "records.jsonl"
    with RecordStore(path) as store:
        store.append(rec("a"))
        store.append(rec("b"))
    good = path.read_bytes()
    line_b = good.split(b"\n")[1]
    path.write_bytes(good[: len(good) - 1 - len(line_b)] + line_b[:cut])  # a SIGKILL mid-write of "b"
    assert list(RecordStore(path).load()) == ["a"]
    assert path.read_bytes().endswith(line_b[:cut])  # load() never modifies the file
    with RecordStore(path) as store:
        store.append(rec("c"))  # the first append repairs the tail before writing
    assert list(RecordStore(path).load()) == ["a", "c"]
    assert path.read_text().count("\n") == 2


def test_garbled_last_complete_line_counts_as_torn(tmp_path):
    path = tmp_path / "records.jsonl"
    with RecordStore(path) as store:
        store.append(rec("a"))
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\n")  # zero-filled block after a power loss
    store = RecordStore(path)
    assert list(store.load()) == ["a"]
    assert store.repair() == 4 and list(RecordStore(path).load()) == ["a"]
    assert store.repair() == 0


def test_malformed_middle_line_and_duplicates_are_errors_naming_the_line(tmp_path):
    path = tmp_path / "records.jsonl"
    line = json.dumps(to_jsonable(rec("a")))
    path.write_text(f"{line}\nnot json\n{line}\n")
    with pytest.raises(ValueError, match=r"records.jsonl:2: malformed record"):
        RecordStore(path).load()
    path.write_text(f"{line}\n{line}\n{line}\n")
    with pytest.raises(ValueError, match=r"records.jsonl:2: duplicate record key 'a'"):
        RecordStore(path).load()
    before = path.read_bytes()
    with pytest.raises(ValueError):
        RecordStore(path).append(rec("z"))
    assert path.read_bytes() == before  # nothing lost or rewritten


def test_write_json_atomic_leaves_no_temp_files(tmp_path):
    write_json_atomic(tmp_path / "d" / "x.json", {"b": float("nan"), "a": (1, 2)})
    assert read_json(tmp_path / "d" / "x.json") == {"a": [1, 2], "b": None}
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["x.json"]
    (tmp_path / "bad.json").write_text('{\n"a": }')
    with pytest.raises(ValueError, match=r"bad.json:2: invalid JSON"):
        read_json(tmp_path / "bad.json")


def test_results_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("MAST3R_BENCH_RESULTS", raising=False)
    assert str(results_root()) == "results"
    monkeypatch.setenv("MAST3R_BENCH_RESULTS", str(tmp_path))
    assert results_root() == tmp_path and str(results_root("x")) == "x"


SPEC = RunSpec("smoke", "1", {"n": 1}, {"t": 3.0}, "oracle", {}, None, 0)


def test_run_dir_is_found_by_key_not_by_slug(tmp_path):
    run = RunDir.locate(tmp_path, SPEC, "default")
    assert run.path == tmp_path / "runs" / "smoke" / "oracle" / f"default-{SPEC.key[:8]}"
    assert run.slug == "default" and not run.path.exists()
    write_json_atomic(run.config_path, {"key": SPEC.key})
    assert RunDir.locate(tmp_path, SPEC, "another label") == run
    other = RunSpec("smoke", "1", {"n": 2}, {"t": 3.0}, "oracle", {}, None, 0)
    assert RunDir.locate(tmp_path, other, "default").path.name == f"default-{other.key[:8]}"
    assert list_runs(tmp_path) == [run] and list_runs(tmp_path, "other") == []


def test_slug_is_filesystem_safe(tmp_path):
    spec = RunSpec("smoke", "1", {}, {}, "disk+lightglue", {}, None, 0)
    run = RunDir.locate(tmp_path, spec, "a b/c:d" + "x" * 100)
    assert run.path.parent.name == "disk+lightglue"
    assert "/" not in run.slug and " " not in run.slug and len(run.slug) <= 60


def test_lock_is_exclusive_and_released(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        with pytest.raises(RunLockedError, match="another process"):
            with run.lock():
                pass
    with run.lock():  # released
        pass


def test_reset_removes_run_files(tmp_path):
    run = RunDir(tmp_path / "run")
    for p in (run.config_path, run.manifest_path, run.records_path, run.summary_path):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("{}")
    run.reset()
    assert list(run.path.iterdir()) == []


def test_cache_round_trip_and_corrupt_entries(tmp_path):
    cache = CorrespondenceCache(tmp_path / "c")
    assert cache.get("k") is None
    c = Correspondences(np.arange(6).reshape(3, 2), np.ones((3, 2)), [0.1, 0.2, 0.3],
                        pts3d0=np.zeros((3, 3)), timings={"forward": 1.5}, meta={"n": 3})
    cache.put("k", c)
    got = cache.get("k")
    assert got is not None and got.pts1 is not None
    np.testing.assert_array_equal(got.pts0, c.pts0)
    np.testing.assert_array_equal(got.scores, c.scores)
    np.testing.assert_array_equal(got.pts3d0, c.pts3d0)
    assert got.pts3d1 is None and got.timings == {"forward": 1.5} and got.meta == {"n": 3}
    assert [p.name for p in cache.root.iterdir()] == ["k.npz"]
    cache.path("k").write_bytes(b"garbage")
    assert cache.get("k") is None  # a miss, recomputed by the runner
    cache.put("e", Correspondences.empty())
    assert len(cache.get("e")) == 0
