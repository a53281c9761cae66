"""Triton kernels for GPU nearest-neighbour search and sync-free Fast Reciprocal Matching.

Imported lazily by :func:`mast3r.matching.gpu.kernels.load_kernels` (only where Triton and a CUDA
device exist, or under ``TRITON_INTERPRET=1`` for CPU testing). Conventions: descriptor tables are
float32, padded with zeros from D to ``DP`` (a power of two >= 16; the padding adds exact zeros to
every dot product); databases are stored transposed, (DP, N) contiguous, so that a tile of BN
columns loads coalesced. Scores are fp32 dot products; on exact ties the lowest database index
wins everywhere.
"""

from __future__ import annotations

import triton
import triton.language as tl

from mast3r.matching.gpu._triton_screen import (  # noqa: F401 - re-exported: gpu.kernels.load_kernels() serves both
    _append_hits,
    screen_candidates_kernel,
    screen_max2_kernel,
    screen_max_kernel,
    screen_reach_kernel,
    screen_units_kernel,
)


@triton.jit
def frm_splits(n_act, n_db, n_programs, BQ: tl.constexpr, BN: tl.constexpr):
    """(splits, columns per split) for ``n_act`` active queries: as many splits as fit
    ``n_programs`` programs, each at least one BN tile (the same formula in every kernel)."""
    qblocks = tl.maximum(tl.cdiv(n_act, BQ), 1)
    n_split = tl.minimum(tl.maximum(n_programs // qblocks, 1), tl.cdiv(n_db, BN))
    per = tl.cdiv(tl.cdiv(n_db, n_split), BN) * BN
    return tl.cdiv(n_db, per), per


@triton.jit
def _frm_program(NACT, n_db, n_programs, BQ: tl.constexpr, BN: tl.constexpr):
    """(active count, query block, split, columns per split) of this program (see frm_splits)."""
    n_act = tl.load(NACT)
    n_split, per = frm_splits(n_act, n_db, n_programs, BQ, BN)
    pid = tl.program_id(0)
    return n_act, pid // n_split, pid % n_split, per


@triton.jit
def _frm_store(nn, offs, mask, ORDER, XY, OLD, ACTIVE):
    """FRM update of compact positions ``offs``: ``XY[ORDER[i]] = nn``, and ``ACTIVE[j] = 0`` where
    ``OLD[j] == nn`` (the convergence test)."""
    j = tl.load(ORDER + offs, mask=mask, other=0)
    tl.store(XY + j, nn, mask=mask)
    old = tl.load(OLD + j, mask=mask, other=0)
    act = tl.load(ACTIVE + j, mask=mask, other=0)
    tl.store(ACTIVE + j, tl.where(old == nn, 0, act), mask=mask)


@triton.jit
def nn_partial_kernel(
    Q,
    DBT,
    OUT_S,
    OUT_I,
    ROWS,
    ORDER,
    NACT,
    nq,
    n_db,
    n_per_split,
    n_programs,
    DP: tl.constexpr,
    BQ: tl.constexpr,
    BN: tl.constexpr,
    GATHER: tl.constexpr,
    PREC: tl.constexpr,
):
    """Best database column per query over one split of the database.

    GATHER=0: ``nq`` queries, table rows ``0..nq-1``; the grid is (query blocks, splits) with
    ``n_per_split`` columns per split. GATHER=1 (the FRM active set): query ``i < NACT[0]`` is table
    row ``ROWS[ORDER[i]]``; the grid is 1-D with ``n_programs`` programs, and the split count adapts
    to the active set on the device (:func:`frm_splits`): few active queries get many short splits,
    so a nearly converged half-step is as parallel as the first one.
    Writes ``OUT_S[split, i]`` (best score) and ``OUT_I[split, i]`` (its column, int32).
    Scores: ``tl.dot`` over the padded ``DP`` with input precision PREC (``ieee``: fp32 FMA).
    """
    if GATHER:
        n_act, pid_q, pid_s, n_per_split = _frm_program(NACT, n_db, n_programs, BQ, BN)
    else:
        n_act = nq
        pid_q = tl.program_id(0)
        pid_s = tl.program_id(1)
    row0 = pid_q * BQ
    if row0 < n_act:
        offs_q = row0 + tl.arange(0, BQ)
        qmask = offs_q < n_act
        if GATHER:
            src = tl.load(ORDER + offs_q, mask=qmask, other=0)
            rows = tl.load(ROWS + src, mask=qmask, other=0)
        else:
            rows = offs_q
        kk = tl.arange(0, DP)
        q = tl.load(Q + rows.to(tl.int64)[:, None] * DP + kk[None, :], mask=qmask[:, None], other=0.0)
        # running maximum per (query, column lane): no cross-lane reduction inside the loop; a lane
        # keeps its first (lowest) column on ties, the final reduction the lowest lane index.
        run = tl.full([BQ, BN], float("-inf"), tl.float32)
        run_i = tl.zeros([BQ, BN], tl.int32)
        start = pid_s * n_per_split
        end = tl.minimum(start + n_per_split, n_db)
        lanes = tl.arange(0, BN)
        for n0 in range(0, n_per_split, BN):
            cols = start + n0 + lanes
            cmask = cols < end
            db = tl.load(DBT + kk[:, None] * n_db + cols[None, :], mask=cmask[None, :], other=0.0)
            s = tl.dot(q, db, input_precision=PREC)
            upd = (s > run) & cmask[None, :]
            run = tl.where(upd, s, run)
            run_i = tl.where(upd, n0, run_i)
        best = tl.max(run, axis=1)
        cand = tl.where(run == best[:, None], run_i + lanes[None, :], 2147483647)
        best_i = start + tl.min(cand, axis=1)
        tl.store(OUT_S + pid_s * nq + offs_q, best, mask=qmask)
        tl.store(OUT_I + pid_s * nq + offs_q, best_i, mask=qmask)


@triton.jit
def frm_update_kernel(
    OUT_S,
    OUT_I,
    ORDER,
    NACT,
    XY,
    OLD,
    ACTIVE,
    nq,
    n_db,
    n_programs,
    BQ: tl.constexpr,
    BN: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """For compact ``i < NACT[0]``: reduce the splits of :func:`frm_splits` (first maximum),
    ``j = ORDER[i]``, ``XY[j] = nn``, and ``ACTIVE[j] = 0`` where ``OLD[j] == nn`` (the FRM
    convergence test)."""
    pid = tl.program_id(0)
    n_act = tl.load(NACT)
    n_splits, _ = frm_splits(n_act, n_db, n_programs, BQ, BN)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_act
    best = tl.full([BLOCK], float("-inf"), tl.float32)
    best_i = tl.zeros([BLOCK], tl.int32)
    for s in range(n_splits):
        sc = tl.load(OUT_S + s * nq + offs, mask=mask, other=float("-inf"))
        ix = tl.load(OUT_I + s * nq + offs, mask=mask, other=0)
        better = sc > best
        best_i = tl.where(better, ix, best_i)
        best = tl.where(better, sc, best)
    _frm_store(best_i.to(tl.int64), offs, mask, ORDER, XY, OLD, ACTIVE)


@triton.jit
def frm_compact_kernel(
    ACTIVE,
    ORDER,
    NACT,
    COUNTS,
    slot,
    n,
    XY0,
    OLD0,
    XY1,
    OLD1,
    COPY_OLD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One program: ``ORDER[:k]`` = active positions in ascending order, ``NACT[0] = COUNTS[slot] = k``.

    With COPY_OLD also ``OLD0 = XY0`` and ``OLD1 = XY1`` (the end-of-iteration copy of FRM).
    """
    total = tl.zeros([1], tl.int32)
    for c0 in range(0, n, BLOCK):
        offs = c0 + tl.arange(0, BLOCK)
        inb = offs < n
        a = tl.load(ACTIVE + offs, mask=inb, other=0).to(tl.int32)
        pos = tl.cumsum(a, axis=0) - a + tl.sum(total, axis=0)
        tl.store(ORDER + pos, offs, mask=inb & (a != 0))
        total += tl.sum(a, axis=0)
        if COPY_OLD:
            tl.store(OLD0 + offs, tl.load(XY0 + offs, mask=inb), mask=inb)
            tl.store(OLD1 + offs, tl.load(XY1 + offs, mask=inb), mask=inb)
    first = tl.arange(0, 1)
    tl.store(NACT + first, total)
    tl.store(COUNTS + slot + first, total.to(tl.int64))


@triton.jit
def frm_screen_kernel(
    A, BT, FINE, GMAX, ROWS, ORDER, NACT, nq, n_db, nb_pad, n_programs,
    DP: tl.constexpr, BQ: tl.constexpr, BN: tl.constexpr, CT: tl.constexpr,
):  # fmt: skip
    """FRM screen: fp16 best score of every active query per chunk of ``CT`` tiles (``FINE[chunk,
    i]``) and overall (``GMAX``, atomic max; -inf before the half-step). Splits are whole chunks.

    ``A`` (rows, DP) fp16 query table, ``BT`` (DP, nb_pad) fp16 with ``nb_pad`` a multiple of BN,
    padded with copies of the last column (so a split's last tile needs no mask)."""
    n_act, pid_q, pid_s, per = _frm_program(NACT, n_db, n_programs, BQ, BN * CT)
    offs = pid_q * BQ + tl.arange(0, BQ)
    if pid_q * BQ < n_act:
        qmask = offs < n_act
        rows = tl.load(ROWS + tl.load(ORDER + offs, mask=qmask, other=0), mask=qmask, other=0)
        kk = tl.arange(0, DP)
        a = tl.load(A + rows.to(tl.int64)[:, None] * DP + kk[None, :], mask=qmask[:, None], other=0.0)
        start = pid_s * per
        n_tiles = tl.cdiv(tl.minimum(per, n_db - start), BN)
        best = tl.full([BQ], float("-inf"), tl.float32)
        for c0 in range(0, n_tiles, CT):
            run = tl.full([BQ, BN], float("-inf"), tl.float32)
            for t in range(c0, tl.minimum(c0 + CT, n_tiles)):
                cols = start + t * BN + tl.arange(0, BN)
                b = tl.load(BT + kk[:, None] * nb_pad + cols[None, :])
                run = tl.maximum(run, tl.dot(a, b))
            m = tl.max(run, axis=1)
            tl.store(FINE + ((start // BN + c0) // CT) * nq + offs, m, mask=qmask)
            best = tl.maximum(best, m)
        tl.atomic_max(GMAX + offs, best, mask=qmask)


@triton.jit
def frm_threshold_kernel(
    GMAX, ROWS, ORDER, NACT, MARGIN, THR, BEST, BEST_I, COUNT, BLOCK: tl.constexpr,
):  # fmt: skip
    """``THR[i] = GMAX[i] - MARGIN[row] - 4 eps |GMAX[i]|`` for active ``i``; resets ``BEST``
    (to the smallest int64), ``BEST_I`` and the candidate ``COUNT``."""
    pid = tl.program_id(0)
    n_act = tl.load(NACT)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_act
    best = tl.load(GMAX + offs, mask=mask, other=0.0)
    rows = tl.load(ROWS + tl.load(ORDER + offs, mask=mask, other=0), mask=mask, other=0)
    margin = tl.load(MARGIN + rows, mask=mask, other=0.0)
    tl.store(THR + offs, best - margin - 4.8e-7 * tl.abs(best), mask=mask)
    tl.store(BEST + offs, tl.full([BLOCK], -9223372036854775807, tl.int64) - 1, mask=mask)
    tl.store(BEST_I + offs, tl.full([BLOCK], 2147483647, tl.int32), mask=mask)
    first = tl.arange(0, 1)
    tl.store(COUNT + first, tl.zeros([1], tl.int32), mask=(first + pid) == 0)


@triton.jit
def frm_candidates_kernel(
    A, BT, FINE, THR, ROWS, ORDER, NACT, CAND_Q, CAND_D, COUNT, nq, n_db, nb_pad, n_programs, cap,
    DP: tl.constexpr, BQ: tl.constexpr, BN: tl.constexpr, CT: tl.constexpr,
):  # fmt: skip
    """Rescan the chunks whose screen maximum reaches some query's threshold; append every
    (compact query, column) with fp16 score >= ``THR`` (:func:`_append_hits`)."""
    n_act, pid_q, pid_s, per = _frm_program(NACT, n_db, n_programs, BQ, BN * CT)
    offs = pid_q * BQ + tl.arange(0, BQ)
    if pid_q * BQ < n_act:
        qmask = offs < n_act
        thr = tl.load(THR + offs, mask=qmask, other=float("inf"))
        rows = tl.load(ROWS + tl.load(ORDER + offs, mask=qmask, other=0), mask=qmask, other=0)
        kk = tl.arange(0, DP)
        a = tl.load(A + rows.to(tl.int64)[:, None] * DP + kk[None, :], mask=qmask[:, None], other=0.0)
        start = pid_s * per
        end = tl.minimum(start + per, n_db)
        n_tiles = tl.cdiv(end - start, BN)
        for c0 in range(0, n_tiles, CT):
            part = tl.load(FINE + ((start // BN + c0) // CT) * nq + offs, mask=qmask, other=float("-inf"))
            if tl.max((part >= thr).to(tl.int32), axis=0) > 0:
                for t in range(c0, tl.minimum(c0 + CT, n_tiles)):
                    cols = start + t * BN + tl.arange(0, BN)
                    b = tl.load(BT + kk[:, None] * nb_pad + cols[None, :])
                    hit = (tl.dot(a, b) >= thr[:, None]) & (cols < end)[None, :]
                    if tl.max(tl.max(hit.to(tl.int32), axis=1), axis=0) > 0:
                        _append_hits(hit, offs, cols, COUNT, CAND_Q, CAND_D, cap)


@triton.jit
def frm_recheck_kernel(
    Q, DB, ROWS, ORDER, CAND_Q, CAND_D, COUNT, BEST, BEST_I, cap,
    D: tl.constexpr, DP: tl.constexpr, BLOCK: tl.constexpr, TIES: tl.constexpr,
):  # fmt: skip
    """Exact re-check of the candidates: float64 score of the float32 descriptors (``Q``, ``DB``
    (rows, DP) float32 tables). TIES=0: ``BEST[i] = atomic_max`` of the score's order-preserving
    int64 bits; TIES=1: ``BEST_I[i] = atomic_min`` of the columns that reach ``BEST[i]``."""
    pid = tl.program_id(0)
    n = tl.minimum(tl.load(COUNT), cap)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    if pid * BLOCK < n:
        mask = offs < n
        i = tl.load(CAND_Q + offs, mask=mask, other=0)
        col = tl.load(CAND_D + offs, mask=mask, other=0).to(tl.int64)
        row = tl.load(ROWS + tl.load(ORDER + i, mask=mask, other=0), mask=mask, other=0).to(tl.int64)
        kk = tl.arange(0, DP)
        km = kk < D
        q = tl.load(Q + row[:, None] * DP + kk[None, :], mask=mask[:, None] & km[None, :], other=0.0)
        d = tl.load(DB + col[:, None] * DP + kk[None, :], mask=mask[:, None] & km[None, :], other=0.0)
        score = tl.sum(q.to(tl.float64) * d.to(tl.float64), axis=1) + 0.0  # -0.0 -> +0.0
        bits = score.to(tl.int64, bitcast=True)
        key = tl.where(bits >= 0, bits, bits ^ 0x7FFFFFFFFFFFFFFF)
        if TIES:
            win = mask & (key == tl.load(BEST + i, mask=mask, other=0))
            tl.atomic_min(BEST_I + i, col.to(tl.int32), mask=win)
        else:
            tl.atomic_max(BEST + i, key, mask=mask)


@triton.jit
def frm_apply_kernel(
    BEST_I, ORDER, NACT, XY, OLD, ACTIVE, COUNT, OVERFLOW, GMAX, cap, n_db, nq, BLOCK: tl.constexpr
):  # fmt: skip
    """``XY[ORDER[i]] = BEST_I[i]`` for active ``i``; deactivate where it equals ``OLD``;
    ``OVERFLOW[0] = 1`` if this half-step had more candidates than ``cap`` (a query whose
    candidates were all dropped then gets column 0, so later steps stay in bounds); ``GMAX``
    back to -inf for the next half-step."""
    pid = tl.program_id(0)
    every = pid * BLOCK + tl.arange(0, BLOCK)
    tl.store(GMAX + every, tl.full([BLOCK], float("-inf"), tl.float32), mask=every < nq)
    first = tl.arange(0, 1)
    over = (tl.load(COUNT + first) > cap).to(tl.int32)
    tl.atomic_max(OVERFLOW + first, over, mask=(first + pid) == 0)
    n_act = tl.load(NACT)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_act
    nn = tl.load(BEST_I + offs, mask=mask, other=0).to(tl.int64)
    _frm_store(tl.where(nn < n_db, nn, 0), offs, mask, ORDER, XY, OLD, ACTIVE)
