"""Triton availability, the lazy kernel loader and the exhaustive NN kernel launch.

* :func:`load_kernels`: the Triton kernels (:mod:`mast3r.matching.gpu._triton_kernels`), imported
  on first use only (where Triton and a CUDA device exist, or under ``TRITON_INTERPRET=1``), so that
  every module of :mod:`mast3r.matching.gpu` imports on a machine without Triton.
* :func:`nn_search`: fused matmul + argmax over a database, never materialising the similarity
  matrix; fp32 (``precision="ieee"``: ``tl.dot`` in plain fp32 FMA over D padded to a power of two,
  the default) or ``"tf32x3"`` (tensor cores, ~fp32 accuracy, not bit-identical).

Semantics are the CPU reference's (``mast3r.matching.frm`` / ``nn``): dot-product similarity,
lowest index on exact ties. Scores are fp32 sums in another order than a CPU GEMM, so two candidates
within fp32 rounding of each other could in principle swap.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import torch

from mast3r.matching.gpu.tables import splits, table

__all__ = ["triton_available", "load_kernels", "check_precision", "nn_search", "PRECISIONS", "DEFAULT_BLOCK"]

PRECISIONS = ("ieee", "tf32x3", "tf32")
DEFAULT_BLOCK = (64, 64, 4)
"""(queries per program BQ, database columns per tile BN, num_warps) of the NN kernel (dense search:
fastest of the configurations tried on an H200, results/perf/2026-11-26-h200.md)."""


def triton_available() -> bool:
    """True where Triton can be imported (it ships with CUDA builds of torch)."""
    return importlib.util.find_spec("triton") is not None


def load_kernels() -> Any:
    """The Triton kernel module (imports Triton on first use)."""
    from mast3r.matching.gpu import _triton_kernels

    return _triton_kernels


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")


def nn_search(
    queries: torch.Tensor,
    db: torch.Tensor,
    *,
    precision: str = "ieee",
    block: tuple[int, int, int] = DEFAULT_BLOCK,
) -> torch.Tensor:
    """Index of the largest-dot-product ``db`` row for every query row (lowest index on ties).

    Args: queries (Q, D), db (N, D) float32 on one CUDA device (N >= 1).
    Returns: (Q,) int64 on that device. No host synchronisation.
    """
    check_precision(precision)
    k = load_kernels()
    qt, dbt = table(queries), table(db).T.contiguous()
    nq, nd = len(queries), len(db)
    bq, bn, warps = block
    n_split, per = splits(nq, nd, queries.device, block)
    out_s = torch.empty((n_split, nq), dtype=torch.float32, device=queries.device)
    out_i = torch.empty((n_split, nq), dtype=torch.int32, device=queries.device)
    grid = (max(1, math.ceil(nq / bq)), n_split)
    k.nn_partial_kernel[grid](
        qt,
        dbt,
        out_s,
        out_i,
        out_i,
        out_i,
        out_i,
        nq,
        nd,
        per,
        0,
        DP=qt.shape[1],
        BQ=bq,
        BN=bn,
        GATHER=False,
        PREC=precision,
        num_warps=warps,
    )
    if n_split == 1:
        return out_i[0].long()
    which = out_s.argmax(dim=0, keepdim=True)  # first maximal split = lowest indices on ties
    return out_i.gather(0, which)[0].long()
