"""One call from two views' descriptors to filtered, scored pixel matches (FRM or dense).

:func:`match_descriptors` is pure (no state kept between calls); :class:`MatchingBackend` is the
same matching on one device plus the GPU state worth keeping across pairs (the pool of captured FRM
engines), owned by the object instead of threaded through the calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mast3r.matching.config import FRMConfig
from mast3r.matching.dense import dense_reciprocal_nn
from mast3r.matching.filters import border_filter, match_confidence
from mast3r.matching.frm import FRMStats, fast_reciprocal_nn

__all__ = ["MatchingBackend", "PixelMatches", "match_descriptors"]


@dataclass(frozen=True)
class PixelMatches:
    """Matches in network pixels.

    Attributes:
        xy0, xy1: (N, 2) int32 ``(x, y)`` in each view's network image.
        conf: (N,) float32 confidence (see ``FRMConfig.conf_mode``); ones without confidence maps.
        stats: FRM trace (None for dense matching).
    """

    xy0: np.ndarray
    xy1: np.ndarray
    conf: np.ndarray
    stats: FRMStats | None = None

    def __len__(self) -> int:
        return len(self.xy0)


def match_descriptors(desc0: Any, desc1: Any, desc_conf0: Any = None, desc_conf1: Any = None,
                      config: FRMConfig | None = None, *, seeds: Any = None,
                      shape0: tuple[int, int] | None = None, shape1: tuple[int, int] | None = None
                      ) -> PixelMatches:
    """FRM (or dense mutual NN with ``config.dense``) + border filter + per-match confidence.

    Args:
        desc0, desc1: (H, W, D) descriptor maps (numpy/torch, any device).
        desc_conf0, desc_conf1: optional (H, W) descriptor confidences.
        config: matching options (default :class:`FRMConfig()`: the official demo settings).
        seeds: explicit view-0 seeds for FRM (see :func:`fast_reciprocal_nn`).
        shape0, shape1: ``(H, W)`` for the border filter (default: the maps' shapes).
    Returns: :class:`PixelMatches` in the order FRM/dense returns them (filtered rows removed).
    """
    return _match(desc0, desc1, desc_conf0, desc_conf1, config, seeds, shape0, shape1, None)


def _match(desc0: Any, desc1: Any, desc_conf0: Any, desc_conf1: Any, config: FRMConfig | None, seeds: Any,
           shape0: tuple[int, int] | None, shape1: tuple[int, int] | None, engines: Any) -> PixelMatches:
    cfg = config or FRMConfig()
    stats = None
    if cfg.dense:
        xy0, xy1 = dense_reciprocal_nn(desc0, desc1, backend=cfg.backend, dist=cfg.dist,
                                       block_size=cfg.block_size)
    else:
        xy0, xy1, stats = fast_reciprocal_nn(
            desc0, desc1, cfg.subsample, cfg.max_iter, seeds=seeds, pixel_tol=cfg.pixel_tol,
            backend=cfg.backend, dist=cfg.dist, block_size=cfg.block_size, return_stats=True,
            engines=engines)
    if cfg.border > 0:
        s0 = shape0 or (int(desc0.shape[0]), int(desc0.shape[1]))
        s1 = shape1 or (int(desc1.shape[0]), int(desc1.shape[1]))
        keep = border_filter(xy0, xy1, s0, s1, cfg.border)
        xy0, xy1 = xy0[keep], xy1[keep]
    if desc_conf0 is not None and desc_conf1 is not None:
        conf = match_confidence(desc_conf0, desc_conf1, xy0, xy1, cfg.conf_mode)
    else:
        conf = np.ones(len(xy0), np.float32)
    return PixelMatches(xy0, xy1, conf, stats)


class MatchingBackend:
    """Descriptor matching on one device, owning what is reused across pairs.

    On a CUDA device it owns a :class:`~mast3r.matching.gpu.frm.DeviceFRMPool` (created on first
    use): the Triton FRM loop replays captured engines for maps of equal sizes (one graph launch per
    pair). Elsewhere it keeps nothing. Results equal :func:`match_descriptors` on the same maps.

    Args: device: where the maps are moved before matching; max_engines: pool capacity.
    """

    def __init__(self, device: Any = "cpu", max_engines: int = 4) -> None:
        self.device = str(device)
        self.max_engines = max_engines
        self._pool: Any = None

    @property
    def pool(self) -> Any:
        """The captured-engine pool (CUDA only; None elsewhere)."""
        if self._pool is None and self.device.startswith("cuda"):
            from mast3r.matching.gpu.frm import DeviceFRMPool

            self._pool = DeviceFRMPool(self.max_engines)
        return self._pool

    def match(self, desc0: Any, desc1: Any, desc_conf0: Any = None, desc_conf1: Any = None,
              config: FRMConfig | None = None, *, seeds: Any = None, shape0: tuple[int, int] | None = None,
              shape1: tuple[int, int] | None = None) -> PixelMatches:
        """:func:`match_descriptors` of the maps moved to :attr:`device` (torch tensors)."""
        dev = self.device
        maps = [m.to(dev) if hasattr(m, "to") else m for m in (desc0, desc1, desc_conf0, desc_conf1)]
        return _match(*maps, config, seeds, shape0, shape1, self.pool)
