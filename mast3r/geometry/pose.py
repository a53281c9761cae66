"""Robust pose estimation through pycolmap (LO-RANSAC), seeded, with failures as results.

Inputs use the project convention (pixel centres at integer coordinates, ``(x, y)``); the +0.5
shift to COLMAP's convention happens only here, when pycolmap is called. Thresholds are in pixels.
A solver never raises on bad geometry: it returns ``PoseEstimate(success=False, failure_reason=...)``.
Malformed arguments (wrong shapes, non-positive focal) raise ``ValueError``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pycolmap

from mast3r.geometry.conventions import make_pose

__all__ = [
    "DEFAULT_MAX_ERROR_PX",
    "PoseEstimate",
    "RansacConfig",
    "RansacOptions",
    "pnp_ransac",
    "relative_pose_pnp",
    "relative_pose_essential",
    "pycolmap_camera",
]


DEFAULT_MAX_ERROR_PX = {"pnp": 5.0, "essential": 1.0}
"""Inlier thresholds (pixels) when none is given: 5 px for PnP (official visloc default), 1 px for
the essential matrix (a common two-view choice; the paper does not state one)."""


@dataclass(frozen=True)
class RansacOptions:
    """pycolmap LO-RANSAC options without the inlier threshold and the seed (defaults: pycolmap's).

    Attributes:
        confidence, min_num_trials, max_num_trials, min_inlier_ratio: pycolmap RANSAC options.
        refine: non-linear refinement on the inliers after RANSAC.
        min_matches: fewer finite correspondences than this -> failure ``too_few_matches``.
        min_inliers: fewer inliers than this -> failure ``too_few_inliers``.
    """

    confidence: float = 0.9999
    min_num_trials: int = 1000
    max_num_trials: int = 100000
    min_inlier_ratio: float = 0.01
    refine: bool = True
    min_matches: int = 5
    min_inliers: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ValueError(f"RansacConfig.confidence must be in (0, 1), got {self.confidence}")
        if not 1 <= self.min_num_trials <= self.max_num_trials:
            raise ValueError(f"RansacConfig: need 1 <= min_num_trials ({self.min_num_trials}) <= "
                             f"max_num_trials ({self.max_num_trials})")
        if not 0 <= self.min_inlier_ratio <= 1:
            raise ValueError(f"RansacConfig.min_inlier_ratio must be in [0, 1], got {self.min_inlier_ratio}")

    def options(self) -> dict[str, Any]:
        """The option fields alone (no threshold, no seed)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(RansacOptions)}

    def with_threshold(self, max_error_px: float | None, seed: int) -> RansacConfig:
        """These options with inlier threshold ``max_error_px`` (None: the solver's default) and seed."""
        return RansacConfig(max_error_px=max_error_px, seed=int(seed), **self.options())


@dataclass(frozen=True)
class RansacConfig(RansacOptions):
    """RANSAC options shared by the solvers (keyword arguments of :func:`pnp_ransac` & co): the
    :class:`RansacOptions` plus the inlier threshold and the seed.

    Attributes:
        max_error_px: inlier threshold, pixels: reprojection error for PnP, epipolar (Sampson)
            error for the essential matrix; ``None`` = the solver's default
            (:data:`DEFAULT_MAX_ERROR_PX`).
        seed: RANSAC random seed (results are deterministic for a given seed).
        confidence, min_num_trials, max_num_trials, min_inlier_ratio: pycolmap RANSAC options.
        refine: non-linear refinement on the inliers after RANSAC.
        min_matches: fewer finite correspondences than this -> failure ``too_few_matches``.
        min_inliers: fewer inliers than this -> failure ``too_few_inliers``.
    """

    max_error_px: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_error_px is not None and not self.max_error_px > 0:
            raise ValueError(f"RansacConfig.max_error_px must be > 0, got {self.max_error_px}")
        super().__post_init__()

    def as_kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PoseEstimate:
    """Result of a pose solver.

    Attributes:
        success: False when no pose could be estimated (see ``failure_reason``).
        cam_from_world: (4, 4) float64, maps the 3D points' frame to the camera (PnP).
        T_0to1: (4, 4) float64, maps camera-0 points to camera-1 points (relative pose). The
            translation has unit norm unless ``metric`` is True.
        inlier_mask: (N,) bool over the input correspondences (non-finite rows are False).
        num_inliers: ``inlier_mask.sum()``.
        num_matches: N, correspondences given.
        failure_reason: ``too_few_matches``, ``degenerate_points``, ``ransac_failed``,
            ``too_few_inliers``, ``solver_error: ...``, ``no_valid_depth``, ...
        metric: translation in metres (PnP on metric points, or scaled from depth).
        scale: factor applied to a unit translation by :func:`scale_translation_from_depth`.
    """

    success: bool
    cam_from_world: np.ndarray | None = None
    T_0to1: np.ndarray | None = None
    inlier_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    num_inliers: int = 0
    num_matches: int = 0
    failure_reason: str | None = None
    metric: bool = False
    scale: float | None = None

    @property
    def pose(self) -> np.ndarray | None:
        """``T_0to1`` if set, else ``cam_from_world``."""
        return self.T_0to1 if self.T_0to1 is not None else self.cam_from_world

    @classmethod
    def failure(cls, reason: str, num_matches: int = 0,
                inlier_mask: np.ndarray | None = None) -> PoseEstimate:
        mask = np.zeros(num_matches, bool) if inlier_mask is None else inlier_mask
        return cls(False, inlier_mask=mask, num_matches=num_matches, failure_reason=reason)


