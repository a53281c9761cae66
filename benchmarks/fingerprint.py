"""Data fingerprints: which data a record was computed from, so that a run never resumes into
records of other data.

Every record carries ``meta["data_fingerprint"] = {"views": h, "gt": h}``: ``views`` hashes, for each
view of the sample, its name, the SHA-256 of its image file and depth map, its size, intrinsics,
pose and reader metadata; ``gt`` hashes the sample's ground truth (``Sample.gt``, where a path to a
file counts by its content) and the files the adapter's optional ``data_files(sample)`` names (e.g.
Map-free's depth maps). Paths count by content (files) or name (folders), never by where the data
root is, so a moved data root still resumes.

File digests are cached in ``<results>/cache/file_sha256.json`` by absolute path, size and mtime
(:class:`FileHashCache`), so a resume costs one ``stat`` per file, even on Aachen-size roots.

On resume (:func:`verify_records`) every record's key must be a sample of the current list and its
fingerprint must equal the sample's; otherwise :class:`DataChangedError` names the records file and
line and what changed. Records written before fingerprints existed are accepted with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.hashing import file_sha256, sha256_json
from benchmarks.run_errors import DataChangedError
from benchmarks.store import read_json, to_jsonable, write_json_atomic

__all__ = ["FileHashCache", "sample_fingerprint", "verify_records", "record_lines", "META_KEY"]
log = logging.getLogger(__name__)

META_KEY = "data_fingerprint"


class FileHashCache:
    """SHA-256 of files, cached by (absolute path, size, mtime_ns) in a JSON file (``path``; None:
    memory only). An unreadable cache file is ignored; :meth:`save` writes it when it changed (a
    cache that cannot be written is skipped with a debug message: it only saves time)."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, list[Any]] = {}
        self._new = 0  # entries added since the last save
        if self.path is not None and self.path.is_file():
            try:
                data = read_json(self.path)
                self._entries = data if isinstance(data, dict) else {}
            except (OSError, ValueError) as e:
                log.debug("ignoring the file-hash cache %s (%s)", self.path, e)

    def digest(self, path: str | os.PathLike) -> str:
        """The file's SHA-256 hex digest (first 32 chars), ``"missing"`` if absent, ``"dir"`` for a folder."""
        p = Path(path).absolute()
        try:
            st = p.stat()
        except OSError:
            return "missing"
        if p.is_dir():
            return "dir"
        ident = [st.st_size, st.st_mtime_ns]
        entry = self._entries.get(str(p))
        if entry is not None and entry[:2] == ident:
            return str(entry[2])
        try:
            digest = file_sha256(p)[:32]
        except OSError:
            return "unreadable"
        self._entries[str(p)] = [*ident, digest]
        self._new += 1
        return digest

    def save(self, every: int = 1) -> None:
        """Write the cache file once at least ``every`` entries are new (a long run saves as it goes,
        so a kill keeps most of the work)."""
        if self.path is None or self._new < max(1, every):
            return
        try:
            write_json_atomic(self.path, self._entries)
            self._new = 0
        except OSError as e:
            log.debug("cannot write the file-hash cache %s (%s)", self.path, e)


def _content(obj: Any, hashes: FileHashCache) -> Any:
    """JSON data of ``obj`` where a path counts by content (file) or by name (folder)."""
    if isinstance(obj, Path):
        return {"file": obj.name, "sha": hashes.digest(obj)} if obj.is_file() else {"dir": obj.name}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _content(getattr(obj, f.name), hashes) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _content(v, hashes) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_content(v, hashes) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(np.round(obj.astype(np.float64), 12) if obj.dtype.kind == "f" else obj)
    return to_jsonable(obj)


def sample_fingerprint(sample: Any, hashes: FileHashCache, extra_files: Iterable[Path] = ()
                       ) -> dict[str, str]:
    """``{"views": h, "gt": h}`` of ``sample`` (module docstring); 16 hex chars each."""
    views = [[v.name, hashes.digest(v.image_path), int(v.width), int(v.height), _content(v.K, hashes),
              _content(v.cam_from_world, hashes),
              hashes.digest(v.depth_path) if getattr(v, "depth_path", None) else None,
              _content(dict(v.meta), hashes)] for v in sample.views]
    gt = [_content(dict(sample.gt), hashes), [[Path(p).name, hashes.digest(p)] for p in extra_files]]
    return {"views": sha256_json(views)[:16], "gt": sha256_json(gt)[:16]}


def record_lines(paths: Iterable[Path]) -> dict[str, tuple[Path, int]]:
    """Where each record key first appears: ``key -> (file, 1-based line)`` over ``paths``."""
    out: dict[str, tuple[Path, int]] = {}
    for path in paths:
        if not Path(path).is_file():
            continue
        with open(path, "rb") as f:
            for i, raw in enumerate(f, 1):
                try:
                    key = json.loads(raw).get("key")
                except (ValueError, AttributeError):
                    continue
                out.setdefault(str(key), (Path(path), i))
    return out


def _what_changed(old: Mapping[str, Any], new: Mapping[str, str]) -> str:
    parts = [{"views": "images/cameras", "gt": "ground truth"}[k] for k in ("views", "gt")
             if old.get(k) != new.get(k)]
    return " and ".join(parts) or "data"


def verify_records(records: Mapping[str, Any], fingerprints: Mapping[str, Mapping[str, str]],
                   all_keys: set[str], files: Iterable[Path], *, bench: str, data_root: Path) -> None:
    """Check records against the current data (module docstring).

    Args:
        records: key -> :class:`benchmarks.types.Record` (those to keep).
        fingerprints: key -> current fingerprint of each sample that has a record.
        all_keys: every sample key the adapter lists now (whatever ``--limit``).
        files: the record files (``records.jsonl``, shards), to name the line of a bad record.
        bench, data_root: for the message.

    Raises:
        DataChangedError: the first foreign or stale record, by file and line.
    """
    files = list(files)
    hint = ("the run directory holds results of other data: re-run with --force to start it over, or "
            "choose another --results")
    legacy = 0
    for key, record in records.items():
        if key not in all_keys:
            path, line = record_lines(files).get(key, (files[0], 0))
            raise DataChangedError(f"{path}:{line}: record {key!r} is not a sample of {bench} in {data_root} "
                                   f"(a record of other data, or added by hand); {hint}")
        old = record.meta.get(META_KEY)
        if old is None:
            legacy += 1
            continue
        new = fingerprints[key]
        if dict(old) != dict(new):
            path, line = record_lines(files).get(key, (files[0], 0))
            raise DataChangedError(f"{path}:{line}: sample {key!r} changed since it was recorded ("
                                   f"{_what_changed(old, new)} differ now, in {data_root}); {hint}")
    if legacy:
        log.warning("%d records have no data fingerprint (written by an older version): they cannot be "
                    "checked against the data", legacy)
