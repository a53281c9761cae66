"""Coarse-to-fine matching for large images (MASt3R paper §3.4; spec ``model.md`` §6).

Model-agnostic: coarse matches come in as arrays, fine matching is a callable
``match_crops(crops0, crops1) -> list[(xy0, xy1, conf)]`` that matches crop ``i`` of view 0 with
crop ``i`` of view 1 and returns ``(x, y)`` pixels *of the crops* (float or int (N, 2)) and (N,)
confidences. All coordinates here are ``(x, y)`` pixels of the full-resolution images, pixel
centres at integers. Windows are int arrays ``[x0, y0, x1, y1]`` (half-open: ``x0 <= x < x1``).

Steps: (1) window grid per image (``window_size``-px long side, ``overlap`` between neighbours);
(2) for each grid window of one image with enough coarse matches, a partner window in the other
image centred on the matched points and scaled by their spread; every pair weighs each coarse match
by Gaussian distance to both window centres; done A->B and B->A; (3) greedy selection of pairs
until ``coverage`` of the total weight is reached; (4) crop, batched fine matching, offsets back to
full resolution, de-duplication.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CoarseToFineConfig",
    "CoarseToFineResult",
    "MatchCrops",
    "coarse_to_fine_match",
    "crop_windows",
    "dedupe_matches",
    "fine_match",
    "greedy_select",
    "make_window_grid",
    "normalize_windows",
    "score_window_pairs",
    "select_window_pairs",
    "window_resolution",
]

MatchCrops = Callable[[list[np.ndarray], list[np.ndarray]], Sequence[tuple[Any, Any, Any]]]


@dataclass(frozen=True)
class CoarseToFineConfig:
    """Options of coarse-to-fine matching (official defaults).

    Attributes:
        window_size: long side of a window in full-resolution pixels (and of the fine network input).
        overlap: minimum overlap fraction between neighbouring grid windows, in [0, 1).
        min_matches: grid windows with fewer coarse matches inside are dropped.
        spread_quantiles: quantiles whose range measures the spread of matched points per axis.
        min_spread_px: lower clip of that spread, pixels.
        coverage: stop the greedy selection at this fraction of the total match weight.
        max_batch: window pairs per ``match_crops`` call.
    """

    window_size: int = 512
    overlap: float = 0.5
    min_matches: int = 10
    spread_quantiles: tuple[float, float] = (0.1, 0.9)
    min_spread_px: float = 20.0
    coverage: float = 0.9
    max_batch: int = 48

    def __post_init__(self) -> None:
        if self.window_size < 16 or self.window_size % 16:
            raise ValueError(f"window_size must be a positive multiple of 16, got {self.window_size}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if not 0 < self.coverage <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {self.coverage}")
        if self.max_batch < 1 or self.min_matches < 1:
            raise ValueError("max_batch and min_matches must be >= 1")


@dataclass(frozen=True)
class CoarseToFineResult:
    """Fine matches at full resolution.

    Attributes:
        xy0, xy1: (N, 2) float64 ``(x, y)`` full-resolution pixels of views 0 / 1.
        conf: (N,) float32 confidences from ``match_crops``.
        windows0, windows1: (S, 4) int64 selected window pairs ``[x0, y0, x1, y1]``, in selection order.
        pair_index: (N,) int64 index of the window pair each match comes from.
        source_index: (N,) int64 row of each match in the concatenation of all ``match_crops``
            results (in call order), e.g. to look up per-crop extras.
    """

    xy0: np.ndarray
    xy1: np.ndarray
    conf: np.ndarray
    windows0: np.ndarray
    windows1: np.ndarray
    pair_index: np.ndarray
    source_index: np.ndarray

    def __len__(self) -> int:
        return len(self.xy0)


def _floor16(x: int) -> int:
    return (x // 16) * 16


def window_resolution(shape: tuple[int, int], window_size: int = 512) -> tuple[int, int]:
    """``(h, w)`` of every window of an (H, W) image: long side ``window_size`` (at most the image's),
    both sides floored to multiples of 16 (at least 16)."""
    h, w = int(shape[0]), int(shape[1])
    size = min(window_size, max(h, w))
    return max(16, _floor16(h * size // max(h, w))), max(16, _floor16(w * size // max(h, w)))


def _start_positions(total: int, win: int, overlap: float) -> np.ndarray:
    """Window starts along one axis: first at 0, last at ``total - win``, evenly spaced so that
    neighbours overlap by at least ``overlap``."""
    if total <= win:
        return np.zeros(1, np.int64)
    n = 2 + int((total - win - 1) // (win * (1 - overlap)))
    return np.round(np.linspace(0, total - win, n)).astype(np.int64)


def make_window_grid(shape: tuple[int, int], window_size: int = 512, overlap: float = 0.5) -> np.ndarray:
    """Overlapping windows covering an (H, W) image.

    Returns: (K, 4) int64 ``[x0, y0, x1, y1]``, y-major order (rows of windows, left to right).
    """
    h, w = int(shape[0]), int(shape[1])
    if h < 16 or w < 16:
        raise ValueError(f"image of {h}x{w} pixels is too small for coarse-to-fine windows (min 16x16)")
    hw, ww = window_resolution((h, w), window_size)
    ys, xs = _start_positions(h, hw, overlap), _start_positions(w, ww, overlap)
    x0, y0 = np.meshgrid(xs, ys, indexing="xy")
    x0, y0 = x0.reshape(-1), y0.reshape(-1)
    return np.stack([x0, y0, x0 + ww, y0 + hw], axis=1)


def normalize_windows(cells: np.ndarray, shape: tuple[int, int], resolution: tuple[int, int]) -> np.ndarray:
    """Resize windows about their centres to exactly ``resolution`` = (h, w) pixels and shift them
    inside the (H, W) image.

    Args: cells (K, 4) float ``[x0, y0, x1, y1]``.
    Returns: (K, 4) int64 windows of size exactly (h, w), inside the image.
    """
    h_img, w_img = int(shape[0]), int(shape[1])
    h, w = int(resolution[0]), int(resolution[1])
    if h > h_img or w > w_img:
        raise ValueError(f"window {h}x{w} does not fit in a {h_img}x{w_img} image")
    cells = np.asarray(cells, dtype=np.float64).reshape(-1, 4)
    cx, cy = (cells[:, 0] + cells[:, 2]) / 2, (cells[:, 1] + cells[:, 3]) / 2
    x0 = np.clip(np.floor(cx - w / 2), 0, w_img - w).astype(np.int64)
    y0 = np.clip(np.floor(cy - h / 2), 0, h_img - h).astype(np.int64)
    return np.stack([x0, y0, x0 + w, y0 + h], axis=1)


def _inside(pts: np.ndarray, window: np.ndarray) -> np.ndarray:
    return ((pts[:, 0] >= window[0]) & (pts[:, 0] < window[2])
            & (pts[:, 1] >= window[1]) & (pts[:, 1] < window[3]))


def _gauss(pts: np.ndarray, window: np.ndarray) -> np.ndarray:
    center = (window[:2] + window[2:]) / 2
    size = (window[2:] - window[:2]).astype(np.float64)
    return np.exp(-2 * (((center - pts) / size) ** 2).sum(axis=1))


def _score_one_side(pts_a: np.ndarray, pts_b: np.ndarray, grid_a: np.ndarray, shape_b: tuple[int, int],
                    res_b: tuple[int, int], cfg: CoarseToFineConfig
                    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    wins_a, wins_b, weights = [], [], []
    q = np.asarray(cfg.spread_quantiles)
    for cell in grid_a:
        m = _inside(pts_a, cell)
        if m.sum() < cfg.min_matches:
            continue
        spread_a = np.maximum(np.diff(np.quantile(pts_a[m], q, axis=0), axis=0)[0], cfg.min_spread_px)
        spread_b = np.maximum(np.diff(np.quantile(pts_b[m], q, axis=0), axis=0)[0], cfg.min_spread_px)
        size_b = (cell[2:] - cell[:2]) * spread_b / spread_a
        center_b = pts_b[m].mean(axis=0)
        cell_b = normalize_windows(np.concatenate([center_b - size_b / 2, center_b + size_b / 2]), shape_b,
                                   res_b)[0]
        wins_a.append(cell)
        wins_b.append(cell_b)
        weights.append(np.where(m, _gauss(pts_a, cell) * _gauss(pts_b, cell_b), 0.0))
    return wins_a, wins_b, weights


def score_window_pairs(xy0: np.ndarray, xy1: np.ndarray, shape0: tuple[int, int], shape1: tuple[int, int],
                       config: CoarseToFineConfig | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate window pairs and the weight each gives every coarse match.

    Args:
        xy0, xy1: (N, 2) coarse matches, full-resolution ``(x, y)`` pixels of views 0 / 1.
        shape0, shape1: ``(H, W)`` of the full-resolution images.
    Returns: ``windows0 (P, 4)``, ``windows1 (P, 4)`` int64 and ``weights (P, N)`` float64 in [0, 1]
        (grid of view 0 -> partners in view 1 first, then grid of view 1 -> partners in view 0).
    """
    cfg = config or CoarseToFineConfig()
    xy0 = np.asarray(xy0, np.float64).reshape(-1, 2)
    xy1 = np.asarray(xy1, np.float64).reshape(-1, 2)
    if len(xy0) != len(xy1):
        raise ValueError(f"score_window_pairs: xy0 has {len(xy0)} rows but xy1 has {len(xy1)}")
    res0, res1 = window_resolution(shape0, cfg.window_size), window_resolution(shape1, cfg.window_size)
    grid0 = make_window_grid(shape0, cfg.window_size, cfg.overlap)
    grid1 = make_window_grid(shape1, cfg.window_size, cfg.overlap)
    a0, b1, w01 = _score_one_side(xy0, xy1, grid0, shape1, res1, cfg)
    a1, b0, w10 = _score_one_side(xy1, xy0, grid1, shape0, res0, cfg)
    n = len(xy0)
    win0 = np.array(a0 + b0, np.int64).reshape(-1, 4)
    win1 = np.array(b1 + a1, np.int64).reshape(-1, 4)
    weights = np.array(w01 + w10, np.float64).reshape(-1, n)
    return win0, win1, weights


def greedy_select(weights: np.ndarray, coverage: float = 0.9) -> list[int]:
    """Pick window pairs until they cover ``coverage`` of the total match weight.

    Total = sum over matches of their best pair weight. Each step takes the pair with the largest
    remaining weight sum, counts it, and subtracts its remaining weights from every pair (clipped
    at 0), so a match is never counted beyond its best weight.
    Args: weights (P, N) >= 0.
    Returns: indices of the chosen pairs, in selection order.
    """
    remaining = np.array(weights, dtype=np.float64, copy=True)
    if remaining.size == 0:
        return []
    total = remaining.max(axis=0).sum()
    chosen: list[int] = []
    acc = 0.0
    while acc < coverage * total:
        sums = remaining.sum(axis=1)
        k = int(np.argmax(sums))
        if sums[k] <= 0:
            break
        gained = remaining[k].copy()
        acc += float(gained.sum())
        np.clip(remaining - gained[None], 0, None, out=remaining)
        chosen.append(k)
    return chosen


def select_window_pairs(xy0: np.ndarray, xy1: np.ndarray, shape0: tuple[int, int], shape1: tuple[int, int],
                        config: CoarseToFineConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Score candidate window pairs from coarse matches and keep the greedy selection.

    Returns: ``windows0, windows1`` (S, 4) int64 in selection order (S = 0 without enough matches).
    """
    cfg = config or CoarseToFineConfig()
    win0, win1, weights = score_window_pairs(xy0, xy1, shape0, shape1, cfg)
    idx = greedy_select(weights, cfg.coverage)
    return win0[idx].reshape(-1, 4), win1[idx].reshape(-1, 4)


def crop_windows(image: np.ndarray, windows: np.ndarray) -> list[np.ndarray]:
    """Views (no copy) of ``image`` (H, W, ...) for each ``[x0, y0, x1, y1]`` window."""
    return [image[int(y0):int(y1), int(x0):int(x1)] for x0, y0, x1, y1 in np.asarray(windows).reshape(-1, 4)]


def dedupe_matches(xy0: np.ndarray, xy1: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Indices keeping one copy of each identical ``(xy0, xy1)`` pair: the most confident (first on
    equal confidence), returned in ascending order."""
    if len(xy0) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-np.asarray(conf, np.float64), kind="stable")
    rows = np.hstack([xy0, xy1])[order]
    _, first = np.unique(rows, axis=0, return_index=True)
    return np.sort(order[first])


def fine_match(image0: np.ndarray, image1: np.ndarray, windows0: np.ndarray, windows1: np.ndarray,
               match_crops: MatchCrops, config: CoarseToFineConfig | None = None) -> CoarseToFineResult:
    """Match the selected window pairs in batches and map crop matches to full resolution.

    Args:
        image0, image1: (H, W, ...) full-resolution arrays (cropped, never resized here).
        windows0, windows1: (S, 4) window pairs.
        match_crops: fine matcher, see module docstring.
    Returns: de-duplicated :class:`CoarseToFineResult`.
    """
    cfg = config or CoarseToFineConfig()
    windows0 = np.asarray(windows0, np.int64).reshape(-1, 4)
    windows1 = np.asarray(windows1, np.int64).reshape(-1, 4)
    p0: list[np.ndarray] = []
    p1: list[np.ndarray] = []
    cs: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    for start in range(0, len(windows0), cfg.max_batch):
        w0, w1 = windows0[start : start + cfg.max_batch], windows1[start : start + cfg.max_batch]
        results = match_crops(crop_windows(image0, w0), crop_windows(image1, w1))
        if len(results) != len(w0):
            raise ValueError(f"match_crops returned {len(results)} results for {len(w0)} crop pairs")
        for k, (a, b, c) in enumerate(results):
            a = np.asarray(a, np.float64).reshape(-1, 2)
            b = np.asarray(b, np.float64).reshape(-1, 2)
            c = np.asarray(c, np.float32).reshape(-1)
            if not len(a) == len(b) == len(c):
                raise ValueError(
                    f"match_crops result {start + k}: xy0 {a.shape}, xy1 {b.shape}, conf {c.shape}")
            p0.append(a + w0[k, :2])
            p1.append(b + w1[k, :2])
            cs.append(c)
            ids.append(np.full(len(a), start + k, np.int64))
    xy0 = np.concatenate(p0) if p0 else np.zeros((0, 2))
    xy1 = np.concatenate(p1) if p1 else np.zeros((0, 2))
    conf = np.concatenate(cs) if cs else np.zeros(0, np.float32)
    pair = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    keep = dedupe_matches(xy0, xy1, conf)
    return CoarseToFineResult(xy0[keep], xy1[keep], conf[keep], windows0, windows1, pair[keep], keep)


def coarse_to_fine_match(image0: np.ndarray, image1: np.ndarray, coarse_xy0: np.ndarray,
                         coarse_xy1: np.ndarray, match_crops: MatchCrops,
                         config: CoarseToFineConfig | None = None) -> CoarseToFineResult:
    """Window selection from coarse matches, then fine matching of the selected window pairs.

    Args:
        image0, image1: (H, W, ...) full-resolution images (any dtype; crops are passed as views).
        coarse_xy0, coarse_xy1: (N, 2) coarse matches in full-resolution ``(x, y)`` pixels.
        match_crops: fine matcher on crop pairs (see module docstring).
    Returns: :class:`CoarseToFineResult` (empty when no window has ``min_matches`` coarse matches).
    """
    cfg = config or CoarseToFineConfig()
    shape0, shape1 = image0.shape[:2], image1.shape[:2]
    win0, win1 = select_window_pairs(coarse_xy0, coarse_xy1, shape0, shape1, cfg)
    return fine_match(image0, image1, win0, win1, match_crops, cfg)
