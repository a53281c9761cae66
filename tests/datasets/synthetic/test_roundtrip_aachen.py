"""Aachen writer -> ``datasets.aachen`` reader: query lists, COLMAP model and tracks, pairs, hidden GT."""

from __future__ import annotations

import numpy as np

from datasets.aachen import AachenDataset, check
from datasets.records import pose_matrix, quat_wxyz_to_R
from datasets.synthetic.gt import gt_correspondences, project, sample_depth
from datasets.synthetic.sidecar import Sidecar
from datasets.synthetic.writers import aachen


def _gt_poses(path):
    out = {}
    for line in path.read_text().splitlines():
        t = line.split()
        v = np.array([float(x) for x in t[1:8]])
        out[t[0]] = pose_matrix(quat_wxyz_to_R(v[:4]), v[4:])
    return out


def test_aachen_round_trip(tmp_path, bank, record, load_rgb):
    recs = record(aachen)
    cfg = aachen.PRESETS["small"]
    aachen.write(tmp_path, np.random.default_rng(2), bank, cfg)
    summary = check(tmp_path)  # query lists, model files (byte sizes), images, pair files
    assert (summary["database_images"], summary["queries_day"], summary["queries_night"]) == (8, 2, 1)
    ds = AachenDataset(tmp_path)
    db_recs, q_recs = recs[: cfg.n_db], recs[cfg.n_db:]
    side = Sidecar(tmp_path)
    db_views = {v.name: v for v in ds.db_views()}
    for t in side.views.values():
        if t.meta["kind"] != "db":
            continue
        v = db_views[t.meta["name"]]
        rec = next(r for r in db_recs if np.allclose(r.cam_from_world, t.cam_from_world, atol=0))
        np.testing.assert_allclose(v.cam_from_world, rec.cam_from_world, atol=1e-12)
        np.testing.assert_allclose(v.K, rec.K, atol=1e-12)  # COLMAP +0.5 removed by the reader
        # every 3D point observation is the exact projection of its point, on the rendered surface
        pts = ds.db_points(v.name)
        assert len(pts.xy) > 50
        pix, z = project(pts.xyz, v.K, v.cam_from_world)
        np.testing.assert_allclose(pix, pts.xy, atol=1e-6)
        near = sample_depth(rec.render.depth, pts.xy)
        assert (np.abs(near - z[:, None]) <= 0.01 * z[:, None]).any(axis=1).all()
    gt = _gt_poses(tmp_path / "_synthetic" / "query_poses.txt")
    queries = ds.queries()
    assert [q.meta["condition"] for q in queries] == ["day", "day", "night"]
    for q, rec in zip(queries, q_recs):
        np.testing.assert_allclose(q.K, rec.K, atol=1e-12)
        np.testing.assert_allclose(gt[q.name], rec.cam_from_world, atol=1e-12)
        image = load_rgb(q.image_path).astype(float)
        if q.meta["condition"] == "night":
            assert image.mean() < 0.6 * rec.render.image.mean()
        else:
            assert np.abs(image - rec.render.image).mean() < 6
    # retrieval: every db image listed once per query, best first by true co-visibility
    pairs = ds.pairs(tmp_path / aachen.HLOC_PAIRS)
    kap = ds.pairs(tmp_path / aachen.KAPTURE_PAIRS)
    for q, rec in zip(queries, q_recs):
        ranked = [db for db, _ in pairs[q.name]]
        assert sorted(ranked) == sorted(db_views) and [db for db, _ in kap[q.name]] == ranked
        top = db_views[ranked[0]]
        p0, _ = gt_correspondences(rec.render.depth, rec.K, rec.cam_from_world, side.depth(top.image_path),
                                   top.K, top.cam_from_world)
        assert len(p0) > 0
