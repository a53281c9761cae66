"""GPU matching without per-iteration host synchronisation (the ``triton`` NN backend).

* :func:`nn_search`: fused matmul + argmax over a database (Triton), never materialising the
  similarity matrix; fp32 (``precision="ieee"``: ``tl.dot`` in plain fp32 FMA over D padded to a
  power of two, the default) or ``"tf32x3"`` (tensor cores, ~fp32 accuracy, not bit-identical).
* FRM on the device: :mod:`mast3r.matching.gpu_frm` (uses these kernels and the screened ones).
* :func:`dense_mutual_nn_device`: nearest neighbour of every pixel both ways (by default through
  the fp16 screen with exact re-check of :mod:`mast3r.matching.gpu_screened`).

Semantics are the CPU reference's (``mast3r.matching.frm`` / ``nn``): dot-product similarity,
lowest index on exact ties, the official FRM iteration. Scores are float64 (screened) or fp32 sums
in another order than a CPU GEMM, so two candidates within fp32 rounding of each other could in
principle swap.
"""

from __future__ import annotations

import importlib.util
import math
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from mast3r.matching.gpu_screened import ScreenConfig

__all__ = [
    "triton_available",
    "use_triton",
    "nn_search",
    "dense_mutual_nn_device",
    "DENSE_METHODS",
    "PRECISIONS",
    "DEFAULT_BLOCK",
]

PRECISIONS = ("ieee", "tf32x3", "tf32")
DEFAULT_BLOCK = (64, 64, 4)
"""(queries per program BQ, database columns per tile BN, num_warps) of the NN kernel (dense search:
fastest of the configurations tried on an H200, results/perf/2026-11-26-h200.md)."""



def triton_available() -> bool:
    """True where Triton can be imported (it ships with CUDA builds of torch)."""
    return importlib.util.find_spec("triton") is not None


def use_triton(backend: str, desc: torch.Tensor, dist: str) -> bool:
    """Whether matching on ``desc``'s device goes through the Triton kernels.

    ``auto`` picks them for float32 CUDA tensors with ``dist="dot"`` when Triton exists; ``triton``
    demands them (ValueError where impossible); other backends never use them.
    """
    possible = desc.is_cuda and dist == "dot" and desc.dtype == torch.float32 and triton_available()
    if backend == "triton" and not possible:
        have = "present" if triton_available() else "missing"
        raise ValueError(
            f"backend 'triton' needs float32 CUDA descriptors, dist='dot' and Triton (got device "
            f"{desc.device}, dtype {desc.dtype}, dist {dist!r}, triton {have})"
        )
    return backend == "triton" or (backend == "auto" and possible)


def _kernels() -> Any:
    from mast3r.matching import _triton_kernels

    return _triton_kernels


def _pad_dim(d: int) -> int:
    return max(16, 1 << (d - 1).bit_length())


def _table(f: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, DP) float32 contiguous, zero padded."""
    dp = _pad_dim(f.shape[1])
    out = torch.zeros((f.shape[0], dp), dtype=torch.float32, device=f.device)
    out[:, : f.shape[1]] = f
    return out


def _multiprocessors(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device (8 elsewhere: the Triton interpreter)."""
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 8


def _splits(n_queries: int, n_db: int, device: torch.device, block: tuple[int, int, int]) -> tuple[int, int]:
    """(number of database splits, columns per split) so that ~4 programs run per multiprocessor."""
    bq, bn, _ = block
    sms = _multiprocessors(device)
    qblocks = max(1, math.ceil(n_queries / bq))
    want = max(1, min(math.ceil(4 * sms / qblocks), math.ceil(n_db / bn)))
    per = math.ceil(math.ceil(n_db / want) / bn) * bn
    return math.ceil(n_db / per), per


def _check_precision(precision: str) -> None:
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
    _check_precision(precision)
    k = _kernels()
    qt, dbt = _table(queries), _table(db).T.contiguous()
    nq, nd = len(queries), len(db)
    bq, bn, warps = block
    n_split, per = _splits(nq, nd, queries.device, block)
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


DENSE_METHODS = ("screened", "exhaustive")


def dense_mutual_nn_device(
    f0: torch.Tensor,
    f1: torch.Tensor,
    *,
    method: str = "screened",
    precision: str = "ieee",
    block: tuple[int, int, int] = DEFAULT_BLOCK,
    screen: ScreenConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(nn01 (N0,), nn10 (N1,)) int64 on the device: nearest neighbour of every row both ways.

    ``method="screened"`` (default): one fp16 tensor-core screen for both directions + float64
    re-check of the survivors (:mod:`mast3r.matching.gpu_dense`; exact, one host sync in all);
    ``"exhaustive"``: :func:`nn_search` at ``precision`` over every pair (no host sync).
    ``block``: exhaustive kernel block; ``screen``: a ``ScreenConfig`` (None = its default).
    """
    if method == "screened":
        from mast3r.matching.gpu_screened import SCREEN_CONFIG, screened_mutual_nn

        return screened_mutual_nn(f0, f1, config=screen or SCREEN_CONFIG)
    if method != "exhaustive":
        raise ValueError(f"unknown dense method {method!r}; choose one of {DENSE_METHODS}")
    return (
        nn_search(f0, f1, precision=precision, block=block),
        nn_search(f1, f0, precision=precision, block=block),
    )
