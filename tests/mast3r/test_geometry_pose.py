"""Focal and pose on a synthetic two-view scene with known K and pose (20% outlier matches)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mast3r.geometry import (
    PoseEstimate,
    RansacConfig,
    angle_between_deg,
    estimate_focal,
    make_pose,
    pnp_ransac,
    project,
    relative_pose_essential,
    relative_pose_pnp,
    rotation_error_deg,
    scale_translation_from_depth,
    transform_points,
)

H, W, F = 480, 640, 600.0
K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]])
FAST = dict(min_num_trials=100)  # keeps the CPU suite quick; accuracy is unaffected here


def rot(axis, deg):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    S = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    th = np.deg2rad(deg)
    return np.eye(3) + np.sin(th) * S + (1 - np.cos(th)) * S @ S


T_0TO1 = make_pose(rot([0.3, 1, 0.1], 10), [-0.5, 0.05, 0.1])  # metres


@pytest.fixture(scope="module")
def scene():
    """View-0 depth (wavy slanted surface, 3-5.3 m), its pointmap, and matches: integer view-0
    pixels, view-1 pixels rounded to integers (quantisation noise), 20% replaced by random pixels."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    depth = 4 + 0.8 * np.sin(xs / 60) + 0.5 * np.cos(ys / 45) + xs / 400
    pointmap = np.stack([(xs - K[0, 2]) * depth / F, (ys - K[1, 2]) * depth / F, depth], -1)
    rng = np.random.default_rng(0)
    idx = rng.choice(H * W, 3000, replace=False)
    xy0 = np.c_[idx % W, idx // W].astype(np.float64)
    X0 = pointmap.reshape(-1, 3)[idx]
    xy1 = np.rint(project(K, transform_points(T_0TO1, X0)))
    ok = (xy1 >= 0).all(1) & (xy1[:, 0] < W) & (xy1[:, 1] < H)
    xy0, xy1, X0 = xy0[ok], xy1[ok], X0[ok]
    outlier = rng.random(len(xy0)) < 0.2
    xy1[outlier] = rng.uniform([0, 0], [W, H], (outlier.sum(), 2))
    return dict(depth=depth, pointmap=pointmap, xy0=xy0, xy1=xy1, X0=X0, outlier=outlier)


def test_focal_from_exact_pointmap(scene):
    assert estimate_focal(scene["pointmap"]) == pytest.approx(F, rel=1e-9)
    assert estimate_focal(scene["pointmap"], mode="median") == pytest.approx(F, rel=1e-9)
    assert estimate_focal(torch.from_numpy(scene["pointmap"]).float()) == pytest.approx(F, rel=1e-5)


def test_focal_from_noisy_pointmap_within_one_percent(scene):
    rng = np.random.default_rng(1)
    noisy = scene["pointmap"] * (1 + 0.02 * rng.standard_normal(scene["pointmap"].shape))
    noisy[:40, :40] = np.nan  # invalid pixels count as zero rays, as officially
    for mode in ("weiszfeld", "median"):
        assert estimate_focal(noisy, mode=mode) == pytest.approx(F, rel=0.01)


def test_focal_other_principal_point_clip_and_mask():
    ys, xs = np.mgrid[0:60, 0:80].astype(np.float64)
    pm = np.stack([(xs - 30.5) * 2 / 150, (ys - 20.0) * 2 / 150, np.full_like(xs, 2.0)], -1)
    assert estimate_focal(pm, pp=(30.5, 20.0)) == pytest.approx(150, rel=1e-9)
    base = 80 / (2 * np.tan(np.deg2rad(30)))
    assert estimate_focal(pm, pp=(30.5, 20.0), max_focal=1.0) == pytest.approx(base)
    valid = np.zeros((60, 80), bool)
    valid[10:20, 50:70] = True
    assert estimate_focal(pm, pp=(30.5, 20.0), valid=valid) == pytest.approx(150, rel=1e-9)
    assert np.isnan(estimate_focal(np.zeros((4, 4, 3))))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        estimate_focal(np.zeros((4, 4)))


def test_pnp_pose_with_outliers(scene):
    est = pnp_ransac(scene["X0"], scene["xy1"], K, max_error_px=3.0, seed=0)
    assert est.success and est.failure_reason is None
    T = est.cam_from_world
    assert rotation_error_deg(T, T_0TO1) < 0.1
    assert np.linalg.norm(T[:3, 3] - T_0TO1[:3, 3]) < 0.01 * np.linalg.norm(T_0TO1[:3, 3])
    assert est.num_inliers == est.inlier_mask.sum() and est.num_matches == len(scene["X0"])
    # the inliers are (nearly exactly) the non-outliers
    assert (est.inlier_mask == ~scene["outlier"]).mean() > 0.99
    again = pnp_ransac(scene["X0"], scene["xy1"], K, config=RansacConfig(max_error_px=3.0, seed=0))
    np.testing.assert_array_equal(again.cam_from_world, T)  # seeded: deterministic
    rel = relative_pose_pnp(scene["X0"], scene["xy1"], K, max_error_px=3.0, seed=0)
    assert rel.metric and np.array_equal(rel.T_0to1, T) and np.array_equal(rel.pose, T)


def test_essential_pose_with_outliers_and_metric_scale(scene):
    est = relative_pose_essential(scene["xy0"], scene["xy1"], K, K, seed=0, **FAST)
    assert est.success and not est.metric
    T = est.T_0to1
    assert rotation_error_deg(T, T_0TO1) < 0.1
    t_gt = T_0TO1[:3, 3] / np.linalg.norm(T_0TO1[:3, 3])
    assert np.linalg.norm(T[:3, 3]) == pytest.approx(1.0)
    assert np.linalg.norm(T[:3, 3] - t_gt) < 0.01 and angle_between_deg(T[:3, 3], t_gt) < 0.5
    metric = scale_translation_from_depth(est, scene["xy0"], scene["xy1"], K, K, scene["depth"])
    assert metric.success and metric.metric
    assert metric.scale == pytest.approx(np.linalg.norm(T_0TO1[:3, 3]), rel=0.01)
    assert np.linalg.norm(metric.T_0to1[:3, 3] - T_0TO1[:3, 3]) < 0.01 * np.linalg.norm(T_0TO1[:3, 3])
    np.testing.assert_array_equal(metric.T_0to1[:3, :3], T[:3, :3])


def test_too_few_and_degenerate_inputs_fail_without_raising(scene):
    X, x = scene["X0"], scene["xy1"]
    for est in (pnp_ransac(X[:3], x[:3], K), relative_pose_essential(x[:4], x[:4], K, K)):
        assert not est.success and est.failure_reason == "too_few_matches" and est.pose is None
    same = np.repeat(X[:1], 50, axis=0)
    assert pnp_ransac(same, x[:50], K).failure_reason == "degenerate_points"
    line = np.c_[np.arange(50.0), np.arange(50.0)]
    assert relative_pose_essential(line, x[:50], K, K).failure_reason == "degenerate_points"
    nan = X.copy()
    nan[: len(X) - 4] = np.nan
    assert pnp_ransac(nan, x, K).failure_reason == "too_few_matches"
    empty = relative_pose_essential(np.zeros((0, 2)), np.zeros((0, 2)), K, K)
    assert empty.failure_reason == "too_few_matches" and empty.inlier_mask.shape == (0,)


def test_pure_noise_matches_give_a_result_not_an_exception():
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0, 600, (200, 2)), rng.uniform(0, 600, (200, 2))
    est = relative_pose_essential(a, b, K, K, seed=1, min_inliers=50, min_num_trials=100, max_num_trials=500)
    assert isinstance(est, PoseEstimate) and est.inlier_mask.shape == (200,)
    assert not est.success and est.failure_reason in ("ransac_failed", "too_few_inliers")
    pnp = pnp_ransac(rng.uniform(-1, 1, (200, 3)) + [0, 0, 5], a, K, max_error_px=1.0, min_inliers=50,
                     min_num_trials=100, max_num_trials=500)
    assert not pnp.success and pnp.failure_reason in ("ransac_failed", "too_few_inliers")


