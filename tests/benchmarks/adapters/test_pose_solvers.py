"""Pair solvers, focal contract, depth scale, PoseDiffusion frame draw and aggregation: hand-worked."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.adapters._pose_solvers import (
    PoseEstimatorConfig,
    metric_scale,
    pair_intrinsics,
    resolve_solver,
    sample_depth_nearest,
    solve_pair,
)
from benchmarks.adapters._posediffusion import FrameSampler, pair_viewpoints, sequence_metrics
from benchmarks.adapters._ransac import POSE_RANSAC
from benchmarks.adapters.co3dv2 import Co3dv2Adapter, Co3dv2Config
from benchmarks.types import Correspondences, Prediction, Record, Sample, View

K = np.array([[100.0, 0, 60], [0, 100.0, 40], [0, 0, 1]])
W, H = 120, 80


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])}[axis]


def _scene(n: int = 200, seed: int = 0):
    """Points in front of camera 0, a known T_0to1 (10 deg about y, 0.5 m sideways) and exact matches."""
    rng = np.random.default_rng(seed)
    T = np.eye(4)
    T[:3, :3] = _rot("y", 10) @ _rot("x", 3)
    T[:3, 3] = [-0.5, 0.05, 0.1]
    X0 = np.c_[rng.uniform(-1.5, 1.5, n), rng.uniform(-1, 1, n), rng.uniform(3, 6, n)]
    X1 = X0 @ T[:3, :3].T + T[:3, 3]
    proj = lambda X: (X @ K.T)[:, :2] / X[:, 2:]  # noqa: E731
    return T, X0, proj(X0), proj(X1)


def _views(K0=K, K1=K) -> tuple[View, View]:
    return (View("a", None, W, H, K0), View("b", None, W, H, K1))  # type: ignore[arg-type]


def test_pnp_recovers_the_metric_pose_from_pts3d0():
    T, X0, p0, p1 = _scene()
    r = solve_pair(Correspondences(p0, p1, np.ones(len(p0)), pts3d0=X0), _views(), PoseEstimatorConfig(), 0)
    assert r.success and r.solver == "pnp" and r.metric and r.intrinsics == "gt"
    np.testing.assert_allclose(r.T_0to1, T, atol=1e-5)
    assert r.num_inliers == len(p0)


def test_essential_recovers_rotation_and_unit_direction():
    T, X0, p0, p1 = _scene()
    r = solve_pair(Correspondences(p0, p1, np.ones(len(p0))), _views(), PoseEstimatorConfig(), 0)
    assert r.success and r.solver == "essential" and not r.metric and r.scale is None
    np.testing.assert_allclose(r.T_0to1[:3, :3], T[:3, :3], atol=1e-6)
    np.testing.assert_allclose(r.T_0to1[:3, 3], T[:3, 3] / np.linalg.norm(T[:3, 3]), atol=1e-5)


def test_failure_reasons_and_solver_resolution():
    T, X0, p0, p1 = _scene(n=8)
    cfg = PoseEstimatorConfig()
    few = solve_pair(Correspondences(p0, p1, np.ones(8)), _views(), cfg, 0)
    assert (few.success, few.failure_reason, few.T_0to1) == (False, "too_few_matches", None)
    _, X0, p0, p1 = _scene()
    forced = PoseEstimatorConfig(solver="pnp")
    r = solve_pair(Correspondences(p0, p1, np.ones(len(p0))), _views(), forced, 0)
    assert (r.success, r.failure_reason) == (False, "no_pts3d")
    assert resolve_solver("auto", Correspondences(p0, p1, np.ones(len(p0)), pts3d0=X0)) == "pnp"
    assert resolve_solver("auto", Correspondences(p0, p1, np.ones(len(p0)))) == "essential"
    no_k = (View("a", None, W, H), View("b", None, W, H))  # type: ignore[arg-type]
    r = solve_pair(Correspondences(p0, p1, np.ones(len(p0))), no_k, cfg, 0)
    assert (r.success, r.failure_reason) == (False, "no_intrinsics")
    rnd = np.random.default_rng(1).uniform(0, 80, (200, 2))
    bad = solve_pair(Correspondences(rnd, rnd[::-1].copy(), np.ones(200)), _views(),
                     PoseEstimatorConfig(ransac=replace(POSE_RANSAC, min_inliers=150, max_num_trials=200)), 0)
    assert not bad.success and bad.failure_reason in ("too_few_inliers", "ransac_failed")


def test_pnp_without_pts3d_lifts_view0_pixels_with_its_depth():
    """map-free-reloc's PnP baseline: reference pixels back-projected with the provided depth."""
    T, _, _, _ = _scene()
    depth0 = np.full((H, W), 4.0)
    ys, xs = np.mgrid[2:H:6, 2:W:6]
    p0 = np.c_[xs.ravel(), ys.ravel()].astype(float)
    X0 = 4.0 * (np.c_[p0, np.ones(len(p0))] @ np.linalg.inv(K).T)
    X1 = X0 @ T[:3, :3].T + T[:3, 3]
    p1 = (X1 @ K.T)[:, :2] / X1[:, 2:]
    r = solve_pair(Correspondences(p0, p1, np.ones(len(p0))), _views(), PoseEstimatorConfig(solver="pnp"), 0,
                   depth0=depth0)
    assert r.success and r.metric
    np.testing.assert_allclose(r.T_0to1, T, atol=1e-6)


