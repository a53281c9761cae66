"""Per-pair relative pose solvers shared by the pose adapters (Map-free, CO3Dv2, RealEstate10K).

A pair is ``(view 0, view 1)`` with correspondences ``pts0 -> pts1`` (ORIGINAL pixels, centres at
integers); the result is ``T_0to1`` (4, 4) float64, camera-0 points -> camera-1 points.

Solvers (``estimator.solver``):

* ``"pnp"``: PnP (P3P LO-RANSAC + refinement, pycolmap) of the view-1 pixels against view-0 3D
  points in camera 0's frame. The points are the matcher's ``pts3d0`` (MASt3R: its metric pointmap
  of view 0, so ``T_0to1`` is metric: spec ``model.md`` section 7). Without them, when a depth map of
  view 0 is given (Map-free's provided depth), ``pts0`` are lifted with it (map-free-reloc's
  ``PnPSolver`` baseline); otherwise the pair fails with ``no_pts3d``.
* ``"essential"``: 5-point essential matrix (LO-RANSAC, Sampson refinement) -> unit translation. With
  depth maps of both views the translation is scaled (``scale`` below): the Map-free "Ess.Mat. +
  D.Scale" baselines of the paper.
* ``"auto"``: ``"pnp"`` when the correspondences carry ``pts3d0``, else ``"essential"``.

Intrinsics (``estimator.intrinsics``):

* ``"gt"``: the dataset's ``View.K`` (Map-free provides K for every frame, test included);
* ``"matcher"``: the matcher's estimates (contract below); the pair fails with
  ``no_focal_estimate`` when they are absent;
* ``"auto"``: the matcher's estimates when present, else the dataset's K. Every pair result records
  which one was used (``"intrinsics": "matcher" | "gt"``), so a run that fell back to GT focals says so.

Matcher contract (``Correspondences.meta``, all optional; MASt3R-style matchers should provide them):

* ``focal0_px``, ``focal1_px``: float focal length of view 0 / view 1 in ORIGINAL pixels, estimated by
  the matcher from its pointmaps (Weiszfeld on view 0's ``pts3d`` in camera 0, and on view 1's
  pointmap expressed in camera 1), rescaled from the network resolution to the stored image;
* ``pp0_px``, ``pp1_px``: ``[cx, cy]`` principal point in ORIGINAL pixels; default ``(W / 2, H / 2)``,
  the official focal-estimation assumption (``mast3r.geometry.default_principal_point``).

Metric scale of an essential-matrix pose from depth (``scale``), as map-free-reloc's
``lib/models/matching/pose_solver.py`` computes it: every inlier with valid depth (> 0) in both views
is back-projected in its own camera (``xyz0``, ``xyz1``); with ``R, t`` (|t| = 1) each gives a scale
``s_k = (xyz1_k - R xyz0_k) . t``.

* ``"ransac"`` (``EssentialMatrixMetricSolver``): the ``s_k`` with most ``|s - s_k| < threshold`` (the
  first such hypothesis on ties);
* ``"mean"`` (``EssentialMatrixMetricSolverMEAN``): ``(mean xyz1 - mean R xyz0) . t``;
* ``"triangulation"``: median ratio of depth to triangulated depth
  (:func:`mast3r.geometry.scale_translation_from_depth`).

Depth is read at the nearest pixel (``round``: our pixel centres are integers; the official code
truncates with ``np.int32``) and that pixel is back-projected.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from benchmarks.adapters._ransac import POSE_ALIASES, POSE_RANSAC, RansacOptions
from benchmarks.types import Correspondences, View
from mast3r.geometry import (
    PoseEstimate,
    RansacConfig,
    default_principal_point,
    relative_pose_essential,
    relative_pose_pnp,
    scale_translation_from_depth,
)

__all__ = [
    "META_FOCAL",
    "META_PP",
    "PairResult",
    "PoseEstimatorConfig",
    "lift_with_depth",
    "metric_scale",
    "pair_intrinsics",
    "resolve_solver",
    "sample_depth_nearest",
    "solve_pair",
]

META_FOCAL = ("focal0_px", "focal1_px")
"""``Correspondences.meta`` keys of the matcher's focal estimates (view 0, view 1), ORIGINAL pixels."""
META_PP = ("pp0_px", "pp1_px")
"""``Correspondences.meta`` keys of the matcher's principal points ``[cx, cy]`` (optional)."""

