"""Multi-view relative pose metrics of CO3Dv2 / RealEstate10K: RRA, RTA and mAA(30).

Mirrors PoseDiffusion ``pose_diffusion/util/metric.py`` (commit b138198e: ``camera_to_rel_deg``,
``rotation_angle``, ``compare_translation_by_angle``, ``calculate_auc_np``) and PyTorch3D 0.7.9
``so3_relative_angle(eps=1e-4)`` / ``acos_linear_extrapolation``.

Two modes for the per-pair errors (``faithful`` argument, default ``True``):

* ``faithful=True`` (default, the official numbers): float32 throughout; rotation angle through
  PyTorch3D's ``acos_linear_extrapolation`` with bounds ``+-(1 - 1e-4)``, which replaces ``acos``
  by its tangent line for ``|cos| >= 0.9999`` -- identical rotations give 0.405 deg, not 0, and
  angles below ~0.81 deg are biased; translation angle ``acos(sqrt(1 - max(1 - (t1.t2)^2, 1e-15)))``
  after dividing by ``|t| + 1e-15``. Results are float32 arrays.
* ``faithful=False``: float64 and exact (``atan2`` forms, accurate at 0 and 180 deg), with the same
  conventions (sign-agnostic translation angle in [0, 90] deg, zero-length vector -> 90 deg).

In both modes a NaN/inf translation angle becomes ``1e6`` rad (``default_err``), i.e. ~5.7e7 deg,
and a NaN rotation stays NaN (both then fail every threshold). Accuracy thresholds are strict ``<``.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.metrics._geometry import rotation_angle_deg

__all__ = [
    "all_pairs",
    "relative_pose_errors",
    "pair_errors",
    "relative_rotation_accuracy",
    "relative_translation_accuracy",
    "mean_average_accuracy",
]

_FLIP = np.array([-1.0, -1.0, 1.0])  # OpenCV <-> PyTorch3D camera axes (x and y flipped)
_COS_BOUND = 1e-4
_TRACE_EPS = 1e-4
_T_EPS = 1e-15
_DEFAULT_ERR_RAD = 1e6


def all_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(i, j)`` of all pairs ``i < j`` of ``n`` frames in lexicographic order, (n(n-1)/2,) int64
    each (``torch.combinations`` order: (0,1), (0,2), ..., (1,2), ...)."""
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def _acos_linear_extrapolation(x: np.ndarray) -> np.ndarray:
    """PyTorch3D ``acos_linear_extrapolation(x, (-(1-1e-4), 1-1e-4))`` in float32."""
    bound = 1.0 - _COS_BOUND
    out = np.empty_like(x)
    upper = x >= bound
    lower = x <= -bound
    mid = ~upper & ~lower
    out[mid] = np.arccos(x[mid])
    for sel, x0 in ((upper, bound), (lower, -bound)):
        slope = -1.0 / math.sqrt(1.0 - x0 * x0)
        out[sel] = (x[sel] - x0) * slope + math.acos(x0)
    return out


def _rotation_error_faithful(R1: np.ndarray, R2: np.ndarray) -> np.ndarray:
    """``so3_relative_angle(R1, R2, eps=1e-4)`` in degrees, float32 (PoseDiffusion ``rotation_angle``)."""
    R12 = np.matmul(R1, np.swapaxes(R2, -1, -2))
    trace = R12[:, 0, 0] + R12[:, 1, 1] + R12[:, 2, 2]
    if np.any((trace < -1.0 - _TRACE_EPS) | (trace > 3.0 + _TRACE_EPS)):
        raise ValueError("A matrix has trace outside valid range [-1-eps,3+eps] (not a rotation; "
                         "PyTorch3D so3_relative_angle raises the same error)")
    cos = (trace - 1.0) * 0.5
    return _acos_linear_extrapolation(cos) * 180 / np.pi


