"""Small rotation helpers shared by the metric modules (private; pure numpy, float64).

Quaternions are Hamilton ``(qw, qx, qy, qz)``; rotation matrices act on column vectors; poses are
OpenCV ``cam_from_world`` (x_cam = R x_world + t).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "quat_wxyz_to_rotmat",
    "rotmat_to_quat_wxyz",
    "rotation_angle_deg",
    "camera_centres",
    "split_pose",
]


def quat_wxyz_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices of quaternions ``(..., 4)`` (normalised first) -> ``(..., 3, 3)`` float64.

    A zero or non-finite quaternion gives a NaN matrix (callers treat it as a failed estimate).
    """
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def rotmat_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` (qw >= 0) of rotation matrices ``(..., 3, 3)`` (Shepperd's method).

    Float64. The matrix should be orthonormal; the branch on the largest diagonal term keeps the
    result accurate for every rotation angle.
    """
    R = np.asarray(R, dtype=np.float64)
    shape = R.shape[:-2]
    m = R.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    diag = np.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=-1)
    choice = np.where(tr >= diag.max(axis=-1), 3, diag.argmax(axis=-1))
    q = np.empty((len(m), 4), dtype=np.float64)
    for case in range(4):
        sel = choice == case
        if not sel.any():
            continue
        a = m[sel]
        if case == 3:
            s = 2.0 * np.sqrt(1.0 + tr[sel])
            q[sel] = np.stack([0.25 * s, (a[:, 2, 1] - a[:, 1, 2]) / s,
                               (a[:, 0, 2] - a[:, 2, 0]) / s, (a[:, 1, 0] - a[:, 0, 1]) / s], axis=-1)
            continue
        i, j, k = case, (case + 1) % 3, (case + 2) % 3
        s = 2.0 * np.sqrt(1.0 + a[:, i, i] - a[:, j, j] - a[:, k, k])
        out = np.empty((len(a), 4))
        out[:, 0] = (a[:, k, j] - a[:, j, k]) / s
        out[:, 1 + i] = 0.25 * s
        out[:, 1 + j] = (a[:, j, i] + a[:, i, j]) / s
        out[:, 1 + k] = (a[:, k, i] + a[:, i, k]) / s
        q[sel] = out
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[:, :1] < 0, -q, q)
    return q.reshape(*shape, 4)


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Geodesic angle in degrees, in [0, 180], of rotation matrices ``(..., 3, 3)`` (float64).

    Uses ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)``, accurate near 0 and 180 degrees (unlike a
    bare ``acos``). NaN in, NaN out.
    """
    R = np.asarray(R, dtype=np.float64)
    sin2 = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                     R[..., 1, 0] - R[..., 0, 1]], axis=-1)
    cos2 = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0
    return np.degrees(np.arctan2(np.linalg.norm(sin2, axis=-1), cos2))


def split_pose(cam_from_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(R (..., 3, 3), t (..., 3))`` float64 of ``(..., 4, 4)`` or ``(..., 3, 4)`` poses."""
    T = np.asarray(cam_from_world, dtype=np.float64)
    if T.shape[-2:] not in ((4, 4), (3, 4)):
        raise ValueError(f"poses must have shape (..., 4, 4) or (..., 3, 4), got {T.shape}")
    return T[..., :3, :3], T[..., :3, 3]


def camera_centres(cam_from_world: np.ndarray) -> np.ndarray:
    """Camera centres ``c = -R^T t`` ``(..., 3)`` float64, world frame, of ``cam_from_world`` poses."""
    R, t = split_pose(cam_from_world)
    return -np.einsum("...ji,...j->...i", R, t)
