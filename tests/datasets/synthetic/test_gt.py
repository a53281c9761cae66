"""Dense ground-truth correspondences: projection identities, epipolar exactness, occlusion."""

from __future__ import annotations

import numpy as np

from datasets.synthetic.geometry import intrinsics, look_at, relative_pose
from datasets.synthetic.gt import backproject, epipolar_distance, gt_correspondences, project


def _plane_depth(K, P, width, height, plane_z=0.0):
    """Analytic z-depth of the ground plane z = plane_z seen by camera P."""
    R, t = P[:3, :3], P[:3, 3]
    c = -R.T @ t
    xs, ys = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(K).T @ R  # world dirs, cam z = 1
    s = (plane_z - c[2]) / rays[..., 2]
    return np.where(s > 0, s, 0.0)


def test_backproject_then_project_is_identity():
    K = intrinsics(100.0, 110.0, 31.5, 23.5)
    P = look_at([0.3, -2.0, 1.5], [0, 0, 0])
    depth = _plane_depth(K, P, 64, 48)
    world = backproject(depth, K, P)
    np.testing.assert_allclose(world[..., 2][depth > 0], 0.0, atol=1e-12)  # on the plane
    pix, z = project(world.reshape(-1, 3), K, P)
    ys, xs = np.mgrid[0:48, 0:64]
    ok = depth.ravel() > 0
    np.testing.assert_allclose(pix[ok], np.stack([xs.ravel(), ys.ravel()], 1)[ok], atol=1e-9)
    np.testing.assert_allclose(z[ok], depth.ravel()[ok], rtol=1e-12)


def test_correspondences_are_exact_and_epipolar():
    K0 = intrinsics(80.0, 80.0, 31.5, 23.5)
    K1 = intrinsics(95.0, 95.0, 30.0, 25.0)
    P0 = look_at([0.0, -2.0, 1.5], [0, 0, 0])
    P1 = look_at([1.5, -1.5, 1.2], [0.2, 0, 0])
    d0, d1 = _plane_depth(K0, P0, 64, 48), _plane_depth(K1, P1, 64, 48)
    pts0, pts1 = gt_correspondences(d0, K0, P0, d1, K1, P1)
    assert len(pts0) > 500
    assert np.all(pts0 == np.round(pts0))  # integer pixel centres in view 0
    # pts1 is the exact image of the same plane point: the plane homography maps pts0 to pts1
    world = backproject(d0, K0, P0)[pts0[:, 1].astype(int), pts0[:, 0].astype(int)]
    np.testing.assert_allclose(world[:, 2], 0.0, atol=1e-12)
    proj, _ = project(world, K1, P1)
    np.testing.assert_allclose(proj, pts1, atol=1e-9)
    err = epipolar_distance(pts0, pts1, K0, K1, relative_pose(P0, P1))
    assert err.max() < 1e-6


def test_occluded_points_are_dropped_and_max_points_subsamples():
    K = intrinsics(50.0, 50.0, 15.5, 15.5)
    P = look_at([0.0, -2.0, 1.0], [0, 0, 0])
    d0 = _plane_depth(K, P, 32, 32)
    d1 = d0.copy()
    d1[10:20, 10:20] *= 0.5  # an occluder in front of the plane, seen only by view 1
    pts0, pts1 = gt_correspondences(d0, K, P, d1, K, P)
    hidden = (pts1[:, 0] >= 10) & (pts1[:, 0] <= 19) & (pts1[:, 1] >= 10) & (pts1[:, 1] <= 19)
    assert not hidden.any()
    full, _ = gt_correspondences(d0, K, P, d0, K, P)
    assert len(full) == int((d0 > 0).sum())
    sub0, sub1 = gt_correspondences(d0, K, P, d0, K, P, max_points=50, seed=1)
    assert len(sub0) == 50 and np.allclose(sub0, sub1)
    again, _ = gt_correspondences(d0, K, P, d0, K, P, max_points=50, seed=1)
    np.testing.assert_array_equal(sub0, again)
