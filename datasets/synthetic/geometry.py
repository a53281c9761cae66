"""Small rigid-geometry helpers for the synthetic suite (pure numpy, float64).

Conventions: ``cam_from_world`` is a (4, 4) OpenCV world-to-camera transform (x right, y down,
z forward); the synthetic worlds are z-up (gravity along -z); quaternions are Hamilton
``(qw, qx, qy, qz)`` with ``qw >= 0``; angles in degrees unless a name says otherwise.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "VIEWPOINT_BUCKETS",
    "intrinsics",
    "look_at",
    "make_pose",
    "invert_pose",
    "relative_pose",
    "camera_center",
    "rotation_angle_deg",
    "viewpoint_angle_deg",
    "viewpoint_bucket",
    "reported_viewpoint",
    "VIEWPOINT_DECIMALS",
    "quat_from_rotmat",
    "rotmat_from_quat",
    "rotation_about_axis",
]

VIEWPOINT_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-30", 0.0, 30.0),
    ("30-60", 30.0, 60.0),
    ("60-90", 60.0, 90.0),
    ("90-180", 90.0, 180.0 + 1e-9),
)
"""``(label, lo, hi)``: a pair falls in the bucket with ``lo <= angle < hi`` (degrees)."""


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(3, 3) float64 pinhole matrix in pixels (OpenCV: pixel centres at integer coordinates)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def make_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(4, 4) float64 rigid transform from a (3, 3) rotation and a (3,) translation."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform (exact for orthonormal rotations)."""
    R = T[:3, :3]
    return make_pose(R.T, -R.T @ T[:3, 3])


def relative_pose(cam0_from_world: np.ndarray, cam1_from_world: np.ndarray) -> np.ndarray:
    """``T_0to1 = cam1_from_world @ inv(cam0_from_world)``: camera-0 points to camera-1 points."""
    return cam1_from_world @ invert_pose(cam0_from_world)


def camera_center(cam_from_world: np.ndarray) -> np.ndarray:
    """(3,) camera centre in world coordinates, ``-R^T t``."""
    return -cam_from_world[:3, :3].T @ cam_from_world[:3, 3]


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0),
            roll_deg: float = 0.0) -> np.ndarray:
    """OpenCV ``cam_from_world`` of a camera at ``eye`` looking at ``target``.

    The image x axis is horizontal (perpendicular to ``up``) and y points down along ``-up``'s
    projection, then the camera is rolled by ``roll_deg`` about its optical axis (clockwise in the
    image for positive angles). ``eye`` and ``target`` are (3,) world points (any unit).
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    nx = np.linalg.norm(x)
    if nx < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to the up vector")
    x = x / nx
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: camera axes in world coordinates
    if roll_deg:
        R = rotation_about_axis(np.array([0.0, 0.0, 1.0]), roll_deg) @ R
    return make_pose(R, -R @ eye)


def rotation_about_axis(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """(3, 3) rotation by ``angle_deg`` about a (3,) axis (Rodrigues; right-hand rule)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    th = np.deg2rad(angle_deg)
    Kx = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(th) * Kx + (1 - np.cos(th)) * (Kx @ Kx)


def rotation_angle_deg(R: np.ndarray) -> float:
    """Geodesic angle of a (3, 3) rotation in degrees, in [0, 180]."""
    c = (np.trace(R) - 1.0) / 2.0
    return float(np.rad2deg(np.arccos(np.clip(c, -1.0, 1.0))))


def viewpoint_angle_deg(cam0_from_world: np.ndarray, cam1_from_world: np.ndarray) -> float:
    """Viewpoint change of a pair: the angle of the relative rotation ``R1 R0^T`` in degrees."""
    return rotation_angle_deg(cam1_from_world[:3, :3] @ cam0_from_world[:3, :3].T)


VIEWPOINT_DECIMALS = 6
"""Decimals a viewpoint angle is stored with (records, sidecars)."""


def reported_viewpoint(angle_deg: float) -> tuple[float, str]:
    """The one rule for storing a viewpoint angle: round it to ``VIEWPOINT_DECIMALS`` and clamp it to
    [0, 180] degrees, then bucket *that* value, so a stored angle and its bucket always agree whatever
    the last bits of the float arithmetic (59.99999999999999 is stored as 60.0 and bucketed ``60-90``)."""
    value = min(max(round(float(angle_deg), VIEWPOINT_DECIMALS), 0.0), 180.0)
    return value, viewpoint_bucket(value)


def viewpoint_bucket(angle_deg: float) -> str:
    """Bucket label (``"0-30"``, ``"30-60"``, ``"60-90"``, ``"90-180"``) of a viewpoint angle."""
    for label, lo, hi in VIEWPOINT_BUCKETS:
        if lo <= angle_deg < hi:
            return label
    raise ValueError(f"viewpoint angle {angle_deg} is outside [0, 180]")


def quat_from_rotmat(R: np.ndarray) -> np.ndarray:
    """(4,) unit quaternion ``(qw, qx, qy, qz)`` with ``qw >= 0`` of a (3, 3) rotation."""
    R = np.asarray(R, dtype=np.float64)
    # Eigenvector of the symmetric 4x4 (Bar-Itzhack) matrix: robust for every angle.
    m00, m01, m02 = R[0]
    m10, m11, m12 = R[1]
    m20, m21, m22 = R[2]
    Km = np.array([
        [m00 - m11 - m22, m10 + m01, m20 + m02, m21 - m12],
        [m10 + m01, m11 - m00 - m22, m21 + m12, m02 - m20],
        [m20 + m02, m21 + m12, m22 - m00 - m11, m10 - m01],
        [m21 - m12, m02 - m20, m10 - m01, m00 + m11 + m22],
    ]) / 3.0
    w, V = np.linalg.eigh(Km)
    x, y, z, qw = V[:, np.argmax(w)]
    q = np.array([qw, x, y, z])
    q = q / np.linalg.norm(q)
    if q[0] < 0 or (q[0] == 0 and next(v for v in q[1:] if v != 0) < 0):
        q = -q
    return q


def rotmat_from_quat(q: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of a quaternion ``(qw, qx, qy, qz)`` (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])
