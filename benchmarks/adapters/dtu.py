"""DTU MVS, zero-shot: triangulate matches with the GT cameras into one point cloud per scan (mm).

Protocol (the paper's zero-shot setting; the authors' exact view selection and filtering are not
released): one sample per scan with all its views; for every reference view, match it to its
``num_sources`` best source views from ``pair.txt`` (an unordered pair is matched once unless
``symmetric_pairs``); triangulate each pair's matches with the GT cameras; keep points in front of
both cameras, within ``max_reproj_px`` in both views, with a triangulation angle of at least
``min_angle_deg`` and a score of at least ``min_score``; fuse all pairs into one cloud in the DTU
world frame (mm), written as a binary PLY. Metrics: DTUeval-python accuracy / completeness /
overall (:func:`benchmarks.metrics.dtu.dtu_chamfer`) of the PLY as written (float32), so
``mast3r-bench score dtu`` on the exported file gives the same numbers.

Where the PLY goes: ``artifacts_dir`` (constructor keyword; the runner can point it into the run
directory), else ``<results root>/cache/dtu/ply/`` (git-ignored), content-addressed. ``export``
copies each scan's cloud to ``<out_dir>/<method><NNN>_l3.ply`` (the MATLAB evaluator's naming).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks.adapters._mvs import PairFilter, triangulate_matches, write_cloud
from benchmarks.adapters._visloc import LRU
from benchmarks.metrics.dtu import dtu_chamfer
from benchmarks.types import Correspondences, PairIndex, Prediction, Record, Sample

__all__ = ["DtuAdapter", "DtuConfig", "DtuEstimatorConfig", "GT_STRIDE_PX"]
log = logging.getLogger(__name__)

GT_STRIDE_PX = 2
"""Pixel grid step of the oracle's ground-truth correspondences (reference view)."""
_METRICS = ("accuracy_mm", "completeness_mm", "overall_mm", "n_points", "n_downsampled", "n_in_bounds",
            "n_in_obs", "n_stl_above")


@dataclass(frozen=True)
class DtuConfig:
    """Attributes:
    scans: scan numbers to reconstruct; ``()`` = every scan present under the root.
    num_sources: source views matched per reference view (best first in ``pair.txt``).
    symmetric_pairs: also match ``(j, i)`` when ``(i, j)`` is already matched.
    gt_root: folder holding ``Points/stl`` and ``ObsMask`` (``SampleSet/MVS Data``), relative to the
        root or absolute; ``None``: looked up in the root and its parent.
    eval_shuffle, eval_seed: DTUeval's shuffle before the 0.2 mm thinning (official: unseeded).
    """

    scans: tuple[int, ...] = ()
    num_sources: int = 2
    symmetric_pairs: bool = False
    gt_root: str | None = None
    eval_shuffle: bool = True
    eval_seed: int = 0

    def __post_init__(self) -> None:
        if self.num_sources < 1:
            raise ValueError(f"num_sources must be >= 1, got {self.num_sources}")


@dataclass(frozen=True)
class DtuEstimatorConfig:
    """Attributes: see :class:`benchmarks.adapters._mvs.PairFilter` (same names)."""

    min_score: float = 0.0
    max_reproj_px: float = 1.0
    min_angle_deg: float = 1.0


