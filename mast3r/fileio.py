"""File primitives shared by every package: one streamed SHA-256, one atomic writer.

Lowest layer: imports nothing of the project, so ``mast3r``, ``datasets`` and ``benchmarks`` may all
use it.

- :func:`sha256_file` streams the file and memoises the digest on (resolved path, size, mtime_ns,
  inode), so a checkpoint is hashed once per process. A file modified less than
  :data:`RACY_SECONDS` ago is never memoised (file-system timestamps are coarse, so a same-size
  rewrite inside that window could keep its mtime; the same rule as git's "racy" index entries).
- :func:`atomic_write` writes through a uniquely named temp file in the target's folder, flushes and
  fsyncs it, renames it over the target (``os.replace``) and fsyncs the folder: a reader or a crash
  sees the old file or the new one, never a half-written one. The temp file is removed on any error.
  Files get the usual ``0o666 & ~umask`` permissions (not ``mkstemp``'s ``0o600``).
  :func:`atomic_write_path` does the same for writers that only take a path (a PLY writer).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "RACY_SECONDS", "sha256_file", "fsync_dir", "atomic_write", "atomic_write_path", "atomic_write_bytes",
    "atomic_write_text", "atomic_write_json",
]

RACY_SECONDS = 2.0
"""A file whose mtime is this recent is hashed afresh each time (see the module docstring)."""

_CHUNK = 1 << 24


@functools.lru_cache(maxsize=4096)
def _sha256_memo(path: str, size: int, mtime_ns: int, inode: int) -> str:
    return _sha256_stream(path)


def _sha256_stream(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike, chunk_size: int | None = None) -> str:
    """Hex SHA-256 of a file's bytes, streamed in 16 MiB blocks; memoised per process on (resolved
    path, size, mtime_ns, inode) unless the file changed within :data:`RACY_SECONDS`.

    ``chunk_size`` is accepted for the old call signatures and ignored (it cannot change the digest).
    Raises ``OSError`` (e.g. ``FileNotFoundError``) naming the file when it cannot be read.
    """
    del chunk_size
    st = os.stat(path)
    if time.time_ns() - st.st_mtime_ns < RACY_SECONDS * 1e9:
        return _sha256_stream(path)
    return _sha256_memo(str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder so a rename inside it is durable (silently skipped where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], *, mkdir: bool = True) -> Path:
    """Create or replace ``path`` atomically with what ``write(binary_file)`` writes; returns the path.

    ``mkdir`` creates the parent folders first. ``write`` may call e.g. ``np.savez(f, ...)`` or
    ``torch.save(obj, f)``; its exceptions propagate and leave ``path`` untouched.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def atomic_write_path(path: str | os.PathLike, write: Callable[[Path], Any], *, mkdir: bool = True) -> Path:
    """:func:`atomic_write` for a writer that takes a path: ``write(temp_path)`` creates the temp
    file (same folder, unique name), which is then fsync'ed and renamed over ``path``."""
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mkdir: bool = True) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda fh: fh.write(data), mkdir=mkdir)


def atomic_write_text(path: str | os.PathLike, text: str, *, mkdir: bool = True) -> Path:
    """:func:`atomic_write` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), mkdir=mkdir)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, mkdir: bool = True, indent: int | None = 2,
                      sort_keys: bool = True, allow_nan: bool = False) -> Path:
    """:func:`atomic_write_text` of ``json.dumps(obj, ...)`` plus a final newline (NaN refused by
    default: JSON has none)."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n"
    return atomic_write_text(path, text, mkdir=mkdir)
