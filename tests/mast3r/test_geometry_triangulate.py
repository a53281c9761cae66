"""Depth from pointmaps, triangulation, and a pair's export (PLY, pycolmap Reconstruction)."""

from __future__ import annotations

import numpy as np
import pytest

from mast3r.geometry import (
    depth_from_pointmap,
    make_pose,
    project,
    quat_wxyz_to_matrix,
    sample_map,
    to_pycolmap_reconstruction,
    transform_points,
    triangulate,
    write_pair_ply,
)
from mast3r.ply import read_ply

K0 = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
K1 = np.array([[450.0, 0, 300], [0, 460, 250], [0, 0, 1]])
CAM0 = make_pose(quat_wxyz_to_matrix([1, 0.05, -0.02, 0.01]), [0.1, -0.2, 0.3])
CAM1 = make_pose(quat_wxyz_to_matrix([1, -0.03, 0.12, 0.02]), [-0.6, -0.1, 0.4])


def _points(n=100, seed=0):
    X = np.random.default_rng(seed).uniform([-1, -1, 4], [1, 1, 6], (n, 3))
    return X, project(K0, transform_points(CAM0, X)), project(K1, transform_points(CAM1, X))


def test_triangulation_recovers_exact_points():
    X, a, b = _points()
    Xt, err = triangulate(a, b, K0, CAM0, K1, CAM1)
    np.testing.assert_allclose(Xt, X, atol=1e-9)
    assert err.shape == (100, 2) and err.max() < 1e-8


def test_triangulation_errors_flag_noise_and_points_behind():
    X, a, b = _points(seed=1)
    b_noisy = b + np.r_[[[0, 3.0]], np.zeros((99, 2))]  # across the (near-horizontal) epipolar line
    _, err = triangulate(a, b_noisy, K0, CAM0, K1, CAM1)
    assert err[0].sum() > 1 and err[1:].max() < 1e-8
    behind = np.array([[0.0, 0, -5]])
    pa, pb = project(K0, -transform_points(CAM0, behind)), project(K1, -transform_points(CAM1, behind))
    Xb, eb = triangulate(pa, pb, K0, CAM0, K1, CAM1)
    assert np.isnan(eb).all() or transform_points(CAM0, Xb)[0, 2] < 0
    Xn, en = triangulate(np.array([[np.nan, 1.0]]), b[:1], K0, CAM0, K1, CAM1)
    assert np.isnan(Xn).all() and np.isnan(en).all()
    with pytest.raises(ValueError, match="points in view 0"):
        triangulate(a, b[:3], K0, CAM0, K1, CAM1)


def test_depth_from_pointmap_in_own_and_other_frame():
    ys, xs = np.mgrid[0:4, 0:5].astype(float)
    z = 2 + xs + ys
    pm0 = np.stack([(xs - 2) * z / 10, (ys - 1) * z / 10, z], -1)  # camera-0 frame
    np.testing.assert_allclose(depth_from_pointmap(pm0), z)
    T_0to1 = make_pose(np.eye(3), [0, 0, -0.5])
    np.testing.assert_allclose(depth_from_pointmap(pm0, T_0to1), z - 0.5)
    assert sample_map(z, np.array([[1.2, 2.6], [9, 0], [np.nan, 0]])).tolist()[0] == z[3, 1]
    assert np.isnan(sample_map(z, np.array([[9.0, 0]]))).all()


def test_pair_ply_and_pycolmap_reconstruction(tmp_path):
    X, a, b = _points(50, seed=3)
    colors = np.random.default_rng(0).integers(0, 256, (50, 3)).astype(np.uint8)
    rec = to_pycolmap_reconstruction(K0, K1, (640, 480), (600, 500), CAM0, CAM1, a, b, X, colors)
    assert rec.num_images() == 2 and rec.num_points3D() == 50 and rec.num_cameras() == 2
    assert rec.compute_mean_reprojection_error() < 1e-6  # the +0.5 shift is consistent
    im1 = next(im for im in rec.images.values() if im.name == "view1.png")
    np.testing.assert_allclose(im1.cam_from_world().matrix(), CAM1[:3], atol=1e-12)
    rec.write(str(tmp_path))
    assert {p.name for p in tmp_path.iterdir()} >= {"cameras.bin", "images.bin", "points3D.bin"}

    pm = np.random.default_rng(1).normal(size=(6, 7, 3))
    pm[0, 0] = np.nan
    mask = np.ones((6, 7), bool)
    mask[5] = False
    n = write_pair_ply(tmp_path / "pair.ply", pm, X, np.full((6, 7, 3), 0.5), colors, mask0=mask)
    back = read_ply(tmp_path / "pair.ply")
    assert n == 42 - 1 - 7 + 50 == len(back.points)
    np.testing.assert_allclose(back.points[-50:], X.astype(np.float32), rtol=1e-7)
    assert back.colors[0].tolist() == [128, 128, 128] and np.array_equal(back.colors[-50:], colors)
