"""Frames, quaternions (wxyz) and pose errors, checked by hand and against pycolmap."""

from __future__ import annotations

import numpy as np
import pycolmap
import pytest

from mast3r.geometry import (
    angle_between_deg,
    intrinsics_matrix,
    invert_pose,
    make_pose,
    matrix_to_quat_wxyz,
    project,
    quat_wxyz_to_matrix,
    relative_pose,
    rotation_error_deg,
    transform_points,
)


def _random_rotations(n, seed=0):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return quat_wxyz_to_matrix(q), q / np.linalg.norm(q, axis=1, keepdims=True)


def test_quaternion_hand_worked():
    s = np.sqrt(0.5)
    Rz90 = quat_wxyz_to_matrix([s, 0, 0, s])  # 90 degrees about +z
    np.testing.assert_allclose(Rz90, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)
    np.testing.assert_allclose(quat_wxyz_to_matrix([2, 0, 0, 0]), np.eye(3))  # normalised
    np.testing.assert_allclose(matrix_to_quat_wxyz(np.diag([1.0, -1, -1])), [0, 1, 0, 0], atol=1e-15)


def test_quaternion_roundtrip_and_pycolmap_agreement():
    R, q = _random_rotations(50)
    np.testing.assert_allclose(np.swapaxes(R, 1, 2) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    back = matrix_to_quat_wxyz(R)
    assert np.all(back[:, 0] >= 0)
    np.testing.assert_allclose(back, q * np.sign(q[:, :1]), atol=1e-12)
    for Ri, qi in zip(R[:10], q[:10]):
        xyzw = np.r_[qi[1:], qi[0]]
        np.testing.assert_allclose(pycolmap.Rotation3d(xyzw).matrix(), Ri, atol=1e-12)
    # near-180-degree rotations use the other branches
    for axis in np.eye(3):
        R180 = 2 * np.outer(axis, axis) - np.eye(3)
        np.testing.assert_allclose(quat_wxyz_to_matrix(matrix_to_quat_wxyz(R180)), R180, atol=1e-12)
    with pytest.raises(ValueError):
        quat_wxyz_to_matrix([0, 0, 0, 0])


def test_pose_inversion_and_relative_pose():
    R, _ = _random_rotations(2, seed=1)
    cam0_from_world = make_pose(R[0], [1, 2, 3])
    cam1_from_world = make_pose(R[1], [-1, 0.5, 2])
    np.testing.assert_allclose(invert_pose(cam0_from_world) @ cam0_from_world, np.eye(4), atol=1e-12)
    T_0to1 = relative_pose(cam0_from_world, cam1_from_world)
    X = np.random.default_rng(2).normal(size=(20, 3))
    np.testing.assert_allclose(transform_points(T_0to1, transform_points(cam0_from_world, X)),
                               transform_points(cam1_from_world, X), atol=1e-12)
    batch = invert_pose(np.stack([cam0_from_world, cam1_from_world]))
    np.testing.assert_allclose(batch[1], invert_pose(cam1_from_world))


def test_errors_and_projection():
    Rz = quat_wxyz_to_matrix([np.cos(np.deg2rad(7) / 2), 0, 0, np.sin(np.deg2rad(7) / 2)])
    assert rotation_error_deg(make_pose(Rz, [0, 0, 0]), np.eye(4)) == pytest.approx(7)
    assert rotation_error_deg(np.eye(3), np.eye(3)) == 0
    assert angle_between_deg([1, 0, 0], [0, 2, 0]) == pytest.approx(90)
    assert angle_between_deg([1, 0, 0], [1, 1e-9, 0]) == pytest.approx(np.degrees(1e-9), rel=1e-6)
    assert np.isnan(angle_between_deg([0, 0, 0], [1, 0, 0]))
    K = intrinsics_matrix(100.0, (50, 80))
    assert K.tolist() == [[100, 0, 40], [0, 100, 25], [0, 0, 1]]
    xy = project(K, np.array([[0.1, -0.2, 2.0], [0, 0, -1.0]]))
    np.testing.assert_allclose(xy[0], [45, 15])
    assert np.isnan(xy[1]).all()
