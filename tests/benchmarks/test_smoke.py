"""The SMOKE adapter: homography helpers, data generation, GT matches, solver, metrics."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.adapters.smoke import (
    SmokeAdapter,
    SmokeConfig,
    SmokeEstimatorConfig,
    apply_homography,
    corner_error_px,
    homography_from_corners,
)
from benchmarks.runner import run_benchmark
from benchmarks.types import Correspondences, Prediction, Record

CFG = SmokeConfig(num_pairs=3, width=64, height=48)


def test_homography_helpers_hand_worked():
    src = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    H = homography_from_corners(src, src * 2 + [1, 3])  # x' = 2x + 1, y' = 2y + 3
    np.testing.assert_allclose(H, [[2, 0, 1], [0, 2, 3], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(apply_homography(H, [[5, 5]]), [[11, 13]])
    T = np.array([[1, 0, 3], [0, 1, 4], [0, 0, 1]], float)
    assert corner_error_px(T, np.eye(3), 64, 48) == pytest.approx(5.0)  # every corner off by (3, 4)
    proj = np.array([[1, 0, 0], [0, 1, 0], [0.01, 0, 1]])
    assert apply_homography(proj, [[100, 50]])[0] == pytest.approx([50, 25])  # w = 1 + 0.01 * 100


def test_generation_is_deterministic_and_per_variant(tmp_path):
    a = SmokeAdapter(tmp_path / "a", CFG)
    samples = list(a.samples())
    assert [s.key for s in samples] == ["pair_000", "pair_001", "pair_002"]
    img = samples[0].views[0].image_path
    assert img.is_file() and img.parent.parent == a.root and a.root.parent == tmp_path / "a"
    b_samples = list(SmokeAdapter(tmp_path / "b", CFG).samples())
    assert img.read_bytes() == b_samples[0].views[0].image_path.read_bytes()
    np.testing.assert_array_equal(samples[2].gt["H_0to1"], b_samples[2].gt["H_0to1"])
    mtime = img.stat().st_mtime_ns
    list(SmokeAdapter(tmp_path / "a", CFG).samples())
    assert img.stat().st_mtime_ns == mtime  # not regenerated
    other = SmokeAdapter(tmp_path / "a", SmokeConfig(num_pairs=3, width=64, height=48, seed=1))
    assert other.root != a.root
    assert not np.allclose(next(other.samples()).gt["H_0to1"], samples[0].gt["H_0to1"])


def _bilinear(im: np.ndarray, pts: np.ndarray) -> np.ndarray:
    x, y = pts[:, 0], pts[:, 1]
    x0 = np.clip(np.floor(x).astype(int), 0, im.shape[1] - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, im.shape[0] - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = im[y0, x0] * (1 - fx) + im[y0, x0 + 1] * fx
    return top * (1 - fy) + (im[y0 + 1, x0] * (1 - fx) + im[y0 + 1, x0 + 1] * fx) * fy


def test_image1_is_image0_warped_by_the_homography(tmp_path):
    from PIL import Image

    adapter = SmokeAdapter(tmp_path, CFG)
    for sample in adapter.samples():
        im0, im1 = (np.asarray(Image.open(v.image_path), np.float64) for v in sample.views)
        assert im0.shape == im1.shape == (48, 64, 3)
        gt = adapter.gt_correspondences(sample, 0, 1)
        inside = (gt.pts1 >= 0).all(1) & (gt.pts1[:, 0] <= 63) & (gt.pts1[:, 1] <= 47)
        p0, p1 = gt.pts0[inside].astype(int), gt.pts1[inside].astype(np.float64)
        colour0 = im0[p0[:, 1], p0[:, 0]]
        diff = np.abs(colour0 - _bilinear(im1, p1)).mean()
        half_pixel_off = np.abs(colour0 - _bilinear(im1, p1 + [0.5, 0])).mean()
        assert diff < 2.0 and diff < 0.6 * half_pixel_off  # pixel centres at integers in both images


def test_gt_correspondences_are_exact_and_inside(tmp_path):
    adapter = SmokeAdapter(tmp_path, CFG)
    sample = next(adapter.samples())
    gt = adapter.gt_correspondences(sample, 0, 1)
    assert len(gt) > 20
    np.testing.assert_allclose(apply_homography(sample.gt["H_0to1"], gt.pts0), gt.pts1, atol=1e-4)
    assert (gt.pts1 >= -0.5).all() and (gt.pts1[:, 0] < 63.5).all() and (gt.pts1[:, 1] < 47.5).all()
    back = adapter.gt_correspondences(sample, 1, 0)
    np.testing.assert_array_equal(back.pts0, gt.pts1)


def test_solver_recovers_the_homography_in_our_pixel_convention(tmp_path):
    adapter = SmokeAdapter(tmp_path, CFG)
    for sample in adapter.samples():
        pred = adapter.solve(sample, [adapter.gt_correspondences(sample, 0, 1)], seed=1)
        assert pred.success and pred.num_inliers == pred.num_matches
        metrics = adapter.evaluate(sample, pred)
        assert metrics["corner_err_px"] < 1e-3 and metrics["success_3px"] == 1.0


def test_solver_failures(tmp_path):
    adapter = SmokeAdapter(tmp_path, CFG, SmokeEstimatorConfig(min_inliers=15))
    sample = next(adapter.samples())
    few = adapter.gt_correspondences(sample, 0, 1).subset(np.arange(5))
    pred = adapter.solve(sample, [few], seed=0)
    assert not pred.success and pred.failure_reason == "too_few_matches"
    assert adapter.evaluate(sample, pred) == {"corner_err_px": None, "success_3px": 0.0}
    rng = np.random.default_rng(0)
    noise = Correspondences(rng.uniform(0, 64, (100, 2)), rng.uniform(0, 48, (100, 2)), np.ones(100))
    pred = adapter.solve(sample, [noise], seed=0)
    assert not pred.success and pred.failure_reason in ("too_few_inliers", "ransac_failed")


def test_summarize_counts_failures_as_misses():
    def r(err):
        ok = err is not None
        return Record("k", {"corner_err_px": err, "success_3px": float(ok and err <= 3)}, {"success": ok})

    s = SmokeAdapter.summarize(None, [r(0.5), r(2.0), r(10.0), r(None)])
    assert s == {"success_3px_pct": 50.0, "corner_err_median_px": 6.0, "failure_pct": 25.0}
    assert SmokeAdapter.summarize(None, [r(1.0), r(None), r(None)])["corner_err_median_px"] is None


def test_oracle_is_perfect_and_random_is_the_floor(tmp_path):
    kw = {"data_root": tmp_path / "data", "results_root": tmp_path / "results", "progress": False}
    oracle = run_benchmark("smoke", "oracle", **kw).summary["metrics"]
    assert oracle["success_3px_pct"] == 100.0 and oracle["failure_pct"] == 0.0
    assert oracle["corner_err_median_px"] < 1e-3
    rand = run_benchmark("smoke", "random", **kw).summary["metrics"]
    assert rand["success_3px_pct"] == 0.0


def test_failed_prediction_without_values_is_evaluated_as_failure(tmp_path):
    adapter = SmokeAdapter(tmp_path, CFG)
    sample = next(adapter.samples())
    assert adapter.evaluate(sample, Prediction(False, failure_reason="matcher_error: X")) == \
        {"corner_err_px": None, "success_3px": 0.0}
