"""Fast Reciprocal Matching (FRM, MASt3R paper §3.3; spec ``model.md`` §5).

Pixels of a map are addressed by linear index ``x + W * y``. Starting from seeds in view 0, FRM
alternates nearest-neighbour steps 0 -> 1 -> 0 -> ... and keeps the seeds whose cycle closes: a
converged seed is a mutual nearest-neighbour pair (the paper's Corollary), so FRM's matches are a
subset of the dense mutual-NN matches (:func:`mast3r.matching.dense_reciprocal_nn`).

Iteration, as in the official code: all seeds start active with ``xy1 = -1``. Each iteration
(a) sends the active view-0 pixels to view 1 and deactivates those whose view-1 pixel did not
change since the previous iteration (no effect in the first one), (b) sends the still-active view-1
pixels back and deactivates those whose view-0 pixel did not change (the cycle closed). After
``max_iter`` iterations the still-active seeds are dropped. Results are merged (unique pairs, sorted
by view-0 linear index, then view-1 linear index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mast3r.matching.backend import resolve_backend
from mast3r.matching.nn import MatchingInputError, as_descriptor_map, check_pair, make_index

__all__ = ["FRMStats", "fast_reciprocal_nn", "grid_seeds", "merge_correspondences", "linear_to_xy"]


@dataclass(frozen=True)
class FRMStats:
    """Iteration trace of one FRM call.

    Attributes:
        query_sizes: points sent to the NN search at each half-step (forward, backward, forward,
            ...), including a final empty backward step, exactly like the official trace.
        num_iterations: full (forward + backward) iterations run.
        num_seeds: unique seeds.
        num_converged: seeds kept before merging duplicate pairs.
        num_matches: unique matches returned.
    """

    query_sizes: tuple[int, ...]
    num_iterations: int
    num_seeds: int
    num_converged: int
    num_matches: int


def grid_seeds(shape: tuple[int, int], subsample: int) -> np.ndarray:
    """Linear indices of the seed grid ``x, y in {S//2, S//2 + S, ...}`` of an (H, W) map.

    Returns: (N,) int64, ascending (y-major).
    """
    if isinstance(subsample, bool) or not isinstance(subsample, (int, np.integer)) or subsample < 1:
        raise MatchingInputError(f"subsample must be an int >= 1, got {subsample!r}")
    h, w = shape
    ys = np.arange(subsample // 2, h, subsample, dtype=np.int64)
    xs = np.arange(subsample // 2, w, subsample, dtype=np.int64)
    return (xs[None, :] + w * ys[:, None]).reshape(-1)


def _seed_indices(seeds: Any, shape: tuple[int, int]) -> np.ndarray:
    """Explicit seeds ``(x, y)`` (pair of 1-D arrays) or (N, 2) array in (x, y) order -> unique
    sorted linear indices (int64)."""
    if isinstance(seeds, torch.Tensor):
        seeds = seeds.detach().cpu().numpy()
    if isinstance(seeds, (tuple, list)) and len(seeds) == 2:
        x, y = (np.asarray(s.detach().cpu() if isinstance(s, torch.Tensor) else s).reshape(-1) for s in seeds)
    else:
        arr = np.asarray(seeds)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise MatchingInputError(
                f"seeds: expected (x, y) arrays or an (N, 2) array, got shape {arr.shape}")
        x, y = arr[:, 0], arr[:, 1]
    if x.shape != y.shape:
        raise MatchingInputError(f"seeds: x has {x.size} values but y has {y.size}")
    for name, v in (("x", x), ("y", y)):
        if v.size and not np.issubdtype(v.dtype, np.integer):
            if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
                raise MatchingInputError(f"seeds: {name} must hold integer pixel coordinates")
    x, y = x.astype(np.int64), y.astype(np.int64)
    h, w = shape
    bad = (x < 0) | (x >= w) | (y < 0) | (y >= h)
    if bad.any():
        i = int(np.argmax(bad))
        raise MatchingInputError(
            f"seeds: {int(bad.sum())} seed(s) outside the {h}x{w} map, e.g. #{i} = ({x[i]}, {y[i]})"
        )
    return np.unique(x + w * y)


def linear_to_xy(idx: np.ndarray, width: int) -> np.ndarray:
    """(N,) linear pixel indices -> (N, 2) int32 ``(x, y)``."""
    idx = np.asarray(idx, dtype=np.int64)
    return np.stack([idx % width, idx // width], axis=-1).astype(np.int32).reshape(-1, 2)


def merge_correspondences(idx0: np.ndarray, idx1: np.ndarray, shape0: tuple[int, int],
                          shape1: tuple[int, int], *, return_index: bool = False
                          ) -> tuple[np.ndarray, ...]:
    """Unique (idx0, idx1) pairs sorted by idx0 then idx1 (the official ``merge_corres``).

    Args:
        idx0, idx1: (N,) linear pixel indices in view 0 (H0, W0) / view 1 (H1, W1).
        return_index: also return, per unique pair, the position of its first occurrence.
    Returns: ``(xy0, xy1)`` (M, 2) int32 ``(x, y)`` [, ``first`` (M,) int64].
    """
    idx0 = np.asarray(idx0, dtype=np.int64).reshape(-1)
    idx1 = np.asarray(idx1, dtype=np.int64).reshape(-1)
    n1 = int(shape1[0]) * int(shape1[1])
    key, first = np.unique(idx0 * max(n1, 1) + idx1, return_index=True)
    xy0 = linear_to_xy(key // max(n1, 1), shape0[1])
    xy1 = linear_to_xy(key % max(n1, 1), shape1[1])
    return (xy0, xy1, first.astype(np.int64)) if return_index else (xy0, xy1)


def _kept(xy0: torch.Tensor, xy1: torch.Tensor, old0: torch.Tensor, active: torch.Tensor, w0: int,
          pixel_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Converged (or, with ``pixel_tol``, near-converged) seeds as numpy linear indices (view 0, view 1)."""
    if pixel_tol > 0:
        dy, dx = old0 // w0 - xy0 // w0, old0 % w0 - xy0 % w0
        keep = torch.sqrt((dx * dx + dy * dy).double()) < pixel_tol
        xy0 = old0  # report the seeds, not their back-projections
    else:
        keep = ~active
    return xy0[keep].cpu().numpy(), xy1[keep].cpu().numpy()


def fast_reciprocal_nn(desc0: Any, desc1: Any, subsample: int = 8, max_iter: int | None = None, *,
                       seeds: Any = None, pixel_tol: float = 0, backend: str = "auto", dist: str = "dot",
                       block_size: int | None = 2**13, return_stats: bool = False, engines: Any = None
                       ) -> tuple[Any, ...]:
    """Fast Reciprocal Matching between two descriptor maps (official ``fast_reciprocal_NNs``).

    Args:
        desc0: (H0, W0, D) view-0 descriptors (numpy or torch, CPU or GPU; all work happens on
            desc0's device, desc1 is moved there).
        desc1: (H1, W1, D) view-1 descriptors.
        subsample: seed grid step (used when ``seeds`` is None).
        max_iter: iterations; ``None`` = 10 with grid seeds, 1 with explicit seeds (official).
        seeds: explicit view-0 seeds, ``(x, y)`` 1-D integer arrays or an (N, 2) ``(x, y)`` array
            (e.g. map pixels with a valid 3D point in localisation); made unique and sorted.
        pixel_tol: > 0 (needs ``seeds``): keep a seed if its back-projected view-0 pixel lies
            strictly within ``pixel_tol`` pixels (Euclidean) and report the seed itself as xy0.
        backend: ``"auto"`` | ``"torch"`` | ``"faiss"`` | ``"triton"`` (:mod:`mast3r.matching.nn`);
            ``auto`` runs float32 CUDA maps with ``dist="dot"`` through the sync-free Triton loop
            (:func:`mast3r.matching.gpu.frm.frm_device`), everything else as ``torch``.
        dist: ``"dot"`` (largest inner product) or ``"l2"``.
        block_size: torch backend block edge (memory bound ``block_size**2`` scores per block).
        return_stats: also return an :class:`FRMStats`.
        engines: a :class:`~mast3r.matching.gpu.frm.DeviceFRMPool` whose captured engines the GPU
            loop replays (repeated calls with equal map sizes: one graph launch each).
    Returns: ``(xy0, xy1)`` (N, 2) int32 numpy ``(x, y)`` in network pixels of each map, sorted by
        view-0 linear index then view-1 linear index [, ``stats``].
    Raises: MatchingInputError on malformed maps/seeds (wrong rank, D mismatch, NaN, out of range).
    """
    d0 = as_descriptor_map(desc0, "desc0")
    d1 = as_descriptor_map(desc1, "desc1")
    f0, f1 = check_pair(d0, d1)
    shape0, shape1 = (int(d0.shape[0]), int(d0.shape[1])), (int(d1.shape[0]), int(d1.shape[1]))
    if seeds is None:
        if pixel_tol > 0:
            raise MatchingInputError("pixel_tol > 0 needs explicit seeds (as in the official code)")
        seed_idx = grid_seeds(shape0, subsample)
        max_iter = 10 if max_iter is None else max_iter
    else:
        seed_idx = _seed_indices(seeds, shape0)
        max_iter = 1 if max_iter is None else max_iter
    if max_iter < 1:
        raise MatchingInputError(f"max_iter must be >= 1, got {max_iter}")
    if resolve_backend(backend) == "faiss":
        f0, f1 = f0.cpu(), f1.cpu()
    dev = f0.device

    sizes: list[int] = []
    niter = 0
    if len(seed_idx) == 0 or len(f1) == 0:
        kept0 = kept1 = np.zeros(0, np.int64)
    elif resolve_backend(backend, f0, dist) == "triton":  # same iteration on the GPU, one sync at the end
        from mast3r.matching.gpu.frm import frm_device

        res = frm_device(f0, f1, torch.from_numpy(seed_idx).to(dev), max_iter, pool=engines)
        sizes, niter = res.trace()
        kept0, kept1 = _kept(res.xy0, res.xy1, res.old0, res.active.bool(), shape0[1], pixel_tol)
    else:
        index1 = make_index(f1, backend, dist, block_size)  # answers view-0 queries
        index0 = make_index(f0, backend, dist, block_size)  # answers view-1 queries
        xy0 = torch.from_numpy(seed_idx).to(dev)
        xy1 = torch.full_like(xy0, -1)
        old0, old1 = xy0.clone(), xy1.clone()
        active = torch.ones(len(xy0), dtype=torch.bool, device=dev)
        while True:
            todo = active.nonzero()[:, 0]
            if len(todo) == 0:
                break
            sizes.append(len(todo))
            xy1[todo] = index1.query(f0[xy0[todo]])
            active &= old1 != xy1  # unchanged view-1 pixel: a mutual pair, converged
            todo = active.nonzero()[:, 0]
            sizes.append(len(todo))
            if len(todo):
                xy0[todo] = index0.query(f1[xy1[todo]])
            active &= old0 != xy0  # cycle closed on the view-0 pixel: converged
            niter += 1
            if niter >= max_iter:
                break
            old0.copy_(xy0)
            old1.copy_(xy1)
        kept0, kept1 = _kept(xy0, xy1, old0, active, shape0[1], pixel_tol)

    out0, out1 = merge_correspondences(kept0, kept1, shape0, shape1)
    if not return_stats:
        return out0, out1
    stats = FRMStats(tuple(sizes), niter, len(seed_idx), len(kept0), len(out0))
    return out0, out1, stats
