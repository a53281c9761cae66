"""Pure pieces of the visual-localisation protocol (see :mod:`benchmarks.adapters._visloc`): lifting
database pixels to 3D (keypoints within a tolerance, point maps with holes), COLMAP radial
distortion of query pixels, seeded subsampling, a small LRU cache. Pixels ``(x, y)`` with centres at
integer coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mast3r.lru import LRU  # re-exported: the adapters import it from here

__all__ = ["LRU", "lift_keypoints", "sample_xyz_map", "radial_coeffs", "distort_radial", "undistort_radial",
           "seeded_subset"]


def lift_keypoints(tree: Any, keypoints_xyz: np.ndarray, xy: np.ndarray, pixel_tol: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """World points of matched pixels from the nearest keypoint with a 3D point (Aachen).

    Args:
        tree: ``scipy.spatial.cKDTree`` over the image's (K, 2) keypoints (OpenCV pixels).
        keypoints_xyz: (K, 3) world points of those keypoints.
        xy: (N, 2) matched pixels in the same image.
        pixel_tol: a match takes the nearest keypoint's point when it is within this distance
            (inclusive, pixels).
    Returns:
        ``xyz`` (N, 3) float64 (NaN where not lifted) and ``valid`` (N,) bool.
    """
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    xyz = np.full((len(xy), 3), np.nan)
    if len(xy) == 0 or len(keypoints_xyz) == 0:
        return xyz, np.zeros(len(xy), bool)
    finite = np.isfinite(xy).all(1)
    dist = np.full(len(xy), np.inf)
    idx = np.zeros(len(xy), np.int64)
    bound = pixel_tol * (1 + 1e-12) + 1e-12  # cKDTree's bound is strict; test "<=" explicitly below
    d, i = tree.query(xy[finite], k=1, distance_upper_bound=bound)
    dist[finite], idx[finite] = d, np.minimum(i, len(keypoints_xyz) - 1)
    valid = dist <= pixel_tol
    xyz[valid] = np.asarray(keypoints_xyz, np.float64)[idx[valid]]
    return xyz, valid


def sample_xyz_map(xyz_map: np.ndarray, xy: np.ndarray, mode: str = "bilinear"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Sample an (H, W, 3) point map (NaN holes) at sub-pixel positions (InLoc ``XYZcut``).

    ``"nearest"`` takes the pixel ``round(x), round(y)`` (half up). ``"bilinear"`` interpolates the
    four neighbours (a neighbour with zero weight is not needed, so integer positions are exact)
    and, where a needed neighbour is a hole, falls back to the nearest pixel (hloc's
    ``interpolate_scan`` keeps as many points as possible the same way).

    Args:
        xyz_map: (H, W, 3) points, NaN where there is no depth.
        xy: (N, 2) ``(x, y)`` pixels (centres at integers).
    Returns:
        ``xyz`` (N, 3) float64 (NaN where invalid) and ``valid`` (N,) bool (inside the map, no hole).
    """
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"unknown XYZ sampling mode {mode!r} (use 'nearest' or 'bilinear')")
    m = np.asarray(xyz_map)
    h, w = m.shape[:2]
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    out = np.full((len(xy), 3), np.nan)
    inside = np.isfinite(xy).all(1) & (xy[:, 0] >= -0.5) & (xy[:, 0] < w - 0.5) & (xy[:, 1] >= -0.5) \
        & (xy[:, 1] < h - 0.5)
    x, y = xy[inside, 0], xy[inside, 1]
    xn = np.clip(np.floor(x + 0.5).astype(np.int64), 0, w - 1)
    yn = np.clip(np.floor(y + 0.5).astype(np.int64), 0, h - 1)
    nearest = m[yn, xn].astype(np.float64)
    if mode == "nearest":
        res = nearest
    else:
        x0 = np.clip(np.floor(x).astype(np.int64), 0, w - 1)
        y0 = np.clip(np.floor(y).astype(np.int64), 0, h - 1)
        fx = np.clip(x - x0, 0.0, 1.0)[:, None]
        fy = np.clip(y - y0, 0.0, 1.0)[:, None]
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        res = np.zeros((len(x), 3))
        for yy, xx, wgt in ((y0, x0, (1 - fx) * (1 - fy)), (y0, x1, fx * (1 - fy)),
                            (y1, x0, (1 - fx) * fy), (y1, x1, fx * fy)):
            v = m[yy, xx].astype(np.float64)
            res += np.where(wgt > 0, v * wgt, 0.0)
        bad = ~np.isfinite(res).all(1)
        res[bad] = nearest[bad]
    out[inside] = res
    valid = np.isfinite(out).all(1)
    out[~valid] = np.nan
    return out, valid


def radial_coeffs(camera: dict[str, Any] | None) -> tuple[float, ...]:
    """Radial distortion ``(k1[, k2])`` of a ``View.meta["camera"]`` description (COLMAP model
    vocabulary); ``()`` for pinhole models or no description. Other models raise ``ValueError``."""
    if not camera:
        return ()
    model, params = camera["model"], [float(p) for p in camera["params"]]
    if model in ("SIMPLE_PINHOLE", "PINHOLE"):
        return ()
    if model == "SIMPLE_RADIAL":
        return (params[3],)
    if model == "RADIAL":
        return (params[3], params[4])
    raise ValueError(f"query camera model {model!r} is not supported (SIMPLE_RADIAL, RADIAL, pinhole)")


def distort_radial(xy: np.ndarray, K: np.ndarray, coeffs: Sequence[float]) -> np.ndarray:
    """COLMAP (SIMPLE_)RADIAL distortion of ideal pixels: ``u_d = u (1 + k1 r^2 + k2 r^4)`` on
    normalised coordinates ``u = (x - cx) / fx``. (N, 2) float64 in, (N, 2) float64 out."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    if not any(coeffs):
        return xy.copy()
    f, c = np.array([K[0, 0], K[1, 1]]), np.array([K[0, 2], K[1, 2]])
    u = (xy - c) / f
    r2 = (u * u).sum(1, keepdims=True)
    radial = sum(k * r2 ** (p + 1) for p, k in enumerate(coeffs))
    return (u * (1 + radial)) * f + c


def undistort_radial(xy: np.ndarray, K: np.ndarray, coeffs: Sequence[float], iterations: int = 100
                     ) -> np.ndarray:
    """Inverse of :func:`distort_radial` by fixed-point iteration (as COLMAP's iterative
    undistortion; converges for the mild distortion of real phone cameras)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    if not any(coeffs):
        return xy.copy()
    f, c = np.array([K[0, 0], K[1, 1]]), np.array([K[0, 2], K[1, 2]])
    ud = (xy - c) / f
    u = ud.copy()
    for _ in range(iterations):
        r2 = (u * u).sum(1, keepdims=True)
        nxt = ud / (1 + sum(k * r2 ** (p + 1) for p, k in enumerate(coeffs)))
        done = np.nanmax(np.abs(nxt - u), initial=0.0) < 1e-14
        u = nxt
        if done:
            break
    return u * f + c


def seeded_subset(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of a uniform subset of ``range(n)`` of size ``min(n, max_points)`` (all when
    ``max_points <= 0``), drawn with ``numpy.random.default_rng(seed)``."""
    if max_points <= 0 or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
