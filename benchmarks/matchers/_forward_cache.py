"""The network forward shared by the ``mast3r`` and ``dust3r`` matchers, cached per (model, pair).

Matcher variants that differ only in matching options (FRM subsample, dense NN, border, confidence
threshold, ...) need the same network outputs. :class:`~benchmarks.matchers._network.PairNetwork`
runs the forward and keys it by
the *model* (checkpoint SHA-256, network size, precision) and the *pair* (SHA-256 of both image
files, in order), never by matching options, so every such variant reuses one forward per pair.

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

import contextlib
import logging
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mast3r.fileio import sha256_file as file_sha256  # re-exported: the old name

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from mast3r.preprocess import PreparedImage

__all__ = ["FORWARD_CACHE_ENV", "PRECISIONS", "PairForward", "ForwardCache", "file_sha256",
           "default_forward_cache", "sample_map_rows"]
log = logging.getLogger(__name__)

FORWARD_CACHE_ENV = "MAST3R_BENCH_FORWARD_CACHE"
PRECISIONS = ("fp32", "bf16", "fp16")
"""``fp32``: plain float32. ``bf16`` / ``fp16``: encoder and decoders under autocast with that dtype
(the heads always run in float32, as in the official code)."""

_MAPS = ("pts3d", "conf", "desc", "desc_conf")


def default_forward_cache() -> ForwardCache:
    """Memory-only cache, or a disk cache in ``$MAST3R_BENCH_FORWARD_CACHE`` when that is set
    (``off``/``0``/empty: memory only)."""
    root = os.environ.get(FORWARD_CACHE_ENV, "").strip()
    if root.lower() in ("", "0", "off", "none", "false"):
        return ForwardCache(None)
    return ForwardCache(Path(root))


@dataclass
class PairForward:
    """Network outputs of one ordered pair (torch float32 tensors, any device).

    Attributes:
        view0: ``pts3d`` (H0, W0, 3) in camera-0's frame, ``conf`` (H0, W0), and for MASt3R ``desc``
            (H0, W0, D) unit norm and ``desc_conf`` (H0, W0).
        view1: the same for view 1; ``pts3d`` (H1, W1, 3) is ALSO in camera-0's frame.
        own1: ``pts3d`` / ``conf`` of view 1 in camera-1's own frame (from the swapped forward
            (1, 0), encoder output reused), or None when not computed.
        seconds: wall time of the forward(s) when they were computed (kept through the cache).
        cached: True when this came from the cache.
        focal0, focal1: Weiszfeld focal (network pixels, unclipped, NaN if undetermined) of view 0's
            pointmap and of ``own1``, computed for the whole batch at once; None when not computed
            (e.g. entries cached before they existed).
    """

    view0: dict[str, torch.Tensor]
    view1: dict[str, torch.Tensor]
    own1: dict[str, torch.Tensor] | None = None
    seconds: float = 0.0
    cached: bool = False
    focal0: float | None = None
    focal1: float | None = None

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"seconds": np.asarray(self.seconds, np.float64)}
        for name in ("focal0", "focal1"):
            if getattr(self, name) is not None:
                out[name] = np.asarray(getattr(self, name), np.float64)
        for prefix, maps in (("v0", self.view0), ("v1", self.view1), ("own1", self.own1 or {})):
            for name, t in maps.items():
                out[f"{prefix}.{name}"] = t.detach().float().cpu().numpy()
        return out

    @classmethod
    def from_arrays(cls, arrays: Any) -> PairForward:
        import torch

        groups: dict[str, dict[str, torch.Tensor]] = {"v0": {}, "v1": {}, "own1": {}}
        for key in arrays.files if hasattr(arrays, "files") else arrays:
            if "." in key:
                prefix, name = key.split(".", 1)
                groups[prefix][name] = torch.from_numpy(np.array(arrays[key]))
        names = set(arrays.files if hasattr(arrays, "files") else arrays)
        focals = [float(arrays[k]) if k in names else None for k in ("focal0", "focal1")]
        own1 = groups["own1"] or None
        return cls(groups["v0"], groups["v1"], own1, float(arrays["seconds"]), True, *focals)


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
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **fwd.to_arrays())  # type: ignore[arg-type]
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _remember(self, key: str, fwd: PairForward) -> None:
        if self.memory_items <= 0:
            return
        self._memory[key] = fwd
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)


def sample_map_rows(values: torch.Tensor, xy: np.ndarray) -> np.ndarray:
    """Rows of an (H, W, C) or (H, W) map at integer ``(x, y)`` pixels: (N, C) / (N,) float32 numpy."""
    import torch

    xy = np.asarray(xy, np.int64).reshape(-1, 2)
    idx = torch.from_numpy(xy).to(values.device)
    return values[idx[:, 1], idx[:, 0]].detach().float().cpu().numpy()


def focal_px(pts3d: torch.Tensor | None, prep: PreparedImage, focal: float | None = None) -> float | None:
    """Weiszfeld focal (official ``estimate_focal_knowing_depth``, principal point at the network
    image centre) of a pointmap in its own camera frame, converted from network pixels to ORIGINAL
    pixels by the mean of the two axis scales. ``focal``: the network-pixel value when already
    computed (:attr:`PairForward.focal0` / ``focal1``). None when it cannot be estimated or is not
    positive (e.g. a random-init network)."""
    if pts3d is None:
        return None
    from mast3r.geometry import estimate_focal

    # torch path: stays on the GPU when the forward ran there
    f = estimate_focal(pts3d.detach()) if focal is None else focal
    if not np.isfinite(f) or f <= 0:
        return None
    sx, sy = prep.scale_xy
    return float(f * (sx + sy) / 2)
