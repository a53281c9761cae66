"""Map-free relocalisation metrics, exactly as the official evaluator computes them.

Mirrors ``nianticlabs/map-free-reloc`` ``benchmark/{mapfree,metrics,reprojection,utils}.py``
(commit b5182dc7) with the ``transforms3d`` quaternion functions it calls. Every quirk is kept on
purpose and named in the docstring that implements it:

* parsing (:func:`load_poses`): ``line.strip().split(' ')`` must give exactly 8 (GT) or 9
  (submission) tokens, a ``#`` anywhere in the name skips the line, the frame key is
  ``int(name[-9:-4])`` (``seq0/frame_00000`` and ``seq1/frame_00000`` collide on key 0: the later
  line wins the value, the key keeps the first line's position), lines with NaN/inf or a quaternion
  of norm ~0 (``np.isclose(|q|, 0)``) are skipped, i.e. become failures;
* per frame: camera-centre distance, ``2 asin`` quaternion angle, and VCRE on a 196-point grid with
  float32 ``K``, clipping to ``[0, W] x [0, H]`` (W, H from the LAST line of ``intrinsics.txt``) and
  no check on the sign of depth;
* aggregation (:func:`aggregate`): the average over scenes of per-scene medians (scenes without
  estimates skipped), strict ``<`` thresholds, a step-wise average precision whose recall is
  computed in float32 and capped by failures, and a missing ``pose_<scene>.txt`` counting every GT
  key of the scene *before* subsampling as a failure.

Everything here is pure (text in, numbers out); the text parsers are in
:mod:`benchmarks.metrics.mapfree_files` (re-exported here), reading files and zips lives in
``benchmarks.metrics.submission`` and ``benchmarks.commands.score``. Units: metres, degrees, pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from benchmarks.metrics._transforms3d import qinverse as _qinverse
from benchmarks.metrics._transforms3d import qmult as _qmult
from benchmarks.metrics._transforms3d import quat2mat as _quat2mat
from benchmarks.metrics.mapfree_files import (
    SUBSAMPLE,
    FramePose,
    Intrinsics,
    frame_pose_from_cam_from_world,
    load_intrinsics,
    load_poses,
    subsample_poses,
)

__all__ = [
    "T_THRESHOLD_M", "R_THRESHOLD_DEG", "VCRE_THRESHOLD_PX", "SUBSAMPLE", "VCRE_GRID",
    "FramePose", "Intrinsics", "SceneResult", "MapfreeMetrics", "NoEstimatesError",
    "load_poses", "load_intrinsics", "subsample_poses", "frame_pose_from_cam_from_world",
    "translation_error_m", "rotation_error_deg", "vcre_px", "evaluate_scene", "average_precision",
    "aggregate",
]

T_THRESHOLD_M = 0.25
R_THRESHOLD_DEG = 5.0
VCRE_THRESHOLD_PX = 90.0
_RAD2DEG_X2 = 114.59155902616465  # the evaluator's literal for 2 * 180 / pi


def _virtual_grid() -> np.ndarray:
    """(196, 4) float64 homogeneous points in the GT query camera frame, metres, in the official order.

    x in {-0.9, ..., 0.9} (step 0.3), y in {-0.45, -0.15, 0.15, 0.45}, z in {1.8, ..., 3.6}; laid
    out as ``np.meshgrid(x, y, z)`` (``indexing='xy'``) flattened, so the mean over points sums in
    the same order as the official code.
    """
    step = 0.3
    x = (np.arange(0, 7) - (7 - 1) / 2) * step
    y = (np.arange(0, 4) - (4 - 1) / 2) * step + 0.0
    z = np.arange(0, 7).astype(float) * step + 1.8
    xx, yy, zz = np.meshgrid(x, y, z)
    grid = np.concatenate([c.reshape(-1, 1) for c in (xx, yy, zz, np.ones(xx.size))], axis=-1)
    grid.flags.writeable = False
    return grid


VCRE_GRID = _virtual_grid()


class NoEstimatesError(ValueError):
    """No GT frame of any scene has an estimate (the official script prints an error and no metrics)."""


# --- per-frame errors -------------------------------------------------------------------------------------


def translation_error_m(gt: FramePose, est: FramePose) -> float:
    """``|c_est - c_gt|_2`` between camera centres, metres (``MetricManager.trans_err``)."""
    return float(np.linalg.norm(est.centre - gt.centre))


def rotation_error_deg(gt: FramePose, est: FramePose) -> float:
    """``2 asin(|vec(q_gt (x) q_est^-1)|)`` in degrees, [0, 180], sign-agnostic (``quat_angle_error``,
    'sin' variant, float64). Quirk kept: when rounding pushes the sine above 1 (rotations ~180 deg
    apart) ``arcsin`` returns NaN, as in the official code."""
    q_gt = gt.q_c2w[None] / np.linalg.norm(gt.q_c2w[None], axis=1, keepdims=True)
    q_est = est.q_c2w[None] / np.linalg.norm(est.q_c2w[None], axis=1, keepdims=True)
    sine = _qmult(q_gt[0], _qinverse(q_est[0]))
    with np.errstate(invalid="ignore"):
        angle = np.arcsin(np.linalg.norm(sine[1:], None, None, True)) * _RAD2DEG_X2  # keepdims
    return float(angle[0])


def _project(points: np.ndarray, K: np.ndarray, width: float, height: float) -> np.ndarray:
    """``reprojection.project``: ``(K @ X^T)^T``, divide by z (no z check), clip x to [0, W], y to [0, H]."""
    uv_h = (K @ points[:, :3].T).T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uv_h[:, :2] / uv_h[:, -1:]
    uv[:, 0] = np.clip(uv[:, 0], 0, width)
    uv[:, 1] = np.clip(uv[:, 1], 0, height)
    return uv


def vcre_px(gt: FramePose, est: FramePose, K: np.ndarray, width: float, height: float) -> float:
    """Virtual correspondence reprojection error in pixels (``reprojection.reprojection_error``).

    Projects :data:`VCRE_GRID` (GT query camera frame) with ``K`` (the evaluator's float32 matrix),
    and the same points moved by ``T_est_w2c @ T_gt_c2w``; both projections clipped to
    ``[0, W] x [0, H]`` (no z check, so points behind the estimated camera still count); returns the
    mean over the 196 points of the pixel distance. NaN when a projection divides 0 by 0.
    """
    uv_gt = _project(VCRE_GRID, K, width, height)
    est_c2w = np.eye(4)
    est_c2w[:3, :3] = _quat2mat(est.q_c2w)
    est_c2w[:3, -1] = est.centre
    gt_c2w = np.eye(4)
    gt_c2w[:3, :3] = _quat2mat(gt.q_c2w)
    gt_c2w[:3, -1] = gt.centre
    moved = (np.linalg.inv(est_c2w) @ gt_c2w @ VCRE_GRID.T).T
    uv_est = _project(moved, K, width, height)
    return float(np.linalg.norm(uv_gt - uv_est, ord=2, axis=1).mean().item())


# --- scenes and aggregation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneResult:
    """Per-frame errors of one scene (estimated frames only, GT order) and its failure count.

    Attributes:
        frame_keys: (n,) int64 evaluated frame keys with an estimate.
        trans_err_m, rot_err_deg, vcre_px, confidence: (n,) float64.
        failures: evaluated GT frames without an estimate; for a missing pose file, every GT key of
            the scene before subsampling (official quirk).
    """

    frame_keys: np.ndarray
    trans_err_m: np.ndarray
    rot_err_deg: np.ndarray
    vcre_px: np.ndarray
    confidence: np.ndarray
    failures: int

    @property
    def num_estimates(self) -> int:
        return len(self.frame_keys)


def evaluate_scene(gt_poses: Mapping[int, FramePose], est_poses: Mapping[int, FramePose] | None,
                   intrinsics: Intrinsics, *, subsample: int = SUBSAMPLE, scene: str = "") -> SceneResult:
    """Per-frame errors of one scene (``compute_scene_metrics``).

    ``gt_poses`` as :func:`load_poses` returns them for ``poses.txt`` (NOT subsampled);
    ``est_poses`` from the submission, or ``None`` when ``pose_<scene>.txt`` is missing, which makes
    ``failures = len(gt_poses)`` (all keys, before subsampling: quirk). An evaluated frame with an
    estimate but no intrinsics, a negative confidence or a non-positive image size raises
    ``ValueError`` (the official script aborts the whole evaluation there). An estimate without a
    confidence (``FramePose.confidence is None``, in-process use only) counts as confidence 0.
    """
    if est_poses is None:
        empty = np.zeros((0,), dtype=np.float64)
        return SceneResult(np.zeros((0,), np.int64), empty, empty, empty, empty, len(gt_poses))
    rows: list[tuple[int, float, float, float, float]] = []
    failures = 0
    for key, gt in subsample_poses(gt_poses, subsample).items():
        est = est_poses.get(key)
        if est is None:
            failures += 1
            continue
        where = f"scene {scene!r} frame key {key}"
        if key not in intrinsics.K:
            raise ValueError(f"{where}: no intrinsics for this frame")
        confidence = float(est.confidence if est.confidence is not None else 0.0)
        if not confidence >= 0:
            raise ValueError(f"{where}: confidence must be non-negative, got {confidence}")
        if not (intrinsics.width > 0 and intrinsics.height > 0):
            raise ValueError(f"{where}: invalid image size {intrinsics.width} x {intrinsics.height}")
        rows.append((key, translation_error_m(gt, est), rotation_error_deg(gt, est),
                     vcre_px(gt, est, intrinsics.K[key], intrinsics.width, intrinsics.height), confidence))
    cols = list(zip(*rows)) if rows else [(), (), (), (), ()]
    trans, rot, vcre, conf = (np.array(c, dtype=np.float64) for c in cols[1:])
    return SceneResult(np.array(cols[0], dtype=np.int64), trans, rot, vcre, conf, failures)


def average_precision(confidence: np.ndarray, accepted: np.ndarray, failures: int) -> float:
    """Area under the precision/recall curve, as ``utils.precision_recall`` computes it.

    Estimates are sorted by decreasing confidence; at the last index ``k`` of each group of equal
    confidences, ``precision_k = TP_k / k`` and ``recall_k = k / (N + failures)`` (float32, quirk);
    ``AP = sum_k (recall_k - recall_{k-1}) precision_k`` with ``recall_0 = 0``. Failures only enter
    the recall denominator, so they cap the area at ``N / (N + failures)``.

    Args:
        confidence: (N,) confidences (N >= 1). accepted: (N,) bool, true positives. failures: int >= 0.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    order = np.argsort(conf)[::-1]
    conf = conf[order]
    tp = np.asarray(accepted).reshape(-1)[order]
    ends = np.r_[np.where(np.diff(conf))[0], conf.size - 1]
    n = conf.shape[0]
    ranks = np.arange(n, dtype=np.float32) + 1
    precision = np.cumsum(tp)[ends] / ranks[ends]
    recall = ranks[ends] / (float(n) + float(failures))
    last = recall.searchsorted(recall[-1])
    precision = np.r_[precision[last::-1], 1]
    recall = np.r_[recall[last::-1], 0]
    return float(np.abs(np.sum(np.diff(recall) * np.array(precision)[:-1])))


@dataclass(frozen=True)
class MapfreeMetrics:
    """The official Map-free summary (fractions in [0, 1], errors in m / deg / px) plus counts."""

    avg_median_trans_err_m: float
    avg_median_rot_err_deg: float
    avg_median_vcre_px: float
    precision_pose: float
    auc_pose: float
    precision_vcre: float
    auc_vcre: float
    estimated_fraction: float
    num_estimates: int
    num_failures: int

    def as_dict(self) -> dict[str, float]:
        """The eight official metrics, keyed as ``mast3r-bench score mapfree`` prints them."""
        keys = ("avg_median_trans_err_m", "avg_median_rot_err_deg", "avg_median_vcre_px", "precision_pose",
                "auc_pose", "precision_vcre", "auc_vcre", "estimated_fraction")
        return {k: float(getattr(self, k)) for k in keys}


def aggregate(results: Mapping[str, SceneResult]) -> MapfreeMetrics:
    """Benchmark summary over scenes (``aggregate_results``).

    Average medians: mean over scenes WITH estimates of each scene's median (failures never enter a
    median). Precision: ``#(t < 0.25 m and R < 5 deg) / total`` and ``#(VCRE < 90 px) / total``
    with strict ``<`` and ``total = N_est + failures``. AUC: :func:`average_precision`. Estimated
    fraction: ``N_est / total``. Scenes are taken in the mapping's order. Raises
    :class:`NoEstimatesError` when no frame has an estimate (the official script prints no metrics).
    """
    with_est = [r for r in results.values() if r.num_estimates > 0]
    if not with_est:
        raise NoEstimatesError("the submission does not have any valid pose estimate")
    failures = sum(int(r.failures) for r in results.values())

    def median_avg(attr: str) -> float:
        return float(np.mean([np.median(getattr(r, attr)) for r in with_est]))

    def joined(attr: str) -> np.ndarray:
        return np.concatenate([getattr(r, attr) for r in with_est])

    trans, rot, vcre, conf = (joined(a) for a in ("trans_err_m", "rot_err_deg", "vcre_px", "confidence"))
    ok_pose = (trans < T_THRESHOLD_M) * (rot < R_THRESHOLD_DEG)
    ok_vcre = vcre < VCRE_THRESHOLD_PX
    total = len(trans) + failures
    return MapfreeMetrics(
        avg_median_trans_err_m=median_avg("trans_err_m"),
        avg_median_rot_err_deg=median_avg("rot_err_deg"),
        avg_median_vcre_px=median_avg("vcre_px"),
        precision_pose=float(np.sum(ok_pose) / total),
        auc_pose=average_precision(conf, ok_pose, failures),
        precision_vcre=float(np.sum(ok_vcre) / total),
        auc_vcre=average_precision(conf, ok_vcre, failures),
        estimated_fraction=len(trans) / total,
        num_estimates=len(trans),
        num_failures=failures,
    )