class DtuAdapter:
    """DTU MVS (see the module docstring)."""

    name: ClassVar[str] = "dtu"
    title: ClassVar[str] = "DTU MVS (zero-shot, GT cameras): accuracy / completeness / overall (mm)"
    version: ClassVar[str] = "1"
    data_dir: ClassVar[str] = "dtu"
    Config: ClassVar[type] = DtuConfig
    EstimatorConfig: ClassVar[type] = DtuEstimatorConfig

    def __init__(self, root: Path, config: DtuConfig | None = None,
                 estimator: DtuEstimatorConfig | None = None, *, artifacts_dir: Path | None = None) -> None:
        from datasets.dtu import DtuDataset

        self.root = Path(root)
        self.config = config or DtuConfig()
        self.estimator = estimator or DtuEstimatorConfig()
        self.artifacts_dir = artifacts_dir
        self._dataset: DtuDataset | None = None
        self._gt = LRU(1)
        self._sidecar: Any = None

    @property
    def dataset(self) -> Any:
        from datasets.dtu import DtuDataset

        if self._dataset is None:
            self._dataset = DtuDataset(self.root)
        return self._dataset

    def ply_dir(self) -> Path:
        """Where solve writes the clouds (see the module docstring)."""
        if self.artifacts_dir is not None:
            return Path(self.artifacts_dir)
        from benchmarks.store import results_root

        return results_root() / "cache" / "dtu" / "ply"

    def gt_root(self) -> Path | None:
        """The evaluation GT folder (``Points/stl`` + ``ObsMask``), or None when there is none.
        A configured ``gt_root`` that holds no GT is an error."""
        from datasets.dtu import find_gt_root

        if self.config.gt_root:
            p = Path(self.config.gt_root)
            p = p if p.is_absolute() else self.root / p
            found = find_gt_root(p)
            if found is None:
                raise FileNotFoundError(f"{p}: no DTU evaluation ground truth (expected Points/stl/ and "
                                        "ObsMask/, e.g. 'SampleSet/MVS Data')")
            return found
        return find_gt_root(self.root) or find_gt_root(self.root.parent)

    # -- protocol ---------------------------------------------------------------------------------
    def samples(self) -> Iterator[Sample]:
        scans = self.config.scans or tuple(self.dataset.scans())
        for n in scans:
            scan = self.dataset.scan(n)
            views = tuple(sorted(scan.views, key=lambda v: v.meta["view"]))
            pairs = {int(ref): [int(s) for s, _ in srcs] for ref, srcs in scan.pairs.items()}
            yield Sample(f"scan{n}", views, gt={"scan": n, "pairs": pairs},
                         meta={"scan": n, "num_views": len(views)})

    def pairs(self, sample: Sample) -> Sequence[PairIndex]:
        index = {int(v.meta["view"]): k for k, v in enumerate(sample.views)}
        out: list[PairIndex] = []
        seen: set[frozenset[int]] = set()
        for ref in sorted(sample.gt["pairs"]):
            for src in sample.gt["pairs"][ref][: self.config.num_sources]:
                if ref not in index or src not in index or src == ref:
                    continue
                key = frozenset((ref, src))
                if key in seen and not self.config.symmetric_pairs:
                    continue
                seen.add(key)
                out.append((index[ref], index[src]))
        return out

    def solve(self, sample: Sample, corrs: Sequence[Correspondences], seed: int) -> Prediction:
        est = self.estimator
        filt = PairFilter(est.min_score, est.max_reproj_px, est.min_angle_deg)
        clouds, per_pair = [], []
        n_matches = 0
        for (i, j), c in zip(self.pairs(sample), corrs):
            vi, vj = sample.views[i], sample.views[j]
            if vi.K is None or vj.K is None or vi.cam_from_world is None or vj.cam_from_world is None:
                return Prediction(False, failure_reason="missing_cameras", num_matches=n_matches)
            pts, stats = triangulate_matches(c.pts0, c.pts1, c.scores, vi.K, vi.cam_from_world, vj.K,
                                             vj.cam_from_world, filt)
            clouds.append(pts)
            per_pair.append(stats["angle_ok"])
            n_matches += len(c)
        points = np.concatenate(clouds) if clouds else np.zeros((0, 3))
        values: dict[str, Any] = {"points_per_pair": per_pair, "num_points": len(points)}
        if len(points) == 0:
            return Prediction(False, values, "no_points", num_matches=n_matches)
        path = write_cloud(self.ply_dir(), sample.key, points)
        values["ply"] = str(path)
        return Prediction(True, values, None, confidence=float(len(points)), num_matches=n_matches,
                          num_inliers=len(points))

    def _ground_truth(self, scan: int) -> Any:
        from datasets.dtu import read_dtu_gt

        root = self.gt_root()
        if root is None:
            return None
        if not (root / "ObsMask" / f"ObsMask{scan}_10.mat").is_file():
            log.warning("%s: no evaluation ground truth for scan %d; it is not scored", root, scan)
            return None
        return self._gt.get_or((str(root), scan), lambda: read_dtu_gt(root, scan))

    def evaluate(self, sample: Sample, prediction: Prediction) -> dict[str, float | None]:
        """DTUeval-python scores of the written PLY (mm) and the point counts of each stage; all None
        for a failed scan or without GT."""
        from mast3r.ply import read_ply_points

        empty: dict[str, float | None] = dict.fromkeys(_METRICS)
        gt = self._ground_truth(int(sample.gt["scan"]))
        if not prediction.success or gt is None:
            return empty
        points = read_ply_points(prediction.values["ply"])
        res = dtu_chamfer(points, gt.stl_points, gt.obs_mask, gt.bb, gt.res, gt.plane,
                          shuffle=self.config.eval_shuffle, seed=self.config.eval_seed).as_dict()
        return {k: (None if not np.isfinite(res[k]) else float(res[k])) for k in _METRICS}

    def summarize(self, records: Iterable[Record]) -> dict[str, Any]:
        """``mean_{accuracy,completeness,overall}_mm``: means over scans; None when any scan has no
        score (``num_unscored_scans``: solver failures, no GT, or no point near the GT -- DTUeval's
        mean over an empty set is NaN -- cannot be averaged). ``mean_points``,
        ``mean_points_in_obs``: mean point counts (input cloud, accuracy set) over evaluated scans."""
        records = list(records)
        out: dict[str, Any] = {"num_scans": len(records)}
        failed = [r for r in records if r.metrics.get("overall_mm") is None]
        out["num_unscored_scans"] = len(failed)
        for key in ("accuracy", "completeness", "overall"):
            vals = [float(r.metrics.get(f"{key}_mm") or 0.0) for r in records]
            out[f"mean_{key}_mm"] = float(np.mean(vals)) if records and not failed else None
        for key, name in (("n_points", "mean_points"), ("n_in_obs", "mean_points_in_obs")):
            counts = [float(v) for r in records if (v := r.metrics.get(key)) is not None]
            out[name] = float(np.mean(counts)) if counts else None
        return out

    def export(self, records: Iterable[Any], out_dir: Path, method: str = "mast3r") -> list[Path]:
        """Copy each reconstructed scan's PLY to ``<out_dir>/<method><NNN>_l3.ply``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for r in records:
            pred = r.prediction if hasattr(r, "prediction") else r["prediction"]
            meta = r.meta if hasattr(r, "meta") else r["meta"]
            if not pred.get("success"):
                continue
            src = Path(pred["values"]["ply"])
            if not src.is_file():
                raise FileNotFoundError(f"{src}: point cloud of scan {meta['scan']} is gone (the cache was "
                                        "cleared?); re-run the scan with --force")
            dst = out_dir / f"{method}{int(meta['scan']):03d}_l3.ply"
            shutil.copyfile(src, dst)
            paths.append(dst)
        return paths

    # -- ground-truth correspondences (synthetic suite) -------------------------------------------
    def gt_correspondences(self, sample: Sample, i: int, j: int) -> Correspondences | None:
        """Exact matches from the sidecar's depth maps and cameras: view-``i`` pixel centres on a
        ``GT_STRIDE_PX`` grid with their exact, occlusion-checked projections in view ``j``. None
        without the sidecar."""
        from benchmarks.adapters._synthetic_gt import find_sidecar

        if self._sidecar is None:
            self._sidecar = find_sidecar(self.root) or False
        if not self._sidecar:
            return None
        try:
            pts0, pts1 = self._sidecar.correspondences(sample.views[i].image_path, sample.views[j].image_path,
                                                       stride=GT_STRIDE_PX)
        except KeyError:
            return None
        return Correspondences(pts0, pts1, np.ones(len(pts0)))
