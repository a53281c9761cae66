"""The PoseDiffusion multi-view relative pose protocol shared by the CO3Dv2 and RealEstate10K adapters.

Protocol (PoseDiffusion ``test.py`` / ``datasets/co3d_v2.py`` at b138198e; spec ``benchmarks.md``
sections 4-5): per sequence, ``num_frames`` (10) frames drawn without replacement with numpy's legacy
generator, reordered by file path (``sort_by_filename``), and all ``n(n-1)/2`` (45) pairs ``i < j``
in lexicographic order. Each pair's relative pose is estimated on its own (MASt3R's "pairwise" row;
solvers: :mod:`benchmarks.adapters._pose_solvers`) and scored with
:func:`benchmarks.metrics.pose.pair_errors` (PoseDiffusion/PyTorch3D float32 arithmetic).

Frame draw (:class:`FrameSampler`, config ``sampling``):

* ``"stream"`` (default, as PoseDiffusion): ONE ``numpy.random.RandomState(seed)`` (``np.random.seed``
  once at start-up) consumed by ``choice(n, num_frames, replace=False)`` for each sequence that
  passes the filters, in protocol order (categories sorted, sequences in annotation order). A
  sequence's frames therefore depend on the sequences drawn before it.
* ``"per_sequence"``: a fresh ``RandomState(seed)`` per sequence: the frames of a sequence do not
  depend on which other sequences are present (handy for partial downloads).

Failures: PoseDiffusion has none (it always predicts). Here a pair whose solver fails (too few
matches, RANSAC failure, ...) gets rotation and translation errors ``+inf``: it counts in every
denominator and passes no threshold (RRA, RTA, and every mAA bin). A failed sample (matcher error)
fails all its pairs. Per-record metrics hold the per-pair errors (``None`` = failed pair, as JSON
has no inf) plus that sequence's RRA@15 / RTA@15 / mAA(30) in percent.

Aggregation (``aggregation``): ``"per_category"`` (PoseDiffusion: pool each category's pairs, compute
the metrics, average over categories; summary keys ``*_category_mean_pct``) or ``"pooled"`` (all
pairs together; keys ``*_pooled_pct``). Summary keys: ``rra15_<agg>_pct``, ``rta15_<agg>_pct``,
``maa30_<agg>_pct`` (percent, as the papers report), ``num_sequences``, ``num_pairs``,
``failed_pair_pct``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from benchmarks.adapters._pose_solvers import PoseEstimatorConfig, solve_pair
from benchmarks.hashing import derive_seed
from benchmarks.metrics.pose import all_pairs, mean_average_accuracy, pair_errors
from benchmarks.types import Correspondences, PairIndex, Prediction, Record, Sample, View
from datasets.synthetic.geometry import reported_viewpoint, viewpoint_angle_deg

__all__ = ["FrameSampler", "PoseDiffusionProtocol", "RRA_THRESHOLD_DEG", "MAA_MAX_THRESHOLD_DEG",
           "aggregation_name", "pair_viewpoints", "sequence_metrics"]

RRA_THRESHOLD_DEG = 15.0
MAA_MAX_THRESHOLD_DEG = 30
_AGG = {"per_category": "category_mean", "pooled": "pooled"}


class FrameSampler:
    """PoseDiffusion's frame draw (module docstring).

    Args:
        seed: numpy legacy seed (PoseDiffusion: ``cfg.seed = 0``). num_frames: frames per sequence.
        mode: ``"stream"`` or ``"per_sequence"``.
    """

    def __init__(self, seed: int = 0, num_frames: int = 10, mode: str = "stream") -> None:
        if mode not in ("stream", "per_sequence"):
            raise ValueError(f"unknown sampling mode {mode!r}; expected 'stream' or 'per_sequence'")
        if num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {num_frames}")
        self.seed, self.num_frames, self.mode = seed, num_frames, mode
        self._stream = np.random.RandomState(seed)

    def draw(self, n_available: int) -> np.ndarray:
        """(num_frames,) int64 indices into a sequence of ``n_available`` frames, in draw order."""
        if n_available < self.num_frames:
            raise ValueError(f"cannot draw {self.num_frames} frames from {n_available}")
        rng = self._stream if self.mode == "stream" else np.random.RandomState(self.seed)
        return np.asarray(rng.choice(n_available, self.num_frames, replace=False), np.int64)


def aggregation_name(aggregation: str) -> str:
    """Key fragment of an aggregation: ``"category_mean"`` or ``"pooled"``."""
    try:
        return _AGG[aggregation]
    except KeyError:
        raise ValueError(f"unknown aggregation {aggregation!r}; "
                         "expected 'per_category' or 'pooled'") from None


def pair_viewpoints(views: Sequence[View]) -> tuple[list[float | None], list[str | None]]:
    """GT viewpoint change of every pair ``i < j`` (angle of ``R_j R_i^T``, degrees) and its bucket
    (``0-30``, ``30-60``, ``60-90``, ``90-180``); None where a pose is unknown. The angle is stored
    rounded and the bucket is that of the stored value (``reported_viewpoint``)."""
    i_idx, j_idx = all_pairs(len(views))
    angles: list[float | None] = []
    buckets: list[str | None] = []
    for i, j in zip(i_idx, j_idx):
        Pi, Pj = views[i].cam_from_world, views[j].cam_from_world
        if Pi is None or Pj is None:
            angles.append(None)
            buckets.append(None)
            continue
        angle, bucket = reported_viewpoint(viewpoint_angle_deg(np.asarray(Pi), np.asarray(Pj)))
        angles.append(angle)
        buckets.append(bucket)
    return angles, buckets


def sequence_metrics(rot_err_deg: np.ndarray, trans_err_deg: np.ndarray) -> dict[str, float]:
    """RRA@15, RTA@15 and mAA(30) in percent of a set of pairs (``+inf``/NaN = failed pair)."""
    rot = np.asarray(rot_err_deg, np.float64)
    trans = np.asarray(trans_err_deg, np.float64)
    if len(rot) == 0:
        return {"rra15_pct": math.nan, "rta15_pct": math.nan, "maa30_pct": math.nan}
    return {
        "rra15_pct": 100.0 * float(np.mean(rot < RRA_THRESHOLD_DEG)),
        "rta15_pct": 100.0 * float(np.mean(trans < RRA_THRESHOLD_DEG)),
        "maa30_pct": 100.0 * mean_average_accuracy(rot, trans, MAA_MAX_THRESHOLD_DEG),
    }


def _errors(values: Any, n: int) -> np.ndarray:
    """A record's per-pair error list as float64, ``None``/missing -> ``+inf`` (a failed pair)."""
    if not isinstance(values, list) or len(values) != n:
        return np.full(n, np.inf)
    return np.array([np.inf if v is None else float(v) for v in values], np.float64)