def test_matcher_focal_contract():
    """meta focal0_px/focal1_px (+ optional pp) replace GT K; default pp = (W/2, H/2)."""
    T, X0, p0, p1 = _scene()
    meta = {"focal0_px": 100.0, "focal1_px": 100.0, "pp0_px": [60.0, 40.0], "pp1_px": [60.0, 40.0]}
    c = Correspondences(p0, p1, np.ones(len(p0)), pts3d0=X0, meta=meta)
    wrong = _views(K0=np.diag([50.0, 50.0, 1.0]), K1=np.diag([50.0, 50.0, 1.0]))
    r = solve_pair(c, wrong, PoseEstimatorConfig(), 0)  # auto: the matcher's K, not the (wrong) GT
    assert r.success and r.intrinsics == "matcher"
    np.testing.assert_allclose(r.T_0to1, T, atol=1e-5)
    (K0, K1), src = pair_intrinsics(Correspondences(p0, p1, np.ones(len(p0)), meta={"focal1_px": 90.0}),
                                    _views(), "matcher")
    assert src == "matcher" and K0 is None
    np.testing.assert_allclose(K1, [[90, 0, W / 2], [0, 90, H / 2], [0, 0, 1]])
    (K0, K1), src = pair_intrinsics(Correspondences(p0, p1, np.ones(len(p0)), meta={"focal1_px": 90.0}),
                                    _views(), "auto")
    assert src == "gt" and np.array_equal(K0, K) and np.array_equal(K1, K)  # both needed for "auto"
    missing = solve_pair(Correspondences(p0, p1, np.ones(len(p0))), _views(),
                         PoseEstimatorConfig(intrinsics="matcher"), 0)
    assert (missing.success, missing.failure_reason) == (False, "no_focal_estimate")


def test_metric_scale_hand_worked():
    """K = I: pixel (u, v) at depth d is the point d (u, v, 1). R = I, t = (1, 0, 0): each match's
    scale is x1 - x0. Scales 3, 3.05, 3.02, 10: RANSAC (0.1 m) keeps the first best, 3; the mean
    variant averages the mean points: 4.7675; triangulation is exact on the consistent matches."""
    depth0 = np.zeros((10, 20))
    depth1 = np.zeros((10, 20))
    p0 = np.array([[2, 1], [2, 2], [2, 3], [2, 4]], float)
    p1 = np.array([[5, 1], [5, 2], [5, 3], [12, 4]], float)
    depth0[p0[:, 1].astype(int), p0[:, 0].astype(int)] = 1.0
    depth1[p1[:, 1].astype(int), p1[:, 0].astype(int)] = [1.0, 1.01, 1.004, 1.0]
    T = np.eye(4)
    T[:3, 3] = [1, 0, 0]
    I3 = np.eye(3)
    sizes = ((20, 10), (20, 10))
    assert metric_scale(T, p0, p1, I3, I3, depth0, depth1, sizes, "ransac", 0.1) == pytest.approx(3.0)
    assert metric_scale(T, p0, p1, I3, I3, depth0, depth1, sizes, "mean") == pytest.approx(4.7675)
    assert metric_scale(T, p0, p1, I3, I3, np.zeros((10, 20)), depth1, sizes, "ransac") is None
    # a depth map at half resolution is indexed at the corresponding pixel
    small = np.arange(50, dtype=float).reshape(5, 10) + 1
    assert sample_depth_nearest(small, np.array([[4.0, 2.0], [-3.0, 0.0]]), (20, 10))[0] == small[1, 2]
    assert np.isnan(sample_depth_nearest(small, np.array([[-3.0, 0.0]]), (20, 10))[0])


