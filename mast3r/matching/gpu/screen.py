"""Exact nearest neighbours on tensor cores: an fp16 screen with a certified margin, then an exact
re-check of the few survivors (``method="screened"`` of the dense GPU path).

For every query row ``a`` the best database row under the *exact* score ``a . b`` is found in
three steps, none of which materialises the (Q, N) score matrix:

1. **screen** (:func:`~mast3r.matching.gpu._triton_kernels.screen_max_kernel`): ``m_a``, the largest
   fp16 tensor-core score of ``a`` (inputs scaled by a power of two into fp16 range, fp32
   accumulation), one max per score;
2. **candidates**: every database row whose fp16 score is >= ``m_a - 2 e_a``, where ``e_a`` bounds
   the fp16 score error of ``a`` against any database row (:func:`score_error_bound`). The true best
   row ``b*`` always survives: ``fp16(a.b*) >= a.b* - e_a >= a.b_m - e_a >= m_a - 2 e_a``, with
   ``b_m`` the fp16 winner. Only (query block, split) units whose screen maximum reaches the
   threshold are scanned again;
3. **re-check**: float64 dot products of the float32 inputs for the candidates; the largest wins,
   the lowest database index on exact ties.

The result is the float64 argmax of the float32 descriptors (what a float32 GEMM gives too, except
where two candidates are within float32 rounding of each other). On smooth 24-d maps ~2-3
candidates survive per query.

:func:`screened_nn` searches one direction; :func:`~mast3r.matching.gpu.dense.screened_mutual_nn`
both, with one screen whose score tiles feed the row and the column maxima at once
(:mod:`mast3r.matching.gpu.dense`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from mast3r.matching.gpu.kernels import load_kernels, nn_search
from mast3r.matching.gpu.tables import margins, pad_dim, pow2_scale, write_fp16

__all__ = [
    "ScreenedFRMStep",
    "ScreenConfig",
    "SCREEN_CONFIG",
    "ScreenStats",
    "screened_nn",
    "recheck",
]


@dataclass(frozen=True)
class ScreenConfig:
    """Kernel shape of the screen: ``bm`` queries per program, ``bn`` database columns per tile,
    ``warps``, software-pipeline ``stages``, ``split_cols`` database columns per program (also the
    unit that the candidate pass skips or scans again); ``row_group``: row blocks of ``bm`` rows
    per program of the joint (both directions) screen of :func:`screened_mutual_nn`, whose column
    maxima are kept per group of ``row_group * bm`` rows (a power of two, 1..32)."""

    bm: int = 64
    bn: int = 64
    warps: int = 4
    stages: int = 3
    split_cols: int = 4096
    row_group: int = 8

    def __post_init__(self) -> None:
        for name in ("bm", "bn"):
            v = getattr(self, name)
            if v < 16 or v & (v - 1):
                raise ValueError(f"ScreenConfig.{name} must be a power of two >= 16, got {v}")
        g = self.row_group
        if g < 1 or g > 32 or g & (g - 1):
            raise ValueError(f"ScreenConfig.row_group must be a power of two in 1..32, got {g}")
        if self.split_cols < self.bn or self.warps < 1 or self.stages < 1:
            raise ValueError(f"invalid ScreenConfig {self}")


SCREEN_CONFIG = ScreenConfig()
"""Default shape (fastest of those tried on an H200, results/perf/)."""
MAX_CANDIDATES_PER_QUERY = 64
"""Beyond this many survivors per query (on average) the search falls back to the exhaustive
float32 kernel (:func:`~mast3r.matching.gpu.kernels.nn_search`)."""


@dataclass(frozen=True)
class ScreenStats:
    """What one screened search did: ``candidates`` re-checked in float64, ``units_scanned`` of
    ``units`` (query block, split) pairs scanned by the candidate pass."""

    candidates: int
    units_scanned: int
    units: int


class _Tables:
    """fp16 query table (nq, DP) and transposed database (DP, nb_pad), scaled, with the split plan."""

    def __init__(self, q: torch.Tensor, db: torch.Tensor, cfg: ScreenConfig) -> None:
        bm, bn, split_cols = cfg.bm, cfg.bn, cfg.split_cols
        self.nq, self.nb, dim = len(q), len(db), q.shape[1]
        self.dp = pad_dim(dim)
        self.per = max(bn, math.ceil(split_cols / bn) * bn)
        self.n_split = math.ceil(self.nb / self.per)
        self.nb_pad = self.n_split * self.per
        self.qblocks = math.ceil(self.nq / bm)
        pad = (0, self.dp - dim)
        qs = torch.nn.functional.pad(pow2_scale(q.float()), pad)
        ds = torch.nn.functional.pad(pow2_scale(db.float()), pad)
        self.a = qs.half()
        self.bt = torch.empty((self.dp, self.nb_pad), dtype=torch.float16, device=q.device)
        write_fp16(ds, None, self.bt)
        self.margin = margins(qs, ds, dim)


class ScreenedFRMStep:
    """Buffers and launches of the screened FRM half-step inside :class:`~mast3r.matching.gpu.frm.DeviceFRM`.

    Per half-step, after the engine's compaction of the active set (all sync-free, graph-capturable):
    screen (fp16 maxima per chunk of ``CHUNK_TILES`` tiles and overall), thresholds, candidate pass
    over the chunks that can hold a survivor, float64 re-check (best score, then lowest index among
    equal scores), apply. ``overflow`` turns 1 when survivors exceeded the buffer.

    Args: t0 (N0, DP), t1 (N1, DP): the engine's float32 tables (read at every :meth:`load`);
        dim: real descriptor size D; n: seeds; bn: database columns per tile.
    """

    CHUNK_TILES = 16
    """Tiles per chunk: the candidate pass rescans only chunks whose screen maximum can hold a survivor."""

    def __init__(self, t0: torch.Tensor, t1: torch.Tensor, dim: int, n: int, bn: int) -> None:
        dev, dp, n0, n1 = t0.device, t0.shape[1], len(t0), len(t1)
        self.f32, self.dim, self.dp, self.bn = [t0, t1], dim, dp, bn
        self.h = [torch.zeros((m, dp), dtype=torch.float16, device=dev) for m in (n0, n1)]
        self.ht = [
            torch.zeros((dp, math.ceil(m / bn) * bn), dtype=torch.float16, device=dev) for m in (n0, n1)
        ]
        self.margin = [torch.zeros(m, dtype=torch.float32, device=dev) for m in (n0, n1)]
        self.cap = 32 * n
        f32: dict[str, Any] = dict(dtype=torch.float32, device=dev)
        i32: dict[str, Any] = dict(dtype=torch.int32, device=dev)
        self.fine = torch.empty((math.ceil(max(n0, n1) / (bn * self.CHUNK_TILES)), n), **f32)
        self.thr = torch.empty(n, **f32)
        self.gmax = torch.full((n,), -math.inf, **f32)
        self.best = torch.empty(n, dtype=torch.int64, device=dev)
        self.best_i = torch.empty(n, **i32)
        self.count = torch.zeros(1, **i32)
        self.overflow = torch.zeros(1, **i32)
        self.cand_q, self.cand_d = torch.empty(self.cap, **i32), torch.empty(self.cap, **i32)

    def load(self) -> None:
        """From the engine's float32 tables: scaled fp16 copies, padded transposes, error margins."""
        scaled = [pow2_scale(t) for t in self.f32]
        for x, h, ht in zip(scaled, self.h, self.ht):
            write_fp16(x, h, ht)
        self.margin[0].copy_(margins(scaled[0], scaled[1], self.dim))
        self.margin[1].copy_(margins(scaled[1], scaled[0], self.dim))

    def reset(self) -> None:
        """Before the first half-step (enqueued, so a captured graph repeats it)."""
        self.overflow.zero_()
        self.gmax.fill_(-math.inf)

    def enqueue(
        self, half: int, src: torch.Tensor, dst: torch.Tensor, old: torch.Tensor, order: torch.Tensor,
        nact: torch.Tensor, active: torch.Tensor, n_programs: int,
    ) -> None:  # fmt: skip
        """Launches of one half-step (queries: view ``half`` at rows ``src[order[:nact]]``)."""
        k = load_kernels()
        q, d, n = half, 1 - half, len(self.thr)
        a, bt, n_db, dp, bn, ct = self.h[q], self.ht[d], len(self.h[d]), self.dp, self.bn, self.CHUNK_TILES
        bq, block = 64, 1024
        k.frm_screen_kernel[(n_programs,)](
            a, bt, self.fine, self.gmax, src, order, nact, n, n_db, bt.shape[1], n_programs,
            DP=dp, BQ=bq, BN=bn, CT=ct, num_warps=4,
        )  # fmt: skip
        k.frm_threshold_kernel[(math.ceil(n / block),)](
            self.gmax, src, order, nact, self.margin[q], self.thr, self.best, self.best_i, self.count,
            BLOCK=block, num_warps=4,
        )  # fmt: skip
        k.frm_candidates_kernel[(n_programs,)](
            a, bt, self.fine, self.thr, src, order, nact, self.cand_q, self.cand_d, self.count,
            n, n_db, bt.shape[1], n_programs, self.cap, DP=dp, BQ=bq, BN=bn, CT=ct, num_warps=4,
        )  # fmt: skip
        for ties in (0, 1):
            k.frm_recheck_kernel[(math.ceil(self.cap / 512),)](
                self.f32[q], self.f32[d], src, order, self.cand_q, self.cand_d, self.count,
                self.best, self.best_i, self.cap, D=self.dim, DP=dp, BLOCK=512, TIES=ties, num_warps=4,
            )  # fmt: skip
        k.frm_apply_kernel[(math.ceil(n / block),)](
            self.best_i, order, nact, dst, old, active, self.count, self.overflow, self.gmax, self.cap,
            n_db, n, BLOCK=block, num_warps=4,
        )  # fmt: skip


