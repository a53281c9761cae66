"""Rigid transforms, quaternions and pose errors.

Conventions: poses are 4x4 float64 matrices named by direction. ``cam_from_world`` maps world
points to the OpenCV camera frame (x right, y down, z forward); ``T_0to1`` maps camera-0 points to
camera-1 points (``= cam1_from_world @ inv(cam0_from_world)``). Quaternions are Hamilton
``(qw, qx, qy, qz)`` (wxyz), as written in files; pycolmap uses xyzw internally.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "angle_between_deg",
    "default_principal_point",
    "intrinsics_matrix",
    "invert_pose",
    "make_pose",
    "matrix_to_quat_wxyz",
    "project",
    "quat_wxyz_to_matrix",
    "relative_pose",
    "rotation_error_deg",
    "transform_points",
]


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternion ``(qw, qx, qy, qz)`` (normalised here; sign-agnostic) -> (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm == 0) or not np.all(np.isfinite(q)):
        raise ValueError("quat_wxyz_to_matrix: quaternion must be finite and non-zero")
    w, x, y, z = np.moveaxis(q / norm, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation -> (..., 4) unit quaternion ``(qw, qx, qy, qz)`` with ``qw >= 0``.

    Uses the numerically stable branch (largest of w, x, y, z) per matrix.
    """
    R = np.asarray(R, dtype=np.float64)
    m = R.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    k = np.argmax(cand, axis=1)
    q = np.empty((len(m), 4))
    for i, (r, kk) in enumerate(zip(m, k)):
        if kk == 0:
            s = np.sqrt(max(1 + tr[i], 0.0)) * 2
            q[i] = [s / 4, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
        elif kk == 1:
            s = np.sqrt(max(1 + r[0, 0] - r[1, 1] - r[2, 2], 0.0)) * 2
            q[i] = [(r[2, 1] - r[1, 2]) / s, s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
        elif kk == 2:
            s = np.sqrt(max(1 + r[1, 1] - r[0, 0] - r[2, 2], 0.0)) * 2
            q[i] = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s]
        else:
            s = np.sqrt(max(1 + r[2, 2] - r[0, 0] - r[1, 1], 0.0)) * 2
            q[i] = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    return q.reshape(*R.shape[:-2], 4)


def make_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(3, 3) rotation and (3,) translation -> (4, 4) float64 ``[R t; 0 1]``."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, dtype=np.float64)
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of a (..., 4, 4) rigid transform (``world_from_cam`` from ``cam_from_world``)."""
    T = np.asarray(T, dtype=np.float64)
    R, t = T[..., :3, :3], T[..., :3, 3:]
    out = np.zeros_like(T)
    Rt = np.swapaxes(R, -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1
    return out


def relative_pose(cam0_from_world: np.ndarray, cam1_from_world: np.ndarray) -> np.ndarray:
    """``T_0to1 = cam1_from_world @ inv(cam0_from_world)``: camera-0 points -> camera-1 points."""
    return np.asarray(cam1_from_world, np.float64) @ invert_pose(cam0_from_world)


def transform_points(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to (..., 3) points."""
    T = np.asarray(T, dtype=np.float64)
    return np.asarray(pts, np.float64) @ T[:3, :3].T + T[:3, 3]


def project(K: np.ndarray, pts_cam: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) ``(x, y)`` pixels (centres at integers); z <= 0 ->
    NaN."""
    p = np.asarray(pts_cam, np.float64) @ np.asarray(K, np.float64).T
    z = p[..., 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(z > 0, p[..., :2] / np.where(z > 0, z, 1), np.nan)


def intrinsics_matrix(focal: float | tuple[float, float], shape: tuple[int, int],
                      pp: tuple[float, float] | None = None) -> np.ndarray:
    """3x3 K from a focal (or (fx, fy)) in pixels of an (H, W) image; principal point ``pp`` =
    (cx, cy), default :func:`default_principal_point` (the one focal estimation assumes)."""
    fx, fy = (focal, focal) if np.isscalar(focal) else focal  # type: ignore[misc]
    cx, cy = pp if pp is not None else default_principal_point(shape)
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


def default_principal_point(shape: tuple[int, int]) -> tuple[float, float]:
    """``(W / 2, H / 2)`` for an (H, W) image: the official MASt3R/DUSt3R default (focal estimation
    on the integer pixel grid). Note the exact centre with integer pixel centres is
    ``((W - 1) / 2, (H - 1) / 2)``; the official half-pixel offset is kept for faithfulness."""
    h, w = shape
    return w / 2, h / 2


def rotation_error_deg(R_est: np.ndarray, R_gt: np.ndarray) -> float:
    """Geodesic angle (degrees) of ``R_est @ R_gt.T`` (accepts 3x3 or 4x4 poses)."""
    A = np.asarray(R_est, np.float64)[:3, :3]
    B = np.asarray(R_gt, np.float64)[:3, :3]
    cos = (np.trace(A @ B.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def angle_between_deg(v0: np.ndarray, v1: np.ndarray) -> float:
    """Angle (degrees) between two 3-vectors (e.g. translation directions); NaN if one is zero."""
    a, b = np.asarray(v0, np.float64).reshape(3), np.asarray(v1, np.float64).reshape(3)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0 or not (np.isfinite(na) and np.isfinite(nb)):
        return float("nan")
    # atan2 form: accurate for tiny angles, unlike arccos of the cosine
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), a @ b)))
