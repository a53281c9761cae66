"""Blocks, DPT and heads against hand-written references and hand-worked values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mast3r.config import ModelConfig
from mast3r.nn.blocks import CrossAttention, DecoderBlock, PatchEmbed, SelfAttention
from mast3r.nn.dpt import DPT
from mast3r.nn.heads import CatMlpDPTHead, DPTHead, LinearHead, _tokens_to_pixels
from mast3r.nn.postprocess import reg_conf, reg_depth, reg_desc
from mast3r.nn.rope import apply_rope, rope_tables

CPU = torch.device("cpu")


def explicit_attention(q, k, v):
    scale = q.shape[-1] ** -0.5
    return torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1) @ v


def test_self_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    attn = SelfAttention(32, num_heads=2)
    x = torch.randn(2, 12, 32)
    rope = rope_tables(3, 4, 16, 100.0, CPU, torch.float32)
    qkv = attn.qkv(x).reshape(2, 12, 3, 2, 16)  # rows of the fused weight are [q; k; v]
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    ref = explicit_attention(apply_rope(q, rope), apply_rope(k, rope), v).transpose(1, 2).reshape(2, 12, 32)
    torch.testing.assert_close(attn(x, rope), attn.proj(ref), atol=1e-5, rtol=1e-5)


def test_cross_attention_uses_query_and_memory_grids():
    torch.manual_seed(1)
    ca = CrossAttention(16, num_heads=1)
    xq, mem = torch.randn(1, 6, 16), torch.randn(1, 4, 16)
    rq = rope_tables(2, 3, 16, 100.0, CPU, torch.float32)
    rk = rope_tables(2, 2, 16, 100.0, CPU, torch.float32)
    q = apply_rope(ca.projq(xq)[:, None], rq)
    k = apply_rope(ca.projk(mem)[:, None], rk)
    ref = ca.proj(explicit_attention(q, k, ca.projv(mem)[:, None])[:, 0])
    torch.testing.assert_close(ca(xq, mem, rq, rk), ref, atol=1e-5, rtol=1e-5)


def test_decoder_block_order_and_memory_norm():
    torch.manual_seed(2)
    blk = DecoderBlock(16, 1, 4.0)
    keys = [k.split(".")[0] for k in blk.state_dict()]
    assert list(dict.fromkeys(keys)) == ["norm1", "attn", "cross_attn", "norm2", "norm3", "mlp", "norm_y"]
    assert (
        blk.norm1.eps == 1e-6 and isinstance(blk.mlp.act, torch.nn.GELU) and blk.mlp.act.approximate == "none"
    )
    x, y = torch.randn(1, 4, 16), torch.randn(1, 4, 16)
    r = rope_tables(2, 2, 16, 100.0, CPU, torch.float32)
    x1 = x + blk.attn(blk.norm1(x), r)
    x2 = x1 + blk.cross_attn(blk.norm2(x1), blk.norm_y(y), r, r)
    ref = x2 + blk.mlp(blk.norm3(x2))
    torch.testing.assert_close(blk(x, y, r, r), ref)


def test_patch_embed_is_row_major():
    pe = PatchEmbed(patch_size=2, embed_dim=1, in_chans=1)
    with torch.no_grad():
        pe.proj.weight.zero_()
        pe.proj.weight[0, 0, 0, 0] = 1.0  # pick the top-left pixel of each patch
        pe.proj.bias.zero_()
    img = torch.arange(4 * 6, dtype=torch.float32).reshape(1, 1, 4, 6)
    tokens = pe(img)
    assert tokens.shape == (1, 6, 1)
    assert tokens[0, :, 0].tolist() == [0, 2, 4, 12, 14, 16]  # token k at (row k // 3, col k % 3)


def test_tokens_to_pixels_mapping():
    """Channel c*p*p + r*p + s of token (i, j) lands on pixel (p*i + r, p*j + s) of channel c."""
    p, h, w, c = 2, 2, 3, 2
    tokens = torch.zeros(1, h * w, c * p * p)
    i, j, ch, r, s = 1, 2, 1, 0, 1
    tokens[0, i * w + j, ch * p * p + r * p + s] = 7.0
    pix = _tokens_to_pixels(tokens, (h * p, w * p), p)
    assert pix.shape == (1, c, h * p, w * p)
    assert pix[0, ch, p * i + r, p * j + s] == 7.0 and pix.abs().sum() == 7.0


def test_reg_depth_exp_and_others():
    v = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    out = reg_depth(v, ("exp", -math.inf, math.inf))
    torch.testing.assert_close(out[0], torch.tensor([0.6, 0.8, 0.0]) * math.expm1(5.0))
    assert torch.equal(out[1], torch.zeros(3))  # |v| clipped at 1e-8: no NaN at the origin
    torch.testing.assert_close(
        reg_depth(v, ("square", -math.inf, math.inf))[0], torch.tensor([15.0, 20.0, 0.0])
    )
    assert torch.equal(reg_depth(v, ("linear", -math.inf, math.inf)), v)
    with pytest.raises(ValueError, match="bounded"):
        reg_depth(v, ("exp", 0.0, math.inf))


def test_reg_conf_and_desc():
    x = torch.tensor([0.0, 1.0, -2.0])
    torch.testing.assert_close(reg_conf(x, ("exp", 1.0, math.inf)), 1 + x.exp())
    torch.testing.assert_close(reg_conf(x, ("exp", 0.0, math.inf)), x.exp())
    torch.testing.assert_close(reg_conf(x, ("exp", 1.0, 2.0)), torch.tensor([2.0, 2.0, 1 + math.exp(-2)]))
    torch.testing.assert_close(reg_conf(x, ("sigmoid", 1.0, 3.0)), 2 * torch.sigmoid(x) + 1)
    d = reg_desc(torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(d, torch.tensor([[0.6, 0.8]]))


def _tiny(head_type: str, **kw) -> ModelConfig:
    mast3r = head_type == "catmlp+dpt"
    return ModelConfig(
        model_class="AsymmetricMASt3R" if mast3r else "AsymmetricCroCo3DStereo",
        head_type=head_type,
        output_mode="pts3d+desc8" if mast3r else "pts3d",
        two_confs=mast3r,
        desc_conf_mode=("exp", 0.0, math.inf) if mast3r else None,
        enc_embed_dim=32,
        enc_depth=1,
        enc_num_heads=2,
        dec_embed_dim=16,
        dec_depth=10,
        dec_num_heads=1,
        **kw,
    )


@pytest.mark.parametrize(("h", "w"), [(5, 8), (7, 5), (3, 3), (4, 6)])
def test_dpt_handles_odd_token_grids(h, w):
    """Odd h or w: the stride-2 level has ceil(h/2) rows; refinenet4's output is cropped to match."""
    torch.manual_seed(3)
    dpt = DPT(
        hooks=(0, 1, 2, 3),
        dim_tokens=(8, 8, 8, 8),
        num_channels=4,
        layer_dims=(4, 4, 4, 4),
        feature_dim=8,
        last_dim=4,
    )
    tokens = [torch.randn(2, h * w, 8) for _ in range(4)]
    assert dpt(tokens, (16 * h, 16 * w)).shape == (2, 4, 16 * h, 16 * w)


