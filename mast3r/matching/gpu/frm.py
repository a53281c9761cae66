"""Fast Reciprocal Matching on the GPU without per-iteration host synchronisation.

:class:`DeviceFRM` runs the official FRM iteration (``mast3r.matching.frm``) with a fixed number of
iterations and masked updates: the active set is compacted on the GPU each half-step, kernels of
converged steps exit at once, and the host reads the result once at the end. Each NN step is by
default ``precision="screened"`` (fp16 tensor-core screen with a certified error margin, float64
re-check of the survivors, :class:`~mast3r.matching.gpu.screen.ScreenedFRMStep`); ``"ieee"`` is
the exhaustive fp32 kernel of :mod:`mast3r.matching.gpu.kernels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from mast3r.lru import LRU
from mast3r.matching.gpu.kernels import PRECISIONS, load_kernels
from mast3r.matching.gpu.screen import ScreenedFRMStep
from mast3r.matching.gpu.tables import multiprocessors, pad_dim

__all__ = ["FRM_PRECISIONS", "FRM_BLOCK", "DeviceFRM", "DeviceFRMPool", "DeviceFRMResult", "frm_device"]

FRM_PRECISIONS = (*PRECISIONS, "screened")
"""FRM adds ``screened``: fp16 tensor-core screen + float64 re-check of the survivors (exact; see
:mod:`mast3r.matching.gpu.screen`)."""
FRM_BLOCK = (128, 64, 8)
"""Block of the FRM loop (fastest exact-fp32 configuration tried on an H200)."""


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
    the table preparation and those launches once; later calls copy the descriptors in and replay
    them (a few microseconds of launch cost instead of ~60-140 kernel launches). The returned
    tensors are the object's buffers (overwritten by the next call).

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
        dp = pad_dim(dim)
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
        self.n_programs = 4 * multiprocessors(dev)
        self.screen: ScreenedFRMStep | None = None
        if precision == "screened":
            self.screen = ScreenedFRMStep(self.t0, self.t1, dim, n, block[1])
        else:  # the exhaustive kernels: transposed databases and per-split partial results
            self.dbt0, self.dbt1 = torch.zeros((dp, n0), **f32), torch.zeros((dp, n1), **f32)
            self.out_s = torch.empty((self.n_programs, n), **f32)
            self.out_i = torch.empty((self.n_programs, n), dtype=torch.int32, device=dev)
        self.graph: torch.cuda.CUDAGraph | None = None

    def load(self, f0: torch.Tensor, f1: torch.Tensor) -> None:
        """Copy (N0, D) / (N1, D) descriptors into the padded tables and derive the search tables
        (eagerly; a captured engine does the second part inside its graph)."""
        self._copy(f0, f1)
        self._tables()

    def _copy(self, f0: torch.Tensor, f1: torch.Tensor) -> None:
        if f0.shape != (self.n0, self.dim) or f1.shape != (self.n1, self.dim):
            raise ValueError(
                f"DeviceFRM was built for ({self.n0}, {self.dim}) / ({self.n1}, {self.dim}) "
                f"descriptors, got {tuple(f0.shape)} / {tuple(f1.shape)}"
            )
        self.t0[:, : self.dim].copy_(f0)
        self.t1[:, : self.dim].copy_(f1)

    def _tables(self) -> None:
        """Search tables from ``t0``/``t1``: scaled fp16 copies and margins (screened) or the
        transposed databases (exhaustive). Device ops only (graph-capturable)."""
        if self.screen is not None:
            self.screen.load()
        else:
            self.dbt0.copy_(self.t0.T)
            self.dbt1.copy_(self.t1.T)

    def _enqueue(self) -> None:
        k = load_kernels()
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
        """Run once (compiles the kernels), then record the table preparation and the iteration as
        a CUDA graph; later calls copy the descriptors in and replay it."""
        with torch.cuda.device(self.seeds.device):  # capture on the engine's GPU, whatever is current
            self._tables()
            self._enqueue()
            torch.cuda.synchronize(self.seeds.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._tables()
                self._enqueue()
        self.graph = graph
        return self

    def __call__(self, f0: torch.Tensor, f1: torch.Tensor) -> DeviceFRMResult:
        if self.graph is None:
            self.load(f0, f1)
            self._enqueue()
        else:
            self._copy(f0, f1)
            self.graph.replay()
        overflow = None if self.screen is None else self.screen.overflow
        return DeviceFRMResult(self.xy0, self.xy1, self.old0, self.active, self.counts, overflow)


class DeviceFRMPool:
    """Captured :class:`DeviceFRM` engines reused across calls of equal problem sizes.

    Engines are keyed by (device, N0, N1, D, number of seeds, max_iter, precision, block); a new
    call copies its seeds into the engine's seed buffer (the graph reads them from there) and
    replays the graph: one graph launch instead of ~140 Python-side kernel launches per call. The
    least recently used engine is dropped beyond ``max_engines`` (each holds ~10 MB per 100k pixels).
    Results are the engine's buffers: read them before the next call with the same key.
    """

    def __init__(self, max_engines: int = 4) -> None:
        self._engines = LRU(max(1, max_engines))

    def __len__(self) -> int:
        return len(self._engines)

    def __call__(
        self,
        f0: torch.Tensor,
        f1: torch.Tensor,
        seeds: torch.Tensor,
        max_iter: int,
        *,
        precision: str = "screened",
        block: tuple[int, int, int] = FRM_BLOCK,
    ) -> DeviceFRMResult:
        key = (str(seeds.device), len(f0), len(f1), f0.shape[1], len(seeds), max_iter, precision, block)

        def build() -> DeviceFRM:
            engine = DeviceFRM(len(f0), len(f1), f0.shape[1], seeds.to(torch.int64).clone(), max_iter,
                               precision=precision, block=block)
            engine.load(f0, f1)  # the warm-up run before the capture sees real descriptors
            return engine.capture()

        engine = self._engines.get_or(key, build)
        engine.seeds.copy_(seeds)
        return engine(f0, f1)


def frm_device(
    f0: torch.Tensor,
    f1: torch.Tensor,
    seeds: torch.Tensor,
    max_iter: int,
    *,
    precision: str = "screened",
    block: tuple[int, int, int] = FRM_BLOCK,
    pool: DeviceFRMPool | None = None,
) -> DeviceFRMResult:
    """FRM iterations on the GPU with no host synchronisation inside the loop (see :class:`DeviceFRM`);
    the screened precision reads its overflow flag once at the end (and reruns exhaustively if set).

    Args:
        f0 (N0, D), f1 (N1, D): float32 descriptors on one CUDA device (N0, N1 >= 1).
        seeds: (S,) int64 view-0 linear indices (unique) on that device, S >= 1.
        max_iter: iterations (each a forward and a backward NN step).
        pool: replay captured engines from this pool (:class:`DeviceFRMPool`) instead of building
            and launching a new one; the result's tensors then belong to the pool's engine.
    """
    if pool is not None:
        res = pool(f0, f1, seeds, max_iter, precision=precision, block=block)
    else:
        engine = DeviceFRM(len(f0), len(f1), f0.shape[1], seeds, max_iter, precision=precision, block=block)
        res = engine(f0, f1)
    if res.overflow is not None and bool(res.overflow.item()):
        # degenerate descriptors (massive ties): the screen could not prune; search exhaustively
        return frm_device(f0, f1, seeds, max_iter, precision="ieee", block=block)
    return res
