"""Rigid-geometry helpers of the synthetic suite: hand-worked values and properties."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.synthetic.geometry import (
    camera_center,
    invert_pose,
    look_at,
    quat_from_rotmat,
    relative_pose,
    rotation_about_axis,
    rotation_angle_deg,
    rotmat_from_quat,
    viewpoint_angle_deg,
    viewpoint_bucket,
)


def test_look_at_points_the_optical_axis_at_the_target_and_keeps_images_upright():
    eye, target = np.array([2.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0])
    P = look_at(eye, target)
    R = P[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(camera_center(P), eye, atol=1e-12)
    tc = R @ target + P[:3, 3]  # target in the camera frame: straight ahead, 2 m away
    np.testing.assert_allclose(tc, [0, 0, 2.0], atol=1e-12)
    # looking along -x with z up: image x (right) is world +y, image y (down) is world -z
    np.testing.assert_allclose(R[0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(R[1], [0, 0, -1], atol=1e-12)


def test_quaternion_round_trip_and_known_value():
    q = quat_from_rotmat(rotation_about_axis(np.array([0, 0, 1.0]), 90))
    np.testing.assert_allclose(q, [np.sqrt(0.5), 0, 0, np.sqrt(0.5)], atol=1e-12)
    rng = np.random.default_rng(3)
    for _ in range(50):
        R = rotation_about_axis(rng.normal(size=3), rng.uniform(0, 180))
        q = quat_from_rotmat(R)
        assert q[0] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)
        np.testing.assert_allclose(rotmat_from_quat(q), R, atol=1e-12)
    # 180 degrees (qw = 0) is handled
    R = rotation_about_axis(np.array([1.0, 2.0, 3.0]), 180)
    np.testing.assert_allclose(rotmat_from_quat(quat_from_rotmat(R)), R, atol=1e-12)


def test_viewpoint_angle_and_buckets():
    P0 = look_at([2, 0, 1], [0, 0, 1])
    P1 = look_at([0, 2, 1], [0, 0, 1])  # orbit by 90 degrees around the target
    assert viewpoint_angle_deg(P0, P1) == pytest.approx(90.0)
    assert rotation_angle_deg(relative_pose(P0, P1)[:3, :3]) == pytest.approx(90.0)
    assert [viewpoint_bucket(a) for a in (0, 29.999, 30, 59.9, 60, 89.9, 90, 180)] == [
        "0-30", "0-30", "30-60", "30-60", "60-90", "60-90", "90-180", "90-180"]
    with pytest.raises(ValueError):
        viewpoint_bucket(181)


def test_invert_and_relative_pose():
    P = look_at([1, 2, 3], [0, 0, 0], roll_deg=17)
    np.testing.assert_allclose(invert_pose(P) @ P, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(relative_pose(P, P), np.eye(4), atol=1e-12)


def test_reported_viewpoint_buckets_the_stored_value():
    """One rule: the bucket is that of the rounded, stored angle, whatever the float's last bits."""
    from datasets.synthetic.geometry import reported_viewpoint

    assert reported_viewpoint(59.99999999999999) == (60.0, "60-90")
    assert reported_viewpoint(60.00000000000001) == (60.0, "60-90")
    assert reported_viewpoint(29.9999996) == (30.0, "30-60")
    assert reported_viewpoint(29.999999) == (29.999999, "0-30")
    assert reported_viewpoint(-1e-12) == (0.0, "0-30")
    assert reported_viewpoint(180.0000000001) == (180.0, "90-180")
