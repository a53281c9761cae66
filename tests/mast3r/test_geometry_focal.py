"""Batched torch Weiszfeld focal (``estimate_focals_torch``) against the single-map estimate."""

from __future__ import annotations

import pytest
import torch

from mast3r.geometry import estimate_focal, estimate_focals_torch


def test_batched_torch_weiszfeld_equals_the_single_map_estimate():
    gen = torch.Generator().manual_seed(0)
    maps = []
    for f in (300.0, 520.0, 800.0):
        h, w = 24, 32
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
        z = 2 + torch.rand(h, w, generator=gen, dtype=torch.float64)
        pts = torch.stack([(xs - w / 2) * z / f, (ys - h / 2) * z / f, z], -1)
        maps.append(pts + 1e-3 * torch.randn(pts.shape, generator=gen, dtype=torch.float64))
    batch = torch.stack(maps).float()
    got = estimate_focals_torch(batch)
    assert got.shape == (3,) and got.dtype == torch.float64
    for g, m, f in zip(got.tolist(), batch, (300.0, 520.0, 800.0)):
        assert g == pytest.approx(estimate_focal(m), rel=1e-12)
        assert g == pytest.approx(estimate_focal(m.numpy()), rel=1e-9) and g == pytest.approx(f, rel=0.05)
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        estimate_focals_torch(batch[0])