def test_essential_with_depth_scale_is_metric():
    T, _, _, _ = _scene()
    depth0 = np.full((H, W), 4.0)
    ys, xs = np.mgrid[2:H:5, 2:W:5]
    p0 = np.c_[xs.ravel(), ys.ravel()].astype(float)
    X1 = 4.0 * (np.c_[p0, np.ones(len(p0))] @ np.linalg.inv(K).T) @ T[:3, :3].T + T[:3, 3]
    p1 = (X1 @ K.T)[:, :2] / X1[:, 2:]
    keep = (p1[:, 0] > 0) & (p1[:, 0] < W - 1) & (p1[:, 1] > 0) & (p1[:, 1] < H - 1)
    p0, p1 = p0[keep], p1[keep]
    depth1 = np.zeros((H, W))
    pix = np.rint(p1).astype(int)  # depth1 holds the true z of each match at its nearest pixel
    X1r = 4.0 * (np.c_[p0, np.ones(len(p0))] @ np.linalg.inv(K).T) @ T[:3, :3].T + T[:3, 3]
    depth1[pix[:, 1], pix[:, 0]] = X1r[:, 2]
    c = Correspondences(p0, p1, np.ones(len(p0)))
    r = solve_pair(c, _views(), PoseEstimatorConfig(), 0, depth0=depth0, depth1=depth1, scale="triangulation")
    assert r.success and r.metric and r.scale == pytest.approx(np.linalg.norm(T[:3, 3]), rel=1e-3)
    np.testing.assert_allclose(r.T_0to1[:3, 3], T[:3, 3], atol=2e-3)


def test_frame_sampler_mirrors_numpy_legacy_seeding():
    np.random.seed(0)  # PoseDiffusion: seed once, then one choice per sequence
    expected = [np.random.choice(60, 10, replace=False), np.random.choice(55, 10, replace=False)]
    s = FrameSampler(0, 10, "stream")
    got = [s.draw(60), s.draw(55)]
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    p = FrameSampler(0, 10, "per_sequence")
    np.testing.assert_array_equal(p.draw(60), expected[0])
    np.testing.assert_array_equal(p.draw(60), expected[0])  # fresh RandomState(seed) each time
    with pytest.raises(ValueError):
        s.draw(9)


def test_sequence_metrics_hand_worked():
    """Errors max(rot, trans) = 2, 20, inf: fraction < k is 0 (k = 1, 2), 1/3 (k = 3..20), 2/3
    (k = 21..30): mAA = (18/3 + 20/3) / 30 = 42.22 %."""
    m = sequence_metrics(np.array([1.0, 20.0, np.inf]), np.array([2.0, 3.0, np.inf]))
    assert m["rra15_pct"] == pytest.approx(100 / 3)
    assert m["rta15_pct"] == pytest.approx(200 / 3)
    assert m["maa30_pct"] == pytest.approx(100 * (18 / 3 + 20 / 3) / 30)


def test_pair_viewpoints_buckets():
    P = [np.eye(4) for _ in range(3)]
    P[1][:3, :3] = _rot("y", 40)
    P[2][:3, :3] = _rot("y", 100)
    views = [View(str(k), None, W, H, K, p) for k, p in enumerate(P)]  # type: ignore[arg-type]
    angles, buckets = pair_viewpoints(views)
    assert np.allclose(angles, [40, 100, 60]) and buckets == ["30-60", "90-180", "60-90"]


def _record(category: str, rot: list, trans: list, success: bool = True) -> Record:
    return Record("k", {"rot_err_deg": rot, "trans_err_deg": trans, "num_pairs": len(rot)},
                  {"success": success}, {"category": category})


def test_aggregations_hand_worked(tmp_path):
    """Category A: 2 good pairs (RRA 100); category B: 1 good + 3 bad (RRA 25; the failed pair is
    null). Category mean: 62.5; pooled: 3 / 6 = 50."""
    records = [_record("A", [1.0, 1.0], [1.0, 1.0]), _record("B", [1.0, 20.0, 20.0, None], [1.0, 1, 1, None])]
    per_cat = Co3dv2Adapter(tmp_path, Co3dv2Config(aggregation="per_category")).summarize(records)
    assert per_cat["rra15_category_mean_pct"] == pytest.approx(62.5)
    assert per_cat["rta15_category_mean_pct"] == pytest.approx((100 + 75) / 2)
    assert per_cat["num_categories"] == 2 and per_cat["num_pairs"] == 6
    assert per_cat["failed_pair_pct"] == pytest.approx(100 / 6)
    pooled = Co3dv2Adapter(tmp_path, Co3dv2Config(aggregation="pooled")).summarize(records)
    assert pooled["rra15_pooled_pct"] == pytest.approx(50.0)
    # max errors 1, 1, 1, 20, 20, inf: fraction < k is 0 (k = 1), 3/6 (k = 2..20), 5/6 (k = 21..30)
    assert pooled["maa30_pooled_pct"] == pytest.approx(100 * (19 * 3 / 6 + 10 * 5 / 6) / 30)
    assert Co3dv2Adapter(tmp_path).summarize([])["rra15_category_mean_pct"] is None


