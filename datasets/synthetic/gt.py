"""Ground truth derived from depth maps and poses: back-projection, projection, dense correspondences.

Pixel coordinates are ``(x, y)`` with pixel centres at integer coordinates (OpenCV). Depth is
z-depth in the camera frame; a pixel is valid where its depth is finite and > 0. Poses are (4, 4)
``cam_from_world``. Any length unit works (metres, or millimetres for DTU) as long as depth and
translations share it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["backproject", "project", "gt_correspondences", "epipolar_distance", "sample_depth"]


def _mm(a: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``a @ M`` for (N, 3) by (3, k) without BLAS (whose threads thrash on these thin shapes)."""
    return a[:, 0:1] * M[0] + a[:, 1:2] * M[1] + a[:, 2:3] * M[2]


def backproject(depth: np.ndarray, K: np.ndarray, cam_from_world: np.ndarray) -> np.ndarray:
    """World points of every pixel.

    Args:
        depth: (H, W) z-depth; invalid pixels (<= 0 or non-finite) give NaN points.
        K: (3, 3) intrinsics. cam_from_world: (4, 4).
    Returns:
        (H, W, 3) float64 world points.
    """
    depth = np.asarray(depth, np.float64)
    h, w = depth.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pts = _unproject(np.stack([xs, ys], -1).reshape(-1, 2), depth.reshape(-1), K, cam_from_world)
    return pts.reshape(h, w, 3)


def _unproject(pix: np.ndarray, z: np.ndarray, K: np.ndarray, cam_from_world: np.ndarray) -> np.ndarray:
    """(N, 3) world points of (N, 2) pixels at z-depths (N,) (NaN where z is invalid)."""
    Kinv = np.linalg.inv(np.asarray(K, np.float64))
    ray = pix[:, 0:1] * Kinv[:, 0] + pix[:, 1:2] * Kinv[:, 1] + Kinv[:, 2]
    ray = ray / ray[:, 2:3]
    zz = np.where(np.isfinite(z) & (z > 0), z, np.nan)
    cam = ray * zz[:, None]
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    return _mm(cam - t, R)  # R^T (X - t)


def project(points_world: np.ndarray, K: np.ndarray,
            cam_from_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, 3) world points: returns pixels (N, 2) float64 and camera z-depths (N,)."""
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    cam = _mm(np.asarray(points_world, np.float64), R.T) + t
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = cam[:, :2] / z[:, None]
    K = np.asarray(K, np.float64)
    pix = uv[:, 0:1] * K[:2, 0] + uv[:, 1:2] * K[:2, 1] + K[:2, 2]
    return pix, z


def sample_depth(depth: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """Depths (N, 4) of the pixels ``(floor|ceil(x), floor|ceil(y))`` around each (N, 2) sub-pixel
    position (one pixel, repeated, at integer positions); NaN outside the image or where invalid."""
    depth = np.asarray(depth, np.float64)
    h, w = depth.shape
    xs = (np.floor(pix[:, 0]).astype(np.int64), np.ceil(pix[:, 0]).astype(np.int64))
    ys = (np.floor(pix[:, 1]).astype(np.int64), np.ceil(pix[:, 1]).astype(np.int64))
    out = np.full((len(pix), 4), np.nan)
    for k, (xx, yy) in enumerate(((xs[0], ys[0]), (xs[1], ys[0]), (xs[0], ys[1]), (xs[1], ys[1]))):
        ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        vals = depth[yy[ok], xx[ok]]
        out[ok, k] = np.where(np.isfinite(vals) & (vals > 0), vals, np.nan)
    return out


def gt_correspondences(depth0: np.ndarray, K0: np.ndarray, cam0_from_world: np.ndarray,
                       depth1: np.ndarray, K1: np.ndarray, cam1_from_world: np.ndarray,
                       max_points: int | None = None, occlusion_tol: float = 0.01, stride: int = 1,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact dense correspondences from view 0 to view 1, occlusion-checked.

    Every valid pixel centre of view 0 (on a ``stride`` grid) is back-projected with ``depth0`` and
    projected into view 1. It is kept when it lands inside view 1 (``-0.5 <= x < W - 0.5``, same
    for y) in front of the camera and is not occluded: its z-depth in camera 1 agrees with at least
    one of the (up to four) valid ``depth1`` pixels around the projection, ``floor``/``ceil`` of
    each coordinate, to ``occlusion_tol`` (relative).

    Args:
        depth0, depth1: (H0, W0), (H1, W1) z-depth maps (invalid: <= 0 or non-finite).
        K0, K1: (3, 3) intrinsics. cam0_from_world, cam1_from_world: (4, 4) poses.
        max_points: keep at most this many matches (a seeded uniform subset, in raster order).
        occlusion_tol: relative depth tolerance of the visibility test.
        stride: sample view-0 pixels every ``stride`` pixels.
        seed: seed of the subset draw.
    Returns:
        pts0 (N, 2), pts1 (N, 2) float64 ``(x, y)`` pixels; pts0 are integer pixel centres, pts1 the
        exact sub-pixel projections.
    """
    depth0 = np.asarray(depth0, np.float64)
    h0, w0 = depth0.shape
    h1, w1 = np.shape(depth1)
    ys, xs = np.mgrid[0:h0:stride, 0:w0:stride]
    xs, ys = xs.ravel(), ys.ravel()
    z0 = depth0[ys, xs]
    ok = np.isfinite(z0) & (z0 > 0)
    xs, ys, z0 = xs[ok], ys[ok], z0[ok]
    pts0 = np.stack([xs, ys], 1).astype(np.float64)
    world = _unproject(pts0, z0, K0, cam0_from_world)
    pts1, z1 = project(world, K1, cam1_from_world)
    inside = (z1 > 0) & (pts1[:, 0] >= -0.5) & (pts1[:, 0] < w1 - 0.5) & (pts1[:, 1] >= -0.5) \
        & (pts1[:, 1] < h1 - 0.5)
    pts0, pts1, z1 = pts0[inside], pts1[inside], z1[inside]
    near = sample_depth(depth1, pts1)
    with np.errstate(invalid="ignore"):
        visible = (np.abs(near - z1[:, None]) <= occlusion_tol * z1[:, None]).any(axis=1)
    pts0, pts1 = pts0[visible], pts1[visible]
    if max_points is not None and len(pts0) > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(len(pts0), size=max_points, replace=False))
        pts0, pts1 = pts0[pick], pts1[pick]
    return pts0, pts1


def epipolar_distance(pts0: np.ndarray, pts1: np.ndarray, K0: np.ndarray, K1: np.ndarray,
                      T_0to1: np.ndarray) -> np.ndarray:
    """Distance (N,) in view-1 pixels of each ``pts1`` to the epipolar line of ``pts0``.

    ``T_0to1`` (4, 4) maps camera-0 points to camera-1 points; F = K1^-T [t]x R K0^-1.
    """
    R, t = T_0to1[:3, :3], T_0to1[:3, 3]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    F = np.linalg.inv(K1).T @ tx @ R @ np.linalg.inv(K0)
    h0 = np.concatenate([pts0, np.ones((len(pts0), 1))], 1)
    h1 = np.concatenate([pts1, np.ones((len(pts1), 1))], 1)
    lines = h0 @ F.T
    return np.abs(np.sum(lines * h1, 1)) / np.linalg.norm(lines[:, :2], axis=1)
