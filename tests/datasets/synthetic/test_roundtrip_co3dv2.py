"""CO3Dv2 writer -> ``datasets.co3dv2`` reader: PyTorch3D NDC cameras, float16 depth, masks, set lists."""

from __future__ import annotations

import numpy as np

from datasets.co3dv2 import Co3dDataset, check, read_depth
from datasets.synthetic.gt import gt_correspondences
from datasets.synthetic.writers import co3dv2


def test_co3dv2_round_trip(tmp_path, bank, record, load_rgb):
    recs = record(co3dv2)
    cfg = co3dv2.Config(categories=("apple", "teddybear"), n_sequences=2, n_frames=3, long_side=64,
                        short_side=48)
    co3dv2.write(tmp_path, np.random.default_rng(3), bank, cfg)
    ds = Co3dDataset(tmp_path)
    assert ds.categories() == ["apple", "teddybear"]
    summary = check(tmp_path)  # validates annotations, image sizes and set lists
    assert (summary["categories"], summary["sequences"], summary["views"]) == (2, 4, 12)
    assert summary["set_list_entries"] == 2 * 12  # fewview_dev and fewview_test
    k = 0
    for cat in cfg.categories:
        names = [f.sequence_name for f in ds.frames(cat)]
        order = list(dict.fromkeys(names))  # file order = render order
        assert sorted(order) == ds.sequence_names(cat)
        anns = ds.sequence_annotations(cat)
        test = ds.set_list(cat, "fewview_dev")["test"]
        assert len(test) == cfg.n_sequences * cfg.n_frames
        for si, name in enumerate(order):
            seq = ds.sequence(cat, name)
            assert anns[name].viewpoint_quality_score > 0.5
            for v in seq.views:
                rec = recs[k]
                k += 1
                w, h = (64, 48) if si % 2 == 0 else (48, 64)
                assert (v.width, v.height) == (w, h) == load_rgb(v.image_path).shape[1::-1]
                np.testing.assert_allclose(v.K, rec.K, rtol=0, atol=1e-9)
                np.testing.assert_allclose(v.cam_from_world, rec.cam_from_world, atol=1e-12)
                depth = read_depth(v.depth_path, v.meta["depth_scale_adjustment"])
                ok = rec.render.valid
                np.testing.assert_allclose(depth[ok], rec.render.depth[ok], rtol=2 ** -11)  # float16
                mask = load_rgb(tmp_path / v.meta["mask_path"])[..., 0] > 127
                np.testing.assert_array_equal(mask, rec.render.object_id == 1)
                assert mask.any()
    assert k == len(recs)
    # correspondences from the reader's data agree with the renderer's to float16 depth precision
    seq = ds.sequence("apple", list(dict.fromkeys(f.sequence_name for f in ds.frames("apple")))[0])
    v0, v1 = seq.views[0], seq.views[1]
    a0, a1 = gt_correspondences(read_depth(v0.depth_path), v0.K, v0.cam_from_world, read_depth(v1.depth_path),
                                v1.K, v1.cam_from_world)
    b0, b1 = gt_correspondences(recs[0].render.depth, recs[0].K, recs[0].cam_from_world, recs[1].render.depth,
                                recs[1].K, recs[1].cam_from_world)
    common = {tuple(p): i for i, p in enumerate(b0)}
    pairs = [(i, common[tuple(p)]) for i, p in enumerate(a0) if tuple(p) in common]
    assert len(pairs) > 0.95 * len(b0) > 100
    ia, ib = np.array(pairs).T
    assert np.abs(a1[ia] - b1[ib]).max() < 0.1