def test_dpt_alias_modules_are_shared():
    dpt = DPT(hooks=(0, 1, 2, 3), dim_tokens=(8, 8, 8, 8), num_channels=4)
    for i in range(4):
        assert getattr(dpt.scratch, f"layer{i + 1}_rn") is dpt.scratch.layer_rn[i]
        assert dpt.scratch.layer_rn[i].bias is None


@pytest.mark.parametrize("head_cls", [LinearHead, DPTHead, CatMlpDPTHead])
def test_heads_output_shapes_and_ranges(head_cls):
    head_type = {LinearHead: "linear", DPTHead: "dpt", CatMlpDPTHead: "catmlp+dpt"}[head_cls]
    cfg = _tiny(head_type)
    torch.manual_seed(4)
    head = head_cls(cfg)
    h, w = 3, 5
    tokens = [torch.randn(1, h * w, 32)] + [torch.randn(1, h * w, 16) for _ in range(cfg.dec_depth)]
    out = head(tokens, (16 * h, 16 * w))
    assert out["pts3d"].shape == (1, 48, 80, 3) and out["conf"].shape == (1, 48, 80)
    assert bool((out["conf"] > 1).all())
    if head_type == "catmlp+dpt":
        assert out["desc"].shape == (1, 48, 80, 8)
        torch.testing.assert_close(out["desc"].norm(dim=-1), torch.ones(1, 48, 80))
        assert bool((out["desc_conf"] > 0).all())
    else:
        assert "desc" not in out


def test_linear_head_reads_last_tokens_only():
    cfg = _tiny("linear")
    head = LinearHead(cfg)
    assert head.proj.weight.shape == (4 * 256, 16)
    tokens = [torch.randn(1, 2, 32)] + [torch.randn(1, 2, 16) for _ in range(cfg.dec_depth)]
    a = head(tokens, (16, 32))
    tokens[3] = torch.randn(1, 2, 16)
    b = head(tokens, (16, 32))
    assert torch.equal(a["pts3d"], b["pts3d"])
    raw = F.pixel_shuffle(head.proj(tokens[-1]).transpose(1, 2).reshape(1, 1024, 1, 2), 16)
    torch.testing.assert_close(b["conf"], 1 + raw[:, 3].exp())
