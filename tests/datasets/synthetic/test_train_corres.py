"""Counter-based randomness, GT correspondence sampling and colour jitter of the training pipeline."""

from __future__ import annotations

import numpy as np
import torch

from datasets.synthetic.geometry import intrinsics, look_at
from datasets.synthetic.train_corres import (
    color_jitter,
    hash_scores,
    hash_uniform,
    sample_correspondences,
    to_network_input,
)


def test_hash_is_per_row_and_well_spread():
    keys = torch.tensor([5, 123456789, 1 << 61], dtype=torch.int64)
    full = hash_scores(keys, 0, 1000)
    for k in range(3):
        assert torch.equal(hash_scores(keys[k:k + 1], 0, 1000)[0], full[k])  # batch-independent
    assert not torch.equal(hash_scores(keys, 1, 1000), full)  # streams differ
    assert int(full.min()) >= 0 and int(full.max()) < (1 << 62)
    assert len(torch.unique(full)) == full.numel()
    u = hash_uniform(keys, 3, 20000)
    assert abs(float(u.mean()) - 0.5) < 0.01 and float(u.min()) >= 0 and float(u.max()) < 1


def _plane_pair(h=24, w=32):
    """Two cameras over the plane z = 0 (every pixel hits it): pointmaps, validity, K, poses."""
    K = intrinsics(30.0, 30.0, (w - 1) / 2, (h - 1) / 2)
    poses = [look_at([0.0, -0.2, 2.0], [0, 0, 0]), look_at([0.3, -0.1, 2.2], [0.05, 0, 0], roll_deg=10)]
    pts, valid = [], []
    for P in poses:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        ray = np.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones_like(xs)], -1)
        R, t = P[:3, :3], P[:3, 3]
        o = -R.T @ t
        d = ray @ R
        s = -o[2] / d[..., 2]
        pts.append(o + s[..., None] * d)
        valid.append(s > 0)
    def f(a):
        return torch.tensor(np.stack(a), dtype=torch.float32)

    return (f([pts[0]]), torch.tensor(valid[0])[None], f([K]), f([poses[0]]), f([pts[1]]),
            torch.tensor(valid[1])[None], f([K]), f([poses[1]]))


def test_positives_are_mutual_and_counted():
    p1, v1, K1, P1, p2, v2, K2, P2 = _plane_pair()
    key = torch.tensor([42])
    c1, c2, vc, nrec = sample_correspondences(p1, v1, K1, P1, p2, v2, K2, P2, key, 200, 0.5)
    assert c1.shape == c2.shape == (1, 200, 2) and vc.shape == (1, 200)
    assert int(nrec[0]) > 100 and int(vc.sum()) == 100
    ok = vc[0]
    # the matched 3D points coincide (same plane point up to a pixel footprint of ~7 cm)
    X1 = p1[0][c1[0, ok, 1], c1[0, ok, 0]]
    X2 = p2[0][c2[0, ok, 1], c2[0, ok, 0]]
    assert float((X1 - X2).norm(dim=-1).max()) < 0.1
    # positives are distinct pixels; negatives are non-reciprocal ones
    lin = c1[0, ok, 1] * 32 + c1[0, ok, 0]
    assert len(torch.unique(lin)) == 100
    none = sample_correspondences(p1, v1, K1, P1, p2, v2, K2, P2, key, 200, 1.0)[2]
    assert not bool(none.any())
    every = sample_correspondences(p1, v1, K1, P1, p2, v2, K2, P2, key, 10000, 0.0)
    assert int(every[2].sum()) == int(every[3][0])  # fewer positives than slots: all of them, then padding


def test_color_jitter_identity_and_brightness():
    img = torch.rand(2, 3, 8, 8)
    same = color_jitter(img, torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 2))
    torch.testing.assert_close(same, img, atol=1e-5, rtol=0)
    dark = color_jitter(img, torch.tensor([[0.5, 1.0, 1.0, 0.0]] * 2))
    torch.testing.assert_close(dark, img * 0.5, atol=1e-5, rtol=0)
    grey = color_jitter(img, torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 2))
    assert float((grey[:, 0] - grey[:, 1]).abs().max()) < 1e-5
    hue = color_jitter(img, torch.tensor([[1.0, 1.0, 1.0, 0.25]] * 2))
    assert float((hue - img).abs().mean()) > 0.01


def test_network_input_convention():
    x = to_network_input(torch.tensor([0.0, 1.0, 0.5, 0.2]))
    expected = (np.round(np.array([0.0, 1.0, 0.5, 0.2]) * 255) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-6)
