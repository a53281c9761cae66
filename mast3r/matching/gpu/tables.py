"""Descriptor tables for the GPU kernels: zero-padded float32 tables, fp16 screen tables scaled by
powers of two, the fp16 score error bound, and launch-shape helpers (no Triton import).

The bottom layer of :mod:`mast3r.matching.gpu` (``tables -> kernels -> screen -> frm / dense``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["pad_dim", "table", "multiprocessors", "splits", "score_error_bound", "pow2_scale", "write_fp16",
           "margins"]

_U16 = 2.0**-11  # fp16 unit roundoff (round to nearest)
_TINY16 = 2.0**-25  # half the spacing of fp16 subnormals: absolute rounding error below 2**-14


def pad_dim(d: int) -> int:
    return max(16, 1 << (d - 1).bit_length())


def table(f: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, DP) float32 contiguous, zero padded."""
    dp = pad_dim(f.shape[1])
    out = torch.zeros((f.shape[0], dp), dtype=torch.float32, device=f.device)
    out[:, : f.shape[1]] = f
    return out


def multiprocessors(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device (8 elsewhere: the Triton interpreter)."""
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 8


def splits(n_queries: int, n_db: int, device: torch.device, block: tuple[int, int, int]) -> tuple[int, int]:
    """(number of database splits, columns per split) so that ~4 programs run per multiprocessor."""
    bq, bn, _ = block
    sms = multiprocessors(device)
    qblocks = max(1, math.ceil(n_queries / bq))
    want = max(1, min(math.ceil(4 * sms / qblocks), math.ceil(n_db / bn)))
    per = math.ceil(math.ceil(n_db / want) / bn) * bn
    return math.ceil(n_db / per), per


def score_error_bound(norm_q: torch.Tensor, norm_db_max: float | torch.Tensor, dim: int) -> torch.Tensor:
    """Bound on ``|fp16 score - exact score|`` for queries of norms ``norm_q`` against database
    rows of norm <= ``norm_db_max`` (both already scaled into [-1, 1] per element).

    Each input rounds to fp16 with error <= u|x| + 2^-25 (u = 2^-11; the second term covers
    subnormals); products of fp16 numbers are exact in fp32 and a K-term fp32 accumulation (any
    order, truncating or rounding) adds <= K 2^-23 of the summed magnitudes. With Cauchy-Schwarz
    (sum |a_k b_k| <= |a| |b|, |a|_1 <= sqrt(K) |a|) the per-score error is at most
    ``c1 |a| |b| + c2 (|a| + |b|) + c3``; a 10% slack covers the rounding of the bound itself.
    """
    c1 = 2 * _U16 + _U16**2 + dim * 2.0**-23 * (1 + 3 * _U16)
    c2 = math.sqrt(dim) * _TINY16 * (1 + _U16) * (1 + dim * 2.0**-23)
    c3 = dim * (_TINY16**2) * 4
    return 1.1 * (c1 * norm_q * norm_db_max + c2 * (norm_q + norm_db_max) + c3)


def pow2_scale(x: torch.Tensor) -> torch.Tensor:
    """``x`` times the power of two that brings max |x| into (0.5, 1] (exact in float32; all-zero
    ``x`` unchanged). Device ops only: no host synchronisation."""
    peak = x.abs().amax()
    return x * torch.where(peak > 0, torch.exp2(-torch.ceil(torch.log2(peak))), torch.ones_like(peak))


def write_fp16(x: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor) -> None:
    """Scaled (N, DP) float32 ``x`` into fp16 ``rows`` (N, DP) and ``cols`` (DP, >= N) transposed,
    whose columns past N repeat column N-1 (a repeated column never raises a maximum)."""
    if rows is not None:
        rows.copy_(x)
    cols[:, : len(x)].copy_(x.T)
    cols[:, len(x) :].copy_(x[-1:].T)


def margins(q: torch.Tensor, db: torch.Tensor, dim: int) -> torch.Tensor:
    """Per query row of scaled ``q``: twice the fp16 score error bound against scaled ``db``."""
    return 2 * score_error_bound(q.norm(dim=1), db.norm(dim=1).amax(), dim)
