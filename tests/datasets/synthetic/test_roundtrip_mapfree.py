"""Map-free writer -> ``datasets.mapfree`` reader: poses, intrinsics, depth, correspondences."""

from __future__ import annotations

import numpy as np

from datasets.mapfree import MapFreeDataset, read_depth_png
from datasets.synthetic.geometry import invert_pose, relative_pose, viewpoint_angle_deg, viewpoint_bucket
from datasets.synthetic.gt import epipolar_distance, gt_correspondences
from datasets.synthetic.sidecar import Sidecar
from datasets.synthetic.writers import mapfree


def test_mapfree_round_trip(tmp_path, bank, record, load_rgb):
    recs = record(mapfree)
    cfg = mapfree.PRESETS["small"]
    mapfree.write(tmp_path, np.random.default_rng(7), bank, cfg)
    ds = MapFreeDataset(tmp_path, "val", depth="dptkitti")
    assert ds.scenes() == ["s00460"]
    sc = ds.scene("s00460")
    assert len(sc.views) == len(recs) == 1 + cfg.n_query_frames
    assert sc.reference is sc.views[0] and sc.queries == sc.views[1:]
    world_from_ref = invert_pose(recs[0].cam_from_world)
    side = Sidecar.find(sc.views[0].image_path)
    for v, rec in zip(sc.views, recs):
        assert (v.width, v.height) == (cfg.width, cfg.height)
        np.testing.assert_array_equal(v.K, rec.K)  # 6-decimal text of 4-decimal values: exact
        np.testing.assert_allclose(v.cam_from_world, rec.cam_from_world @ world_from_ref, atol=1e-12)
        depth = read_depth_png(v.depth_path)
        ok = rec.render.valid
        assert np.abs(depth[ok] - rec.render.depth[ok]).max() <= 0.0005 + 1e-6  # millimetre PNG
        assert np.all(depth[~ok] == 0)
        assert np.abs(load_rgb(v.image_path).astype(int) - rec.render.image).mean() < 6  # JPEG q95, 4:2:0
        truth = side.truth(v.image_path)
        np.testing.assert_allclose(truth.cam_from_world, v.cam_from_world, atol=1e-12)
    np.testing.assert_array_equal(sc.views[0].cam_from_world, np.eye(4))
    assert [v.meta["frame"] for v in ds.query_frames(sc)] == [sc.queries[0].meta["frame"],
                                                              sc.queries[5].meta["frame"]]
    # GT correspondences from what the reader exposes vs. from the renderer's exact truth
    ref, q = sc.views[0], sc.views[3]
    r0, r1 = recs[0], recs[3]
    a0, a1 = gt_correspondences(read_depth_png(ref.depth_path), ref.K, ref.cam_from_world,
                                read_depth_png(q.depth_path), q.K, q.cam_from_world)
    b0, b1 = gt_correspondences(r0.render.depth, r0.K, r0.cam_from_world, r1.render.depth, r1.K,
                                r1.cam_from_world)
    assert len(a0) > 100 and abs(len(a0) - len(b0)) <= 0.02 * len(b0)
    common = {tuple(p): i for i, p in enumerate(b0)}
    idx = [(i, common[tuple(p)]) for i, p in enumerate(a0) if tuple(p) in common]
    ia, ib = np.array(idx).T
    assert np.abs(a1[ia] - b1[ib]).max() < 0.05  # only the millimetre depth rounding differs
    T = relative_pose(ref.cam_from_world, q.cam_from_world)
    assert epipolar_distance(a0, a1, ref.K, q.K, T).max() < 1e-3
    # viewpoint angles recorded per pair, from the reference
    pairs = {p["view1"]: p for p in side.pairs}
    for k, v in enumerate(sc.queries):
        p = pairs[f"val/s00460/{v.meta['frame']}"]
        angle = viewpoint_angle_deg(ref.cam_from_world, v.cam_from_world)
        assert p["angle_deg"] == round(angle, 6) and p["bucket"] == viewpoint_bucket(angle)
        assert p["evaluated"] == (k % 5 == 0)
