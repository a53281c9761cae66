"""Aachen Day-Night v1.1: localise day and night queries against the COLMAP reference model.

Protocol (MASt3R ``visloc.py``, see :mod:`benchmarks.adapters._visloc`): top-k retrieved database
images per query (FIRE top-50 kapture pairs by default, k = 20), matches query -> database image,
database pixels lifted to the model's 3D points through the keypoints of that image within
``pixel_tol`` pixels (nearest keypoint, KD-tree), PnP with the query's SIMPLE_RADIAL intrinsics
(pixels undistorted first). Recall at (0.25 m, 2 deg), (0.5 m, 5 deg), (5 m, 10 deg), day and night.
The real query poses are hidden: ``export`` writes ``Aachen_eval_<method>.txt`` for
visuallocalization.net; on the synthetic suite the GT sidecar scores the run locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks.adapters._visloc import (
    LRU,
    VislocAdapter,
    VislocConfig,
    VislocEstimatorConfig,
    distort_radial,
    lift_keypoints,
    radial_coeffs,
)
from benchmarks.metrics.localization import AACHEN_THRESHOLDS
from benchmarks.types import Correspondences, Sample, View

__all__ = ["AachenAdapter", "AachenConfig", "AachenEstimatorConfig"]


@dataclass(frozen=True)
class AachenConfig(VislocConfig):
    """Attributes (besides :class:`~benchmarks.adapters._visloc.VislocConfig`):
    pairs: default ``pairsfile/query/fire_top50.txt`` (MASt3R); hloc's is
        ``pairs/aachen_v1.1/pairs-query-netvlad50.txt``.
    conditions: query lists to localise (``day``, ``night``).
    """

    pairs: str = "pairsfile/query/fire_top50.txt"
    conditions: tuple[str, ...] = ("day", "night")

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [c for c in self.conditions if c not in ("day", "night")]
        if bad or not self.conditions:
            raise ValueError(f"conditions must be a non-empty subset of ('day', 'night'), "
                             f"got {self.conditions}")


@dataclass(frozen=True)
class AachenEstimatorConfig(VislocEstimatorConfig):
    """Attributes (besides :class:`~benchmarks.adapters._visloc.VislocEstimatorConfig`):
    pixel_tol: a matched database pixel takes the 3D point of the nearest keypoint within this
        distance (pixels, inclusive; MASt3R README: 5).
    """

    pixel_tol: float = 5.0


class AachenAdapter(VislocAdapter):
    """Aachen Day-Night v1.1 (see the module docstring)."""

    name: ClassVar[str] = "aachen"
    title: ClassVar[str] = "Aachen Day-Night v1.1: recall (%) at (0.25 m, 2°) / (0.5 m, 5°) / (5 m, 10°)"
    version: ClassVar[str] = "1"
    data_dir: ClassVar[str] = "aachen"
    Config: ClassVar[type] = AachenConfig
    EstimatorConfig: ClassVar[type] = AachenEstimatorConfig
    thresholds = AACHEN_THRESHOLDS
    export_stem: ClassVar[str] = "Aachen_eval"

    def __init__(self, root: Path, config: AachenConfig | None = None,
                 estimator: AachenEstimatorConfig | None = None) -> None:
        from datasets.aachen import AachenDataset

        super().__init__(root, config, estimator)
        self.dataset = AachenDataset(self.root)
        self._points = LRU(64)

    def _query_views(self) -> list[View]:
        return [q for c in self.config.conditions for q in self.dataset.queries(c)]

    def _retrieved(self) -> dict[str, list[str]]:
        pairs = self.dataset.pairs(self.root / self.config.pairs, topk=self.config.top_k)
        return {q: [db for db, _ in items] for q, items in pairs.items()}

    def _db_view(self, name: str) -> View:
        return self.dataset.db_view(name)

    def _condition(self, query: View, gt_condition: str | None) -> str | None:
        return str(query.meta["condition"])

    def _keypoints(self, name: str) -> tuple[Any, np.ndarray, np.ndarray]:
        """(KD-tree, xy (K, 2), xyz (K, 3)) of the keypoints of db image ``name`` with a 3D point."""
        from scipy.spatial import cKDTree

        def make() -> tuple[Any, np.ndarray, np.ndarray]:
            pts = self.dataset.db_points(name)
            return cKDTree(pts.xy) if len(pts.xy) else None, pts.xy, pts.xyz

        return self._points.get_or(name, make)

    def lift(self, view: View, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tree, _, xyz = self._keypoints(view.name)
        if tree is None:
            n = len(np.asarray(xy).reshape(-1, 2))
            return np.full((n, 3), np.nan), np.zeros(n, bool)
        return lift_keypoints(tree, xyz, xy, self.estimator.pixel_tol)

    # -- ground-truth correspondences (synthetic suite) -------------------------------------------
    def gt_correspondences(self, sample: Sample, i: int, j: int) -> Correspondences | None:
        """Exact query <-> database matches: every keypoint of the database image that has a 3D
        point, projected into the query with its GT pose and intrinsics (SIMPLE_RADIAL distortion
        applied), kept inside the image, in front and visible (the sidecar's exact query depth, 1 %
        tolerance). ``pts0`` in view ``i``, ``pts1`` in view ``j``; None without the sidecar or for a
        pair that is not (query, database)."""
        from datasets.synthetic.gt import project, sample_depth

        found = self._query_truth(sample, i, j)
        if found is None:
            return None
        query, db, truth, depth = found
        _, kp_xy, kp_xyz = self._keypoints(db.name)
        pix, z = project(kp_xyz, truth.K, truth.cam_from_world)
        h, w = depth.shape
        inside = (z > 0) & (pix[:, 0] >= -0.5) & (pix[:, 0] < w - 0.5) & (pix[:, 1] >= -0.5) \
            & (pix[:, 1] < h - 0.5)
        near = sample_depth(depth, np.where(inside[:, None], pix, 0.0))
        with np.errstate(invalid="ignore"):
            keep = inside & (np.abs(near - z[:, None]) <= 0.01 * z[:, None]).any(axis=1)
        pts_q = distort_radial(pix[keep], np.asarray(query.K), radial_coeffs(dict(query.meta).get("camera")))
        corrs = Correspondences(pts_q, kp_xy[keep], np.ones(int(keep.sum())))
        return corrs if i == 0 else corrs.swapped()
