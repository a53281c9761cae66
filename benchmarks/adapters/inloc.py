"""InLoc: localise iPhone 7 queries against the RGB-D cutouts of the DUC1 / DUC2 buildings.

Protocol (MASt3R ``visloc.py``, see :mod:`benchmarks.adapters._visloc`): top-k cutouts from the
hloc "temporal" NetVLAD pairs (k = 20), matches query -> cutout, cutout pixels lifted through the
cutout's ``XYZcut`` (bilinear with a nearest-pixel fallback, holes dropped) and moved to the world by
the scan's after-GICP alignment (``P_after @ [X, 1]``), PnP with the fixed iPhone focal
(``f = 4032 * 28 / 36`` px at full resolution, centred principal point, no distortion). Recall at
(0.25 m, 10 deg), (0.5 m, 10 deg), (1 m, 10 deg) per building. The building of a query is not given
to the method; it comes from the GT file (9th column), used for scoring only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from benchmarks.adapters._visloc import (
    LRU,
    VislocAdapter,
    VislocConfig,
    VislocEstimatorConfig,
    sample_xyz_map,
)
from benchmarks.metrics.localization import INLOC_THRESHOLDS
from benchmarks.types import Correspondences, Sample, View

__all__ = ["InLocAdapter", "InLocConfig", "InLocEstimatorConfig", "GT_STRIDE_PX"]

GT_STRIDE_PX = 4
"""Cutout pixel grid step of the oracle's ground-truth correspondences."""


@dataclass(frozen=True)
class InLocConfig(VislocConfig):
    """Attributes (besides :class:`~benchmarks.adapters._visloc.VislocConfig`):
    pairs: default hloc's ``pairs/inloc/pairs-query-netvlad40-temporal.txt`` (used by MASt3R).
    """

    pairs: str = "pairs/inloc/pairs-query-netvlad40-temporal.txt"


@dataclass(frozen=True)
class InLocEstimatorConfig(VislocEstimatorConfig):
    """Attributes (besides :class:`~benchmarks.adapters._visloc.VislocEstimatorConfig`):
    xyz_interp: how ``XYZcut`` is read at a matched sub-pixel position: ``"bilinear"`` (nearest
        where a needed neighbour is a hole, as hloc) or ``"nearest"``.
    """

    xyz_interp: Literal["bilinear", "nearest"] = "bilinear"


class InLocAdapter(VislocAdapter):
    """InLoc (see the module docstring)."""

    name: ClassVar[str] = "inloc"
    title: ClassVar[str] = "InLoc: recall (%) at (0.25 m, 10°) / (0.5 m, 10°) / (1 m, 10°), DUC1 | DUC2"
    version: ClassVar[str] = "1"
    data_dir: ClassVar[str] = "inloc"
    Config: ClassVar[type] = InLocConfig
    EstimatorConfig: ClassVar[type] = InLocEstimatorConfig
    thresholds = INLOC_THRESHOLDS
    export_stem: ClassVar[str] = "InLoc_eval"

    def __init__(self, root: Path, config: InLocConfig | None = None,
                 estimator: InLocEstimatorConfig | None = None) -> None:
        from datasets.inloc import InLocDataset

        super().__init__(root, config, estimator)
        self.dataset = InLocDataset(self.root)  # cutout size: the first cutout's header (real: 1600x1200)
        self._xyz = LRU(4)

    def _query_views(self) -> list[View]:
        return self.dataset.queries()

    def _retrieved(self) -> dict[str, list[str]]:
        pairs = self.dataset.pairs(self.root / self.config.pairs, topk=self.config.top_k)
        return {q: [db for db, _ in items] for q, items in pairs.items()}

    def _db_view(self, name: str) -> View:
        return self.dataset.cutout(name)

    def _condition(self, query: View, gt_condition: str | None) -> str | None:
        return gt_condition

    def xyz_world(self, view: View) -> np.ndarray:
        """(H, W, 3) float64 world points of a cutout (``XYZcut`` through the after-GICP transform;
        NaN holes). The last few are cached."""
        def make() -> np.ndarray:
            return self.dataset.cutout_xyz_world(view)

        return self._xyz.get_or(view.name, make)

    def lift(self, view: View, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return sample_xyz_map(self.xyz_world(view), xy, self.estimator.xyz_interp)

    # -- ground-truth correspondences (synthetic suite) -------------------------------------------
    def gt_correspondences(self, sample: Sample, i: int, j: int) -> Correspondences | None:
        """Exact query <-> cutout matches: cutout pixel centres on a ``GT_STRIDE_PX`` grid with an
        ``XYZcut`` point, moved to the world and projected into the query with its GT pose and K,
        kept inside, in front and visible (the sidecar's query depth, 1 % tolerance). A cutout of
        another building than the query's (GT) gives no matches. None without the sidecar or for a
        pair that is not (query, cutout)."""
        from datasets.synthetic.gt import project, sample_depth

        found = self._query_truth(sample, i, j)
        if found is None:
            return None
        query, cut, truth, depth = found
        if truth.meta.get("building") != cut.meta.get("building"):
            return Correspondences.empty()
        xyz = self.xyz_world(cut)
        ys, xs = np.mgrid[0:cut.height:GT_STRIDE_PX, 0:cut.width:GT_STRIDE_PX]
        pts_cut = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        world = xyz[ys.ravel(), xs.ravel()]
        ok = np.isfinite(world).all(1)
        pts_cut, world = pts_cut[ok], world[ok]
        pix, z = project(world, truth.K, truth.cam_from_world)
        h, w = depth.shape
        inside = (z > 0) & (pix[:, 0] >= -0.5) & (pix[:, 0] < w - 0.5) & (pix[:, 1] >= -0.5) \
            & (pix[:, 1] < h - 0.5)
        near = sample_depth(depth, np.where(inside[:, None], pix, 0.0))
        with np.errstate(invalid="ignore"):
            keep = inside & (np.abs(near - z[:, None]) <= 0.01 * z[:, None]).any(axis=1)
        corrs = Correspondences(pix[keep], pts_cut[keep], np.ones(int(keep.sum())))
        return corrs if i == 0 else corrs.swapped()