def _translation_error_faithful(t_gt: np.ndarray, t_pred: np.ndarray) -> np.ndarray:
    """PoseDiffusion ``compare_translation_by_angle`` + ``translation_angle`` in degrees, float32."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t_pred = t_pred / (np.sqrt(np.sum(t_pred * t_pred, axis=1, keepdims=True)) + _T_EPS)
        t_gt = t_gt / (np.sqrt(np.sum(t_gt * t_gt, axis=1, keepdims=True)) + _T_EPS)
        dot = np.sum(t_pred * t_gt, axis=1)
        loss = np.maximum(1.0 - dot**2, np.float32(_T_EPS))  # clamp_min; NaN propagates like torch
        err = np.arccos(np.sqrt(1 - loss))
    err[np.isnan(err) | np.isinf(err)] = _DEFAULT_ERR_RAD
    return err * 180.0 / np.pi


def _translation_error_exact(t_gt: np.ndarray, t_pred: np.ndarray) -> np.ndarray:
    """Sign-agnostic angle between translation directions in degrees, [0, 90], float64."""
    with np.errstate(invalid="ignore", over="ignore"):
        cross = np.linalg.norm(np.cross(t_gt, t_pred), axis=1)
        dot = np.abs(np.sum(t_gt * t_pred, axis=1))
        err = np.degrees(np.arctan2(cross, dot))
        zero = (np.linalg.norm(t_gt, axis=1) == 0) | (np.linalg.norm(t_pred, axis=1) == 0)
    err[zero] = 90.0
    err[~np.isfinite(err)] = math.degrees(_DEFAULT_ERR_RAD)
    return err


def _p3d_relative(R_cv: np.ndarray, t_cv: np.ndarray, i: np.ndarray, j: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch3D row-form relative poses ``inv(M_i) M_j`` (``closed_form_inverse``), float32.

    ``M = [[R, 0], [T, 1]]`` with ``R = R_cv^T diag(-1, -1, 1)`` and ``T = diag(-1, -1, 1) t_cv``
    (exact sign flips). Returns the (P, 3, 3) rotation block and the (P, 3) translation row.
    """
    R = (np.swapaxes(R_cv, -1, -2) * _FLIP).astype(np.float32)
    T = (t_cv * _FLIP).astype(np.float32)
    M = np.zeros((len(R), 4, 4), dtype=np.float32)
    M[:, :3, :3] = R
    M[:, 3, :3] = T
    M[:, 3, 3] = 1
    Rt = np.swapaxes(R[i], -1, -2)
    inv = np.zeros((len(i), 4, 4), dtype=np.float32)
    inv[:, :3, :3] = Rt
    inv[:, 3:, :3] = -np.matmul(T[i][:, None, :], Rt)
    inv[:, :, 3] = M[i][:, :, 3]
    rel = np.matmul(inv, M[j])
    return rel[:, :3, :3], rel[:, 3, :3]


def _check(R: np.ndarray, t: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3) or t.shape != (len(R), 3):
        raise ValueError(f"{what}: expected R (N, 3, 3) and t (N, 3), got {R.shape} and {t.shape}")
    return R, t