def test_non_finite_rows_are_masked_out(scene):
    X, x = scene["X0"].copy(), scene["xy1"].copy()
    X[5] = np.nan
    x[7] = np.inf
    est = pnp_ransac(X, x, K, max_error_px=3.0)
    assert est.success and not est.inlier_mask[5] and not est.inlier_mask[7]


def test_bad_arguments_raise_value_errors(scene):
    X, x = scene["X0"], scene["xy1"]
    with pytest.raises(ValueError, match="3D points but"):
        pnp_ransac(X, x[:-1], K)
    with pytest.raises(ValueError, match="skew"):
        pnp_ransac(X, x, np.array([[600, 1, 320], [0, 600, 240], [0, 0, 1.0]]))
    with pytest.raises(ValueError, match="positive focals"):
        relative_pose_essential(x, x, np.eye(3) * [0, 1, 1], K)
    with pytest.raises(ValueError, match="max_error_px"):
        pnp_ransac(X, x, K, max_error_px=0)
    with pytest.raises(ValueError, match="min_num_trials"):
        pnp_ransac(X, x, K, max_num_trials=10)


def test_scale_from_depth_without_valid_depth_fails(scene):
    est = relative_pose_essential(scene["xy0"], scene["xy1"], K, K, seed=0, **FAST)
    bad = scale_translation_from_depth(est, scene["xy0"], scene["xy1"], K, K, np.full((H, W), np.nan))
    assert not bad.success and bad.failure_reason == "no_valid_depth"
    failed = PoseEstimate.failure("ransac_failed", 3)
    assert scale_translation_from_depth(failed, scene["xy0"], scene["xy1"], K, K, scene["depth"]) is failed


def test_estimate_focal_torch_path_equals_numpy() -> None:
    """A torch pointmap takes the on-device float64 Weiszfeld path; it must equal the numpy one."""
    import torch

    from mast3r.geometry import estimate_focal

    rng = np.random.default_rng(3)
    h, w, f = 24, 32, 41.5
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    z = rng.uniform(1.0, 3.0, (h, w))
    pts = np.stack([(xs - w / 2) * z / f, (ys - h / 2) * z / f, z], -1)
    pts[..., :2] += rng.normal(0, 0.01, (h, w, 2))  # noisy: the IRLS steps matter
    pts[0, 0, 2] = 0.0  # an inf ray is zeroed in both paths
    ref = estimate_focal(pts)
    got = estimate_focal(torch.from_numpy(pts).float())
    assert abs(ref - f) < 0.05 * f
    assert got == pytest.approx(estimate_focal(torch.from_numpy(pts).float().numpy()), rel=1e-12)
    assert estimate_focal(torch.from_numpy(pts), min_focal=2.0) == pytest.approx(
        2.0 * max(h, w) / (2 * np.tan(np.deg2rad(30))))
