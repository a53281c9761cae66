"""GPU matching without per-iteration host synchronisation (the ``triton`` NN backend).

* :func:`nn_search`: fused matmul + argmax over a database (Triton), never materialising the
  similarity matrix; fp32 (``precision="ieee"``: ``tl.dot`` in plain fp32 FMA over D padded to a
  power of two, the default) or ``"tf32x3"`` (tensor cores, ~fp32 accuracy, not bit-identical).
* :func:`frm_device`: Fast Reciprocal Matching with a fixed number of iterations and masked
  updates on the device: the active set is compacted on the GPU each half-step, kernels of
  converged steps exit at once, and the host reads the result once at the end. Each NN step is
  by default ``precision="screened"`` (fp16 tensor-core screen with a certified error margin,
  float64 re-check of the survivors, see :mod:`mast3r.matching.gpu_screened`); ``"ieee"`` is the
  exhaustive fp32 kernel.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from mast3r.matching.gpu_screened import ScreenConfig, ScreenedFRMStep

__all__ = [
    "triton_available",
    "use_triton",
    "nn_search",
    "frm_device",
    "dense_mutual_nn_device",
    "DeviceFRM",
    "DENSE_METHODS",
    "DeviceFRMResult",
    "PRECISIONS",
    "DEFAULT_BLOCK",
    "FRM_BLOCK",
]

PRECISIONS = ("ieee", "tf32x3", "tf32")
FRM_PRECISIONS = (*PRECISIONS, "screened")
"""FRM adds ``screened``: fp16 tensor-core screen + float64 re-check of the survivors (exact; see
:mod:`mast3r.matching.gpu_screened`)."""
DEFAULT_BLOCK = (64, 64, 4)
"""(queries per program BQ, database columns per tile BN, num_warps) of the NN kernel (dense search:
fastest of the configurations tried on an H200, results/perf/2026-11-26-h200.md)."""
FRM_BLOCK = (128, 64, 8)
"""Block of the FRM loop (fastest exact-fp32 configuration tried on an H200)."""


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

    ``method="screened"`` (default): fp16 tensor-core screen + float64 re-check of the survivors
    (:mod:`mast3r.matching.gpu_screened`; exact, one host sync per direction);
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


@dataclass
class DeviceFRMResult:
    """Device tensors after FRM: seeds' final ``xy0``/``xy1`` linear indices, ``old0`` (the view-0
    pixels before the last iteration), ``active`` (uint8, 1 = not converged), ``counts`` (int64,
    active-set size before each half-step, ``2 * max_iter``)."""

    xy0: torch.Tensor
    xy1: torch.Tensor
    old0: torch.Tensor
    active: torch.Tensor
    counts: torch.Tensor
    overflow: torch.Tensor | None = None
    """(1,) int32, screened FRM only: 1 if a half-step had more survivors than the buffer held
    (the result is then not trustworthy; :func:`frm_device` reruns exhaustively)."""

    def trace(self) -> tuple[list[int], int]:
        """(official query-size trace, iterations run) from ``counts`` (one host read)."""
        counts = self.counts.tolist()
        sizes: list[int] = []
        niter = 0
        for it in range(len(counts) // 2):
            if counts[2 * it] == 0:
                break
            sizes += [counts[2 * it], counts[2 * it + 1]]
            niter = it + 1
        return sizes, niter


class DeviceFRM:
    """Static device buffers for FRM between maps of fixed sizes, optionally replayed as a CUDA graph.

    ``DeviceFRM(n0, n1, dim, seeds, max_iter)(f0, f1)`` runs the official FRM iteration (see
    ``frm.py``) with a fixed number of iterations and masked updates: 1 + 3 launches per half-step
    (compaction of the active set, fused NN, update), no host synchronisation. ``capture()`` records
    those launches once; later calls replay them (a few microseconds of launch cost instead of
    ~60 kernel launches). The returned tensors are the object's buffers (overwritten by the next call).

    Args:
        n0, n1: pixels of map 0 / map 1; dim: descriptor size D.
        seeds: (S,) int64 unique view-0 linear indices (S >= 1) on the CUDA device.
        max_iter: iterations; precision: see :data:`FRM_PRECISIONS`; block: (BQ, BN, num_warps)
            (screened: only BN is used).
    """

    def __init__(
        self,
        n0: int,
        n1: int,
        dim: int,
        seeds: torch.Tensor,
        max_iter: int,
        *,
        precision: str = "screened",
        block: tuple[int, int, int] = FRM_BLOCK,
    ) -> None:
        if precision not in FRM_PRECISIONS:
            raise ValueError(f"unknown FRM precision {precision!r}; choose one of {FRM_PRECISIONS}")
        if n0 < 1 or n1 < 1 or len(seeds) < 1 or max_iter < 1:
            raise ValueError(
                f"DeviceFRM needs non-empty maps, seeds and max_iter >= 1 (got {n0}, {n1}, "
                f"{len(seeds)}, {max_iter})"
            )
        dev = seeds.device
        self.n0, self.n1, self.dim, self.max_iter, self.precision, self.block = (
            n0,
            n1,
            dim,
            max_iter,
            precision,
            block,
        )
        self.seeds = seeds.to(torch.int64)
        dp = _pad_dim(dim)
        f32: dict[str, Any] = dict(dtype=torch.float32, device=dev)
        self.t0, self.t1 = torch.zeros((n0, dp), **f32), torch.zeros((n1, dp), **f32)
        n = len(seeds)
        self.xy0, self.xy1 = self.seeds.clone(), torch.full_like(self.seeds, -1)
        self.old0, self.old1 = self.xy0.clone(), self.xy1.clone()
        self.active = torch.ones(n, dtype=torch.uint8, device=dev)
        self.order = torch.empty(n, dtype=torch.int32, device=dev)
        self.nact = torch.empty(1, dtype=torch.int32, device=dev)
        self.counts = torch.zeros(2 * max_iter, dtype=torch.int64, device=dev)
        # one 1-D grid of ~4 programs per multiprocessor; the kernels split the database among them
        # according to the active-set size they read on the device (frm_splits)
        self.n_programs = 4 * _multiprocessors(dev)
        self.screen: ScreenedFRMStep | None = None
        if precision == "screened":
            from mast3r.matching.gpu_screened import ScreenedFRMStep

            self.screen = ScreenedFRMStep(self.t0, self.t1, dim, n, block[1])
        else:  # the exhaustive kernels: transposed databases and per-split partial results
            self.dbt0, self.dbt1 = torch.zeros((dp, n0), **f32), torch.zeros((dp, n1), **f32)
            self.out_s = torch.empty((self.n_programs, n), **f32)
            self.out_i = torch.empty((self.n_programs, n), dtype=torch.int32, device=dev)
        self.graph: torch.cuda.CUDAGraph | None = None

    def load(self, f0: torch.Tensor, f1: torch.Tensor) -> None:
        """Copy (N0, D) / (N1, D) descriptors into the padded tables (4 copy kernels)."""
        if f0.shape != (self.n0, self.dim) or f1.shape != (self.n1, self.dim):
            raise ValueError(
                f"DeviceFRM was built for ({self.n0}, {self.dim}) / ({self.n1}, {self.dim}) "
                f"descriptors, got {tuple(f0.shape)} / {tuple(f1.shape)}"
            )
        self.t0[:, : self.dim].copy_(f0)
        self.t1[:, : self.dim].copy_(f1)
        if self.screen is not None:
            self.screen.load()
        else:
            self.dbt0.copy_(self.t0.T)
            self.dbt1.copy_(self.t1.T)

    def _enqueue(self) -> None:
        k = _kernels()
        bq, bn, warps = self.block
        n = len(self.seeds)
        self.xy0.copy_(self.seeds)
        self.xy1.fill_(-1)
        self.old0.copy_(self.seeds)
        self.old1.fill_(-1)
        self.active.fill_(1)
        ublock, n_programs = 1024, self.n_programs
        steps = (
            (self.t0, self.n1, self.xy0, self.xy1, self.old1),
            (self.t1, self.n0, self.xy1, self.xy0, self.old0),
        )
        if self.screen is not None:
            self.screen.reset()
        for it in range(self.max_iter):
            for half, (table, nd, src, dst, old) in enumerate(steps):
                k.frm_compact_kernel[(1,)](
                    self.active,
                    self.order,
                    self.nact,
                    self.counts,
                    2 * it + half,
                    n,
                    self.xy0,
                    self.old0,
                    self.xy1,
                    self.old1,
                    COPY_OLD=(half == 0 and it > 0),
                    BLOCK=1024,
                    num_warps=4,
                )
                if self.screen is not None:
                    self.screen.enqueue(half, src, dst, old, self.order, self.nact, self.active, n_programs)
                    continue
                out_s, out_i = self.out_s, self.out_i
                k.nn_partial_kernel[(n_programs,)](
                    table,
                    self.dbt1 if half == 0 else self.dbt0,
                    out_s,
                    out_i,
                    src,
                    self.order,
                    self.nact,
                    n,
                    nd,
                    0,
                    n_programs,
                    DP=table.shape[1],
                    BQ=bq,
                    BN=bn,
                    GATHER=True,
                    PREC=self.precision,
                    num_warps=warps,
                )
                k.frm_update_kernel[(math.ceil(n / ublock),)](
                    out_s,
                    out_i,
                    self.order,
                    self.nact,
                    dst,
                    old,
                    self.active,
                    n,
                    nd,
                    n_programs,
                    BQ=bq,
                    BN=bn,
                    BLOCK=ublock,
                    num_warps=4,
                )

    def capture(self) -> DeviceFRM:
        """Run once (compiles the kernels), then record the iteration as a CUDA graph."""
        self._enqueue()
        torch.cuda.synchronize(self.seeds.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._enqueue()
        self.graph = graph
        return self

    def __call__(self, f0: torch.Tensor, f1: torch.Tensor) -> DeviceFRMResult:
        self.load(f0, f1)
        if self.graph is None:
            self._enqueue()
        else:
            self.graph.replay()
        overflow = None if self.screen is None else self.screen.overflow
        return DeviceFRMResult(self.xy0, self.xy1, self.old0, self.active, self.counts, overflow)


def frm_device(
    f0: torch.Tensor,
    f1: torch.Tensor,
    seeds: torch.Tensor,
    max_iter: int,
    *,
    precision: str = "screened",
    block: tuple[int, int, int] = FRM_BLOCK,
) -> DeviceFRMResult:
    """FRM iterations on the GPU with no host synchronisation inside the loop (see :class:`DeviceFRM`);
    the screened precision reads its overflow flag once at the end (and reruns exhaustively if set).

    Args:
        f0 (N0, D), f1 (N1, D): float32 descriptors on one CUDA device (N0, N1 >= 1).
        seeds: (S,) int64 view-0 linear indices (unique) on that device, S >= 1.
        max_iter: iterations (each a forward and a backward NN step).
    """
    res = DeviceFRM(len(f0), len(f1), f0.shape[1], seeds, max_iter, precision=precision, block=block)(f0, f1)
    if res.overflow is not None and bool(res.overflow.item()):
        # degenerate descriptors (massive ties): the screen could not prune; search exhaustively
        return frm_device(f0, f1, seeds, max_iter, precision="ieee", block=block)
    return res
