"""InLoc writer -> ``datasets.inloc`` reader: query intrinsics, cutout XYZcut, alignments, pairs."""

from __future__ import annotations

import numpy as np

from datasets.inloc import InLocDataset, check, read_all_transformations, read_trans_file
from datasets.records import pose_matrix, quat_wxyz_to_R
from datasets.synthetic.gt import backproject
from datasets.synthetic.sidecar import Sidecar
from datasets.synthetic.writers import inloc


def test_inloc_round_trip(tmp_path, bank, record, load_rgb):
    recs = record(inloc)
    cfg = inloc.PRESETS["small"]
    inloc.write(tmp_path, np.random.default_rng(4), bank, cfg)
    counts = check(tmp_path, images=False)
    n_cut = len(range(0, 360, cfg.yaw_step)) * len(cfg.pitches) * cfg.n_scans
    assert (counts["queries"], counts["database_images_DUC1"], counts["database_images_DUC2"]) == (
        cfg.n_queries, n_cut, n_cut)
    ds = InLocDataset(tmp_path, cutout_size=(cfg.cutout_width, cfg.cutout_height))
    side = Sidecar(tmp_path)
    cut_recs, q_recs = recs[: 2 * n_cut], recs[2 * n_cut:]
    for v, rec in zip(ds.cutouts(), sorted(cut_recs, key=lambda r: _name_of(side, r))):
        assert side.truth(v.image_path).meta["building"] == v.meta["building"]
        xyz = ds.cutout_xyz_world(v)
        ref = backproject(rec.render.depth, rec.K, rec.cam_from_world)
        np.testing.assert_allclose(xyz, ref, atol=2e-5)  # float32 XYZcut in the scan frame
        np.testing.assert_array_equal(load_rgb(v.image_path).shape, (cfg.cutout_height, cfg.cutout_width, 3))
        scan_dir = tmp_path / "database" / "alignments" / v.meta["building"]
        per_scan = read_trans_file(scan_dir / "transformations" / f"DUC_trans_{v.meta['scan']}.txt")
        np.testing.assert_array_equal(per_scan.after,
                                      read_all_transformations(scan_dir / "all_transformations.txt")[
                                          v.meta["scan"]].after)
        # hloc reads the after-GICP matrix from 0-based lines 7-10 of the per-scan file
        lines = (scan_dir / "transformations" / f"DUC_trans_{v.meta['scan']}.txt").read_text().splitlines()
        np.testing.assert_array_equal(np.array([[float(x) for x in ln.split()] for ln in lines[7:11]]),
                                      per_scan.after)
    gt = {}
    for line in (tmp_path / "_synthetic" / "query_poses.txt").read_text().splitlines():
        t = line.split()
        v = np.array([float(x) for x in t[1:8]])
        gt[t[0]] = (pose_matrix(quat_wxyz_to_R(v[:4]), v[4:]), t[8])
    queries = ds.queries()
    for q, rec in zip(queries, sorted(q_recs, key=lambda r: _name_of(side, r))):
        assert (q.width, q.height) == (cfg.query_width, cfg.query_height)
        np.testing.assert_allclose(q.K, rec.K, atol=1e-12)  # hloc's f = 4032 * 28 / 36 scaled, centred
        np.testing.assert_allclose(gt[q.name][0], rec.cam_from_world, atol=1e-12)
        assert gt[q.name][1] == side.truth(q.image_path).meta["building"]
    pairs = ds.pairs(tmp_path / inloc.PAIRS)
    assert set(pairs) == {q.name for q in queries}
    for q in queries:
        building = gt[q.name][1]
        assert pairs[q.name][0][0].startswith(f"database/cutouts/{building}/")


def _name_of(side: Sidecar, rec) -> str:
    """Sidecar key of the recorded view (matched by pose)."""
    return next(k for k, t in side.views.items() if np.array_equal(t.cam_from_world, rec.cam_from_world))
