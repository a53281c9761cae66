"""DTU adapter: pair selection, hand-worked triangulation filters, oracle / random / sift on the
synthetic suite, PLY export re-scored by ``mast3r-bench score dtu``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.adapters._mvs import PairFilter, triangulate_matches, triangulation_angle_deg, write_cloud
from benchmarks.adapters.dtu import DtuAdapter, DtuConfig, DtuEstimatorConfig
from benchmarks.cli import main
from benchmarks.matchers.doubles import OracleMatcher, RandomMatcher
from benchmarks.runner import Runner
from benchmarks.store import RecordStore
from benchmarks.types import Correspondences, Prediction, Record, Sample, View
from datasets.synthetic.sidecar import Sidecar
from mast3r.ply import read_ply_points

K = np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
CAM1 = np.eye(4)
CAM1[0, 3] = -100.0  # camera 1 centre at x = +100 (mm)


def _run(adapter: DtuAdapter, matcher, tmp_path: Path):
    result = Runner(adapter, matcher, adapter.config, adapter.estimator, results_root=tmp_path / "results",
                    data_root=adapter.root.parent, progress=False).run()
    return result, list(RecordStore(result.run_dir.records_path).load().values())


def test_pairs_take_the_best_sources_once(tmp_path: Path):
    views = tuple(View(f"v{k}", tmp_path / f"{k}.jpg", 10, 10, meta={"view": vid})
                  for k, vid in enumerate([0, 1, 2, 3]))
    pairs = {0: [2, 1, 3], 1: [0, 3, 2], 2: [3, 0, 1], 3: [2, 1, 0]}
    sample = Sample("scan9", views, gt={"scan": 9, "pairs": pairs})
    ad = DtuAdapter(tmp_path, DtuConfig(num_sources=2))
    assert ad.pairs(sample) == [(0, 2), (0, 1), (1, 3), (2, 3)]
    sym = DtuAdapter(tmp_path, DtuConfig(num_sources=2, symmetric_pairs=True))
    assert sym.pairs(sample) == [(0, 2), (0, 1), (1, 0), (1, 3), (2, 3), (2, 0), (3, 2), (3, 1)]
    assert len(DtuAdapter(tmp_path, DtuConfig(num_sources=3)).pairs(sample)) == 6


def test_triangulate_matches_hand_worked_filters():
    # X = (0, 0, 1000): pixel (50, 50) in camera 0, (50 - 100 * 100 / 1000, 50) = (40, 50) in camera 1
    pts0 = np.array([[50.0, 50.0], [50.0, 50.0], [50.0, 50.0], [50.0, 50.0], [50.0, 50.0]])
    pts1 = np.array([[40.0, 50.0],   # good
                     [60.0, 50.0],   # rays cross behind the cameras
                     [40.0, 53.0],   # 3 px off the epipolar line: reprojection ~1.5 px in each view
                     [49.9, 50.0],   # X = (0, 0, 1e5): triangulation angle ~0.057 deg
                     [40.0, 50.0]])  # good but low score
    scores = np.array([1.0, 1.0, 1.0, 1.0, 0.1])
    pts, stats = triangulate_matches(pts0, pts1, scores, K, np.eye(4), K, CAM1, PairFilter(0.5, 1.0, 1.0))
    np.testing.assert_allclose(pts, [[0.0, 0.0, 1000.0]], atol=1e-9)
    assert stats == {"matches": 5, "score_ok": 4, "in_front": 3, "reproj_ok": 2, "angle_ok": 1}
    _, loose = triangulate_matches(pts0, pts1, scores, K, np.eye(4), K, CAM1, PairFilter(0.0, 2.0, 0.0))
    assert loose == {"matches": 5, "score_ok": 5, "in_front": 4, "reproj_ok": 4, "angle_ok": 4}
    ang = triangulation_angle_deg(np.array([[0.0, 0.0, 1000.0]]), np.zeros(3), np.array([100.0, 0, 0]))
    np.testing.assert_allclose(ang, [np.degrees(np.arctan(0.1))])


def test_write_cloud_is_content_addressed(tmp_path: Path):
    pts = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]])
    a = write_cloud(tmp_path, "scan1", pts)
    assert a == write_cloud(tmp_path, "scan1", pts) and a.name.startswith("scan1-")
    assert a != write_cloud(tmp_path, "scan1", pts + 1)
    np.testing.assert_array_equal(read_ply_points(a), pts)


def _surface_error_mm(root: Path, points: np.ndarray) -> np.ndarray:
    """(N,) relative depth error of each point on the exact surface: the smallest, over the views
    that see it, of ``|z - depth(pixel)| / z`` (sidecar depth maps, nearest pixel)."""
    side = Sidecar(root)
    best = np.full(len(points), np.inf)
    for key, t in side.views.items():
        d = side.depth(key).astype(np.float64)
        cam = points @ t.cam_from_world[:3, :3].T + t.cam_from_world[:3, 3]
        pix = cam[:, :2] / cam[:, 2:] @ t.K[:2, :2].T + t.K[:2, 2]
        x, y = np.rint(pix[:, 0]).astype(int), np.rint(pix[:, 1]).astype(int)
        ok = (cam[:, 2] > 0) & (x >= 0) & (x < d.shape[1]) & (y >= 0) & (y < d.shape[0])
        rel = np.full(len(points), np.inf)
        rel[ok] = np.abs(cam[ok, 2] - d[y[ok], x[ok]]) / cam[ok, 2]
        best = np.minimum(best, rel)
    return best


def test_oracle_cloud_is_on_the_surface_and_score_reproduces(synthetic_root: Path, tmp_path: Path):
    root = synthetic_root / "dtu"
    ad = DtuAdapter(root, artifacts_dir=tmp_path / "ply")
    result, records = _run(ad, OracleMatcher(), tmp_path)
    m = result.summary["metrics"]
    assert m["num_scans"] == 1 and m["num_unscored_scans"] == 0
    (rec,) = records
    assert rec.key == "scan1" and rec.prediction["num_inliers"] > 5000
    assert Path(rec.prediction["values"]["ply"]).parent == tmp_path / "ply"
    # exact matches + exact cameras: every point lies on the rendered surface (a nearest-pixel depth
    # lookup is exact to the depth change within half a pixel, well under 1 %)...
    cloud = read_ply_points(rec.prediction["values"]["ply"])
    assert np.median(_surface_error_mm(root, cloud)) < 1e-3 and (_surface_error_mm(root, cloud) < 0.01).all()
    # ...so the accuracy is the thinned STL's own floor (about 1.3 mm at the small suite's 4 mm spacing)
    assert m["mean_accuracy_mm"] < 1.5
    assert 0.0 < m["mean_completeness_mm"] < 5.0  # areas seen by a single view cannot be triangulated
    assert m["mean_overall_mm"] == pytest.approx((m["mean_accuracy_mm"] + m["mean_completeness_mm"]) / 2)
    (ply,) = ad.export(records, tmp_path / "export")
    assert ply.name == "mast3r001_l3.ply"
    out = tmp_path / "score.json"
    assert main(["score", "dtu", "--gt-root", str(root / "SampleSet" / "MVS Data"), "--scan", "1", "--ply",
                 str(ply), "--json", str(out)]) == 0
    scored = json.loads(out.read_text())
    for key in ("accuracy_mm", "completeness_mm", "overall_mm", "n_points", "n_in_obs"):
        assert scored[key] == rec.metrics[key]


def test_random_is_far_worse(synthetic_root: Path, tmp_path: Path):
    ad = DtuAdapter(synthetic_root / "dtu", artifacts_dir=tmp_path / "ply")
    result, records = _run(ad, RandomMatcher(), tmp_path)
    m = result.summary["metrics"]
    (rec,) = records
    if rec.prediction["success"]:  # a few random matches pass the 1 px test by chance
        assert m["mean_overall_mm"] > 5.0 and m["mean_points"] < 200
    else:
        assert rec.prediction["failure_reason"] == "no_points" and m["mean_overall_mm"] is None


def test_failures_and_missing_gt(synthetic_root: Path, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no DTU evaluation ground truth"):
        DtuAdapter(synthetic_root / "dtu", DtuConfig(gt_root=str(tmp_path))).gt_root()
    ad = DtuAdapter(synthetic_root / "dtu", artifacts_dir=tmp_path / "ply")
    sample = next(iter(ad.samples()))
    pred = ad.solve(sample, [Correspondences.empty() for _ in ad.pairs(sample)], seed=0)
    assert not pred.success and pred.failure_reason == "no_points"
    assert all(v is None for v in ad.evaluate(sample, pred).values())
    ok = Prediction(True, {"ply": str(write_cloud(tmp_path, "x", np.ones((3, 3))))})
    other = Sample("scan7", sample.views, gt={**sample.gt, "scan": 7})
    assert all(v is None for v in ad.evaluate(other, ok).values())  # no GT for scan 7
    good = Record("scan1", {"accuracy_mm": 1.0, "completeness_mm": 2.0, "overall_mm": 1.5, "n_points": 10,
                            "n_in_obs": 8}, {"success": True})
    bad = Record("scan4", dict.fromkeys(("accuracy_mm", "completeness_mm", "overall_mm")), {"success": False})
    s = ad.summarize([good])
    assert (s["mean_accuracy_mm"], s["mean_completeness_mm"], s["mean_overall_mm"]) == (1.0, 2.0, 1.5)
    s = ad.summarize([good, bad])
    assert s["mean_overall_mm"] is None and s["num_unscored_scans"] == 1 and s["mean_points"] == 10.0


def test_cli_run_acceptance(synthetic_root: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.delenv("MAST3R_BENCH_RESULTS", raising=False)  # the runner points the PLY cache here
    assert main(["run", "dtu", "--matcher", "oracle", "--data", str(synthetic_root), "--results",
                 str(tmp_path), "--no-progress", "num_sources=1"]) == 0
    assert "dtu/oracle: 1/1 samples (1 computed now, 0 failures" in capsys.readouterr().out
    assert len(list((tmp_path / "cache" / "artifacts" / "dtu").glob("scan1-*.ply"))) == 1
    (export,) = (tmp_path / "runs" / "dtu" / "oracle").glob("*/export/*.ply")
    assert export.name == "mast3r001_l3.ply"


@pytest.mark.slow
def test_sift_is_plausible(synthetic_root: Path, tmp_path: Path):
    from benchmarks.matchers.sift import SiftMatcher

    ad = DtuAdapter(synthetic_root / "dtu", DtuConfig(num_sources=1), DtuEstimatorConfig(max_reproj_px=1.5),
                    artifacts_dir=tmp_path / "ply")
    result, _ = _run(ad, SiftMatcher(), tmp_path)
    m = result.summary["metrics"]
    assert m["num_unscored_scans"] == 0 and m["mean_accuracy_mm"] < 5.0
