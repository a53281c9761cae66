"""Shared visual-localisation pieces (benchmarks.adapters._visloc): hand-worked lifting, sampling,
distortion, subsampling, summaries and export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from benchmarks.adapters._visloc import (
    distort_radial,
    lift_keypoints,
    radial_coeffs,
    sample_xyz_map,
    seeded_subset,
    threshold_name,
    undistort_radial,
)
from benchmarks.adapters.aachen import AachenAdapter, AachenConfig, AachenEstimatorConfig
from benchmarks.metrics.submission import read_visloc_results
from benchmarks.types import Correspondences, Record

# --- lifting -----------------------------------------------------------------------------------------


def test_lift_keypoints_nearest_within_inclusive_tolerance():
    kp = np.array([[10.0, 10.0], [20.0, 10.0], [10.0, 30.0]])
    xyz = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    q = np.array([
        [12.0, 10.0],   # 2 px from kp0
        [17.0, 14.0],   # 5 px from kp1 exactly (3-4-5): inclusive
        [10.0, 15.01],  # 5.01 px from kp0, > 5 from everything
        [np.nan, 1.0],  # non-finite
        [10.0, 27.0],   # 3 px from kp2
    ])
    out, valid = lift_keypoints(cKDTree(kp), xyz, q, 5.0)
    assert valid.tolist() == [True, True, False, False, True]
    np.testing.assert_array_equal(out[0], xyz[0])
    np.testing.assert_array_equal(out[1], xyz[1])
    np.testing.assert_array_equal(out[4], xyz[2])
    assert np.isnan(out[2]).all() and np.isnan(out[3]).all()
    # a tighter tolerance drops the 5 px and 3 px matches
    _, valid = lift_keypoints(cKDTree(kp), xyz, q, 2.5)
    assert valid.tolist() == [True, False, False, False, False]


def test_lift_keypoints_empty_inputs():
    tree = cKDTree(np.array([[0.0, 0.0]]))
    out, valid = lift_keypoints(tree, np.zeros((1, 3)), np.zeros((0, 2)), 5.0)
    assert out.shape == (0, 3) and valid.shape == (0,)


def _xyz_map() -> np.ndarray:
    # 3 x 4 map whose point at (x, y) is (x, y, 10 + x + 4 y); a hole at (x=3, y=2)
    ys, xs = np.mgrid[0:3, 0:4].astype(np.float64)
    m = np.stack([xs, ys, 10 + xs + 4 * ys], -1)
    m[2, 3] = np.nan
    return m


def test_sample_xyz_map_nearest_rounds_half_up_and_drops_holes():
    out, valid = sample_xyz_map(_xyz_map(), np.array([[0.5, 0.0], [1.49, 1.5], [2.6, 1.6], [3.4, -0.5],
                                                       [3.5, 0.0], [-0.6, 0.0]]), "nearest")
    assert valid.tolist() == [True, True, False, True, False, False]
    np.testing.assert_array_equal(out[0], [1, 0, 11])  # x 0.5 -> 1
    np.testing.assert_array_equal(out[1], [1, 2, 19])  # (1, 2)
    np.testing.assert_array_equal(out[3], [3, 0, 13])  # y -0.5 -> 0 (inside the top pixel)


def test_sample_xyz_map_bilinear_exact_at_integers_and_falls_back_to_nearest():
    m = _xyz_map()
    out, valid = sample_xyz_map(m, np.array([[0.5, 0.5], [3.0, 1.0], [2.0, 2.0], [2.6, 1.4], [2.75, 1.5]]),
                                "bilinear")
    assert valid.tolist() == [True, True, True, True, False]
    np.testing.assert_allclose(out[0], [0.5, 0.5, 12.5])  # linear map: interpolation is exact
    # (3, 1) and (2, 2) are integer positions next to the hole: neighbours with zero weight are not needed
    np.testing.assert_array_equal(out[1], [3, 1, 17])
    np.testing.assert_array_equal(out[2], [2, 2, 20])
    # (2.6, 1.4) needs the hole (3, 2): nearest-pixel fallback (3, 1), not an interpolation
    np.testing.assert_array_equal(out[3], [3, 1, 17])
    # (2.75, 1.5) needs the hole and its nearest pixel (3, 2) is the hole: dropped
    with pytest.raises(ValueError, match="sampling mode"):
        sample_xyz_map(m, np.zeros((1, 2)), "cubic")


# --- distortion and subsampling ------------------------------------------------------------------


def test_radial_distortion_hand_worked_and_round_trip():
    K = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    # u = (150 - 50) / 100 = 1, r^2 = 1, k = 0.1 -> u_d = 1.1 -> x = 160
    np.testing.assert_allclose(distort_radial(np.array([[150.0, 40.0]]), K, (0.1,)), [[160.0, 40.0]])
    np.testing.assert_allclose(undistort_radial(np.array([[160.0, 40.0]]), K, (0.1,)), [[150.0, 40.0]],
                               atol=1e-9)
    # RADIAL with k2: u = (0.5, 0.5), r^2 = 0.5 -> factor 1 + 0.1*0.5 - 0.02*0.25 = 1.045
    np.testing.assert_allclose(distort_radial(np.array([[100.0, 90.0]]), K, (0.1, -0.02)),
                               [[50 + 52.25, 40 + 52.25]])
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (50, 2))
    for coeffs in ((-0.0353,), (0.05, -0.01)):
        np.testing.assert_allclose(undistort_radial(distort_radial(xy, K, coeffs), K, coeffs), xy, atol=1e-8)
    np.testing.assert_array_equal(undistort_radial(xy, K, (0.0,)), xy)


def test_radial_coeffs_of_camera_descriptions():
    assert radial_coeffs(None) == ()
    assert radial_coeffs({"model": "SIMPLE_RADIAL", "params": [1469.2, 708.5, 531.5, -0.0353]}) == (-0.0353,)
    assert radial_coeffs({"model": "RADIAL", "params": [1, 2, 3, 0.1, 0.2]}) == (0.1, 0.2)
    assert radial_coeffs({"model": "SIMPLE_PINHOLE", "params": [1, 2, 3]}) == ()
    with pytest.raises(ValueError, match="OPENCV"):
        radial_coeffs({"model": "OPENCV", "params": [0] * 8})


def test_seeded_subset():
    a = seeded_subset(1000, 100, seed=3)
    assert len(a) == 100 and len(set(a.tolist())) == 100 and (np.diff(a) > 0).all() and a.max() < 1000
    np.testing.assert_array_equal(a, seeded_subset(1000, 100, seed=3))
    assert not np.array_equal(a, seeded_subset(1000, 100, seed=4))
    np.testing.assert_array_equal(seeded_subset(50, 100, 0), np.arange(50))
    np.testing.assert_array_equal(seeded_subset(50, 0, 0), np.arange(50))


def test_threshold_name():
    assert threshold_name("day", 0.25, 2.0) == "day_recall_0.25m_2deg_pct"
    assert threshold_name("DUC1", 1.0, 10.0) == "DUC1_recall_1m_10deg_pct"


# --- summaries, solve failures and export (Aachen's adapter as the concrete class) -----------------


def _record(key: str, cond: str | None, pos: float | None, rot: float | None, ok: bool = True,
            has_gt: bool = True) -> Record:
    return Record(key, {"pos_err_m": pos, "rot_err_deg": rot}, {"success": ok},
                  {"condition": cond, "has_gt": has_gt})


def test_summarize_recall_inclusive_strict_and_failures(tmp_path: Path):
    records = [
        _record("a", "day", 0.25, 2.0),          # exactly on the first threshold
        _record("b", "day", 0.4, 1.0),
        _record("c", "day", None, None, ok=False),  # failure: a miss everywhere
        _record("d", "night", 3.0, 9.0),
    ]
    ad = AachenAdapter(tmp_path)
    s = ad.summarize(records)
    assert s["day_recall_0.25m_2deg_pct"] == pytest.approx(100 / 3)
    assert s["day_recall_0.5m_5deg_pct"] == pytest.approx(200 / 3)
    assert s["day_recall_5m_10deg_pct"] == pytest.approx(200 / 3)
    assert s["night_recall_0.25m_2deg_pct"] == 0.0 and s["night_recall_5m_10deg_pct"] == 100.0
    assert s["all_recall_5m_10deg_pct"] == 75.0
    assert s["failure_pct"] == 25.0 and s["num_queries"] == 4 and s["day_num_queries"] == 3
    assert s["all_pos_err_median_m"] == pytest.approx((0.4 + 3.0) / 2)
    strict = AachenAdapter(tmp_path, AachenConfig(strict_thresholds=True)).summarize(records)
    assert strict["day_recall_0.25m_2deg_pct"] == 0.0
    assert strict["day_recall_0.5m_5deg_pct"] == s["day_recall_0.5m_5deg_pct"]
    only_fail = ad.summarize([_record("x", "day", None, None, ok=False)])
    assert only_fail["all_pos_err_median_m"] is None and only_fail["all_recall_5m_10deg_pct"] == 0.0


def test_summarize_without_ground_truth_reports_counts_only(tmp_path: Path):
    s = AachenAdapter(tmp_path).summarize([_record("a", "day", None, None, has_gt=False)])
    assert s == {"num_queries": 1, "failure_pct": 0.0, "num_queries_with_gt": 0}


def test_solve_failures_and_score_filter(synthetic_root: Path):
    ad = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=1), AachenEstimatorConfig(min_score=0.5))
    sample = next(iter(ad.samples()))
    gt = ad.gt_correspondences(sample, 0, 1)
    assert gt is not None and len(gt) > 20
    low = Correspondences(gt.pts0, gt.pts1, np.full(len(gt), 0.4))
    pred = ad.solve(sample, [low], seed=0)
    assert not pred.success and pred.failure_reason == "too_few_matches"
    assert pred.values["lifted_per_pair"] == [0]
    pred = ad.solve(sample, [gt], seed=0)
    assert pred.success and pred.num_matches == len(gt) and pred.num_inliers == len(gt)
    bare = type(sample)(sample.key, sample.views[:1], sample.gt, sample.meta)
    pred = ad.solve(bare, [], seed=0)
    assert not pred.success and pred.failure_reason == "no_retrieved_images"


def test_export_writes_every_query_failures_as_identity(synthetic_root: Path, tmp_path: Path):
    ad = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=1))
    samples = list(ad.samples())
    pose = np.eye(4)
    pose[:3, 3] = [1.0, 2.0, 3.0]
    records = [Record(samples[0].key, {}, {"success": True, "values": {"cam_from_world": pose.tolist()}}),
               Record(samples[1].key, {}, {"success": False, "values": {}})]  # the third: no record
    (path,) = ad.export(records, tmp_path, method="test")
    assert path.name == "Aachen_eval_test.txt"
    lines = path.read_text().splitlines()
    assert [line.split()[0] for line in lines] == [s.meta["basename"] for s in samples]
    got = read_visloc_results(path)
    np.testing.assert_allclose(got[samples[0].meta["basename"]], pose)
    for line in lines[1:]:  # the failed query and the one without a record
        assert line.split()[1:] == ["1.0", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"]


def test_visloc_ransac_options_nest_and_the_flat_keys_still_work():
    """Issue 17 item 2: ``estimator.ransac.*`` with the official pycolmap defaults; the flat keys of
    before give the same config."""
    from benchmarks.config import apply_overrides, from_dict
    from mast3r.geometry import RansacConfig

    assert AachenEstimatorConfig().ransac.solver_config(5.0, 2) == RansacConfig(max_error_px=5.0, seed=2)
    flat = apply_overrides(AachenEstimatorConfig(), {"max_num_trials": "2000", "confidence": "0.999",
                                                     "min_inlier_ratio": "0.1", "min_matches": "9"})
    nested = apply_overrides(AachenEstimatorConfig(), {"ransac.max_num_trials": "2000",
                                                       "ransac.confidence": "0.999",
                                                       "ransac.min_inlier_ratio": "0.1",
                                                       "ransac.min_matches": "9"})
    assert flat == nested and flat.ransac.max_num_trials == 2000 and flat.ransac.min_matches == 9
    assert from_dict(AachenEstimatorConfig, {"max_num_trials": 2000, "confidence": 0.999,
                                             "min_inlier_ratio": 0.1, "min_matches": 9}) == flat
    with pytest.raises(ValueError, match="estimator.ransac options"):
        apply_overrides(AachenEstimatorConfig(), {"min_num_trials": "-1"})
