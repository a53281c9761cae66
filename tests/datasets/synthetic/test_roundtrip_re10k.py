"""RealEstate10K writer -> ``datasets.re10k`` reader: normalised intrinsics, poses, lossless frames."""

from __future__ import annotations

import numpy as np

from datasets.re10k import Re10kDataset, check
from datasets.synthetic.gt import gt_correspondences
from datasets.synthetic.sidecar import Sidecar
from datasets.synthetic.writers import re10k


def test_re10k_round_trip(tmp_path, bank, record, load_rgb):
    recs = record(re10k)
    cfg = re10k.Config(n_clips=2, n_frames=4, width=64, height=36)
    re10k.write(tmp_path, np.random.default_rng(11), bank, cfg)
    assert check(tmp_path)["views"] == 8
    ds = Re10kDataset(tmp_path, "test")
    seqs = ds.sequences()
    assert len(seqs) == 2
    by_first_pose = {}
    for seq in seqs:
        sq = ds.sequence(seq)
        assert sq.url.startswith("https://www.youtube.com/watch?v=")
        by_first_pose[seq] = sq
    side = Sidecar(tmp_path)
    k = 0
    for rec_clip in (recs[:4], recs[4:]):
        sq = next(s for s in by_first_pose.values()
                  if np.allclose(s.views[0].cam_from_world, rec_clip[0].cam_from_world, atol=1e-12))
        ts = [c.timestamp_us for c in sq.cameras]
        assert ts == sorted(ts) and len(set(ts)) == 4
        for v, rec in zip(sq.views, rec_clip):
            assert (v.width, v.height) == (64, 36)
            np.testing.assert_allclose(v.K, rec.K, rtol=1e-14, atol=0)
            np.testing.assert_allclose(v.cam_from_world, rec.cam_from_world, atol=1e-15)
            np.testing.assert_array_equal(load_rgb(v.image_path), rec.render.image)  # PNG: lossless
            np.testing.assert_array_equal(side.depth(v.image_path), rec.render.depth)  # exact sidecar
            k += 1
        v0, v1 = sq.views[0], sq.views[3]
        a0, a1 = gt_correspondences(side.depth(v0.image_path), v0.K, v0.cam_from_world,
                                    side.depth(v1.image_path), v1.K, v1.cam_from_world)
        b0, b1 = gt_correspondences(rec_clip[0].render.depth, rec_clip[0].K, rec_clip[0].cam_from_world,
                                    rec_clip[3].render.depth, rec_clip[3].K, rec_clip[3].cam_from_world)
        np.testing.assert_array_equal(a0, b0)
        np.testing.assert_allclose(a1, b1, atol=1e-9)
    assert k == 8
    assert len(side.pairs) == 2 * 6  # all pairs of each 4-frame clip
