"""RoPE2D: equality with the spec's per-token formula, and the rotary properties that make it work."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mast3r.nn.rope import apply_rope, rope_tables


def naive_rope2d(t: torch.Tensor, h: int, w: int, base: float) -> torch.Tensor:
    """Spec section 4.2, token by token: first half rotated with y, second with x; pairs (i, i + D'/2)."""
    out = torch.empty_like(t)
    dh = t.shape[-1]
    half = dh // 2
    q = half // 2
    inv_freq = [1.0 / base ** (2 * j / half) for j in range(q)]
    for k in range(h * w):
        y, x = k // w, k % w
        for part, p in ((0, y), (1, x)):
            seg = t[..., k, part * half : (part + 1) * half].double()
            for j in range(q):
                theta = p * inv_freq[j]
                c, s = math.cos(theta), math.sin(theta)
                a, b = seg[..., j], seg[..., j + q]
                out[..., k, part * half + j] = (a * c - b * s).to(t.dtype)
                out[..., k, part * half + j + q] = (b * c + a * s).to(t.dtype)
    return out


@pytest.mark.parametrize(("h", "w", "dh"), [(3, 5, 8), (4, 2, 16), (2, 3, 64)])
def test_matches_naive_formula(h, w, dh):
    torch.manual_seed(0)
    t = torch.randn(2, 3, h * w, dh)
    got = apply_rope(t, rope_tables(h, w, dh, 100.0, t.device, torch.float32))
    torch.testing.assert_close(got, naive_rope2d(t, h, w, 100.0), atol=2e-6, rtol=1e-5)


def test_position_zero_is_identity_and_tables_row_major():
    cos, sin = rope_tables(2, 3, 8, 100.0, torch.device("cpu"), torch.float32)
    assert cos.shape == sin.shape == (6, 8)
    assert torch.equal(cos[0], torch.ones(8)) and torch.equal(sin[0], torch.zeros(8))
    # token 1 is (y=0, x=1): the y half is unrotated, the x half rotated by 1 * inv_freq
    assert torch.equal(cos[1, :4], torch.ones(4))
    assert cos[1, 4].item() == pytest.approx(math.cos(1.0))
    # token 3 is (y=1, x=0)
    assert cos[3, 0].item() == pytest.approx(math.cos(1.0)) and torch.equal(cos[3, 4:], torch.ones(4))


def test_bf16_tables_follow_reference_order():
    cos32, _ = rope_tables(4, 4, 16, 100.0, torch.device("cpu"), torch.float32)
    cos16, _ = rope_tables(4, 4, 16, 100.0, torch.device("cpu"), torch.bfloat16)
    assert cos16.dtype == torch.bfloat16
    torch.testing.assert_close(cos16.float(), cos32, atol=2e-2, rtol=0)


@settings(max_examples=30, deadline=None)
@given(
    y0=st.integers(0, 15),
    x0=st.integers(0, 15),
    y1=st.integers(0, 15),
    x1=st.integers(0, 15),
    shift_y=st.integers(0, 15),
    shift_x=st.integers(0, 15),
)
def test_property_scores_depend_on_relative_position_only(y0, x0, y1, x1, shift_y, shift_x):
    """<rope(q, p0), rope(k, p1)> == <rope(q, p0 + s), rope(k, p1 + s)>, and norms are preserved."""
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 32, generator=g, dtype=torch.float64)
    cos, sin = rope_tables(32, 32, 32, 100.0, torch.device("cpu"), torch.float64)

    def rot(v, y, x):
        idx = y * 32 + x
        return apply_rope(v[None], (cos[idx : idx + 1], sin[idx : idx + 1]))[0]

    a = rot(q, y0, x0) @ rot(k, y1, x1)
    b = rot(q, y0 + shift_y, x0 + shift_x) @ rot(k, y1 + shift_y, x1 + shift_x)
    assert a.item() == pytest.approx(b.item(), abs=1e-5)  # angles are float32, as the reference
    assert rot(q, y0, x0).norm().item() == pytest.approx(q.norm().item(), rel=1e-12)


def test_head_dim_must_be_multiple_of_four():
    with pytest.raises(ValueError, match="multiple of 4"):
        rope_tables(2, 2, 6, 100.0, torch.device("cpu"), torch.float32)