Solver = Literal["auto", "pnp", "essential"]
IntrinsicsSource = Literal["auto", "gt", "matcher"]
ScaleMethod = Literal["ransac", "mean", "triangulation"]


@dataclass(frozen=True)
class PoseEstimatorConfig:
    """Solver options shared by the pose adapters (``estimator.<field>`` on the command line).

    Attributes:
        solver: ``"auto"``, ``"pnp"`` or ``"essential"`` (module docstring).
        intrinsics: ``"auto"``, ``"gt"`` or ``"matcher"`` (module docstring).
        pnp_max_error_px: PnP inlier threshold, reprojection error in view-1 pixels (5: MASt3R visloc).
        essential_max_error_px: essential-matrix inlier threshold, epipolar (Sampson) error, pixels.
        ransac: LO-RANSAC options (:class:`~benchmarks.adapters._ransac.RansacOptions`, defaults
            :data:`~benchmarks.adapters._ransac.POSE_RANSAC`): ``ransac.min_matches`` (fewer
            correspondences -> ``too_few_matches``), ``ransac.min_inliers`` (fewer inliers ->
            ``too_few_inliers``), ``ransac.confidence``, ``ransac.min_num_trials``,
            ``ransac.max_num_trials``, ``ransac.min_inlier_ratio``, ``ransac.refine`` (non-linear
            refinement on the inliers). The flat keys of earlier versions (``min_matches``,
            ``min_inliers``, ``ransac_confidence``, ``ransac_min_trials``, ``ransac_max_trials``,
            ``refine``) are accepted too.
    """

    KEY_ALIASES: ClassVar[dict[str, str]] = POSE_ALIASES

    solver: Solver = "auto"
    intrinsics: IntrinsicsSource = "auto"
    pnp_max_error_px: float = 5.0
    essential_max_error_px: float = 1.0
    ransac: RansacOptions = POSE_RANSAC

    def __post_init__(self) -> None:
        """Bad solver options fail here, when the config is built, not once per sample."""
        for name in ("pnp_max_error_px", "essential_max_error_px"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"estimator.{name} must be a finite number of pixels > 0, got {value!r}")

    def solver_ransac(self, solver: str, seed: int) -> RansacConfig:
        """The :class:`mast3r.geometry.RansacConfig` of ``solver`` (``"pnp"``/``"essential"``)."""
        err = self.pnp_max_error_px if solver == "pnp" else self.essential_max_error_px
        return self.ransac.solver_config(err, seed)


