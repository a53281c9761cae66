"""Triton kernels of the fp16 screen with a certified margin (:mod:`mast3r.matching.gpu.screen`,
:mod:`mast3r.matching.gpu.dense`): one-direction and joint (both directions) screens, thresholds
and unit lists, candidate passes, and the candidate append shared with the FRM kernels.

Conventions as in :mod:`mast3r.matching.gpu._triton_kernels` (which re-exports everything here):
fp16 tables scaled by powers of two, databases transposed (DP, N) and padded with copies of their
last column (so padding never raises a maximum), fp32 accumulation.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _append_hits(hit, q, cols, COUNT, CAND_Q, CAND_D, cap):
    """Append every (q[r], cols[c]) where ``hit[r, c]`` at ``atomic_add(COUNT, 1)``; stored while
    the slot is < ``cap``, counted always (the caller detects an overflow)."""
    zero = tl.zeros(hit.shape, tl.int32)
    slot = tl.atomic_add(COUNT + zero, zero + 1, mask=hit)
    keep = hit & (slot < cap)
    tl.store(CAND_Q + slot, zero + q[:, None], mask=keep)
    tl.store(CAND_D + slot, zero + cols[None, :], mask=keep)


@triton.jit
def screen_max_kernel(A, BT, OUT, nq, nb_pad, per, DP: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    """Screening pass: fp16 tensor-core best score of every query over one database split.

    ``A`` (nq, DP) and ``BT`` (DP, nb_pad) are fp16 (``BT`` padded with copies of its last
    column, so padding never raises a maximum and no column mask is needed); ``per`` columns per
    split (a multiple of BN). Writes ``OUT[split, q]`` (fp32). One max per score in the loop.
    """
    pid_q = tl.program_id(0)
    pid_s = tl.program_id(1)
    rows = pid_q * BM + tl.arange(0, BM)
    rmask = rows < nq
    kk = tl.arange(0, DP)
    a = tl.load(A + rows.to(tl.int64)[:, None] * DP + kk[None, :], mask=rmask[:, None], other=0.0)
    run = tl.full([BM, BN], float("-inf"), tl.float32)
    cols = pid_s * per + tl.arange(0, BN)
    for _ in range(0, per, BN):
        b = tl.load(BT + kk[:, None] * nb_pad + cols[None, :])
        run = tl.maximum(run, tl.dot(a, b))
        cols += BN
    tl.store(OUT + pid_s * nq + rows, tl.max(run, axis=1), mask=rmask)


@triton.jit
def screen_candidates_kernel(
    A,
    BT,
    THR,
    UNIT_Q,
    UNIT_S,
    CAND_Q,
    CAND_D,
    COUNT,
    nq,
    nb,
    nb_pad,
    per,
    cap,
    DP: tl.constexpr,
    BM: tl.constexpr,
    BN: tl.constexpr,
):
    """Candidate pass over the (query block, split) units listed in ``UNIT_Q``/``UNIT_S``: every
    (query, column) whose fp16 score (same tiles as :func:`screen_max_kernel`) is >= ``THR[q]``
    goes to ``CAND_Q``/``CAND_D`` (int32, :func:`_append_hits`)."""
    u = tl.program_id(0)
    pid_q = tl.load(UNIT_Q + u)
    pid_s = tl.load(UNIT_S + u)
    rows = pid_q * BM + tl.arange(0, BM)
    rmask = rows < nq
    kk = tl.arange(0, DP)
    a = tl.load(A + rows.to(tl.int64)[:, None] * DP + kk[None, :], mask=rmask[:, None], other=0.0)
    thr = tl.load(THR + rows, mask=rmask, other=float("inf"))
    cols = pid_s * per + tl.arange(0, BN)
    for _ in range(0, per, BN):
        b = tl.load(BT + kk[:, None] * nb_pad + cols[None, :])
        hit = (tl.dot(a, b) >= thr[:, None]) & (cols < nb)[None, :]
        if tl.max(tl.max(hit.to(tl.int32), axis=1), axis=0) > 0:
            _append_hits(hit, rows, cols, COUNT, CAND_Q, CAND_D, cap)
        cols += BN


@triton.jit
def screen_max2_kernel(
    A, BT, OUT_ROW, OUT_COL, nq_pad, nb_pad, per,
    DP: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, G: tl.constexpr,
):  # fmt: skip
    """Joint screening pass: every fp16 score tile of ``A . BT`` computed once for both directions.

    ``A`` (nq_pad, DP) and ``BT`` (DP, nb_pad) fp16, padded with copies of their last row / column
    (a copy never raises a maximum, so no masks); program (g, split) takes the ``G * BM`` rows of
    group g against the ``per`` columns (a multiple of BN) of its split. Writes ``OUT_ROW[split,
    q]`` (fp32, best score of row q over the split; one max per score: a row reduction per tile)
    and ``OUT_COL[g, col]`` (best score of column col over the group's rows; one max per score:
    an elementwise max over the G row blocks, reduced once per column tile).
    """
    pid_g = tl.program_id(0)
    pid_s = tl.program_id(1)
    kk = tl.arange(0, DP)
    r = tl.arange(0, BM)
    row0 = pid_g * (G * BM)
    blocks = ()
    best = ()
    for i in tl.static_range(G):
        rows = (row0 + i * BM + r).to(tl.int64)
        blocks = blocks + (tl.load(A + rows[:, None] * DP + kk[None, :]),)  # type: ignore[assignment]
        best = best + (tl.full([BM], float("-inf"), tl.float32),)  # type: ignore[assignment]
    cols = pid_s * per + tl.arange(0, BN)
    out_col = OUT_COL + pid_g.to(tl.int64) * nb_pad
    for _ in range(0, per, BN):
        b = tl.load(BT + kk[:, None] * nb_pad + cols[None, :])
        s = tl.dot(blocks[0], b)  # type: ignore[misc]  # tuples grown in the static loop above
        col = s
        best = (tl.maximum(best[0], tl.max(s, axis=1)),) + best[1:]  # type: ignore[assignment,misc]
        for i in tl.static_range(1, G):
            s = tl.dot(blocks[i], b)
            col = tl.maximum(col, s)
            best = best[:i] + (tl.maximum(best[i], tl.max(s, axis=1)),) + best[i + 1 :]  # type: ignore[misc]
        tl.store(out_col + cols, tl.max(col, axis=0))
        cols += BN
    out_row = OUT_ROW + pid_s.to(tl.int64) * nq_pad + row0
    for i in tl.static_range(G):
        tl.store(out_row + i * BM + r, best[i])


@triton.jit
def screen_reach_kernel(
    PART, MARGIN, THR, UNITS, NUNITS, n_parts, nq, stride, BM: tl.constexpr, BP: tl.constexpr
):  # fmt: skip
    """Thresholds and units of a screen, program q for queries ``q * BM ..`` (grid: query blocks).

    ``PART`` (n_parts, stride) fp32: screen maxima per (split, query), queries ``< nq`` real.
    ``THR[i] = best - MARGIN[i] - 4.8e-7 |best|`` (best over the splits); every split p where some
    query of the block reaches its threshold is appended as unit ``p * n_blocks + q`` to ``UNITS``
    (int32, room for all; count in ``NUNITS[0]``, order arbitrary).
    """
    pid = tl.program_id(0)
    cols = pid * BM + tl.arange(0, BM)
    cmask = cols < nq
    best = tl.full([BM], float("-inf"), tl.float32)
    for p0 in range(0, n_parts, BP):
        p = p0 + tl.arange(0, BP)
        m = (p < n_parts)[:, None] & cmask[None, :]
        x = tl.load(PART + p.to(tl.int64)[:, None] * stride + cols[None, :], mask=m, other=float("-inf"))
        best = tl.maximum(best, tl.max(x, axis=0))
    thr = best - tl.load(MARGIN + cols, mask=cmask, other=0.0) - 4.8e-7 * tl.abs(best)
    tl.store(THR + cols, thr, mask=cmask)
    thr = tl.where(cmask, thr, float("inf"))
    for p0 in range(0, n_parts, BP):
        p = p0 + tl.arange(0, BP)
        pmask = p < n_parts
        m = pmask[:, None] & cmask[None, :]
        x = tl.load(PART + p.to(tl.int64)[:, None] * stride + cols[None, :], mask=m, other=float("-inf"))
        hit = (tl.max(x - thr[None, :], axis=1) >= 0) & pmask
        slot = tl.atomic_add(NUNITS + tl.zeros([BP], tl.int32), 1, mask=hit)
        tl.store(UNITS + slot, p * tl.num_programs(0) + pid, mask=hit)


@triton.jit
def screen_units_kernel(
    A, BT, THR, UNITS, NUNITS, CAND_Q, CAND_D, COUNT, nq, nb, nb_pad, per, qblocks, cap,
    DP: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, CT: tl.constexpr,
):  # fmt: skip
    """Candidate pass over the ``NUNITS[0]`` units of :func:`screen_reach_kernel` (unit ``u``:
    query block ``u % qblocks``, split ``u // qblocks``; program i takes units i, i + programs,
    ...): as :func:`screen_candidates_kernel`, appends every (query, column) whose fp16 score is
    >= ``THR[q]`` (:func:`_append_hits`). A chunk of ``CT`` tiles is screened first (one max per
    score, one block-wide test) and scanned again tile by tile only where some row reaches its
    threshold."""
    n_units = tl.load(NUNITS)
    kk = tl.arange(0, DP)
    n_tiles = per // BN
    for u in range(tl.program_id(0), n_units, tl.num_programs(0)):
        unit = tl.load(UNITS + u)
        rows = (unit % qblocks) * BM + tl.arange(0, BM)
        rmask = rows < nq
        a = tl.load(A + rows.to(tl.int64)[:, None] * DP + kk[None, :], mask=rmask[:, None], other=0.0)
        thr = tl.load(THR + rows, mask=rmask, other=float("inf"))
        start = (unit // qblocks) * per
        for c0 in range(0, n_tiles, CT):
            run = tl.full([BM, BN], float("-inf"), tl.float32)
            for t in range(c0, tl.minimum(c0 + CT, n_tiles)):
                cols = start + t * BN + tl.arange(0, BN)
                run = tl.maximum(run, tl.dot(a, tl.load(BT + kk[:, None] * nb_pad + cols[None, :])))
            if tl.max((tl.max(run, axis=1) >= thr).to(tl.int32), axis=0) > 0:
                for t in range(c0, tl.minimum(c0 + CT, n_tiles)):
                    cols = start + t * BN + tl.arange(0, BN)
                    s = tl.dot(a, tl.load(BT + kk[:, None] * nb_pad + cols[None, :]))
                    hit = (s >= thr[:, None]) & (cols < nb)[None, :]
                    if tl.max(tl.max(hit.to(tl.int32), axis=1), axis=0) > 0:
                        _append_hits(hit, rows, cols, COUNT, CAND_Q, CAND_D, cap)
