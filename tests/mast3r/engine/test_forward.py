"""The engine's forward: one pair forward for every caller, fast-path options, batch padding,
nearest network pixels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mast3r.config import ModelConfig
from mast3r.engine.forward import amp_dtype, fast_options, nearest_net_pixels, padded_batch, pair_forward
from mast3r.model import Mast3r
from mast3r.preprocess import preprocess_pil

TINY = dict(enc_embed_dim=32, enc_depth=1, enc_num_heads=1, dec_embed_dim=32, dec_depth=10, dec_num_heads=1)


@pytest.fixture(scope="module")
def tiny_model() -> Mast3r:
    torch.manual_seed(0)
    return Mast3r.from_config(replace(ModelConfig(), **TINY), device="cpu").requires_grad_(False).eval()


def test_pair_forward_is_the_models_forward_and_reuses_the_encoding(tiny_model):
    g = torch.Generator().manual_seed(1)
    img0, img1 = torch.randn(2, 3, 32, 48, generator=g), torch.randn(2, 3, 32, 48, generator=g)
    with torch.inference_mode():
        out, back = pair_forward(tiny_model, img0, img1, need_own=True, amp=None)
        ref = tiny_model(img0, img1)
        swapped = tiny_model(img1, img0)
    for name, t in ref.view0.items():
        torch.testing.assert_close(getattr(out.view0, name), t, rtol=0, atol=0)
        torch.testing.assert_close(getattr(back.view0, name), getattr(swapped.view0, name), rtol=1e-5,
                                   atol=1e-5)
    assert pair_forward(tiny_model, img0, img1, need_own=False, amp=None)[1] is None


def test_fast_options_one_rule():
    opts = fast_options("bf16", compile="blocks", gelu="tanh-fused")
    assert (opts.dtype, opts.head_dtype, opts.dpt_dtype) == (torch.bfloat16,) * 3
    assert (opts.compile, opts.gelu, opts.compile_mode) == ("blocks", "tanh-fused", None)
    heads = fast_options("fp16", head_fp32=True)
    assert (heads.dtype, heads.head_dtype, heads.dpt_dtype) == (torch.float16, None, None)
    mlp = fast_options("fp16", mlp_fp32=True)
    assert (mlp.head_dtype, mlp.dpt_dtype) == (None, torch.float16)
    with pytest.raises(ValueError, match="bf16 or fp16"):
        fast_options("fp32")
    assert amp_dtype("fp32") is None and amp_dtype("fp16") is torch.float16
    with pytest.raises(ValueError, match="precision must be one of"):
        amp_dtype("int8")


def test_padded_batch_is_the_next_power_of_two_up_to_the_batch_size():
    assert [padded_batch(n, 8) for n in (1, 2, 3, 5, 7, 8)] == [1, 2, 4, 8, 8, 8]
    assert padded_batch(3, 2) == 3  # never fewer than the real pairs


def test_nearest_net_pixels_round_and_clip():
    import PIL.Image

    prep = preprocess_pil(PIL.Image.new("RGB", (100, 80)), 64, False)
    h, w = prep.true_shape
    xy = prep.net_to_orig(np.array([[0, 0], [w - 1, h - 1], [5, 7]]))
    far = np.array([[-50.0, -50.0], [1e4, 1e4]])
    got = nearest_net_pixels(prep, np.concatenate([xy, far]))
    assert got.tolist() == [[0, 0], [w - 1, h - 1], [5, 7], [0, 0], [w - 1, h - 1]]
