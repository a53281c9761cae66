"""The harness side of the engine's forward: the forward cache shared by the ``mast3r`` and
``dust3r`` matchers (per model and pair, in memory and optionally under ``results/``) and the
View -> engine preprocessing adapter.

Matcher variants that differ only in matching options (FRM subsample, dense NN, border, confidence
threshold, ...) need the same network outputs. The engine's network
(:class:`mast3r.engine.network.PairNetwork`) runs the forward and keys it by the *model* (checkpoint
SHA-256, network size, precision) and the *pair* (SHA-256 of both image files, in order), never by
matching options, so every such variant reuses one forward per pair.

Cache levels (:class:`ForwardCache`):

* memory: the last ``memory_items`` pairs (per cache object; share the object to share entries);
* disk (opt-in, ``root`` set): ``<root>/<model_key[:16]>/<pair_key>.npz``, uncompressed float32.
  Exact (no lossy storage), so a cached forward gives bit-identical matches. Size per pair at the
  default 512 x 384: ``2 x 512 x 384 x (3 + 1 + 24 + 1) x 4 B`` = about 46 MB (+ 3 MB for view 1's
  own-frame pointmap when focals are estimated). ``mast3r-bench sweep`` enables it under
  ``<results>/cache/forward``; ``mast3r-bench run`` does when ``$MAST3R_BENCH_FORWARD_CACHE`` names
  a folder. Delete the folder to reclaim space; entries are written atomically.

Only coarse (full-image) forwards are cached; coarse-to-fine window crops depend on the coarse
matches, hence on matching options, and are recomputed.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mast3r.engine.forward import PairForward
from mast3r.fileio import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from benchmarks.types import View
    from mast3r.preprocess import PreparedImage

__all__ = ["FORWARD_CACHE_ENV", "ForwardCache", "default_forward_cache", "prepare_view"]
log = logging.getLogger(__name__)

FORWARD_CACHE_ENV = "MAST3R_BENCH_FORWARD_CACHE"


def default_forward_cache() -> ForwardCache:
    """Memory-only cache, or a disk cache in ``$MAST3R_BENCH_FORWARD_CACHE`` when that is set
    (``off``/``0``/empty: memory only)."""
    root = os.environ.get(FORWARD_CACHE_ENV, "").strip()
    if root.lower() in ("", "0", "off", "none", "false"):
        return ForwardCache(None)
    return ForwardCache(Path(root))


def prepare_view(engine: Any, view: View) -> PreparedImage:
    """The engine's preprocessing of ``view.image_path``; the stored size must match the view's
    ``width``/``height`` (ValueError naming the file and the view)."""
    return engine.prepare(view.image_path, (view.width, view.height), f"view {view.name!r}")


class ForwardCache:
    """Memory LRU (+ optional disk folder) of :class:`PairForward` by key ``"<model16>/<pair hash>"``
    (module docstring)."""

    def __init__(self, root: Path | None = None, memory_items: int = 2) -> None:
        self.root = Path(root) if root is not None else None
        self.memory_items = memory_items
        self._memory: OrderedDict[str, PairForward] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / f"{key}.npz"

    def get(self, key: str, need_own: bool = False) -> PairForward | None:
        """The entry, or None (also when ``need_own`` and the entry lacks view 1's own pointmap)."""
        hit = self._memory.get(key)
        if hit is None and self.root is not None and self._path(key).is_file():
            try:
                with np.load(self._path(key), allow_pickle=False) as z:
                    hit = PairForward.from_arrays(z)
            except Exception as e:  # noqa: BLE001 - an unreadable entry is a miss
                log.warning("ignoring unreadable forward cache entry %s (%s)", self._path(key), e)
                hit = None
        if hit is None or (need_own and hit.own1 is None):
            self.misses += 1
            return None
        self._remember(key, hit)
        self.hits += 1
        return PairForward(hit.view0, hit.view1, hit.own1, hit.seconds, True, hit.focal0, hit.focal1)

    def put(self, key: str, fwd: PairForward) -> None:
        self._remember(key, fwd)
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, **fwd.to_arrays()))  # type: ignore[arg-type]

    def _remember(self, key: str, fwd: PairForward) -> None:
        if self.memory_items <= 0:
            return
        self._memory[key] = fwd
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)
