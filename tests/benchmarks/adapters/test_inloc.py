"""InLoc adapter on the synthetic suite: XYZcut lifting through the after-GICP alignment, buildings
from the GT only, oracle / random / sift end to end, export re-scored by ``mast3r-bench score``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.adapters._ransac import RansacOptions
from benchmarks.adapters.inloc import InLocAdapter, InLocConfig, InLocEstimatorConfig
from benchmarks.cli import main
from benchmarks.matchers.doubles import OracleMatcher, RandomConfig, RandomMatcher
from benchmarks.runner import Runner
from benchmarks.store import RecordStore
from datasets._parse import load_mat
from datasets.synthetic.gt import backproject
from datasets.synthetic.sidecar import Sidecar


def _run(adapter: InLocAdapter, matcher, tmp_path: Path):
    result = Runner(adapter, matcher, adapter.config, adapter.estimator, results_root=tmp_path / "results",
                    data_root=adapter.root.parent, progress=False).run()
    return result, list(RecordStore(result.run_dir.records_path).load().values())


def _recall_keys(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if "_recall_" in k}


def test_samples_pairs_and_buildings_from_gt(synthetic_root: Path, tmp_path: Path):
    ad = InLocAdapter(synthetic_root / "inloc", InLocConfig(top_k=3))
    samples = list(ad.samples())
    assert [s.meta["condition"] for s in samples] == ["DUC1", "DUC2"]
    for s in samples:
        assert s.key.startswith("query/iphone7/") and len(s.views) == 4
        assert ad.pairs(s) == [(0, 1), (0, 2), (0, 3)]
        cut = s.views[1]
        assert (cut.width, cut.height) == (128, 96) and cut.meta["building"] in ("DUC1", "DUC2")
        q = s.views[0]
        f = max(q.width, q.height) * 28 / 36  # the fixed iPhone focal, scaled to the image
        np.testing.assert_allclose(q.K, [[f, 0, q.width / 2 - 0.5], [0, f, q.height / 2 - 0.5], [0, 0, 1]])
    # without a building column the condition is unknown (the method is never told the building)
    gt = tmp_path / "gt.txt"
    gt.write_text("".join(" ".join(line.split()[:8]) + "\n"
                          for line in (ad.gt_path()).read_text().splitlines()))
    plain = InLocAdapter(ad.root, InLocConfig(top_k=1, gt_file=str(gt)))
    assert [s.meta["condition"] for s in plain.samples()] == [None, None]


def test_lift_applies_the_after_gicp_alignment(synthetic_root: Path):
    root = synthetic_root / "inloc"
    ad = InLocAdapter(root, InLocConfig(top_k=1))
    cut = next(iter(ad.samples())).views[1]
    xyz_scan = load_mat(Path(str(cut.image_path) + ".mat"), ["XYZcut"])["XYZcut"].astype(np.float64)
    trans = root / "database" / "alignments" / cut.meta["building"] / "transformations" / \
        f"DUC_trans_{cut.meta['scan']}.txt"
    rows = [[float(v) for v in line.split()] for line in trans.read_text().splitlines()[7:11]]
    P_after = np.array(rows)  # hloc reads the after-GICP matrix from 0-based lines 7-10
    pix = np.array([[10.0, 20.0], [64.0, 48.0], [100.0, 7.0]])
    xyz, valid = ad.lift(cut, pix)
    assert valid.all()
    x, y = pix[:, 0].astype(int), pix[:, 1].astype(int)
    hand = xyz_scan[y, x] @ P_after[:3, :3].T + P_after[:3, 3]
    np.testing.assert_allclose(xyz, hand, atol=1e-9)
    # ... and the world points are the surface the cutout sees (sidecar depth and pose)
    side = Sidecar(root)
    truth = side.truth(cut.image_path)
    world = backproject(side.depth(cut.image_path), truth.K, truth.cam_from_world)[y, x]
    np.testing.assert_allclose(xyz, world, atol=1e-4)
    # sub-pixel positions interpolate between neighbours
    mid, valid = ad.lift(cut, np.array([[10.5, 20.0]]))
    assert valid.all()
    np.testing.assert_allclose(mid[0], ad.lift(cut, np.array([[10.0, 20.0], [11.0, 20.0]]))[0].mean(0))
    near = InLocAdapter(root, InLocConfig(top_k=1), InLocEstimatorConfig(xyz_interp="nearest"))
    np.testing.assert_array_equal(near.lift(cut, np.array([[10.4, 20.0]]))[0], xyz[:1])


def test_gt_correspondences_exact_and_empty_across_buildings(synthetic_root: Path):
    ad = InLocAdapter(synthetic_root / "inloc", InLocConfig(top_k=8))
    sample = next(iter(ad.samples()))
    q = sample.views[0]
    for j, cut in enumerate(sample.views[1:], start=1):
        corrs = ad.gt_correspondences(sample, 0, j)
        if cut.meta["building"] != sample.meta["condition"]:
            assert len(corrs) == 0
            continue
        if len(corrs) == 0:
            continue
        xyz, valid = ad.lift(cut, corrs.pts1)
        assert valid.all()
        T = sample.gt["cam_from_world"]
        cam = xyz @ T[:3, :3].T + T[:3, 3]
        proj = cam[:, :2] / cam[:, 2:] @ q.K[:2, :2].T + q.K[:2, 2]
        np.testing.assert_allclose(proj, corrs.pts0, atol=1e-3)
    assert any(v.meta["building"] != sample.meta["condition"] for v in sample.views[1:])


@pytest.mark.parametrize("top_k", [1, 20])
def test_oracle_perfect_export_and_score_reproduce(synthetic_root: Path, tmp_path: Path, top_k: int):
    ad = InLocAdapter(synthetic_root / "inloc", InLocConfig(top_k=top_k))
    result, records = _run(ad, OracleMatcher(), tmp_path)
    m = result.summary["metrics"]
    assert m["num_queries"] == 2 and m["failure_pct"] == 0.0
    recalls = _recall_keys(m)
    assert len(recalls) == 9 and all(v == 100.0 for v in recalls.values())
    assert m["all_pos_err_median_m"] < 1e-4
    (upload,) = ad.export(records, tmp_path / "export")
    assert upload.name == "InLoc_eval_mast3r-bench.txt"
    assert [line.split()[0] for line in upload.read_text().splitlines()] == ["IMG_2600.JPG", "IMG_4476.JPG"]
    out = tmp_path / "score.json"
    assert main(["score", "inloc", "--gt", str(ad.gt_path()), "--pred", str(upload), "--json", str(out)]) == 0
    scored = json.loads(out.read_text())
    assert {f"{c}_recall_{t:g}m_{r:g}deg_pct": p for c, rows in scored.items() for t, r, p in rows} == recalls


def test_random_localises_nothing(synthetic_root: Path, tmp_path: Path):
    ad = InLocAdapter(synthetic_root / "inloc", InLocConfig(top_k=1),
                      InLocEstimatorConfig(ransac=RansacOptions(max_num_trials=2000)))
    result, _ = _run(ad, RandomMatcher(RandomConfig(num_matches=200)), tmp_path)
    assert all(v == 0.0 for v in _recall_keys(result.summary["metrics"]).values())


def test_cli_run_acceptance(synthetic_root: Path, tmp_path: Path, capsys):
    assert main(["run", "inloc", "--matcher", "oracle", "--data", str(synthetic_root), "--results",
                 str(tmp_path), "--no-progress", "top_k=2"]) == 0
    assert "inloc/oracle: 2/2 samples (2 computed now, 0 failures" in capsys.readouterr().out


@pytest.mark.slow
def test_sift_is_plausible(synthetic_root: Path, tmp_path: Path):
    from benchmarks.matchers.sift import SiftMatcher

    ad = InLocAdapter(synthetic_root / "inloc", InLocConfig(top_k=2))
    result, records = _run(ad, SiftMatcher(), tmp_path)
    m = result.summary["metrics"]
    assert 0.0 < m["all_recall_1m_10deg_pct"] <= 100.0