class PoseDiffusionProtocol:
    """Mixin of the CO3Dv2 / RE10K adapters: pairs, solve, evaluate, summarize (module docstring).

    Subclasses set ``self.config`` (with ``aggregation``) and ``self.estimator``
    (:class:`PoseEstimatorConfig`) and yield samples whose ``views`` carry GT ``cam_from_world`` and
    whose ``meta`` has ``category`` (RE10K: the benchmark name).
    """

    config: Any
    estimator: PoseEstimatorConfig

    def pairs(self, sample: Sample) -> Sequence[PairIndex]:
        i, j = all_pairs(len(sample.views))
        return [(int(a), int(b)) for a, b in zip(i, j)]

    def solve(self, sample: Sample, corrs: Sequence[Correspondences], seed: int) -> Prediction:
        """One relative pose per pair; the sample fails only when every pair fails (reason: the most
        common pair reason). ``confidence`` = total inliers."""
        results = []
        for (i, j), c in zip(self.pairs(sample), corrs):
            pair_seed = derive_seed(seed, f"{i}-{j}")
            r = solve_pair(c, (sample.views[i], sample.views[j]), self.estimator, pair_seed)
            results.append({"i": i, "j": j, **r.as_dict()})
        ok = [r for r in results if r["success"]]
        n_matches = sum(int(r["num_matches"]) for r in results)
        n_inliers = sum(int(r["num_inliers"]) for r in ok)
        values = {"pairs": results}
        if not ok:
            reasons = [str(r["failure_reason"]) for r in results] or ["no_pairs"]
            reason = max(sorted(set(reasons)), key=reasons.count)
            return Prediction(False, values, f"all_pairs_failed: {reason}", 0.0, n_matches, 0)
        return Prediction(True, values, None, float(n_inliers), n_matches, n_inliers)

    def evaluate(self, sample: Sample, prediction: Prediction) -> dict[str, Any]:
        """Per-pair ``rot_err_deg`` / ``trans_err_deg`` lists (failed pair: inf, stored as null) and
        the sequence's ``rra15_pct``, ``rta15_pct``, ``maa30_pct``, ``num_pairs``, ``num_failed_pairs``."""
        P = np.stack([np.asarray(v.cam_from_world, np.float64) for v in sample.views])
        i, j = all_pairs(len(P))
        R_gt = P[j, :3, :3] @ np.swapaxes(P[i, :3, :3], -1, -2)
        t_gt = P[j, :3, 3] - np.einsum("nab,nb->na", R_gt, P[i, :3, 3])
        rot = np.full(len(i), np.inf)
        trans = np.full(len(i), np.inf)
        pairs = prediction.values.get("pairs", []) if prediction.success else []
        by_pair = {(int(p["i"]), int(p["j"])): p for p in pairs if p.get("success")}
        ok = np.array([(int(a), int(b)) in by_pair for a, b in zip(i, j)], bool)
        if ok.any():
            T = np.stack([np.asarray(by_pair[(int(a), int(b))]["T_0to1"], np.float64)
                          for a, b in zip(i[ok], j[ok])])
            r_err, t_err = pair_errors(R_gt[ok], t_gt[ok], T[:, :3, :3], T[:, :3, 3])
            rot[ok] = r_err.astype(np.float64)
            trans[ok] = t_err.astype(np.float64)
        return {
            "rot_err_deg": rot.tolist(), "trans_err_deg": trans.tolist(),
            **sequence_metrics(rot, trans),
            "num_pairs": int(len(i)), "num_failed_pairs": int(np.count_nonzero(~ok)),
        }

    def summarize(self, records: Iterable[Record]) -> dict[str, Any]:
        """Benchmark metrics (module docstring); failed pairs count as wrong everywhere."""
        agg = aggregation_name(self.config.aggregation)
        groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        n_seq = n_pairs = n_failed = 0
        for r in records:
            n = int(r.metrics.get("num_pairs") or 0)
            rot = _errors(r.metrics.get("rot_err_deg"), n)
            trans = _errors(r.metrics.get("trans_err_deg"), n)
            key = str(r.meta.get("category", "all")) if agg == "category_mean" else "all"
            groups[key].append((rot, trans))
            n_seq += 1
            n_pairs += n
            n_failed += int(np.count_nonzero(~(np.isfinite(rot) & np.isfinite(trans))))
        keys = [f"rra15_{agg}_pct", f"rta15_{agg}_pct", f"maa30_{agg}_pct"]
        out: dict[str, Any] = dict.fromkeys(keys)
        if n_pairs:
            per_group = []
            for name in sorted(groups):
                rot = np.concatenate([g[0] for g in groups[name]])
                trans = np.concatenate([g[1] for g in groups[name]])
                if len(rot):
                    per_group.append(sequence_metrics(rot, trans))
            for key, short in zip(keys, ("rra15_pct", "rta15_pct", "maa30_pct")):
                out[key] = float(np.mean([m[short] for m in per_group]))
        out.update(num_sequences=n_seq, num_pairs=n_pairs,
                   failed_pair_pct=100.0 * n_failed / n_pairs if n_pairs else None)
        if agg == "category_mean":
            out["num_categories"] = len(groups)
        return out