def _check_K(K: Any, name: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{name}: expected a finite 3x3 intrinsics matrix with positive focals, got {K!r}")
    if K[0, 1] != 0 or K[1, 0] != 0 or np.any(K[2] != [0, 0, 1]):
        raise ValueError(f"{name}: only pinhole intrinsics without skew are supported, got {K.tolist()}")
    return K


def pycolmap_camera(K: np.ndarray, image_size: tuple[int, int] | None = None) -> pycolmap.Camera:
    """PINHOLE pycolmap camera for OpenCV-convention ``K`` (principal point shifted by +0.5).

    Args: image_size ``(W, H)``; default ``2 * (c + 0.5)`` rounded up (only used for bookkeeping).
    """
    K = _check_K(K, "K")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5
    w, h = image_size if image_size is not None else (int(np.ceil(2 * cx)), int(np.ceil(2 * cy)))
    return pycolmap.Camera(model="PINHOLE", width=max(int(w), 1), height=max(int(h), 1),
                           params=[fx, fy, cx, cy])


def _ransac_options(opts: pycolmap.RANSACOptions, cfg: RansacConfig, solver: str) -> pycolmap.RANSACOptions:
    opts.max_error = float(DEFAULT_MAX_ERROR_PX[solver] if cfg.max_error_px is None else cfg.max_error_px)
    opts.random_seed = int(cfg.seed)
    opts.confidence = float(cfg.confidence)
    opts.min_num_trials = int(cfg.min_num_trials)
    opts.max_num_trials = int(cfg.max_num_trials)
    opts.min_inlier_ratio = float(cfg.min_inlier_ratio)
    return opts


def _rigid_to_matrix(rigid: pycolmap.Rigid3d) -> np.ndarray:
    m = np.asarray(rigid.matrix(), dtype=np.float64)
    return make_pose(m[:, :3], m[:, 3])


def _rank(pts: np.ndarray, tol: float) -> int:
    """Numerical rank of the centred point cloud (0 coincident, 1 collinear, ...)."""
    if len(pts) < 2:
        return 0
    s = np.linalg.svd(pts - pts.mean(0), compute_uv=False)
    return int((s > tol * max(s[0], 1e-300)).sum()) if s[0] > 0 else 0


def _config(config: RansacConfig | None, overrides: dict[str, Any]) -> RansacConfig:
    return dataclasses.replace(config or RansacConfig(), **overrides)


def pnp_ransac(pts3d: Any, pts2d: Any, K: Any, *, config: RansacConfig | None = None,
               image_size: tuple[int, int] | None = None, **overrides: Any) -> PoseEstimate:
    """Camera pose from 2D-3D correspondences (P3P LO-RANSAC + refinement, pycolmap).

    Args:
        pts3d: (N, 3) points in some frame ("world": a map, or camera 0 for a pointmap).
        pts2d: (N, 2) ``(x, y)`` pixels of the same points in the camera (centres at integers).
        K: (3, 3) camera intrinsics.
        config: :class:`RansacConfig`; keyword ``overrides`` (e.g. ``max_error_px=5, seed=0``)
            replace its fields.
        image_size: ``(W, H)`` of the image (bookkeeping only).
    Returns: :class:`PoseEstimate` with ``cam_from_world`` (frame of ``pts3d`` -> camera),
        ``metric`` False (the caller knows whether ``pts3d`` is metric).
    """
    cfg = _config(config, overrides)
    K = _check_K(K, "K")
    X = np.asarray(pts3d, dtype=np.float64).reshape(-1, 3)
    x = np.asarray(pts2d, dtype=np.float64).reshape(-1, 2)
    if len(X) != len(x):
        raise ValueError(f"pnp_ransac: {len(X)} 3D points but {len(x)} 2D points")
    n = len(X)
    ok = np.isfinite(X).all(1) & np.isfinite(x).all(1)
    if ok.sum() < max(cfg.min_matches, 4):
        return PoseEstimate.failure("too_few_matches", n)
    Xo, xo = X[ok], x[ok]
    scale = np.abs(Xo - Xo.mean(0)).max() + 1e-300
    if _rank(Xo, 1e-9) < 2 or _rank(xo, 1e-9) < 2 or scale == 0:
        return PoseEstimate.failure("degenerate_points", n)
    camera = pycolmap_camera(K, image_size)
    est = pycolmap.AbsolutePoseEstimationOptions()
    _ransac_options(est.ransac, cfg, "pnp")
    try:
        if cfg.refine:
            res = pycolmap.estimate_and_refine_absolute_pose(xo + 0.5, Xo, camera, est,
                                                             pycolmap.AbsolutePoseRefinementOptions())
        else:
            res = pycolmap.estimate_absolute_pose(xo + 0.5, Xo, camera, est)
    except Exception as exc:  # pycolmap raises on internal degeneracies; a run must go on
        return PoseEstimate.failure(f"solver_error: {type(exc).__name__}: {exc}", n)
    if res is None:
        return PoseEstimate.failure("ransac_failed", n)
    mask = np.zeros(n, bool)
    mask[np.flatnonzero(ok)] = np.asarray(res["inlier_mask"], bool).reshape(-1)
    T = _rigid_to_matrix(res["cam_from_world"])
    if not np.all(np.isfinite(T)):
        return PoseEstimate.failure("ransac_failed", n, mask)
    if mask.sum() < cfg.min_inliers:
        return PoseEstimate.failure("too_few_inliers", n, mask)
    return PoseEstimate(True, cam_from_world=T, inlier_mask=mask, num_inliers=int(mask.sum()), num_matches=n)


def relative_pose_pnp(pts3d0: Any, pts1: Any, K1: Any, *, config: RansacConfig | None = None,
                      image_size: tuple[int, int] | None = None, metric: bool = True,
                      **overrides: Any) -> PoseEstimate:
    """Relative pose from view-0 3D points (camera-0 frame) and their view-1 pixels (PnP).

    With MASt3R's metric pointmap the translation is metric (``metric=True``).
    Args: pts3d0 (N, 3) camera-0 frame; pts1 (N, 2) view-1 pixels; K1 view-1 intrinsics.
    Returns: :class:`PoseEstimate` with ``T_0to1`` (= ``cam_from_world`` with world = camera 0).
    """
    est = pnp_ransac(pts3d0, pts1, K1, config=config, image_size=image_size, **overrides)
    if not est.success:
        return est
    return dataclasses.replace(est, T_0to1=est.cam_from_world, metric=metric)


def relative_pose_essential(pts0: Any, pts1: Any, K0: Any, K1: Any, *, config: RansacConfig | None = None,
                            image_sizes: tuple[tuple[int, int], tuple[int, int]] | None = None,
                            **overrides: Any) -> PoseEstimate:
    """Relative pose from 2D-2D matches with known intrinsics (5-point essential LO-RANSAC,
    cheirality decomposition, then optional refinement of the Sampson error on the inliers).

    Args:
        pts0, pts1: (N, 2) ``(x, y)`` pixels in views 0 / 1.
        K0, K1: (3, 3) intrinsics.
        config / overrides: :class:`RansacConfig` (``max_error_px`` is an epipolar pixel error).
        image_sizes: ``((W0, H0), (W1, H1))`` (bookkeeping only).
    Returns: :class:`PoseEstimate` with ``T_0to1`` whose translation has unit norm.
    """
    cfg = _config(config, overrides)
    K0, K1 = _check_K(K0, "K0"), _check_K(K1, "K1")
    a = np.asarray(pts0, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(pts1, dtype=np.float64).reshape(-1, 2)
    if len(a) != len(b):
        raise ValueError(f"relative_pose_essential: {len(a)} points in view 0 but {len(b)} in view 1")
    n = len(a)
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    if ok.sum() < max(cfg.min_matches, 5):
        return PoseEstimate.failure("too_few_matches", n)
    ao, bo = a[ok], b[ok]
    if _rank(ao, 1e-9) < 2 or _rank(bo, 1e-9) < 2:
        return PoseEstimate.failure("degenerate_points", n)
    size0, size1 = image_sizes if image_sizes is not None else (None, None)
    cam0, cam1 = pycolmap_camera(K0, size0), pycolmap_camera(K1, size1)
    try:
        res = pycolmap.estimate_essential_matrix(ao + 0.5, bo + 0.5, cam0, cam1,
                                                 _ransac_options(pycolmap.RANSACOptions(), cfg, "essential"))
        if res is not None and cfg.refine:
            inl = np.asarray(res["inlier_mask"], bool).reshape(-1)
            ref = pycolmap.refine_relative_pose(res["cam2_from_cam1"], cam0, ao + 0.5, cam1, bo + 0.5, inl)
            if ref is not None:
                res["cam2_from_cam1"] = ref["cam2_from_cam1"] if isinstance(ref, dict) else ref
    except Exception as exc:
        return PoseEstimate.failure(f"solver_error: {type(exc).__name__}: {exc}", n)
    if res is None:
        return PoseEstimate.failure("ransac_failed", n)
    mask = np.zeros(n, bool)
    mask[np.flatnonzero(ok)] = np.asarray(res["inlier_mask"], bool).reshape(-1)
    T = _rigid_to_matrix(res["cam2_from_cam1"])
    norm = np.linalg.norm(T[:3, 3])
    if not np.all(np.isfinite(T)) or norm == 0:
        return PoseEstimate.failure("ransac_failed", n, mask)
    T[:3, 3] /= norm
    if mask.sum() < cfg.min_inliers:
        return PoseEstimate.failure("too_few_inliers", n, mask)
    return PoseEstimate(True, T_0to1=T, inlier_mask=mask, num_inliers=int(mask.sum()), num_matches=n)
