"""The torch batched ray caster against the exact numpy renderer on the same scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasets.synthetic.cameras import random_intrinsics, room_viewpoint
from datasets.synthetic.geometry import look_at
from datasets.synthetic.render import render
from datasets.synthetic.scene import room_scene, tabletop_scene
from datasets.synthetic.train_render import TorchTextures, pack_scenes, render_views

W, H = 64, 48


@pytest.fixture(scope="module")
def views(bank):
    rng = np.random.default_rng(11)
    scenes = [room_scene(rng, bank), tabletop_scene(rng, bank, room=False), tabletop_scene(rng, bank)]
    K = random_intrinsics(rng, W, H, pp_jitter=3.0)
    poses = [room_viewpoint(rng, scenes[0], K, W, H), look_at([0.7, -0.8, 0.5], [0, 0, 0.1], roll_deg=7),
             look_at([-0.6, 0.5, 0.7], [0.05, 0, 0.05])]
    tex = TorchTextures(bank)
    # a tiny chunk budget: several chunks, padded primitive lists of different lengths
    r = render_views(tex, pack_scenes(scenes), torch.tensor([0, 1, 2]),
                     torch.tensor(np.stack([K] * 3), dtype=torch.float32),
                     torch.tensor(np.stack(poses), dtype=torch.float32), H, W, max_elems=1 << 14)
    refs = [render(s, K, P, W, H) for s, P in zip(scenes, poses)]
    return r, refs, K, poses


def test_depth_and_validity_match_numpy(views):
    r, refs, _, _ = views
    for k, ref in enumerate(refs):
        valid = r.valid[k].numpy()
        assert (valid == ref.valid).mean() >= 0.995
        both = valid & ref.valid
        d = r.depth[k].numpy()
        rel = np.abs(d[both] - ref.depth[both]) / ref.depth[both]
        assert (rel <= 1e-4).mean() >= 0.995  # the rest: edge pixels where float32 picks the other surface
        assert np.all(d[~valid] == 0)
    assert refs[1].valid.mean() < 0.9  # the open table-top has background (sky) pixels


def test_pts3d_are_depth_backprojected(views):
    r, _, K, poses = views
    for k, P in enumerate(poses):
        pts = r.pts3d[k].numpy().astype(np.float64)
        valid = r.valid[k].numpy()
        cam = pts[valid] @ P[:3, :3].T + P[:3, 3]
        np.testing.assert_allclose(cam[:, 2], r.depth[k].numpy()[valid], rtol=1e-4)
        uv = cam[:, :2] / cam[:, 2:3] * [K[0, 0], K[1, 1]] + K[:2, 2]
        ys, xs = np.nonzero(valid)
        np.testing.assert_allclose(uv, np.stack([xs, ys], 1), atol=2e-3)


def test_colours_match_numpy(views):
    r, refs, _, _ = views
    for k, ref in enumerate(refs):
        img = np.clip(np.rint(r.rgb[k].numpy() * 255), 0, 255)
        diff = np.abs(img - ref.image.astype(np.float64))
        assert diff.mean() < 1.0
        assert (diff > 8).mean() < 0.01
