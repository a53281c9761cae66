"""Depth from pointmaps, two-view triangulation, metric scale of a unit-translation pose."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mast3r.geometry.conventions import project, transform_points
from mast3r.geometry.pose import PoseEstimate

__all__ = ["depth_from_pointmap", "sample_map", "scale_translation_from_depth", "triangulate"]


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def depth_from_pointmap(pts3d: Any, cam_from_frame: np.ndarray | None = None) -> np.ndarray:
    """Metric depth map (z in a camera frame) from a pointmap.

    Args:
        pts3d: (H, W, 3) points (numpy/torch). MASt3R: view 0's ``pts3d`` is in camera 0's frame;
            view 1's ``pts3d`` is also in camera 0's frame, so pass ``cam_from_frame=T_0to1`` to get
            view 1's depth.
        cam_from_frame: optional (4, 4) transform from the points' frame to the camera.
    Returns: (H, W) float64 depth, same unit as the points.
    """
    pts = _np(pts3d)
    if pts.ndim != 3 or pts.shape[-1] != 3:
        raise ValueError(f"depth_from_pointmap: pts3d must be (H, W, 3), got {pts.shape}")
    if cam_from_frame is not None:
        pts = transform_points(cam_from_frame, pts)
    return pts[..., 2].copy()


def sample_map(values: Any, xy: Any) -> np.ndarray:
    """Nearest-pixel lookup: ``values[round(y), round(x)]``, NaN outside the (H, W, ...) map."""
    v = _np(values)
    xy = _np(xy).reshape(-1, 2)
    out = np.full((len(xy),) + v.shape[2:], np.nan)
    finite = np.isfinite(xy).all(1)
    ij = np.zeros((len(xy), 2), np.int64)
    ij[finite] = np.rint(xy[finite]).astype(np.int64)
    x, y = ij[:, 0], ij[:, 1]
    ok = finite & (x >= 0) & (x < v.shape[1]) & (y >= 0) & (y < v.shape[0])
    out[ok] = v[y[ok], x[ok]]
    return out


def _projection(K: Any, cam_from_world: Any) -> np.ndarray:
    K, T = _np(K), _np(cam_from_world)
    if K.shape != (3, 3) or T.shape not in ((4, 4), (3, 4)):
        raise ValueError(f"triangulate: K must be 3x3 and cam_from_world 4x4/3x4, got {K.shape}, {T.shape}")
    return K @ T[:3]


def triangulate(pts0: Any, pts1: Any, K0: Any, cam0_from_world: Any, K1: Any, cam1_from_world: Any
                ) -> tuple[np.ndarray, np.ndarray]:
    """Linear (DLT) two-view triangulation of matches with known cameras.

    Args:
        pts0, pts1: (N, 2) ``(x, y)`` pixels in views 0 / 1 (centres at integers).
        K0, K1: (3, 3) intrinsics; cam0_from_world, cam1_from_world: (4, 4) poses.
    Returns: ``points`` (N, 3) float64 world points and ``reproj_error`` (N, 2) pixel error in
        view 0 and view 1 (NaN where the point is behind that camera or the input is non-finite).
    """
    a, b = _np(pts0).reshape(-1, 2), _np(pts1).reshape(-1, 2)
    if len(a) != len(b):
        raise ValueError(f"triangulate: {len(a)} points in view 0 but {len(b)} in view 1")
    P0, P1 = _projection(K0, cam0_from_world), _projection(K1, cam1_from_world)
    A = np.stack([a[:, :1] * P0[2] - P0[0], a[:, 1:] * P0[2] - P0[1],
                  b[:, :1] * P1[2] - P1[0], b[:, 1:] * P1[2] - P1[1]], axis=1)  # (N, 4, 4)
    ok = np.isfinite(A).all((1, 2))
    A[~ok] = 0
    A /= np.maximum(np.linalg.norm(A, axis=2, keepdims=True), 1e-300)  # row scaling: better conditioning
    _, _, vt = np.linalg.svd(A)
    Xh = vt[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        X = Xh[:, :3] / Xh[:, 3:]
    X[~ok] = np.nan
    errs = []
    for xy, K, T in ((a, K0, cam0_from_world), (b, K1, cam1_from_world)):
        proj = project(_np(K), transform_points(_np(T), X))
        errs.append(np.linalg.norm(proj - xy, axis=1))
    return X, np.stack(errs, axis=1)


def scale_translation_from_depth(estimate: PoseEstimate, pts0: Any, pts1: Any, K0: Any, K1: Any,
                                 depth0: Any, depth1: Any = None, *, min_points: int = 5) -> PoseEstimate:
    """Metric scale of a unit-translation relative pose from (predicted) metric depth.

    Inlier matches are triangulated with ``cam0 = I`` and ``cam1 = T_0to1``; the scale is the
    median of ``depth0(p0) / z0`` (and ``depth1(p1) / z1`` when ``depth1`` is given) over points
    with positive, finite depths in both.
    Args:
        estimate: successful :class:`PoseEstimate` with ``T_0to1`` (e.g. from the essential matrix).
        pts0, pts1: (N, 2) the matches given to the solver (its ``inlier_mask`` selects them).
        K0, K1: intrinsics; depth0, depth1: (H, W) metric depth maps of views 0 / 1 at the
            resolution the pixels refer to.
        min_points: fewer usable depth ratios -> failure ``no_valid_depth``.
    Returns: a copy with the translation scaled, ``metric=True`` and ``scale`` set, or a failure.
    """
    if not estimate.success or estimate.T_0to1 is None:
        return estimate
    a, b = _np(pts0).reshape(-1, 2), _np(pts1).reshape(-1, 2)
    mask = estimate.inlier_mask if len(estimate.inlier_mask) == len(a) else np.ones(len(a), bool)
    a, b = a[mask], b[mask]
    T = estimate.T_0to1
    X0, _ = triangulate(a, b, K0, np.eye(4), K1, T)
    ratios = [sample_map(depth0, a) / X0[:, 2]]
    if depth1 is not None:
        ratios.append(sample_map(depth1, b) / transform_points(T, X0)[:, 2])
    r = np.concatenate(ratios)
    r = r[np.isfinite(r) & (r > 0)]
    if len(r) < min_points:
        return dataclasses.replace(estimate, success=False, failure_reason="no_valid_depth")
    scale = float(np.median(r))
    T_metric = T.copy()
    T_metric[:3, 3] *= scale
    return dataclasses.replace(estimate, T_0to1=T_metric, metric=True, scale=scale)
