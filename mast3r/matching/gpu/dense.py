"""Exact dense mutual nearest neighbours with ONE fp16 screen for both directions
(:func:`~mast3r.matching.gpu.screen.screened_mutual_nn`, the ``screened`` dense GPU method).

The certified-margin method of :mod:`mast3r.matching.gpu.screen`, with the screen shared:

1. **joint screen** (:func:`~mast3r.matching.gpu._triton_kernels.screen_max2_kernel`): every fp16
   tile of ``S = A B^T`` (``A``, ``B``: f0, f1 scaled by powers of two into fp16 range, so both
   directions see the same scaled scores) is computed once and feeds the row maxima per (row of
   f0, split of ``split_cols`` f1 rows) and the column maxima per (group of ``row_group * bm``
   f0 rows, row of f1). Padding repeats the last row / column, so it never raises a maximum;
2. **thresholds and units** (:func:`~mast3r.matching.gpu._triton_kernels.screen_reach_kernel`, per
   direction): ``best - margin - 4.8e-7 |best|``, the margin twice
   :func:`~mast3r.matching.gpu.screen.score_error_bound` of the row's scaled norm against the
   largest scaled norm of the other side (the bound is symmetric and holds for any fp32
   summation order, so an f1 -> f0 score may be summed differently from the screen's); the units
   that can hold a survivor: (bm rows of f0, split) for f0 -> f1, (bm rows of f1, group) for
   f1 -> f0;
3. **candidates** (:func:`~mast3r.matching.gpu._triton_kernels.screen_units_kernel`): the same fp16
   scores again over those units only, f1 -> f0 on the swapped tables with one group per split;
4. **re-check** (:func:`~mast3r.matching.gpu._triton_kernels.frm_recheck_kernel`): float64 scores of
   the float32 inputs; the best wins, the lowest index on exact ties.

Everything is enqueued without host synchronisation; the host reads the two candidate counts once
at the end (too many survivors for the buffer: scan again with room for all; degenerate inputs
where the screen cannot prune: exhaustive float32 search, as
:func:`~mast3r.matching.gpu.screen.screened_nn` does).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mast3r.matching.gpu.kernels import DEFAULT_BLOCK, load_kernels, nn_search
from mast3r.matching.gpu.screen import MAX_CANDIDATES_PER_QUERY, SCREEN_CONFIG, ScreenConfig, ScreenStats
from mast3r.matching.gpu.tables import margins, multiprocessors, pad_dim, pow2_scale, table, write_fp16

__all__ = ["joint_mutual_nn", "screened_mutual_nn", "dense_mutual_nn_device", "DENSE_METHODS"]


class _JointTables:
    """Scaled fp16 tables of both sides and the plan of the joint screen.

    ``a0`` (n0_pad, DP): f0 rows padded with copies of row n0-1 to whole row groups (``group`` =
    row_group * bm rows); ``bt1`` (DP, n1_pad): f1 transposed, padded with copies of column n1-1
    to whole splits of ``per`` columns. After :meth:`second_side` (enqueued once the screen is):
    ``bt0`` (DP, n0_pad) the transpose of ``a0`` (database of the f1 -> f0 pass, one group per
    split), ``a1`` (n1, DP) the f1 rows, ``margin0`` (n0,), ``margin1`` (n1,): twice the fp16 score
    error bound of each row against the other side (float32).
    """

    def __init__(self, f0: torch.Tensor, f1: torch.Tensor, cfg: ScreenConfig) -> None:
        self.n0, self.n1, self.dim = len(f0), len(f1), f0.shape[1]
        self.dp = pad_dim(self.dim)
        self.group = cfg.row_group * cfg.bm
        self.per = max(cfg.bn, math.ceil(cfg.split_cols / cfg.bn) * cfg.bn)
        self.n_group = math.ceil(self.n0 / self.group)
        self.n_split = math.ceil(self.n1 / self.per)
        pad = (0, self.dp - self.dim)
        self.s0 = s0 = torch.nn.functional.pad(pow2_scale(f0.float()), pad)
        self.s1 = s1 = torch.nn.functional.pad(pow2_scale(f1.float()), pad)
        half: dict[str, Any] = dict(dtype=torch.float16, device=f0.device)
        self.a0 = torch.empty((self.n_group * self.group, self.dp), **half)
        self.a0[: self.n0].copy_(s0)
        self.a0[self.n0 :].copy_(s0[-1:].expand(len(self.a0) - self.n0, -1))
        self.bt1 = torch.empty((self.dp, self.n_split * self.per), **half)
        write_fp16(s1, None, self.bt1)

    def second_side(self) -> None:
        self.bt0 = self.a0.T.contiguous()
        self.a1 = self.s1.half()
        self.margin0 = margins(self.s0, self.s1, self.dim)
        self.margin1 = margins(self.s1, self.s0, self.dim)


class _Direction:
    """One direction of the search, enqueued without host synchronisation: queries ``q`` (nq, D)
    against ``db`` (nb, D) (the float32 inputs; ``qt``, ``dbt`` their (rows, DP) float32 tables),
    fp16 tables ``a`` (>= nq rows, DP) and ``bt`` (DP, nb_pad) with ``per`` database rows per
    split, screen maxima ``part`` (splits, >= nq) fp32 and ``margin`` (nq,)."""

    CHUNK_TILES = 8
    """Tiles the candidate pass screens together before it scans them one by one."""

    def __init__(
        self, q: torch.Tensor, db: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor],
        a: torch.Tensor, bt: torch.Tensor, per: int, part: torch.Tensor, margin: torch.Tensor,
        bm: int, bn: int, cfg: ScreenConfig,
    ) -> None:  # fmt: skip
        dev, self.nq = q.device, len(q)
        self.q, self.db, (self.qt, self.dbt), self.a, self.bt, self.per = q, db, tables, a, bt, per
        self.bm, self.bn, self.cfg = bm, bn, cfg
        self.qblocks = math.ceil(self.nq / bm)
        self.n_units = len(part) * self.qblocks
        i32: dict[str, Any] = dict(dtype=torch.int32, device=dev)
        self.thr = torch.empty(self.nq, dtype=torch.float32, device=dev)
        self.units, self.count = torch.empty(self.n_units, **i32), torch.zeros(2, **i32)
        load_kernels().screen_reach_kernel[(self.qblocks,)](
            part, margin, self.thr, self.units, self.count[1:], len(part), self.nq, part.stride(0),
            BM=bm, BP=32, num_warps=4,
        )  # fmt: skip
        self.search(max(4 * self.nq, 1 << 16))

    def search(self, cap: int) -> None:
        """Enqueue the candidate pass over the units that reach a threshold (into ``cand_q``,
        ``cand_d`` (cap,) int32, count in ``count[0]``) and the float64 re-check into ``nn``."""
        dev, i32, k = self.q.device, torch.int32, load_kernels()
        self.cap = cap
        self.count[:1].zero_()
        cand_q, cand_d = torch.empty(cap, dtype=i32, device=dev), torch.empty(cap, dtype=i32, device=dev)
        k.screen_units_kernel[(max(1, min(8 * multiprocessors(dev), self.n_units)),)](
            self.a, self.bt, self.thr, self.units, self.count[1:], cand_q, cand_d, self.count,
            self.nq, len(self.db), self.bt.shape[1], self.per, self.qblocks, cap,
            DP=self.a.shape[1], BM=self.bm, BN=self.bn, CT=self.CHUNK_TILES,
            num_warps=self.cfg.warps, num_stages=self.cfg.stages,
        )  # fmt: skip
        ident = torch.arange(self.nq, dtype=i32, device=dev)
        best = torch.full((self.nq,), -(2**63), dtype=torch.int64, device=dev)
        self.nn = torch.full((self.nq,), 2**31 - 1, dtype=i32, device=dev)
        for ties in (0, 1):  # best float64 score, then the lowest index among equal scores
            k.frm_recheck_kernel[(math.ceil(cap / 512),)](
                self.qt, self.dbt, ident, ident, cand_q, cand_d, self.count, best, self.nn, cap,
                D=self.q.shape[1], DP=self.qt.shape[1], BLOCK=512, TIES=ties, num_warps=4,
            )  # fmt: skip

    def finish(self, n_cand: int, n_units: int) -> tuple[torch.Tensor, ScreenStats]:
        """(nq,) int64 exact nearest neighbours, given ``count`` read on the host."""
        stats = ScreenStats(n_cand, n_units, self.n_units)
        if n_cand > self.cap:
            if n_cand > MAX_CANDIDATES_PER_QUERY * self.nq:
                # degenerate inputs (e.g. all-zero or repeated descriptors: everything ties): the
                # screen cannot prune, so search exhaustively in float32 instead
                return nn_search(self.q.float(), self.db.float()), stats
            self.search(n_cand)  # more survivors than the buffer held: again with room for all
        return self.nn.long(), stats


def joint_mutual_nn(
    f0: torch.Tensor, f1: torch.Tensor, *, config: ScreenConfig = SCREEN_CONFIG, return_stats: bool = False
) -> Any:
    """(nn01 (N0,), nn10 (N1,)) int64 on the device: the exact (float64) best row of the other side
    for every row of f0 and of f1, the lowest index on exact ties.

    Args: f0 (N0, D), f1 (N1, D): finite float32 tensors on one CUDA device, N0, N1 >= 1;
        config: kernel shape (:class:`~mast3r.matching.gpu.screen.ScreenConfig`; ``row_group``
        row blocks of ``bm`` rows share each column maximum).
    Returns: the pair; with ``return_stats`` also (stats01, stats10) :class:`ScreenStats`.
        Synchronises with the host once, after everything is enqueued (the candidate counts).
    """
    if len(f0) == 0 or len(f1) == 0:
        raise ValueError(f"screened_mutual_nn needs non-empty inputs, got {len(f0)} and {len(f1)} rows")
    cfg = config
    t = _JointTables(f0, f1, cfg)
    out_row = torch.empty((t.n_split, len(t.a0)), dtype=torch.float32, device=f0.device)
    out_col = torch.empty((t.n_group, t.bt1.shape[1]), dtype=torch.float32, device=f0.device)
    load_kernels().screen_max2_kernel[(t.n_group, t.n_split)](
        t.a0, t.bt1, out_row, out_col, len(t.a0), t.bt1.shape[1], t.per,
        DP=t.dp, BM=cfg.bm, BN=cfg.bn, G=cfg.row_group, num_warps=cfg.warps, num_stages=cfg.stages,
    )  # fmt: skip
    t.second_side()
    t0, t1 = table(f0), table(f1)
    dirs = (
        _Direction(f0, f1, (t0, t1), t.a0, t.bt1, t.per, out_row, t.margin0, cfg.bm, cfg.bn, cfg),
        _Direction(
            f1, f0, (t1, t0), t.a1, t.bt0, t.group, out_col, t.margin1, cfg.bm, min(cfg.bn, t.group), cfg
        ),
    )
    counts = torch.cat([d.count for d in dirs]).tolist()  # the one host synchronisation
    (nn01, st01), (nn10, st10) = (d.finish(*counts[2 * i : 2 * i + 2]) for i, d in enumerate(dirs))
    return ((nn01, nn10), (st01, st10)) if return_stats else (nn01, nn10)


def screened_mutual_nn(
    f0: torch.Tensor, f1: torch.Tensor, *, config: ScreenConfig = SCREEN_CONFIG, return_stats: bool = False
) -> Any:
    """(nn01 (N0,), nn10 (N1,)) int64: exact (float64, lowest index on ties) nearest neighbour of
    every row both ways, from ONE fp16 screen of f0 (N0, D) x f1 (N1, D) float32 (CUDA) for both
    directions (:func:`mast3r.matching.gpu.dense.joint_mutual_nn`); with ``return_stats`` also
    (stats01, stats10) :class:`ScreenStats`. One host synchronisation (the candidate counts)."""
    return joint_mutual_nn(f0, f1, config=config, return_stats=return_stats)


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
    re-check of the survivors (:mod:`mast3r.matching.gpu.dense`; exact, one host sync in all);
    ``"exhaustive"``: :func:`nn_search` at ``precision`` over every pair (no host sync).
    ``block``: exhaustive kernel block; ``screen``: a ``ScreenConfig`` (None = its default).
    """
    if method == "screened":
        return screened_mutual_nn(f0, f1, config=screen or SCREEN_CONFIG)
    if method != "exhaustive":
        raise ValueError(f"unknown dense method {method!r}; choose one of {DENSE_METHODS}")
    return (
        nn_search(f0, f1, precision=precision, block=block),
        nn_search(f1, f0, precision=precision, block=block),
    )