def test_evaluate_counts_failed_pairs_as_wrong(tmp_path):
    rng = np.random.default_rng(0)
    P = []
    for _ in range(3):
        T = np.eye(4)
        T[:3, :3] = _rot("y", float(rng.uniform(-30, 30)))
        T[:3, 3] = rng.normal(size=3)
        P.append(T)
    views = tuple(View(str(k), None, W, H, K, p) for k, p in enumerate(P))  # type: ignore[arg-type]
    sample = Sample("s", views, {}, {"category": "A"})
    pairs = [{"i": 0, "j": 1, "success": True, "T_0to1": (P[1] @ np.linalg.inv(P[0])).tolist()},
             {"i": 0, "j": 2, "success": False, "T_0to1": None},
             {"i": 1, "j": 2, "success": True, "T_0to1": (P[2] @ np.linalg.inv(P[1])).tolist()}]
    adapter = Co3dv2Adapter(tmp_path)
    m = adapter.evaluate(sample, Prediction(True, {"pairs": pairs}))
    assert m["num_failed_pairs"] == 1 and m["rot_err_deg"][1] == np.inf
    assert m["rot_err_deg"][0] < 0.5 and m["trans_err_deg"][2] < 0.5  # faithful float32: ~0.4 deg at 0
    assert m["rra15_pct"] == pytest.approx(200 / 3) and m["maa30_pct"] == pytest.approx(200 / 3)
    failed = adapter.evaluate(sample, Prediction(False, failure_reason="matcher_error: x"))
    assert failed["num_failed_pairs"] == 3 and failed["rra15_pct"] == 0.0


def test_ransac_options_nest_and_the_flat_keys_still_work():
    """Issue 17 item 2: one RansacOptions nested as ``estimator.ransac.*``; the flat keys of before
    (command line and config.json) give the same config, hence the same run; same defaults."""
    from benchmarks.config import apply_overrides, from_dict, identity_dict, to_dict
    from mast3r.geometry import RansacConfig

    flat = {"ransac_max_trials": "300", "min_inliers": "7", "refine": "off", "ransac_confidence": "0.99",
            "ransac_min_trials": "50", "min_matches": "8"}
    nested = {"ransac.max_num_trials": "300", "ransac.min_inliers": "7", "ransac.refine": "off",
              "ransac.confidence": "0.99", "ransac.min_num_trials": "50", "ransac.min_matches": "8"}
    a, b = apply_overrides(PoseEstimatorConfig(), flat), apply_overrides(PoseEstimatorConfig(), nested)
    assert a == b and identity_dict(a) == identity_dict(b)
    assert a.solver_ransac("essential", 3) == RansacConfig(
        max_error_px=1.0, seed=3, confidence=0.99, min_num_trials=50, max_num_trials=300, refine=False,
        min_matches=8, min_inliers=7)
    assert PoseEstimatorConfig().solver_ransac("pnp", 0) == RansacConfig(  # the defaults of before
        max_error_px=5.0, seed=0, min_num_trials=100, max_num_trials=10000, min_matches=10, min_inliers=10)
    old_json = {"solver": "auto", "intrinsics": "auto", "pnp_max_error_px": 5.0,
                "essential_max_error_px": 1.0, "min_matches": 8, "min_inliers": 7, "ransac_confidence": 0.99,
                "ransac_min_trials": 50, "ransac_max_trials": 300, "refine": False}
    assert from_dict(PoseEstimatorConfig, old_json) == a
    assert from_dict(PoseEstimatorConfig, to_dict(a)) == a
    for bad in ({"ransac_max_trials": "-1"}, {"ransac.confidence": "nan"}, {"ransac.min_num_trials": "0"}):
        with pytest.raises(ValueError, match="estimator.ransac options"):
            apply_overrides(PoseEstimatorConfig(), bad)