@dataclass(frozen=True)
class PairResult:
    """Outcome of :func:`solve_pair`.

    Attributes:
        success: False when no pose was estimated (``failure_reason`` says why).
        T_0to1: (4, 4) float64 relative pose, or None on failure.
        metric: True when the translation is in metres (PnP on metric points, depth-scaled
            essential); False: unit norm.
        solver: ``"pnp"`` or ``"essential"`` (after resolving ``"auto"``).
        intrinsics: ``"matcher"`` or ``"gt"`` (None when the pair failed before choosing).
        scale: the depth scale applied to a unit translation (essential + depth), else None.
    """

    success: bool
    T_0to1: np.ndarray | None
    num_matches: int
    num_inliers: int
    failure_reason: str | None
    solver: str
    intrinsics: str | None = None
    metric: bool = False
    scale: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (``T_0to1`` as a nested list)."""
        out = dataclasses.asdict(self)
        out["T_0to1"] = None if self.T_0to1 is None else np.asarray(self.T_0to1).tolist()
        return out

    @classmethod
    def failed(cls, reason: str, n: int, solver: str, intrinsics: str | None = None) -> PairResult:
        return cls(False, None, n, 0, reason, solver, intrinsics)


def resolve_solver(solver: str, corrs: Correspondences) -> str:
    """``"pnp"``/``"essential"``: ``"auto"`` picks PnP when ``corrs.pts3d0`` is present."""
    if solver == "auto":
        return "pnp" if corrs.pts3d0 is not None else "essential"
    if solver not in ("pnp", "essential"):
        raise ValueError(f"unknown solver {solver!r}; expected 'auto', 'pnp' or 'essential'")
    return solver


def _matcher_K(meta: dict[str, Any], which: int, view: View) -> np.ndarray | None:
    focal = meta.get(META_FOCAL[which])
    if focal is None:
        return None
    focal = float(focal)
    if not (np.isfinite(focal) and focal > 0):
        return None
    pp = meta.get(META_PP[which])
    cx, cy = (float(pp[0]), float(pp[1])) if pp is not None else default_principal_point(
        (view.height, view.width))
    return np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])


def pair_intrinsics(corrs: Correspondences, views: tuple[View, View], mode: str
                    ) -> tuple[tuple[np.ndarray | None, np.ndarray | None], str] | str:
    """``((K0, K1), source)`` for a pair, or a failure reason.

    ``source`` is ``"matcher"`` when the matcher's estimates are used for the views that have them
    (``mode`` ``"matcher"``, or ``"auto"`` with both estimates present), else ``"gt"``. A K may be
    None when that view's source lacks one (the caller fails if it needs it).
    """
    if mode not in ("auto", "gt", "matcher"):
        raise ValueError(f"unknown intrinsics source {mode!r}; expected 'auto', 'gt' or 'matcher'")
    est = tuple(_matcher_K(corrs.meta, k, v) for k, v in enumerate(views))
    if mode == "matcher" or (mode == "auto" and all(K is not None for K in est)):
        if all(K is None for K in est):
            return "no_focal_estimate"
        return (est[0], est[1]), "matcher"
    gt = tuple(None if v.K is None else np.asarray(v.K, np.float64) for v in views)
    if mode == "auto" and all(K is None for K in gt):
        return "no_intrinsics"
    return (gt[0], gt[1]), "gt"


def sample_depth_nearest(depth: np.ndarray, pts: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Depth (N,) at the nearest depth pixel of each (N, 2) image pixel (NaN outside or invalid <= 0).

    ``image_size`` ``(W, H)`` of the image the pixels refer to; a depth map of another resolution is
    indexed at the corresponding position (pixel-centre aligned).
    """
    depth = np.asarray(depth)
    h, w = depth.shape
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    sx, sy = w / image_size[0], h / image_size[1]
    x = np.rint((pts[:, 0] + 0.5) * sx - 0.5)
    y = np.rint((pts[:, 1] + 0.5) * sy - 0.5)
    out = np.full(len(pts), np.nan)
    ok = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
    vals = depth[y[ok].astype(np.int64), x[ok].astype(np.int64)].astype(np.float64)
    out[ok] = np.where(vals > 0, vals, np.nan)
    return out