def relative_pose_errors(R_gt: np.ndarray, t_gt: np.ndarray, R_pred: np.ndarray, t_pred: np.ndarray,
                         *, faithful: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation-direction errors of all frame pairs of one sequence.

    Args:
        R_gt, R_pred: (N, 3, 3) OpenCV ``cam_from_world`` rotations.
        t_gt, t_pred: (N, 3) OpenCV ``cam_from_world`` translations. The prediction may live in any
            similarity frame (only relative rotations and translation directions are compared).
        faithful: official float32 PoseDiffusion/PyTorch3D arithmetic (default) or exact float64.

    Returns:
        ``(rot_err_deg, trans_err_deg)``, each (N(N-1)/2,) over pairs ``i < j`` in lexicographic order
        (:func:`all_pairs`); float32 when ``faithful`` else float64. The relative pose of a pair is
        ``inv(M_i) M_j`` (the OpenCV ``T_i->j = [R_j R_i^T | t_j - R_j R_i^T t_i]`` up to the axis flip,
        which changes no angle).

    Failed estimates should be NaN (they fail every threshold). In faithful mode a relative
    rotation whose trace leaves ``[-1 - 1e-4, 3 + 1e-4]`` (not a rotation) raises ``ValueError``,
    as PyTorch3D does.
    """
    R_gt, t_gt = _check(R_gt, t_gt, "ground truth")
    R_pred, t_pred = _check(R_pred, t_pred, "prediction")
    if len(R_gt) != len(R_pred):
        raise ValueError(f"{len(R_gt)} ground-truth frames but {len(R_pred)} predicted frames")
    i, j = all_pairs(len(R_gt))
    if faithful:
        rel_R_gt, rel_t_gt = _p3d_relative(R_gt, t_gt, i, j)
        rel_R_pred, rel_t_pred = _p3d_relative(R_pred, t_pred, i, j)
        return (_rotation_error_faithful(rel_R_gt, rel_R_pred),
                _translation_error_faithful(rel_t_gt, rel_t_pred))
    rel_R_gt = R_gt[j] @ np.swapaxes(R_gt[i], -1, -2)
    rel_R_pred = R_pred[j] @ np.swapaxes(R_pred[i], -1, -2)
    rel_t_gt = t_gt[j] - np.einsum("nab,nb->na", rel_R_gt, t_gt[i])
    rel_t_pred = t_pred[j] - np.einsum("nab,nb->na", rel_R_pred, t_pred[i])
    return pair_errors(rel_R_gt, rel_t_gt, rel_R_pred, rel_t_pred, faithful=False)


def pair_errors(R_ij_gt: np.ndarray, t_ij_gt: np.ndarray, R_ij_pred: np.ndarray, t_ij_pred: np.ndarray,
                *, faithful: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Errors of directly estimated relative poses (adapters that solve each pair on its own).

    Args:
        R_ij_gt, R_ij_pred: (P, 3, 3) OpenCV relative rotations ``R_j R_i^T`` (camera i -> camera j).
        t_ij_gt, t_ij_pred: (P, 3) relative translations ``t_j - R_ij t_i`` (any scale, any sign).
        faithful: as in :func:`relative_pose_errors` (the same numbers for the same poses).

    Returns:
        ``(rot_err_deg, trans_err_deg)``, (P,) each (float32 when ``faithful``, else float64).
    """
    R_ij_gt, t_ij_gt = _check(R_ij_gt, t_ij_gt, "ground truth")
    R_ij_pred, t_ij_pred = _check(R_ij_pred, t_ij_pred, "prediction")
    if len(R_ij_gt) != len(R_ij_pred):
        raise ValueError(f"{len(R_ij_gt)} ground-truth pairs but {len(R_ij_pred)} predicted pairs")
    if faithful:
        # PyTorch3D row form of the relative pose: R = F R_ij^T F, T = F t_ij (exact sign flips).
        def p3d(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            R_row = _FLIP[:, None] * np.swapaxes(R, -1, -2) * _FLIP[None, :]
            return R_row.astype(np.float32), (t * _FLIP).astype(np.float32)

        Rg, tg = p3d(R_ij_gt, t_ij_gt)
        Rp, tp = p3d(R_ij_pred, t_ij_pred)
        return _rotation_error_faithful(Rg, Rp), _translation_error_faithful(tg, tp)
    rot = rotation_angle_deg(R_ij_gt @ np.swapaxes(R_ij_pred, -1, -2))
    return rot, _translation_error_exact(t_ij_gt, t_ij_pred)


def relative_rotation_accuracy(rot_err_deg: np.ndarray, threshold: float = 15.0) -> float:
    """RRA@threshold: fraction (not %) of pairs with ``rot_err < threshold`` (strict; NaN fails)."""
    return float(np.mean(np.asarray(rot_err_deg) < threshold))


def relative_translation_accuracy(trans_err_deg: np.ndarray, threshold: float = 15.0) -> float:
    """RTA@threshold: fraction (not %) of pairs with ``trans_err < threshold`` (strict; NaN fails)."""
    return float(np.mean(np.asarray(trans_err_deg) < threshold))


def mean_average_accuracy(rot_err_deg: np.ndarray, trans_err_deg: np.ndarray,
                          max_threshold: int = 30) -> float:
    """mAA(max_threshold) as a fraction, exactly PoseDiffusion's ``calculate_auc_np``.

    ``e = max(rot_err, trans_err)`` per pair (NaN propagates and never counts); histogram with edges
    ``0, 1, ..., max_threshold`` (numpy: the last bin includes ``max_threshold``); mean over the bins
    of the cumulative fraction. Equals ``(1/T) sum_{k=1..T} frac(e < k)`` with ``e == T`` counted at
    ``k = T``. NaN for zero pairs. PoseDiffusion reports it x100.
    """
    errors = np.concatenate((np.asarray(rot_err_deg).reshape(-1)[:, None],
                             np.asarray(trans_err_deg).reshape(-1)[:, None]), axis=1)
    max_errors = np.max(errors, axis=1)
    histogram, _ = np.histogram(max_errors, bins=np.arange(max_threshold + 1))
    if len(max_errors) == 0:
        return math.nan
    return float(np.mean(np.cumsum(histogram.astype(float) / float(len(max_errors)))))
