"""Memory-lean InfoNCE on dot-product similarities: the (B,N,M) similarity matrix is never kept.

Forward and backward walk over blocks of query rows, recomputing ``s = d1 @ d2^T / T`` per block; only the
descriptors and per-row/per-column log-sum-exps are saved. Values and gradients are those of the log-space
form of the official formulas (see :class:`mast3r.train.losses_match.InfoNCE`):

- proper: ``min(col_i - s_ii, cap) + min(row_i - s_ii, cap)``
- dual:   ``min(row_i + col_i - 2 s_ii, cap)``
- all:    ``min(tot - s_ii, cap)``

with ``row_i = lse_j s_ij``, ``col_j = lse_i s_ij``, ``tot = lse_ij s_ij``, ``cap = -log(eps)``. NaN
similarities count as ``-inf`` (as official). Peak extra memory is one block (``max_block_elems`` floats).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MAX_BLOCK_ELEMS = 1 << 27  # 512 MiB of float32 per block of similarities


def _sim(d1: Tensor, d2: Tensor, temperature: float) -> Tensor:
    s = (d1 @ d2.transpose(-2, -1)) / temperature
    return torch.where(torch.isnan(s), -torch.inf, s)


def _row_blocks(B: int, N: int, M: int, max_elems: int) -> tuple[range, int]:
    step = max(1, max_elems // max(1, B * M))
    return range(0, N, step), step


class _InfoNCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, d1: Tensor, d2: Tensor, temp: float, mode: str, cap: float, max_elems: int):
        B, N, _ = d1.shape
        M = d2.shape[1]
        row = d1.new_empty(B, N)
        pos = d1.new_empty(B, N)
        col = d1.new_full((B, M), -torch.inf)
        starts, step = _row_blocks(B, N, M, max_elems)
        for k0 in starts:
            k1 = min(N, k0 + step)
            s = _sim(d1[:, k0:k1], d2, temp)
            row[:, k0:k1] = s.logsumexp(dim=-1)
            col = torch.logaddexp(col, s.logsumexp(dim=-2))
            pos[:, k0:k1] = s[:, :, k0:k1].diagonal(dim1=-2, dim2=-1)
        col = col[:, :N]
        tot = row.logsumexp(dim=-1, keepdim=True)
        if mode == "proper":
            t_row, t_col = row - pos, col - pos
            loss = t_row.clamp(max=cap) + t_col.clamp(max=cap)
        elif mode == "dual":
            t_row = t_col = row + col - 2 * pos
            loss = t_row.clamp(max=cap)
        else:
            t_row = t_col = tot - pos
            loss = t_row.clamp(max=cap)
        ctx.save_for_backward(d1, d2, row, col, tot, t_row <= cap, t_col <= cap)
        ctx.cfg = (temp, mode, max_elems)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        d1, d2, row, col, tot, act_row, act_col = ctx.saved_tensors
        temp, mode, max_elems = ctx.cfg
        B, N, _ = d1.shape
        M = d2.shape[1]
        grad = grad.to(d1.dtype)
        # coefficients of the softmax terms: a_k (row softmax), b_l (column softmax), c (global softmax)
        if mode == "proper":
            a, b = grad * act_row, grad * act_col
            diag = a + b
        elif mode == "dual":
            a = b = grad * act_row
            diag = 2 * a
        else:
            a = grad * act_row
            diag = a
        b_full = None
        if mode != "all":
            b_full = torch.zeros(B, M, dtype=d1.dtype, device=d1.device)
            b_full[:, :N] = b
            col_full = torch.full((B, M), torch.inf, dtype=d1.dtype, device=d1.device)
            col_full[:, :N] = col  # padded columns (l >= N) carry no column term
        g1 = torch.empty_like(d1)
        g2 = torch.zeros_like(d2)
        starts, step = _row_blocks(B, N, M, max_elems)
        for k0 in starts:
            k1 = min(N, k0 + step)
            s = _sim(d1[:, k0:k1], d2, temp)
            if mode == "all":
                G = torch.exp(s - tot[:, :, None]) * a.sum(dim=-1)[:, None, None]
            else:
                G = a[:, k0:k1, None] * torch.exp(s - row[:, k0:k1, None])
                G += b_full[:, None, :] * torch.exp(s - col_full[:, None, :])
            G[:, :, k0:k1].diagonal(dim1=-2, dim2=-1).sub_(diag[:, k0:k1])
            g1[:, k0:k1] = (G @ d2) / temp
            g2 += (G.transpose(-2, -1) @ d1[:, k0:k1]) / temp
        return g1, g2, None, None, None, None


def infonce_dot(d1: Tensor, d2: Tensor, temperature: float, mode: str, eps: float,
                max_block_elems: int = MAX_BLOCK_ELEMS) -> Tensor:
    """(B,N,D), (B,M,D) (M >= N, positives on the diagonal) -> (B,N) per-query InfoNCE losses."""
    if mode not in ("proper", "dual", "all"):
        raise ValueError(f"bad InfoNCE mode {mode!r}")
    if d2.shape[1] != d1.shape[1] and mode != "all":
        raise ValueError("InfoNCE: padded negatives need mode='all'")
    return _InfoNCE.apply(d1, d2, float(temperature), mode, -math.log(eps), int(max_block_elems))
