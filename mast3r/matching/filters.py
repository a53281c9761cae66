"""Post-filters on pixel matches: the 3-pixel border filter and per-match confidence."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mast3r.matching.config import CONF_MODES

__all__ = ["border_filter", "match_confidence"]


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def border_filter(xy0: Any, xy1: Any, shape0: tuple[int, int], shape1: tuple[int, int],
                  border: int = 3) -> np.ndarray:
    """Keep matches at least ``border`` pixels inside both images (official demo/visloc filter).

    Args:
        xy0, xy1: (N, 2) ``(x, y)`` pixels of views 0 / 1.
        shape0, shape1: ``(H, W)`` of each image (the network ``true_shape``).
        border: pixels; a match is kept iff ``border <= x < W - border`` and
            ``border <= y < H - border`` in both views.
    Returns: (N,) bool mask.
    """
    xy0, xy1 = _np(xy0).reshape(-1, 2), _np(xy1).reshape(-1, 2)
    if len(xy0) != len(xy1):
        raise ValueError(f"border_filter: xy0 has {len(xy0)} rows but xy1 has {len(xy1)}")
    if border < 0:
        raise ValueError(f"border_filter: border must be >= 0, got {border}")

    def inside(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        h, w = int(shape[0]), int(shape[1])
        x, y = xy[:, 0], xy[:, 1]
        return (x >= border) & (x < w - border) & (y >= border) & (y < h - border)

    return inside(xy0, shape0) & inside(xy1, shape1)


def match_confidence(conf_map0: Any, conf_map1: Any, xy0: Any, xy1: Any, mode: str = "min") -> np.ndarray:
    """Confidence of each match from the two per-pixel confidence maps (e.g. ``desc_conf``).

    Args:
        conf_map0: (H0, W0), conf_map1: (H1, W1) confidences (numpy or torch).
        xy0, xy1: (N, 2) integer ``(x, y)`` pixels inside the maps.
        mode: ``"min"`` -> ``min(c0, c1)`` (visloc, ``_nonsym`` SfM); ``"geomean"`` ->
            ``sqrt(c0 * c1)`` (sparse global alignment).
    Returns: (N,) float32.
    """
    if mode not in CONF_MODES:
        raise ValueError(f"match_confidence: mode must be one of {CONF_MODES}, got {mode!r}")
    c0, c1 = _np(conf_map0), _np(conf_map1)
    if c0.ndim != 2 or c1.ndim != 2:
        raise ValueError(f"match_confidence: confidence maps must be (H, W), got {c0.shape} and {c1.shape}")
    xy0 = _np(xy0).reshape(-1, 2).astype(np.int64)
    xy1 = _np(xy1).reshape(-1, 2).astype(np.int64)
    if len(xy0) != len(xy1):
        raise ValueError(f"match_confidence: xy0 has {len(xy0)} rows but xy1 has {len(xy1)}")
    for name, xy, c in (("xy0", xy0, c0), ("xy1", xy1, c1)):
        if len(xy) and (xy.min() < 0 or (xy[:, 0] >= c.shape[1]).any() or (xy[:, 1] >= c.shape[0]).any()):
            raise ValueError(f"match_confidence: {name} has pixels outside the {c.shape} map")
    a = c0[xy0[:, 1], xy0[:, 0]].astype(np.float64)
    b = c1[xy1[:, 1], xy1[:, 0]].astype(np.float64)
    out = np.minimum(a, b) if mode == "min" else np.sqrt(a * b)
    return out.astype(np.float32)
