"""Quaternion arithmetic with ``transforms3d.quaternions`` semantics (private; float64).

The Map-free evaluator calls ``qmult``, ``qinverse``, ``rotate_vector`` and ``quat2mat`` of
transforms3d; these reimplementations perform the same operations in the same order, so the metric
values agree to the last bit. Quaternions are ``(w, x, y, z)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["qmult", "qconj", "qinverse", "quat2mat", "to_cam2world"]


def qmult(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a (x) b``."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 + y1 * w2 + z1 * x2 - x1 * z2,
        w1 * z2 + z1 * w2 + x1 * y2 - y1 * x2,
    ])


def qconj(q: np.ndarray) -> np.ndarray:
    return np.array(q) * np.array([1.0, -1, -1, -1])


def qinverse(q: np.ndarray) -> np.ndarray:
    """transforms3d ``qinverse``: ``conj(q) / |q|`` (not ``/ |q|^2``: a unit quaternion for any q)."""
    return qconj(q) / np.sqrt(np.dot(q, q))


def quat2mat(q: np.ndarray) -> np.ndarray:
    """transforms3d ``quat2mat`` (normalises by ``|q|^2``; identity below float64 eps)."""
    w, x, y, z = q
    n = w * w + x * x + y * y + z * z
    if n < np.finfo(np.float64).eps:
        return np.eye(3)
    s = 2.0 / n
    X, Y, Z = x * s, y * s, z * s
    wX, wY, wZ = w * X, w * Y, w * Z
    xX, xY, xZ = x * X, x * Y, x * Z
    yY, yZ, zZ = y * Y, y * Z, z * Z
    return np.array([[1.0 - (yY + zZ), xY - wZ, xZ + wY],
                     [xY + wZ, 1.0 - (xX + zZ), yZ - wX],
                     [xZ - wY, yZ + wX, 1.0 - (xX + yY)]])


def to_cam2world(q: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``utils.convert_world2cam_to_cam2world``: ``q_inv = qinverse(q)``, ``c = -rotate(t, q_inv)``."""
    q_inv = qinverse(q)
    v = np.zeros((4,))
    v[1:] = t
    return q_inv, -qmult(q_inv, qmult(v, qconj(q_inv)))[1:]