def screened_nn(
    queries: torch.Tensor,
    db: torch.Tensor,
    *,
    config: ScreenConfig = SCREEN_CONFIG,
    return_stats: bool = False,
) -> Any:
    """Index of the exact best (largest dot product) ``db`` row for every query row.

    Args:
        queries (Q, D), db (N, D): finite float32 tensors on one CUDA device, Q, N >= 1.
        config: kernel shape (:class:`ScreenConfig`).
    Returns: (Q,) int64 on the device (lowest index on exact float64 ties); with ``return_stats``
        also a :class:`ScreenStats`. Synchronises with the host once (the candidate count).
    """
    if len(queries) == 0 or len(db) == 0:
        raise ValueError(f"screened_nn needs non-empty inputs, got {len(queries)} queries, {len(db)} rows")
    k = load_kernels()
    bm, bn, warps, stages = config.bm, config.bn, config.warps, config.stages
    t = _Tables(queries, db, config)
    dev = queries.device
    part = torch.empty((t.n_split, t.nq), dtype=torch.float32, device=dev)
    k.screen_max_kernel[(t.qblocks, t.n_split)](
        t.a, t.bt, part, t.nq, t.nb_pad, t.per, DP=t.dp, BM=bm, BN=bn, num_warps=warps, num_stages=stages
    )
    best = part.amax(dim=0)
    # thresholds: fp32 rounding of (best - margin) is covered by lowering it by a few ulps more
    thr = best - t.margin - 4 * torch.finfo(torch.float32).eps * best.abs()
    pad = t.qblocks * bm - t.nq
    reach = part >= thr
    if pad:
        reach = torch.nn.functional.pad(reach, (0, pad))
    unit_s, unit_q = reach.view(t.n_split, t.qblocks, bm).any(dim=2).nonzero(as_tuple=True)
    unit_q, unit_s = unit_q.to(torch.int32).contiguous(), unit_s.to(torch.int32).contiguous()
    cap = max(4 * t.nq, 1 << 16)
    while True:
        count = torch.zeros(1, dtype=torch.int32, device=dev)
        cand_q = torch.empty(cap, dtype=torch.int32, device=dev)
        cand_d = torch.empty(cap, dtype=torch.int32, device=dev)
        k.screen_candidates_kernel[(len(unit_q),)](
            t.a, t.bt, thr, unit_q, unit_s, cand_q, cand_d, count,
            t.nq, t.nb, t.nb_pad, t.per, cap, DP=t.dp, BM=bm, BN=bn, num_warps=warps, num_stages=stages,
        )  # fmt: skip
        n_cand = int(count.item())
        if n_cand <= cap:
            break
        if n_cand > MAX_CANDIDATES_PER_QUERY * t.nq:
            # degenerate inputs (e.g. all-zero or repeated descriptors: everything ties): the
            # screen cannot prune, so search exhaustively in float32 instead
            nn = nn_search(queries.float(), db.float())
            return (nn, ScreenStats(n_cand, len(unit_q), t.n_split * t.qblocks)) if return_stats else nn
        cap = n_cand  # more survivors than the first buffer held: scan again with room for all
    nn = recheck(queries, db, cand_q[:n_cand].long(), cand_d[:n_cand].long())
    if return_stats:
        return nn, ScreenStats(n_cand, len(unit_q), t.n_split * t.qblocks)
    return nn


def recheck(
    queries: torch.Tensor, db: torch.Tensor, cq: torch.Tensor, cd: torch.Tensor, chunk: int = 1 << 22
) -> torch.Tensor:
    """Exact (float64) winner per query among candidate pairs (cq, cd); lowest index on ties."""
    score = torch.empty(len(cq), dtype=torch.float64, device=cq.device)
    for i in range(0, len(cq), chunk):
        q, d = cq[i : i + chunk], cd[i : i + chunk]
        score[i : i + chunk] = (queries[q].double() * db[d].double()).sum(dim=1)
    best = torch.full((len(queries),), -math.inf, dtype=torch.float64, device=cq.device)
    best.scatter_reduce_(0, cq, score, "amax")
    win = score == best[cq]
    nn = torch.full((len(queries),), len(db), dtype=torch.int64, device=cq.device)
    return nn.scatter_reduce_(0, cq[win], cd[win], "amin")
