"""2D rotary position embedding (RoPE2D) as CroCo/DUSt3R/MASt3R use it.

A head vector of size ``Dh`` is split in two halves of ``D' = Dh/2``: the first half is rotated with
the token's row ``y``, the second with its column ``x``. Within a half, element ``i`` is paired with
``i + D'/2`` (not interleaved), angle ``p * base^(-2j/D')`` for ``j = 0..D'/2-1``.

Instead of gathering per-token tables inside every attention call, the tables for a whole token grid
are built once (``rope_tables``) as ``cos`` and a sign-folded ``sin`` of shape (S, Dh), so that
``apply_rope(t) = t * cos + swap(t) * sin`` where ``swap`` exchanges the two quarters of each half.
The products are bit-identical to the reference formula ``t*cos + rotate_half(t)*sin``.
"""

from __future__ import annotations

import torch

__all__ = ["RopeTables", "rope_tables", "apply_rope"]

RopeTables = tuple[torch.Tensor, torch.Tensor]
"""``(cos, sin_signed)``, each (S, Dh) for S = h*w tokens in row-major order."""


def _axis_tables(
    n: int, half_dim: int, base: float, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin for positions ``0..n-1`` and one half of size ``half_dim``: (n, half_dim) of dtype.

    Angles in float32, cast to ``dtype`` before cos/sin (the reference order).
    """
    inv_freq = 1.0 / (base ** (torch.arange(0, half_dim, 2, device=device).float() / half_dim))
    pos = torch.arange(n, device=device, dtype=torch.float32)
    freqs = (pos[:, None] * inv_freq[None, :]).to(dtype)
    freqs = torch.cat((freqs, freqs), dim=-1)
    return freqs.cos(), freqs.sin()


def rope_tables(
    h: int, w: int, head_dim: int, base: float, device: torch.device, dtype: torch.dtype
) -> RopeTables:
    """RoPE2D tables for an ``h x w`` token grid: ``(cos, sin_signed)``, each (h*w, head_dim) of dtype.

    Angles are computed in float32 and cast to ``dtype`` before cos/sin (as the reference does).
    """
    if head_dim % 4:
        raise ValueError(f"RoPE2D needs a head dim that is a multiple of 4, got {head_dim}")
    half = head_dim // 2
    cos1, sin1 = _axis_tables(max(h, w), half, base, device, dtype)
    q = half // 2
    sign = torch.ones(half, device=device, dtype=dtype)
    sign[:q] = -1
    sin1 = sin1 * sign  # exact: a sign flip
    rows = torch.arange(h, device=device).repeat_interleave(w)  # y of token k = k // w
    cols = torch.arange(w, device=device).repeat(h)  # x of token k = k % w
    cos = torch.cat((cos1[rows], cos1[cols]), dim=-1)
    sin = torch.cat((sin1[rows], sin1[cols]), dim=-1)
    return cos, sin


def apply_rope(t: torch.Tensor, tables: RopeTables) -> torch.Tensor:
    """Rotate ``t`` (..., S, Dh) with tables for its S tokens; returns the same shape and dtype."""
    cos, sin = tables
    dh = t.shape[-1]
    q = dh // 4
    # swap quarters within each half: [a, b, c, d] -> [b, a, d, c]
    swapped = t.unflatten(-1, (2, 2, q)).flip(-2).flatten(-3)
    return t * cos + swapped * sin
