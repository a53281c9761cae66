"""DTU MVS accuracy / completeness / overall (Chamfer) in millimetres, as DTUeval-python computes them.

Mirrors ``jzhangbs/DTUeval-python`` ``eval.py`` (commit 45b4fecb), point-cloud mode, defaults
``downsample_density=0.2``, ``patch_size=60``, ``max_dist=20``:

1. shuffle the points (official: unseeded; here seeded, or ``shuffle=False`` to keep file order);
2. greedy thinning: walk the points in order, keep a point that has not been removed and remove
   every other point within ``downsample`` mm (distance ``<=``, like sklearn ``radius_neighbors``);
3. in-bounds: ``p >= BB_min - patch`` and ``p < BB_max + 2 * patch`` on all axes, with ``BB`` cast to
   float32 first (official ``BB.astype(np.float32)``) -- the asymmetric upper margin is kept;
4. voxel ``round((p - BB_min) / Res)`` (numpy round-half-even) cast to int32; points whose voxel is
   inside the grid and set in ``ObsMask`` form the accuracy set;
5. accuracy = mean NN distance to the STL points over the distances ``< max_dist`` only;
6. completeness = mean NN distance from the STL points strictly above the ground plane
   (``P . [x, 1] > 0``) to the in-bounds points of step 3 (NOT ObsMask-filtered), over ``< max_dist``;
7. overall = (accuracy + completeness) / 2.

Nearest neighbours use ``scipy.spatial.cKDTree`` (float64 Euclidean). Pure arrays in, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["DtuResult", "dtu_chamfer", "greedy_radius_downsample"]


def greedy_radius_downsample(points: np.ndarray, radius: float) -> np.ndarray:
    """Boolean keep-mask of the sequential greedy thinning, computed without an O(N^2) walk.

    Exactly the result of: ``for i in order: if not removed[i]: remove all j != i with
    |p_j - p_i| <= radius`` (i.e. a point is kept iff no EARLIER kept point lies within ``radius``).
    All pairs within ``radius`` come from a KD-tree; the decisions are then propagated in vectorised
    rounds (a point is kept once all its earlier neighbours are removed, removed once one of them is
    kept), and when the rounds stall (long dependency chains, e.g. points in scan order) the rest is
    finished by one sequential pass over the undecided points in index order.

    Args:
        points: (N, 3) float64 coordinates (any unit; ``radius`` in the same unit).
        radius: thinning radius (inclusive).

    Returns:
        (N,) bool, True for kept points.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n == 0:
        return np.zeros(0, dtype=bool)
    from scipy.spatial import cKDTree  # deferred: keeps `import benchmarks.metrics` light

    tree = cKDTree(pts, balanced_tree=False, compact_nodes=False)
    pairs = tree.query_pairs(radius, output_type="ndarray")  # i < j
    state = np.zeros(n, dtype=np.int8)  # 0 undecided, 1 kept, 2 removed
    if len(pairs) == 0:
        return np.ones(n, dtype=bool)
    src, dst = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    undecided = np.ones(n, dtype=bool)
    remaining = n
    for round_ in range(10_000):
        s = state[src]
        has_kept_pred = np.zeros(n, dtype=bool)
        has_kept_pred[dst[s == 1]] = True
        open_preds = np.bincount(dst[s == 0], minlength=n)
        removed = undecided & has_kept_pred
        kept = undecided & ~has_kept_pred & (open_preds == 0)
        state[removed] = 2
        state[kept] = 1
        undecided &= ~(removed | kept)
        decided = remaining - int(undecided.sum())
        remaining -= decided
        if remaining == 0:
            return state == 1
        live = (state[dst] == 0) & (state[src] != 2)
        src, dst = src[live], dst[live]
        if round_ >= 4 and decided < max(64, remaining // 50):
            break
    # Sequential finish: predecessors of an undecided point are kept or undecided (removed ones were
    # pruned), and all of them precede it, so one pass in index order settles everything.
    order = np.argsort(dst, kind="stable")
    src, dst = src[order], dst[order]
    todo = np.flatnonzero(undecided)
    lo = np.searchsorted(dst, todo, side="left").tolist()
    hi = np.searchsorted(dst, todo, side="right").tolist()
    preds = src.tolist()
    flags = bytearray(state.tobytes())
    for j, a, b in zip(todo.tolist(), lo, hi):
        flags[j] = 1
        for i in preds[a:b]:
            if flags[i] == 1:
                flags[j] = 2
                break
    return np.frombuffer(bytes(flags), dtype=np.int8) == 1


@dataclass(frozen=True)
class DtuResult:
    """DTU scores (mm) and the point counts at each stage.

    Attributes:
        accuracy_mm, completeness_mm, overall_mm: NaN when no distance is below ``max_dist``.
        n_points: input points; n_downsampled: after thinning; n_in_bounds: inside the BB margins
        (the completeness target); n_in_obs: also inside ObsMask (the accuracy set);
        n_accuracy_used: of those, with NN distance < max_dist; n_stl: GT points;
        n_stl_above: GT points above the plane; n_completeness_used: of those, distance < max_dist.
    """

    accuracy_mm: float
    completeness_mm: float
    overall_mm: float
    n_points: int
    n_downsampled: int
    n_in_bounds: int
    n_in_obs: int
    n_accuracy_used: int
    n_stl: int
    n_stl_above: int
    n_completeness_used: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _nn_distances(targets: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Euclidean distance of each query to its nearest target ((Q,) float64; inf if no target)."""
    if len(queries) == 0:
        return np.zeros(0, dtype=np.float64)
    if len(targets) == 0:
        return np.full(len(queries), np.inf)
    from scipy.spatial import cKDTree

    return cKDTree(targets).query(queries, k=1, workers=-1)[0]


def _thresholded_mean(dist: np.ndarray, max_dist: float) -> tuple[float, int]:
    used = dist[dist < max_dist]
    return (float(used.mean()) if len(used) else math.nan), len(used)


def dtu_chamfer(points: np.ndarray, stl: np.ndarray, obs_mask: np.ndarray, bb: np.ndarray, res: float,
                plane: np.ndarray, *, downsample: float = 0.2, patch: float = 60, max_dist: float = 20,
                shuffle: bool = True, seed: int = 0) -> DtuResult:
    """DTUeval-python scores of a reconstructed point cloud (see the module docstring for each step).

    Args:
        points: (N, 3) reconstruction in the DTU world frame, mm (read as float64, like open3d).
        stl: (M, 3) GT structured-light points, mm.
        obs_mask: (X, Y, Z) bool (or 0/1) ``ObsMask`` voxel grid.
        bb: (2, 3) ``BB`` (min corner, max corner), mm; cast to float32 as the official code does.
        res: ``Res`` voxel size, mm (a scalar or a 1-element array).
        plane: (4,) ground plane ``P``; STL points with ``P . [x, 1] > 0`` count for completeness.
        downsample: thinning radius, mm. patch: in-bounds margin (``-patch`` / ``+2 patch``), mm.
        max_dist: distances ``>=`` this are left out of both means, mm.
        shuffle: shuffle before thinning (official); ``False`` keeps the file order, for an exact
            comparison with other implementations. seed: the shuffle seed (official: unseeded).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    stl = np.asarray(stl, dtype=np.float64).reshape(-1, 3)
    obs = np.asarray(obs_mask)
    if obs.ndim != 3:
        raise ValueError(f"obs_mask must be a 3D grid, got shape {obs.shape}")
    bb32 = np.asarray(bb, dtype=np.float64).reshape(2, 3).astype(np.float32)
    res_arr = np.asarray(res, dtype=np.float64).reshape(-1)
    if res_arr.size != 1:
        raise ValueError(f"res must be a scalar, got shape {np.shape(res)}")
    plane_row = np.asarray(plane, dtype=np.float64).reshape(1, 4)
    patch = float(patch)  # a Python float keeps `bb32 - patch` in float32, as in the official code

    if shuffle:
        pts = pts[np.random.default_rng(seed).permutation(len(pts))]
    down = pts[greedy_radius_downsample(pts, downsample)]

    inbound = ((down >= bb32[:1] - patch) & (down < bb32[1:] + patch * 2)).sum(axis=-1) == 3
    data_in = down[inbound]
    grid = np.around((data_in - bb32[:1]) / res_arr[0]).astype(np.int32)
    grid_ok = ((grid >= 0) & (grid < np.expand_dims(obs.shape, 0))).sum(axis=-1) == 3
    g = grid[grid_ok]
    in_obs = obs[g[:, 0], g[:, 1], g[:, 2]].astype(np.bool_)
    data_in_obs = data_in[grid_ok][in_obs]

    stl_hom = np.concatenate([stl, np.ones_like(stl[:, :1])], -1)
    stl_above = stl[(plane_row * stl_hom).sum(-1) > 0]

    accuracy, n_acc = _thresholded_mean(_nn_distances(stl, data_in_obs), max_dist)
    completeness, n_comp = _thresholded_mean(_nn_distances(data_in, stl_above), max_dist)
    return DtuResult(
        accuracy_mm=accuracy, completeness_mm=completeness, overall_mm=(accuracy + completeness) / 2,
        n_points=len(pts), n_downsampled=len(down), n_in_bounds=len(data_in), n_in_obs=len(data_in_obs),
        n_accuracy_used=n_acc, n_stl=len(stl), n_stl_above=len(stl_above), n_completeness_used=n_comp,
    )
