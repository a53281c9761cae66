"""Data fingerprints (benchmarks.fingerprint): content, not location; cached by path+size+mtime."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import fingerprint
from benchmarks.fingerprint import FileHashCache, record_lines, sample_fingerprint, verify_records
from benchmarks.run_errors import DataChangedError
from benchmarks.types import Record, Sample, View


def sample(root: Path, pose_shift: float = 0.0) -> Sample:
    pose = np.eye(4)
    pose[0, 3] = pose_shift
    views = (View("a", root / "a.png", 4, 3, K=np.eye(3)),
             View("b", root / "b.png", 4, 3, cam_from_world=pose))
    # a folder counts by its name (a scene folder), a file by its content
    return Sample("s0", views, gt={"pose": pose, "file": root / "gt.txt", "scene_dir": root / "scene"})


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "A"
    (root / "scene").mkdir(parents=True)
    for name in ("a.png", "b.png", "gt.txt"):
        (root / name).write_bytes(name.encode())
    return root


def test_the_fingerprint_follows_content_not_location(root, tmp_path):
    hashes = FileHashCache(None)
    fp = sample_fingerprint(sample(root), hashes)
    shutil.copytree(root, tmp_path / "B")
    assert sample_fingerprint(sample(tmp_path / "B"), hashes) == fp
    (tmp_path / "B" / "b.png").write_bytes(b"other")
    assert sample_fingerprint(sample(tmp_path / "B"), hashes)["views"] != fp["views"]
    assert sample_fingerprint(sample(root, pose_shift=0.5), hashes)["views"] != fp["views"]
    (root / "gt.txt").write_bytes(b"edited")
    changed = sample_fingerprint(sample(root), hashes)
    assert changed["gt"] != fp["gt"] and changed["views"] == fp["views"]
    assert sample_fingerprint(sample(root), hashes, [root / "a.png"])["gt"] != changed["gt"]


def test_digests_are_cached_by_path_size_and_mtime(root, tmp_path, monkeypatch):
    calls = []
    real = fingerprint.file_sha256
    monkeypatch.setattr(fingerprint, "file_sha256", lambda p: calls.append(p) or real(p))
    cache = FileHashCache(tmp_path / "cache" / "h.json")
    first = cache.digest(root / "a.png")
    cache.save()
    again = FileHashCache(tmp_path / "cache" / "h.json")
    assert again.digest(root / "a.png") == first and len(calls) == 1  # read from the cache file
    os.utime(root / "a.png", ns=(1, 1))
    assert again.digest(root / "a.png") == first and len(calls) == 2  # mtime changed: hashed again
    assert again.digest(root / "missing.png") == "missing"
    (tmp_path / "cache" / "h.json").write_text("{not json")
    assert FileHashCache(tmp_path / "cache" / "h.json").digest(root / "a.png") == first  # ignored


def _record(key: str, fp: dict | None) -> Record:
    return Record(key, {}, {"success": True}, {} if fp is None else {"data_fingerprint": fp})


def test_verify_records_names_file_line_and_what_changed(root, tmp_path, caplog):
    path = tmp_path / "records.jsonl"
    path.write_text('{"key": "s0"}\n{"key": "zz"}\n')
    fp = sample_fingerprint(sample(root), FileHashCache(None))
    verify_records({"s0": _record("s0", fp)}, {"s0": fp}, {"s0"}, [path], bench="b", data_root=root)
    msg = rf"records.jsonl:2: record 'zz' is not a sample of b in {root}"
    with pytest.raises(DataChangedError, match=msg):
        verify_records({"zz": _record("zz", fp)}, {}, {"s0"}, [path], bench="b", data_root=root)
    stale = {**fp, "gt": "0" * 16}
    with pytest.raises(DataChangedError, match=r"records.jsonl:1: sample 's0' changed since it was recorded "
                                               r"\(ground truth differ"):
        verify_records({"s0": _record("s0", stale)}, {"s0": fp}, {"s0"}, [path], bench="b", data_root=root)
    with caplog.at_level(logging.WARNING):
        verify_records({"s0": _record("s0", None)}, {"s0": fp}, {"s0"}, [path], bench="b", data_root=root)
    assert "1 records have no data fingerprint" in caplog.text
    assert record_lines([path]) == {"s0": (path, 1), "zz": (path, 2)}