def _backproject(pts: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points of (N, 2) pixels at z-depths (N,)."""
    uv1 = np.c_[np.asarray(pts, np.float64), np.ones(len(pts))]
    return z[:, None] * (uv1 @ np.linalg.inv(K).T)


def lift_with_depth(pts: np.ndarray, depth: np.ndarray, K: np.ndarray,
                    image_size: tuple[int, int]) -> np.ndarray:
    """(N, 3) camera-frame points of the nearest pixels of ``pts`` at their depth (NaN if invalid)."""
    pix = np.rint(np.asarray(pts, np.float64))
    return _backproject(pix, sample_depth_nearest(depth, pts, image_size), K)


def metric_scale(T_0to1: np.ndarray, pts0: np.ndarray, pts1: np.ndarray, K0: np.ndarray, K1: np.ndarray,
                 depth0: np.ndarray, depth1: np.ndarray, sizes: tuple[tuple[int, int], tuple[int, int]],
                 method: str = "ransac", threshold_m: float = 0.1) -> float | None:
    """Scale of the unit translation of ``T_0to1`` from depth maps (module docstring), or None when no
    inlier has valid depth in both views. ``pts0``/``pts1``: the (inlier) matches, (N, 2) pixels."""
    R, t = T_0to1[:3, :3], T_0to1[:3, 3]
    if method == "triangulation":
        est = PoseEstimate(True, T_0to1=T_0to1, inlier_mask=np.ones(len(pts0), bool), num_matches=len(pts0))
        out = scale_translation_from_depth(est, pts0, pts1, K0, K1, _nearest_map(depth0, sizes[0]),
                                           _nearest_map(depth1, sizes[1]))
        return out.scale if out.success else None
    if method not in ("ransac", "mean"):
        raise ValueError(f"unknown scale method {method!r}; expected 'ransac', 'mean' or 'triangulation'")
    xyz0 = lift_with_depth(pts0, depth0, K0, sizes[0])
    xyz1 = lift_with_depth(pts1, depth1, K1, sizes[1])
    valid = np.isfinite(xyz0).all(1) & np.isfinite(xyz1).all(1)
    if not valid.any():
        return None
    xyz0 = xyz0[valid] @ R.T
    xyz1 = xyz1[valid]
    if method == "mean":
        return float(np.dot(xyz1.mean(0) - xyz0.mean(0), t))
    scales = (xyz1 - xyz0) @ t
    best, best_count = float(scales[0]), 0
    for hyp in scales:  # the official loop: strictly more inliers replaces the hypothesis
        count = int(np.sum(np.abs(scales - hyp) < threshold_m))
        if count > best_count:
            best, best_count = float(hyp), count
    return best


def _nearest_map(depth: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """The depth map resampled (nearest) to the image size, so pixel lookups can index it directly."""
    depth = np.asarray(depth, np.float64)
    if depth.shape == (image_size[1], image_size[0]):
        return depth
    ys, xs = np.mgrid[0:image_size[1], 0:image_size[0]]
    vals = sample_depth_nearest(depth, np.c_[xs.ravel(), ys.ravel()], image_size)
    return np.nan_to_num(vals, nan=0.0).reshape(image_size[1], image_size[0])


def solve_pair(corrs: Correspondences, views: tuple[View, View], cfg: PoseEstimatorConfig, seed: int, *,
               depth0: np.ndarray | None = None, depth1: np.ndarray | None = None,
               scale: ScaleMethod | None = None, scale_threshold_m: float = 0.1) -> PairResult:
    """Relative pose ``T_0to1`` of one pair (never raises on bad geometry).

    Args:
        corrs: matches view 0 -> view 1 (``pts3d0`` optional, camera-0 frame).
        views: the two views (``K`` for ``"gt"`` intrinsics, sizes).
        cfg: solver options. seed: RANSAC seed.
        depth0, depth1: optional (H, W) metric depth maps (metres, 0 = invalid) of views 0 / 1: lift
            ``pts0`` for PnP without ``pts3d0`` (depth0), scale an essential-matrix pose (both).
        scale: depth-scale method for the essential matrix (None: keep the unit translation).
        scale_threshold_m: inlier threshold of the ``"ransac"`` scale (metres).
    """
    solver = resolve_solver(cfg.solver, corrs)
    n = len(corrs)
    if n < cfg.ransac.min_matches:
        return PairResult.failed("too_few_matches", n, solver)
    chosen = pair_intrinsics(corrs, views, cfg.intrinsics)
    if isinstance(chosen, str):
        return PairResult.failed(chosen, n, solver)
    (K0, K1), source = chosen
    sizes = ((views[0].width, views[0].height), (views[1].width, views[1].height))
    ransac = cfg.solver_ransac(solver, seed)
    if solver == "pnp":
        pts3d = corrs.pts3d0
        if pts3d is None and depth0 is not None and K0 is not None:
            pts3d = lift_with_depth(corrs.pts0, depth0, K0, sizes[0])
        if pts3d is None:
            return PairResult.failed("no_pts3d", n, solver, source)
        if K1 is None:
            return PairResult.failed("no_focal_estimate" if source == "matcher" else "no_intrinsics",
                                     n, solver, source)
        est = relative_pose_pnp(pts3d, corrs.pts1, K1, config=ransac, image_size=sizes[1])
        if not est.success:
            return PairResult.failed(str(est.failure_reason), n, solver, source)
        return PairResult(True, est.T_0to1, n, est.num_inliers, None, solver, source, metric=True)
    if K0 is None or K1 is None:
        return PairResult.failed("no_focal_estimate" if source == "matcher" else "no_intrinsics",
                                 n, solver, source)
    est = relative_pose_essential(corrs.pts0, corrs.pts1, K0, K1, config=ransac, image_sizes=sizes)
    if not est.success or est.T_0to1 is None:
        return PairResult.failed(str(est.failure_reason), n, solver, source)
    T = est.T_0to1
    if scale is None or depth0 is None or depth1 is None:
        return PairResult(True, T, n, est.num_inliers, None, solver, source)
    mask = est.inlier_mask
    s = metric_scale(T, corrs.pts0[mask], corrs.pts1[mask], K0, K1, depth0, depth1, sizes, scale,
                     scale_threshold_m)
    if s is None or not np.isfinite(s):
        return PairResult.failed("no_valid_depth", n, solver, source)
    T = T.copy()
    T[:3, 3] *= s
    return PairResult(True, T, n, est.num_inliers, None, solver, source, metric=True, scale=s)
