"""Data-folder resolution shared by the pose adapters.

The runner builds an adapter on ``<data root>/<bench>``. Users also pass the benchmark folder itself
(``--data DIR/mapfree``, as ``mast3r-bench score mapfree --data`` accepts), which makes that
``DIR/mapfree/mapfree``: :func:`resolve_root` then falls back to the parent when the parent is the
benchmark folder, so both spellings read the same data (and record the same ``root``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.hashing import dataset_checksum

__all__ = ["resolve_root", "is_synthetic_root", "listing_checksum"]

log = logging.getLogger(__name__)


def resolve_root(root: Path, looks_like: Callable[[Path], bool], bench: str) -> Path:
    """``root`` when it looks like the benchmark folder, else its parent when that does, else
    ``root`` unchanged (the reader then names what is missing)."""
    root = Path(root)
    if looks_like(root):
        return root
    if root.name == bench and looks_like(root.parent):
        log.info("%s: %s is not a %s folder; using its parent %s", bench, root, bench, root.parent)
        return root.parent
    return root


def is_synthetic_root(root: Path) -> bool:
    """True when ``root`` was written by the synthetic suite (its ``MANIFEST.json`` says so)."""
    from datasets.synthetic.suite import read_manifest

    return read_manifest(Path(root)) is not None


def listing_checksum(root: Path, patterns: Sequence[str]) -> str | None:
    """A cheap dataset fingerprint for releases with millions of files: the synthetic suite's
    ``MANIFEST.json`` hash when present, else the SHA-256 of the sorted ``path<TAB>size`` lines of the
    files (and folder names) matching the glob ``patterns`` under ``root`` (annotations, camera
    files), prefixed ``"listing:<patterns>:"``. None when ``root`` does not exist."""
    root = Path(root)
    if (root / "MANIFEST.json").is_file() or not root.is_dir():
        return dataset_checksum(root)
    lines = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            size = path.stat().st_size if path.is_file() else -1
            lines.add(f"{path.relative_to(root).as_posix()}\t{size}\n")
    digest = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    return f"listing:{','.join(patterns)}:{digest}"
