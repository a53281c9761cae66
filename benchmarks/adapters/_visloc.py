"""Shared visual-localisation protocol of the Aachen Day-Night and InLoc adapters (MASt3R ``visloc.py``).

Per query: match the query (view 0) to each of its top-k retrieved database images (views 1..k,
pairs ``(0, i)``); drop matches whose score is below ``min_score``; lift the database pixel of every
match to a world point (the subclass's map: Aachen = COLMAP 3D points of keypoints within a pixel
tolerance, InLoc = ``XYZcut`` moved to world by the after-GICP alignment); concatenate over the
top-k; subsample to ``max_points`` with a seeded draw (the official ``random.sample`` is
unseeded); undistort the query pixels with the query camera; PnP LO-RANSAC through
:func:`mast3r.geometry.pnp_ransac` (pycolmap). Metrics: position / orientation error against the
query ground truth when one is available (hidden for the real benchmarks; the synthetic suite's
``_synthetic/query_poses.txt`` is read by default), recall per condition at the benchmark's
thresholds (:mod:`benchmarks.metrics.localization`). ``export`` writes the visuallocalization.net
upload file (one line per query, failures as the identity).

The pure pieces (lifting, distortion, subsampling) live in :mod:`benchmarks.adapters._visloc_geometry`
(re-exported here).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks.adapters._ransac import VISLOC_ALIASES, VISLOC_RANSAC, RansacOptions
from benchmarks.adapters._visloc_geometry import (
    LRU,
    distort_radial,
    lift_keypoints,
    radial_coeffs,
    sample_xyz_map,
    seeded_subset,
    undistort_radial,
)
from benchmarks.metrics.localization import localization_errors, recall_by_condition
from benchmarks.metrics.submission import read_visloc_gt, write_visloc_results
from benchmarks.types import Correspondences, PairIndex, Prediction, Record, Sample, View

__all__ = [
    "VislocAdapter",
    "VislocConfig",
    "VislocEstimatorConfig",
    "LRU",
    "lift_keypoints",
    "sample_xyz_map",
    "radial_coeffs",
    "distort_radial",
    "undistort_radial",
    "seeded_subset",
    "threshold_name",
]
log = logging.getLogger(__name__)

SYNTHETIC_GT = "_synthetic/query_poses.txt"


@dataclass(frozen=True)
class VislocConfig:
    """Protocol options shared by Aachen and InLoc.

    Attributes:
        pairs: retrieval pairs file, relative to the dataset root (hloc ``q db`` or kapture
            ``q, db, score``; scored pairs are ranked by score).
        top_k: retrieved database images matched per query (paper: 1 and 20).
        gt_file: query ground truth ``name qw qx qy qz tx ty tz [condition]`` (world-to-camera),
            relative to the root or absolute; ``None``: ``_synthetic/query_poses.txt`` when present
            (synthetic suite), else no GT (real benchmarks: scores come from the server).
        strict_thresholds: recall with strict ``<`` (dust3r) instead of kapture's inclusive ``<=``.
    """

    pairs: str = ""
    top_k: int = 20
    gt_file: str | None = None
    strict_thresholds: bool = False

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")


@dataclass(frozen=True)
class VislocEstimatorConfig:
    """Solver options shared by Aachen and InLoc.

    Attributes:
        min_score: keep matches with ``score >= min_score`` (official MASt3R: ``min(desc_conf) >=
            1.001`` -- set 1.001 with the mast3r matcher; 0 keeps everything, for any matcher).
        max_points: at most this many 2D-3D correspondences go to PnP (seeded uniform subset;
            official: 100000, unseeded). 0: no limit.
        max_error_px: PnP RANSAC reprojection threshold, query pixels (official default 5).
        error_diag_ratio: if set, the threshold is ``ratio * sqrt(W^2 + H^2)`` of the query instead
            (README: 0.008 with poselib).
        ransac: pycolmap RANSAC options (:class:`~benchmarks.adapters._ransac.RansacOptions`, official
            pycolmap mode: confidence 0.9999, 1000 to 100000 trials, min inlier ratio 0.01, pose
            refinement only): ``ransac.min_matches`` (fewer 2D-3D correspondences is a failure
            ``too_few_matches``; official: > 4), ``ransac.min_inliers`` (fewer RANSAC inliers:
            ``too_few_inliers``), ``ransac.confidence``, ``ransac.min_num_trials``,
            ``ransac.max_num_trials``, ``ransac.min_inlier_ratio``, ``ransac.refine``. The flat keys
            of earlier versions (``min_matches``, ``confidence``, ...) are accepted too.
    """

    KEY_ALIASES: ClassVar[dict[str, str]] = VISLOC_ALIASES

    min_score: float = 0.0
    max_points: int = 100000
    max_error_px: float = 5.0
    error_diag_ratio: float | None = None
    ransac: RansacOptions = VISLOC_RANSAC

    def __post_init__(self) -> None:
        """Bad solver options fail here, when the config is built, not once per sample."""
        ok = lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v > 0  # noqa: E731
        if not ok(self.max_error_px):
            raise ValueError(f"estimator.max_error_px must be a finite number of pixels > 0, got "
                             f"{self.max_error_px!r}")
        if self.error_diag_ratio is not None and not ok(self.error_diag_ratio):
            raise ValueError(f"estimator.error_diag_ratio must be a finite number > 0 or None, got "
                             f"{self.error_diag_ratio!r}")
        if not math.isfinite(self.min_score):
            raise ValueError(f"estimator.min_score must be finite, got {self.min_score!r}")


def threshold_name(condition: str, t_m: float, r_deg: float) -> str:
    """Summary key of a recall cell, e.g. ``"day_recall_0.25m_2deg_pct"``."""
    return f"{condition}_recall_{t_m:g}m_{r_deg:g}deg_pct"


def _prediction_of(record: Any) -> dict[str, Any]:
    return record.prediction if hasattr(record, "prediction") else record["prediction"]


def _key_of(record: Any) -> str:
    return record.key if hasattr(record, "key") else record["key"]


# --------------------------------------------------------------------------------------------------
# The adapter skeleton
# --------------------------------------------------------------------------------------------------


class VislocAdapter:
    """Base of the Aachen and InLoc adapters (see the module docstring).

    Subclasses set the class attributes and implement ``_query_views``, ``_retrieved``,
    ``_db_view``, ``_condition`` and ``lift`` (and ``gt_correspondences``).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    version: ClassVar[str] = "1"
    Config: ClassVar[type] = VislocConfig
    EstimatorConfig: ClassVar[type] = VislocEstimatorConfig
    thresholds: ClassVar[tuple[tuple[float, float], ...]]
    export_stem: ClassVar[str]

    def __init__(self, root: Path, config: Any = None, estimator: Any = None) -> None:
        self.root = Path(root)
        self.config = config or self.Config()
        self.estimator = estimator or self.EstimatorConfig()
        self._gt: dict[str, tuple[np.ndarray, str | None]] | None = None

    @property
    def sidecar(self) -> Any:
        """The synthetic suite's GT sidecar (None on real data), looked up once."""
        if not hasattr(self, "_sidecar_cache"):
            from benchmarks.adapters._synthetic_gt import find_sidecar

            self._sidecar_cache = find_sidecar(self.root)
        return self._sidecar_cache

    def _query_truth(self, sample: Any, i: int, j: int) -> tuple[Any, Any, Any, Any] | None:
        """``(query view, database view, query GT, query depth)`` for a (query, database) pair of
        a synthetic root; None otherwise (real data, or a pair without the query)."""
        if 0 not in (i, j) or i == j or self.sidecar is None:
            return None
        query, other = sample.views[0], sample.views[j if i == 0 else i]
        try:
            return query, other, self.sidecar.truth(query.image_path), self.sidecar.depth(query.image_path)
        except KeyError:
            return None

    # -- subclass hooks ---------------------------------------------------------------------------
    def _query_views(self) -> list[View]:
        raise NotImplementedError

    def _retrieved(self) -> dict[str, list[str]]:
        raise NotImplementedError

    def _db_view(self, name: str) -> View:
        raise NotImplementedError

    def _condition(self, query: View, gt_condition: str | None) -> str | None:
        raise NotImplementedError

    def lift(self, view: View, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) float64 and validity (N,) of pixels ``xy`` of database view ``view``."""
        raise NotImplementedError

    # -- ground truth -----------------------------------------------------------------------------
    def gt_path(self) -> Path | None:
        """The query GT file in use (see ``Config.gt_file``), or None."""
        if self.config.gt_file:
            p = Path(self.config.gt_file)
            return p if p.is_absolute() else self.root / p
        p = self.root / SYNTHETIC_GT
        return p if p.is_file() else None

    def ground_truth(self) -> dict[str, tuple[np.ndarray, str | None]]:
        """Query name (and basename) -> (cam_from_world (4, 4), condition or None); {} without GT."""
        if self._gt is None:
            path = self.gt_path()
            gt: dict[str, tuple[np.ndarray, str | None]] = {}
            if path is not None:
                for name, pose, cond in read_visloc_gt(path):
                    gt[name] = (pose, cond)
                    gt.setdefault(name.rsplit("/", 1)[-1], (pose, cond))
            self._gt = gt
        return self._gt

    # -- protocol ---------------------------------------------------------------------------------
    def samples(self) -> Iterator[Sample]:
        gt = self.ground_truth()
        retrieved = self._retrieved()
        for q in self._query_views():
            names = retrieved.get(q.name, [])[: self.config.top_k]
            views = (q, *(self._db_view(n) for n in names))
            g = gt.get(q.name) or gt.get(q.name.rsplit("/", 1)[-1])
            meta = {"condition": self._condition(q, g[1] if g else None),
                    "basename": q.name.rsplit("/", 1)[-1], "has_gt": g is not None,
                    "num_retrieved": len(names)}
            yield Sample(q.name, views, gt={"cam_from_world": None if g is None else g[0]}, meta=meta)

    def pairs(self, sample: Sample) -> Sequence[PairIndex]:
        return [(0, i) for i in range(1, len(sample.views))]

    def solve(self, sample: Sample, corrs: Sequence[Correspondences], seed: int) -> Prediction:
        from mast3r.geometry import pnp_ransac

        est = self.estimator
        query = sample.views[0]
        if len(sample.views) < 2:
            return Prediction(False, failure_reason="no_retrieved_images")
        xy_parts, xyz_parts, per_pair = [], [], []
        n_matches = 0
        for (_, i), c in zip(self.pairs(sample), corrs):
            n_matches += len(c)
            if est.min_score > 0:
                c = c.subset(c.scores >= est.min_score)
            xyz, valid = self.lift(sample.views[i], c.pts1)
            xy_parts.append(c.pts0[valid].astype(np.float64))
            xyz_parts.append(xyz[valid])
            per_pair.append(int(valid.sum()))
        xy = np.concatenate(xy_parts) if xy_parts else np.zeros((0, 2))
        xyz = np.concatenate(xyz_parts) if xyz_parts else np.zeros((0, 3))
        values: dict[str, Any] = {"lifted_per_pair": per_pair}
        if len(xy) < max(est.ransac.min_matches, 4):
            return Prediction(False, values, "too_few_matches", num_matches=len(xy))
        keep = seeded_subset(len(xy), est.max_points, seed)
        xy, xyz = xy[keep], xyz[keep]
        K = np.asarray(query.K, np.float64)
        xy_ideal = undistort_radial(xy, K, radial_coeffs(dict(query.meta).get("camera")))
        thr = est.max_error_px
        if est.error_diag_ratio is not None:
            thr = est.error_diag_ratio * float(np.hypot(query.width, query.height))
        pe = pnp_ransac(xyz, xy_ideal, K, config=est.ransac.solver_config(thr, seed),
                        image_size=(query.width, query.height))
        values.update(num_points=len(xy), num_matches_raw=n_matches)
        if not pe.success:
            return Prediction(False, values, pe.failure_reason, num_matches=len(xy),
                              num_inliers=pe.num_inliers)
        values["cam_from_world"] = np.asarray(pe.cam_from_world).tolist()
        return Prediction(True, values, None, confidence=float(pe.num_inliers), num_matches=len(xy),
                          num_inliers=pe.num_inliers)

    def evaluate(self, sample: Sample, prediction: Prediction) -> dict[str, float | None]:
        """``pos_err_m`` (camera centres) and ``rot_err_deg``; None on failure or without GT."""
        gt = sample.gt.get("cam_from_world")
        if gt is None or not prediction.success:
            return {"pos_err_m": None, "rot_err_deg": None}
        pred = np.asarray(prediction.values["cam_from_world"], np.float64)
        pos, rot = localization_errors(np.asarray(gt, np.float64)[None], pred[None])
        return {"pos_err_m": float(pos[0]), "rot_err_deg": float(rot[0])}

    def summarize(self, records: Iterable[Record]) -> dict[str, Any]:
        """Recall (%) per condition and over all queries with GT at the benchmark's thresholds
        (failures and missing estimates count as misses), median errors over all queries (failures =
        +inf; None when the median is a failure), counts. Without any GT only the counts are
        reported."""
        records = list(records)
        ok = [bool(r.prediction.get("success")) for r in records]
        out: dict[str, Any] = {
            "num_queries": len(records),
            "failure_pct": 100.0 * (len(records) - sum(ok)) / len(records) if records else None,
        }
        scored = [r for r in records if r.meta.get("has_gt")]
        out["num_queries_with_gt"] = len(scored)
        if not scored:
            return out

        def err(r: Record, key: str) -> float:
            v = r.metrics.get(key)
            return np.nan if v is None else float(v)

        pos = np.array([err(r, "pos_err_m") for r in scored])
        rot = np.array([err(r, "rot_err_deg") for r in scored])
        conds = [r.meta.get("condition") for r in scored]
        table = recall_by_condition(pos, rot, conds, self.thresholds,
                                    inclusive=not self.config.strict_thresholds)
        for cond, rows in table.items():
            for t_m, r_deg, pct in rows:
                out[threshold_name(cond, t_m, r_deg)] = pct
            out[f"{cond}_num_queries"] = len(conds) if cond == "all" else sum(c == cond for c in conds)
        for key, values in (("pos_err_median_m", pos), ("rot_err_median_deg", rot)):
            med = float(np.median(np.where(np.isnan(values), np.inf, values)))
            out[f"all_{key}"] = med if np.isfinite(med) else None
        return out

    def export_filename(self, method: str = "mast3r-bench") -> str:
        return f"{self.export_stem}_{method}.txt"

    def export(self, records: Iterable[Any], out_dir: Path, method: str = "mast3r-bench") -> list[Path]:
        """Write the visuallocalization.net upload file ``<out_dir>/<Stem>_<method>.txt``: one line
        per query of the benchmark (query-list order), ``basename qw qx qy qz tx ty tz``
        (world-to-camera); queries that failed or have no record get the identity pose."""
        poses: dict[str, np.ndarray] = {}
        for r in records:
            pred = _prediction_of(r)
            if pred.get("success") and "cam_from_world" in pred.get("values", {}):
                poses[_key_of(r)] = np.asarray(pred["values"]["cam_from_world"], np.float64)
        queries = self._query_views()
        missing = sum(q.name not in poses for q in queries)
        if missing:
            log.info("%s export: %d of %d queries without an estimate get the identity pose", self.name,
                     missing, len(queries))
        path = write_visloc_results(Path(out_dir) / self.export_filename(method),
                                    [(q.name, poses.get(q.name)) for q in queries])
        return [path]
