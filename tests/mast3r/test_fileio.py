import hashlib
import json
import os

import pytest

from mast3r import fileio
from mast3r.fileio import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file


def _age(path, seconds=60.0):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    data = os.urandom(1 << 16) + b"tail"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path), 1 << 10) == hashlib.sha256(data).hexdigest()


def test_sha256_file_memoised_for_old_files_only(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    calls = []
    real = fileio._sha256_stream
    monkeypatch.setattr(fileio, "_sha256_stream", lambda p: calls.append(p) or real(p))
    fileio._sha256_memo.cache_clear()
    sha256_file(path)
    sha256_file(path)
    assert len(calls) == 2  # just written: racy, hashed each time
    _age(path)
    first = sha256_file(path)
    assert sha256_file(tmp_path / "." / "f.bin") == first
    assert len(calls) == 3  # memoised on the resolved path


def test_sha256_file_same_size_rewrite_is_seen(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"aaaa")
    _age(path)
    assert sha256_file(path) == hashlib.sha256(b"aaaa").hexdigest()
    path.write_bytes(b"bbbb")  # same size, fresh mtime
    assert sha256_file(path) == hashlib.sha256(b"bbbb").hexdigest()


def test_sha256_file_missing_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        sha256_file(tmp_path / "nope.bin")


def test_atomic_writers_create_and_replace(tmp_path):
    target = tmp_path / "a" / "b" / "x.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    atomic_write_text(target, "héllo")
    assert target.read_bytes() == "héllo".encode()
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]


def test_atomic_write_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "x", b"1")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_atomic_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not list(tmp_path.iterdir())
    atomic_write_json(tmp_path / "y.json", {"a": float("nan")}, allow_nan=True)
    assert json.loads((tmp_path / "y.json").read_text())["a"] != 0


def test_atomic_write_without_mkdir_needs_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "missing" / "x", b"1", mkdir=False)


def test_atomic_write_path_for_path_writers(tmp_path):
    from mast3r.fileio import atomic_write_path

    target = tmp_path / "sub" / "cloud.ply"
    seen = []
    atomic_write_path(target, lambda tmp: seen.append(tmp) or tmp.write_bytes(b"ply"))
    assert target.read_bytes() == b"ply" and seen[0].parent == target.parent and seen[0] != target
    def half(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_path(target, half)
    assert target.read_bytes() == b"ply" and sorted(p.name for p in target.parent.iterdir()) == ["cloud.ply"]
