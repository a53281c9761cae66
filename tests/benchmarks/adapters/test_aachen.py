"""Aachen Day-Night v1.1 adapter on the synthetic suite: oracle / random / sift end to end, lifting
through the COLMAP keypoints, SIMPLE_RADIAL queries, export re-scored by ``mast3r-bench score``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.adapters._ransac import RansacOptions
from benchmarks.adapters.aachen import AachenAdapter, AachenConfig, AachenEstimatorConfig
from benchmarks.cli import main
from benchmarks.matchers.doubles import OracleMatcher, RandomConfig, RandomMatcher
from benchmarks.runner import Runner
from benchmarks.store import RecordStore


def _run(adapter: AachenAdapter, matcher, tmp_path: Path):
    result = Runner(adapter, matcher, adapter.config, adapter.estimator, results_root=tmp_path / "results",
                    data_root=adapter.root.parent, progress=False).run()
    records = list(RecordStore(result.run_dir.records_path).load().values())
    return result, records


def _recall_keys(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if "_recall_" in k}


def test_samples_and_pairs(synthetic_root: Path):
    ad = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=2))
    samples = list(ad.samples())
    assert [s.meta["condition"] for s in samples] == ["day", "day", "night"]
    for s in samples:
        assert s.key.startswith(f"query/{s.meta['condition']}/")
        assert len(s.views) == 3 and ad.pairs(s) == [(0, 1), (0, 2)]
        assert all(v.name.startswith("db/") for v in s.views[1:])
        assert s.meta["has_gt"] and s.gt["cam_from_world"].shape == (4, 4)
    # the kapture pairs are ranked by score: the first retrieved image is the best one
    day = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=1, conditions=("night",)))
    (night,) = list(day.samples())
    assert night.views[1].name == samples[2].views[1].name
    # hloc's pairs format (file order = rank) retrieves the same images here
    hloc = AachenAdapter(synthetic_root / "aachen",
                         AachenConfig(top_k=2, pairs="pairs/aachen_v1.1/pairs-query-netvlad50.txt"))
    assert [[v.name for v in s.views] for s in hloc.samples()] == [[v.name for v in s.views] for s in samples]


def test_lifting_uses_the_nearest_keypoint_within_the_tolerance(synthetic_root: Path):
    ad = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=1))
    sample = next(iter(ad.samples()))
    db = sample.views[1]
    pts = ad.dataset.db_points(db.name)
    shifted = pts.xy + np.array([3.0, 0.0])
    xyz, valid = ad.lift(db, pts.xy)
    assert valid.all()
    np.testing.assert_array_equal(xyz, pts.xyz)
    # shifted pixels: brute force says which keypoint is nearest and whether it is within the tolerance
    d = np.linalg.norm(shifted[:, None] - pts.xy[None], axis=2)
    nearest, dmin = d.argmin(1), d.min(1)
    for tol in (5.0, 1.0):
        lifter = AachenAdapter(ad.root, ad.config, AachenEstimatorConfig(pixel_tol=tol))
        xyz, valid = lifter.lift(db, shifted)
        np.testing.assert_array_equal(valid, dmin <= tol)
        np.testing.assert_array_equal(xyz[valid], pts.xyz[nearest[valid]])
    assert (dmin <= 5.0).all() and (dmin <= 1.0).mean() < 0.5


def test_gt_correspondences_are_exact(synthetic_root: Path):
    ad = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=2))
    sample = next(iter(ad.samples()))
    corrs = ad.gt_correspondences(sample, 0, 1)
    assert corrs is not None and len(corrs) > 50
    xyz, valid = ad.lift(sample.views[1], corrs.pts1)
    assert valid.all()
    T, K = sample.gt["cam_from_world"], sample.views[0].K
    cam = xyz @ T[:3, :3].T + T[:3, 3]
    proj = cam[:, :2] / cam[:, 2:] @ K[:2, :2].T + K[:2, 2]
    np.testing.assert_allclose(proj, corrs.pts0, atol=1e-3)
    swapped = ad.gt_correspondences(sample, 1, 0)
    np.testing.assert_array_equal(swapped.pts0, corrs.pts1)
    assert ad.gt_correspondences(sample, 1, 2) is None


def test_oracle_perfect_export_and_score_reproduce(synthetic_root: Path, tmp_path: Path):
    ad = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=2))
    result, records = _run(ad, OracleMatcher(), tmp_path)
    m = result.summary["metrics"]
    assert m["num_queries"] == 3 and m["failure_pct"] == 0.0
    for cond in ("day", "night", "all"):
        for key in ("0.25m_2deg", "0.5m_5deg", "5m_10deg"):
            assert m[f"{cond}_recall_{key}_pct"] == 100.0
    assert m["all_pos_err_median_m"] < 1e-4 and m["all_rot_err_median_deg"] < 1e-3
    (upload,) = ad.export(records, tmp_path / "export")
    out = tmp_path / "score.json"
    argv = ["score", "aachen", "--gt", str(ad.gt_path()), "--pred", str(upload), "--json", str(out)]
    assert main(argv) == 0
    scored = json.loads(out.read_text())
    again = {f"{cond}_recall_{t:g}m_{r:g}deg_pct": pct for cond, rows in scored.items() for t, r, pct in rows}
    assert again == _recall_keys(m)


def test_random_localises_nothing(synthetic_root: Path, tmp_path: Path):
    ad = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=1),
                       AachenEstimatorConfig(ransac=RansacOptions(max_num_trials=2000)))
    result, _ = _run(ad, RandomMatcher(RandomConfig(num_matches=200)), tmp_path)
    assert all(v == 0.0 for v in _recall_keys(result.summary["metrics"]).values())


def test_simple_radial_queries_are_undistorted(synthetic_root: Path, tmp_path: Path):
    """A copy of the dataset whose query lists say k = 0.08: the oracle distorts its projections with
    it, so only a solver that undistorts the query pixels recovers the exact pose."""
    root = tmp_path / "aachen"
    shutil.copytree(synthetic_root / "aachen", root)
    for f in (root / "queries").glob("*.txt"):
        f.write_text("".join(line.rsplit(" ", 1)[0] + " 0.08\n" for line in f.read_text().splitlines()))
    ad = AachenAdapter(root, AachenConfig(top_k=2))
    sample = next(iter(ad.samples()))
    assert sample.views[0].meta["camera"]["params"][3] == 0.08
    result, _ = _run(ad, OracleMatcher(), tmp_path)
    m = result.summary["metrics"]
    assert m["all_recall_0.25m_2deg_pct"] == 100.0 and m["all_pos_err_median_m"] < 1e-4


def test_cli_run_acceptance(synthetic_root: Path, tmp_path: Path, capsys):
    assert main(["run", "aachen", "--matcher", "oracle", "--data", str(synthetic_root), "--results",
                 str(tmp_path), "--no-progress", "top_k=1"]) == 0
    assert "aachen/oracle: 3/3 samples" in capsys.readouterr().out


@pytest.mark.slow
def test_sift_is_plausible(synthetic_root: Path, tmp_path: Path):
    from benchmarks.matchers.sift import SiftMatcher

    ad = AachenAdapter(synthetic_root / "aachen", AachenConfig(top_k=2))
    result, records = _run(ad, SiftMatcher(), tmp_path)
    m = result.summary["metrics"]
    assert 0.0 < m["day_recall_5m_10deg_pct"] <= 100.0
    assert any(r.metrics["pos_err_m"] is not None and r.metrics["pos_err_m"] < 0.5 for r in records)
