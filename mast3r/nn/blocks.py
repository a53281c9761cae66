"""Transformer building blocks of the CroCo encoder/decoders (state-dict names as the official files).

Token tensors are (B, S, C) with S = h*w tokens in row-major order. Attention goes through
``torch.nn.functional.scaled_dot_product_attention``; RoPE2D tables (see ``rope.py``) are passed in
precomputed, one per token grid. LayerNorms use eps 1e-6, GELU is the exact (erf) form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mast3r.nn.rope import RopeTables, apply_rope

__all__ = [
    "PatchEmbed",
    "Mlp",
    "SelfAttention",
    "CrossAttention",
    "EncoderBlock",
    "DecoderBlock",
    "layer_norm",
]

LN_EPS = 1e-6


def layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=LN_EPS)


class PatchEmbed(nn.Module):
    """Conv patchify: (B, 3, H, W) -> (B, h*w, D) tokens (row-major), no norm, no position table."""

    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.proj(img).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    """Linear -> GELU(erf) -> Linear."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim if out_dim is not None else in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, S, C) -> (B, heads, S, C/heads)."""
    b, s, c = x.shape
    return x.view(b, s, num_heads, c // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, S, Dh) -> (B, S, heads*Dh)."""
    b, nh, s, dh = x.shape
    return x.transpose(1, 2).reshape(b, s, nh * dh)


class SelfAttention(nn.Module):
    """Multi-head self attention with fused qkv (rows [q; k; v]) and RoPE2D on q and k."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: RopeTables) -> torch.Tensor:
        b, s, c = x.shape
        qkv = self.qkv(x).view(b, s, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = apply_rope(q, rope)
        k = apply_rope(k, rope)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(_merge_heads(out))


class CrossAttention(nn.Module):
    """Multi-head cross attention (separate q/k/v projections); RoPE2D on q (query grid), k (memory grid)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim)
        self.projk = nn.Linear(dim, dim)
        self.projv = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, rope_q: RopeTables, rope_k: RopeTables
    ) -> torch.Tensor:
        q = apply_rope(_split_heads(self.projq(query), self.num_heads), rope_q)
        k = apply_rope(_split_heads(self.projk(memory), self.num_heads), rope_k)
        v = _split_heads(self.projv(memory), self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(_merge_heads(out))


class EncoderBlock(nn.Module):
    """Pre-norm ViT block: ``x += Attn(LN1 x)``; ``x += MLP(LN2 x)``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, rope: RopeTables) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Decoder block: self attention, cross attention to the other view (normed by ``norm_y``), MLP.

    Parameters are registered in the official order (norm1, attn, cross_attn, norm2, norm3, mlp,
    norm_y) so that ``state_dict()`` lists keys as the released files do.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, norm_mem: bool = True) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = layer_norm(dim)
        self.norm3 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_y: nn.Module = layer_norm(dim) if norm_mem else nn.Identity()

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, rope_x: RopeTables, rope_y: RopeTables
    ) -> torch.Tensor:
        """x: (B, Sx, C) this view's tokens; y: (B, Sy, C) the other view's (previous layer) -> new x."""
        x = x + self.attn(self.norm1(x), rope_x)
        y_normed = self.norm_y(y)
        x = x + self.cross_attn(self.norm2(x), y_normed, rope_x, rope_y)
        return x + self.mlp(self.norm3(x))
