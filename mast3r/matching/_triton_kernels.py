"""Triton kernels for GPU nearest-neighbour search and sync-free Fast Reciprocal Matching.

Imported lazily by :mod:`mast3r.matching.gpu` (only where Triton and a CUDA device exist, or under
``TRITON_INTERPRET=1`` for CPU testing). Conventions: descriptor tables are float32, padded with
zeros from D to ``DP`` (a power of two >= 16; the padding adds exact zeros to every dot product);
databases are stored transposed, (DP, N) contiguous, so that a tile of BN columns loads coalesced.
Scores are fp32 dot products; on exact ties the lowest database index wins everywhere.
"""

from __future__ import annotations

import triton
import triton.language as tl


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
    DP: tl.constexpr,
    BQ: tl.constexpr,
    BN: tl.constexpr,
    GATHER: tl.constexpr,
    PREC: tl.constexpr,
):
    """Best database column per query over one split of the database.

    Query ``i`` (compact position) is table row ``i`` (GATHER=0, ``nq`` queries) or table row
    ``ROWS[ORDER[i]]`` for ``i < NACT[0]`` (GATHER=1, the FRM active set; other programs exit).
    Writes ``OUT_S[split, i]`` (best score) and ``OUT_I[split, i]`` (its column, int32).
    Scores: ``tl.dot`` over the padded ``DP`` with input precision PREC (``ieee``: fp32 FMA).
    """
    pid_q = tl.program_id(0)
    pid_s = tl.program_id(1)
    if GATHER:
        n_act = tl.load(NACT)
    else:
        n_act = nq
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
    n_splits,
    BLOCK: tl.constexpr,
):
    """For compact ``i < NACT[0]``: reduce the splits (first maximum), ``j = ORDER[i]``,
    ``XY[j] = nn``, and ``ACTIVE[j] = 0`` where ``OLD[j] == nn`` (the FRM convergence test)."""
    pid = tl.program_id(0)
    n_act = tl.load(NACT)
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
    j = tl.load(ORDER + offs, mask=mask, other=0)
    nn = best_i.to(tl.int64)
    tl.store(XY + j, nn, mask=mask)
    old = tl.load(OLD + j, mask=mask, other=0)
    act = tl.load(ACTIVE + j, mask=mask, other=0)
    tl.store(ACTIVE + j, tl.where(old == nn, 0, act), mask=mask)


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
