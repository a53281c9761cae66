"""DTU writer -> ``datasets.dtu`` reader: MVSNet cams (mm), pair.txt, STL points, ObsMask, plane."""

from __future__ import annotations

import numpy as np

from datasets.dtu import DtuDataset, find_gt_root, read_dtu_gt
from datasets.synthetic.gt import project
from datasets.synthetic.sidecar import Sidecar
from datasets.synthetic.writers import dtu


def test_dtu_round_trip(tmp_path, bank, record, load_rgb):
    recs = record(dtu)
    cfg = dtu.PRESETS["small"]
    dtu.write(tmp_path, np.random.default_rng(5), bank, cfg)
    ds = DtuDataset(tmp_path)
    assert ds.layout == "mvsnet" and ds.scans() == [1]
    scan = ds.scan(1)
    assert len(scan.views) == len(recs) == cfg.n_views
    side = Sidecar(tmp_path)
    depths = []
    for v, rec in zip(scan.views, recs):
        assert (v.width, v.height) == (cfg.width, cfg.height)
        np.testing.assert_array_equal(v.K, rec.K)
        expected = rec.cam_from_world.copy()
        expected[:3, 3] *= 1000.0  # metres -> millimetres
        np.testing.assert_allclose(v.cam_from_world, expected, rtol=0, atol=1e-9)
        d = side.depth(v.image_path)
        np.testing.assert_allclose(d, rec.render.depth.astype(np.float64) * 1000.0, rtol=1e-7)
        lo, step = scan.depth_ranges[v.meta["view"]]
        assert lo <= d[d > 0].min() and d.max() <= lo + 192 * step
        depths.append(d)
    assert sorted(scan.pairs) == list(range(cfg.n_views))
    assert all(len(srcs) == cfg.n_views - 1 for srcs in scan.pairs.values())
    gt = read_dtu_gt(find_gt_root(tmp_path), 1)
    stl = gt.stl_points
    assert len(stl) > 1000
    assert gt.in_obs_mask(stl).all() and gt.in_bounds(stl, patch=0.0).all()
    # every STL point is a surface point seen by some view: it re-projects onto a pixel centre there
    sample = stl[np.random.default_rng(0).choice(len(stl), 300, replace=False)]
    best = np.full(len(sample), np.inf)
    for v, d in zip(scan.views, depths):
        pix, z = project(sample, v.K, v.cam_from_world)
        xi, yi = np.round(pix[:, 0]).astype(int), np.round(pix[:, 1]).astype(int)
        ok = (xi >= 0) & (xi < v.width) & (yi >= 0) & (yi < v.height) & (z > 0)
        err = np.full(len(sample), np.inf)
        err[ok] = np.abs(d[yi[ok], xi[ok]] - z[ok]) + np.hypot(pix[ok, 0] - xi[ok], pix[ok, 1] - yi[ok])
        best = np.minimum(best, err)
    assert best.max() < 1e-2  # mm + px; float32 PLY coordinates
    # the ground plane: table points (z = 0) are not above it, points 1 mm higher are
    assert not gt.above_plane(np.array([[0.0, 0.0, 0.0]]))[0]
    assert gt.above_plane(np.array([[0.0, 0.0, 1.0]]))[0]
    assert gt.above_plane(stl).any() and (~gt.above_plane(stl)).any()
