"""Data-folder resolution shared by the pose adapters.

The runner builds an adapter on ``<data root>/<bench>``. Users also pass the benchmark folder itself
(``--data DIR/mapfree``, as ``mast3r-bench score mapfree --data`` accepts), which makes that
``DIR/mapfree/mapfree``: :func:`resolve_root` then falls back to the parent when the parent is the
benchmark folder, so both spellings read the same data (and record the same ``root``). A release that
extracts to a named folder (``RealEstate10K/``) is also found inside either.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.hashing import dataset_checksum

__all__ = ["resolve_root", "is_synthetic_root", "listing_checksum"]

log = logging.getLogger(__name__)


def resolve_root(root: Path, looks_like: Callable[[Path], bool], bench: str, inner: Sequence[str] = ()
                 ) -> Path:
    """The first of ``root``, ``root/<inner>``, then (when ``root`` is named ``bench``) its parent and
    ``parent/<inner>`` that looks like the benchmark folder, else ``root`` unchanged (the reader then
    names what is missing). ``inner``: folder names a release extracts to (``RealEstate10K``)."""
    root = Path(root)
    candidates = [root, *(root / name for name in inner)]
    if root.name == bench:
        candidates += [root.parent, *(root.parent / name for name in inner)]
    for cand in candidates:
        if looks_like(cand):
            if cand != root:
                log.info("%s: %s is not a %s folder; using %s", bench, root, bench, cand)
            return cand
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
