"""Everything under ``results/``: run directories, append-only record files, the correspondence cache.

Layout (``ROOT`` = ``--results``, else ``$MAST3R_BENCH_RESULTS``, else ``./results``)::

    ROOT/runs/<bench>/<matcher>/<slug>-<hash8>/
        config.json      RunSpec.as_dict() + its key (the run's identity)
        manifest.json    provenance, status ("running" | "finished"), counts (benchmarks.manifest)
        records.jsonl    one Record per line, append-only, fsync'ed per record
        summary.json     adapter.summarize(records) + counts, written when the run finishes
        .lock            flock'ed while a process runs it
    ROOT/cache/correspondences/<matcher_key[:16]>/<pair_key>.npz
    ROOT/tables/<bench>.{md,csv,tex}

A run directory is found by its key (``*-<hash8>`` with the same key in ``config.json``), so the slug
is only a readable label.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.capabilities import Exportable
from benchmarks.hashing import RunSpec
from benchmarks.types import Correspondences, Record
from mast3r.fileio import atomic_write, atomic_write_json, atomic_write_text

__all__ = [
    "results_root", "to_jsonable", "write_json_atomic", "read_json", "RecordStore", "RunDir",
    "CorrespondenceCache", "list_runs", "RunLockedError", "save_npz_atomic", "export_run",
]
log = logging.getLogger(__name__)

RESULTS_ENV = "MAST3R_BENCH_RESULTS"


def results_root(cli_value: str | os.PathLike | None = None) -> Path:
    """The results root: the CLI value, else ``$MAST3R_BENCH_RESULTS``, else ``./results``."""
    return Path(cli_value or os.environ.get(RESULTS_ENV) or "results")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data: dataclasses -> dicts, numpy -> Python, tuples -> lists, Paths -> str,
    non-finite floats (NaN, inf) -> None (JSON has no NaN)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON via a temp file + fsync + ``os.replace`` (never half-written)."""
    atomic_write_json(path, to_jsonable(obj))


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` via a temp file + ``os.replace`` (never half-written)."""
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def records_text(records: Iterable[Record]) -> str:
    """``records`` as JSON lines (the ``records.jsonl`` format)."""
    return "".join(json.dumps(to_jsonable(r), allow_nan=False, separators=(",", ":")) + "\n" for r in records)


def read_json(path: Path) -> Any:
    """Parse a JSON file; a malformed one raises ``ValueError`` naming the file and line."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


class RecordStore:
    """An append-only JSON-lines file of :class:`Record` (one run, or one rank's shard of it).

    Each ``append`` writes one complete line with a single write, then flushes and fsyncs, so a
    SIGKILL or power loss at any instant loses at most the record being written. A torn tail (a
    last line without its newline, or one that does not parse) is ignored by :meth:`load` and cut
    away by :meth:`repair`, which runs automatically before the first append. A malformed line
    anywhere else is an error naming the file and line: earlier records are never rewritten.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: Any = None

    def _scan(self) -> tuple[dict[str, Record], int]:
        """Parsed records and the byte length of the valid prefix of the file."""
        if not self.path.exists():
            return {}, 0
        complete = self.path.read_bytes().split(b"\n")[:-1]  # bytes after the last newline are torn
        records: dict[str, Record] = {}
        good = 0
        for i, raw in enumerate(complete):
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise TypeError(f"expected an object, got {type(obj).__name__}")
                record = Record(**obj)
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
                if i == len(complete) - 1:  # a garbled last line (e.g. zero-filled after power loss)
                    break
                raise ValueError(f"{self.path}:{i + 1}: malformed record ({e})") from None
            if record.key in records:
                raise ValueError(f"{self.path}:{i + 1}: duplicate record key {record.key!r}")
            records[record.key] = record
            good += len(raw) + 1
        return records, good

    def load(self) -> dict[str, Record]:
        """All complete records by key, in file order (read-only: a torn tail is skipped, not cut)."""
        return self._scan()[0]

    def keys(self) -> set[str]:
        return set(self.load())

    def repair(self) -> int:
        """Truncate a torn tail away; returns the number of bytes removed. Only the process that owns
        the run (holds its lock) may call this."""
        if not self.path.exists():
            return 0
        _, good = self._scan()
        extra = self.path.stat().st_size - good
        if extra:
            log.warning("%s: removing a torn last record (%d bytes)", self.path, extra)
            with open(self.path, "r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
        return extra

    def append(self, record: Record) -> None:
        """Write one record durably (write + flush + fsync)."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repair()
            self._file = open(self.path, "ab")
        line = json.dumps(to_jsonable(record), allow_nan=False, separators=(",", ":"))
        self._file.write(line.encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def rewrite(self, records: Iterable[Record]) -> None:
        """Replace the file by ``records`` atomically (temp file + fsync + ``os.replace``): a crash
        leaves the old file or the new one. Used to drop records that a run retries."""
        self.close()
        atomic_write_text(self.path, records_text(records))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class RunLockedError(RuntimeError):
    """Another live process is running the same run directory."""


def slugify(text: str, max_len: int = 60) -> str:
    """A filesystem-safe label: ``[A-Za-z0-9._=,+-]`` only, at most ``max_len`` characters."""
    slug = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text).strip("-.")
    return (slug[:max_len].rstrip("-.") or "default")


@dataclass(frozen=True)
class RunDir:
    """One run's directory and the paths inside it."""

    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def records_path(self) -> Path:
        return self.path / "records.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def slug(self) -> str:
        return self.path.name.rsplit("-", 1)[0]

    @classmethod
    def locate(cls, root: Path, spec: RunSpec, slug: str) -> RunDir:
        """The directory of ``spec`` under results root ``root``: an existing one with the same key,
        else a new ``<slug>-<hash8>`` (not created yet)."""
        key = spec.key
        parent = Path(root) / "runs" / spec.bench / slugify(spec.matcher)
        for path in sorted(parent.glob(f"*-{key[:8]}")):
            cfg = path / "config.json"
            if cfg.is_file() and read_json(cfg).get("key") == key:
                return cls(path)
        return cls(parent / f"{slugify(slug)}-{key[:8]}")

    def read_manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path) if self.manifest_path.is_file() else {}

    def read_summary(self) -> dict[str, Any] | None:
        return read_json(self.summary_path) if self.summary_path.is_file() else None

    def count_records(self) -> int:
        """Complete lines in ``records.jsonl`` (cheap; no parsing)."""
        if not self.records_path.is_file():
            return 0
        return self.records_path.read_bytes().count(b"\n")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive ownership of the run for this process (``flock``; released by the kernel even on
        SIGKILL). Raises :class:`RunLockedError` if another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as f:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - non-POSIX: no cross-process lock
                yield
                return
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(f"{self.path} is being run by another process") from None
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def reset(self) -> None:
        """Delete the run's files (``--force``); the lock file and directory stay."""
        for path in (self.config_path, self.manifest_path, self.records_path, self.summary_path):
            path.unlink(missing_ok=True)


def list_runs(root: Path, bench: str | None = None) -> list[RunDir]:
    """Run directories under results root ``root`` (those with a ``config.json``), sorted."""
    base = Path(root) / "runs"
    pattern = f"{bench}/*/*/config.json" if bench else "*/*/*/config.json"
    return [RunDir(p.parent) for p in sorted(base.glob(pattern))]


class CorrespondenceCache:
    """``Correspondences`` per (matcher key, pair key) as ``.npz`` files, written atomically.

    ``root`` is ``<results>/cache/correspondences/<matcher_key[:16]>``. A file that cannot be read is
    treated as a miss (and overwritten by the next ``put``).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, pair_key: str) -> Path:
        return self.root / f"{pair_key}.npz"

    def get(self, pair_key: str) -> Correspondences | None:
        path = self.path(pair_key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                extra = json.loads(str(z["extra"]))
                return Correspondences(
                    z["pts0"], z["pts1"], z["scores"],
                    z["pts3d0"] if "pts3d0" in z else None, z["pts3d1"] if "pts3d1" in z else None,
                    timings=extra["timings"], meta=extra["meta"],
                )
        except Exception as e:  # noqa: BLE001 - any unreadable entry is a miss
            log.warning("ignoring unreadable cache entry %s (%s)", path, e)
            return None

    def put(self, pair_key: str, corrs: Correspondences) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"pts0": corrs.pts0, "pts1": corrs.pts1, "scores": corrs.scores}
        for name in ("pts3d0", "pts3d1"):
            if getattr(corrs, name) is not None:
                arrays[name] = getattr(corrs, name)
        extra = json.dumps(to_jsonable({"timings": corrs.timings, "meta": corrs.meta}))
        atomic_write(self.path(pair_key), lambda f: np.savez(f, extra=np.array(extra), **arrays), mkdir=False)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def export_run(adapter: Any, records: Iterable[Record], run_dir: RunDir) -> list[str]:
    """Write the adapter's official export files (submission zip, upload file, PLY) of a finished
    run into ``<run dir>/export/``; their paths relative to the run directory. Adapters without
    ``export`` write nothing."""
    if not isinstance(adapter, Exportable):
        return []
    out = run_dir.path / "export"
    out.mkdir(parents=True, exist_ok=True)
    base = run_dir.path.resolve()
    paths = [Path(p).resolve() for p in adapter.export(list(records), out)]
    return [p.relative_to(base).as_posix() if p.is_relative_to(base) else str(p) for p in paths]
