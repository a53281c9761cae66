"""Content keys: run keys, matcher (cache) keys, pair keys, per-sample seeds, file and dataset checksums.

All keys are SHA-256 hex digests of :func:`benchmarks.config.canonical_json`, so dict key order never
matters and any value change (including ``1`` vs ``1.0`` vs ``True``) gives another key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.config import canonical_json, identity_dict, to_dict
from datasets.records import View
from mast3r.fileio import sha256_file as file_sha256  # noqa: F401 - the one SHA-256 helper, re-exported

__all__ = ["sha256_json", "RunSpec", "pair_key", "derive_seed", "file_sha256", "dataset_checksum"]


def sha256_json(obj: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``obj`` (dataclasses, dicts, lists, scalars)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides a run's results, hence its key and directory.

    ``--limit``, the device and the data root are deliberately absent: a limited run is a prefix of
    the full run, and the device/dataset are provenance recorded in ``manifest.json``. So are the
    execution-only config fields (:func:`benchmarks.config.identity_dict`): changing
    ``matcher.batch_size`` resumes the same run and reuses its correspondence cache.

    Attributes:
        bench: adapter registry name.
        adapter_version: the adapter class's ``version`` (bumped when its protocol changes).
        adapter_config, estimator_config, matcher_config: resolved configs: a config dataclass is
            stored as its :func:`~benchmarks.config.identity_dict`; a dict is taken as that already.
        matcher: matcher registry name.
        weights: SHA-256 of the matcher's weights, or None for weight-free matchers.
        seed: base seed of the solver (per-sample seeds derive from it and the sample key).
    """

    bench: str
    adapter_version: str
    adapter_config: dict[str, Any]
    estimator_config: dict[str, Any]
    matcher: str
    matcher_config: dict[str, Any]
    weights: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("adapter_config", "estimator_config", "matcher_config"):
            value = getattr(self, name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                object.__setattr__(self, name, identity_dict(value))

    def as_dict(self) -> dict[str, Any]:
        """The hashed content (also written to ``config.json``)."""
        return {
            "adapter": self.bench,
            "adapter_version": self.adapter_version,
            "adapter_config": to_dict(self.adapter_config),
            "estimator_config": to_dict(self.estimator_config),
            "matcher": self.matcher,
            "matcher_config": to_dict(self.matcher_config),
            "weights": self.weights,
            "seed": self.seed,
        }

    @property
    def key(self) -> str:
        """Run key: 64 hex chars; the run directory ends with its first 8."""
        return sha256_json(self.as_dict())

    @property
    def matcher_key(self) -> str:
        """Key of the correspondence cache: matcher name, config (identity part) and weights only, so
        that re-solving with other estimator settings (or another adapter config) or with other
        execution settings (batch size, ...) reuses the cached matches."""
        return sha256_json({"matcher": self.matcher, "matcher_config": to_dict(self.matcher_config),
                            "weights": self.weights})


def _file_identity(path: Path, data_root: Path | None) -> list[Any]:
    path = Path(path)
    try:
        rel = str(path.resolve().relative_to(data_root.resolve())) if data_root else str(path)
    except ValueError:
        rel = str(path)  # outside the data root: the absolute path is the identity
    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    return [rel, size]


def pair_key(view0: View, view1: View, data_root: Path | None = None) -> str:
    """Cache key of the ordered pair (view0 -> view1).

    Built from each view's ``name``, its image path relative to ``data_root`` (absolute when outside
    it) and the file size in bytes. It does not read image content (cheap for large images) and
    survives moving the data root or copying files (mtime is ignored); a regenerated image of a
    different size gets a new key. Replacing an image by one of the same path and size is not
    detected: clear ``results/cache`` after editing data in place.
    """
    return sha256_json([[v.name, *_file_identity(v.image_path, data_root)] for v in (view0, view1)])


def derive_seed(base_seed: int, key: str) -> int:
    """A 31-bit seed from a base seed and a string key (sample key, pair names): stable across runs,
    machines and Python versions (no ``hash()``), independent of processing order."""
    digest = hashlib.sha256(f"{base_seed}\n{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def dataset_checksum(root: Path) -> str | None:
    """A cheap fingerprint of a dataset folder, or None if it does not exist.

    The SHA-256 of ``root/MANIFEST.json`` when present (generated datasets write one); otherwise the
    SHA-256 over the sorted ``relative/path<TAB>size`` lines of every file under ``root`` (no content
    is read, so it is fast on large benchmarks).
    """
    root = Path(root)
    if (root / "MANIFEST.json").is_file():
        return "manifest:" + file_sha256(root / "MANIFEST.json")
    if not root.is_dir():
        return None
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            lines.append(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n")
    return "listing:" + hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
