"""``mast3r.fast`` on CPU: conversion leaves the original alone, outputs stay float32 and close."""

from __future__ import annotations

import pytest
import torch

from mast3r.fast import CastIO, FastOptions, make_fast
from mast3r.model import Mast3r


def test_make_fast_keeps_the_original_and_agrees(small_model, forward_ref):
    ref = forward_ref["p2"]
    a, b = torch.from_numpy(ref["view1_img"]), torch.from_numpy(ref["view2_img"])
    before = {k: v.clone() for k, v in list(small_model.state_dict().items())[:5]}
    # bf16 backbone; the (CPU-slow) DPT in float32 keeps this test fast, the GPU tests cover bf16 heads
    fast = make_fast(small_model, FastOptions(dtype=torch.bfloat16, dpt_dtype=None, head_dtype=None))
    assert small_model.backbone_dtype == torch.float32 and fast.backbone_dtype == torch.bfloat16
    assert all(torch.equal(v, small_model.state_dict()[k]) for k, v in before.items())
    assert not small_model.downstream_head1.dpt.channels_last_tokens
    assert isinstance(fast.downstream_head1.head_local_features, CastIO)
    with torch.inference_mode():
        exact, out = small_model(a, b), fast(a, b)
    for got, want in ((out.view0, exact.view0), (out.view1, exact.view1)):
        for name, t in got.items():
            assert t.dtype == torch.float32 and torch.isfinite(t).all(), name
        rel = (got.pts3d - want.pts3d).norm() / want.pts3d.norm()
        assert 0 < rel < 0.05
        assert (got.desc * want.desc).sum(-1).median() > 0.99


def test_channels_last_token_maps_equal_the_reference_layout(small_model, forward_ref):
    ref = forward_ref["p3"]  # odd token grid: the DPT crop path
    a, b = torch.from_numpy(ref["view1_img"]), torch.from_numpy(ref["view2_img"])
    fast = make_fast(small_model, FastOptions(dtype=torch.float32, head_dtype=None, dpt_dtype=None))
    with torch.inference_mode():
        exact, out = small_model(a, b), fast(a, b)
    torch.testing.assert_close(out.view1.pts3d, exact.view1.pts3d, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.view0.desc, exact.view0.desc, rtol=0, atol=1e-6)


def test_fast_options_and_castio():
    with pytest.raises(ValueError, match="compile"):
        FastOptions(compile="everything")
    with pytest.raises(ValueError, match="dtype"):
        FastOptions(head_dtype=torch.int8)
    assert FastOptions().describe()["dtype"] == "bfloat16"
    lin = torch.nn.Linear(3, 2)
    cast = CastIO(lin, torch.bfloat16)
    assert lin.weight.dtype == torch.bfloat16
    assert cast(torch.ones(4, 3)).dtype == torch.float32
    seen = []
    probe = CastIO(torch.nn.Module(), torch.float16)
    probe.module.forward = lambda xs, size: seen.append([x.dtype for x in xs]) or torch.zeros(1)  # type: ignore[method-assign]
    probe([torch.ones(1), torch.ones(1, dtype=torch.float64)], (1, 1))
    assert seen == [[torch.float16, torch.float16]]
    assert isinstance(Mast3r, type)
