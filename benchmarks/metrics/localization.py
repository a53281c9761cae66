"""Visual-localisation metrics of Aachen Day-Night v1.1 and InLoc: pose errors and recall at thresholds.

Position error = distance between camera centres (``c = -R^T t``, metres); orientation error =
angle of ``R_est R_gt^T`` in degrees ([0, 180]). A query is localised at ``(X m, Y deg)`` when both
errors are within the threshold. Recall is over ALL ground-truth queries: a missing estimate (NaN
pose) counts as a failure.

Threshold test: inclusive ``<=`` by default, as NAVER's offline evaluator
(``kapture_localization.evaluation.fill_bins``); ``inclusive=False`` gives the strict ``<`` of
dust3r's ``aggregate_stats``. The two differ only when an error equals a threshold exactly. As in
``fill_bins``, a rotation threshold that is NaN or negative tests the position only.
The visuallocalization.net server's own code is not public.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from benchmarks.metrics._geometry import camera_centres, rotation_angle_deg, split_pose

__all__ = [
    "AACHEN_THRESHOLDS",
    "INLOC_THRESHOLDS",
    "localization_errors",
    "recall_at_thresholds",
    "recall_by_condition",
]

AACHEN_THRESHOLDS: tuple[tuple[float, float], ...] = ((0.25, 2.0), (0.5, 5.0), (5.0, 10.0))
"""Aachen Day-Night (metres, degrees), reported separately for day and night."""
INLOC_THRESHOLDS: tuple[tuple[float, float], ...] = ((0.25, 10.0), (0.5, 10.0), (1.0, 10.0))
"""InLoc (metres, degrees), reported separately for the buildings DUC1 and DUC2."""


def localization_errors(cam_from_world_gt: np.ndarray, cam_from_world_pred: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per-query position and orientation errors.

    Args:
        cam_from_world_gt: (N, 4, 4) or (N, 3, 4) OpenCV world-to-camera ground truth (metres).
        cam_from_world_pred: same shape; a row with any NaN is a missing estimate.

    Returns:
        ``(pos_err_m, rot_err_deg)``: (N,) float64 each; NaN for missing estimates.
    """
    R_gt, _ = split_pose(cam_from_world_gt)
    R_pred, _ = split_pose(cam_from_world_pred)
    if R_gt.shape != R_pred.shape or R_gt.ndim != 3:
        raise ValueError(f"expected (N, 4, 4) poses of equal shapes, got {np.shape(cam_from_world_gt)} "
                         f"and {np.shape(cam_from_world_pred)}")
    pos = np.linalg.norm(camera_centres(cam_from_world_pred) - camera_centres(cam_from_world_gt), axis=-1)
    rot = rotation_angle_deg(R_pred @ np.swapaxes(R_gt, -1, -2))
    missing = ~np.isfinite(np.asarray(cam_from_world_pred, dtype=np.float64)).reshape(len(R_gt), -1).all(-1)
    pos[missing] = np.nan
    rot[missing] = np.nan
    return pos, rot


def recall_at_thresholds(pos_err_m: np.ndarray, rot_err_deg: np.ndarray,
                         thresholds: Sequence[tuple[float, float]], *, inclusive: bool = True) -> np.ndarray:
    """Fraction of queries within each ``(position m, rotation deg)`` threshold.

    Args:
        pos_err_m, rot_err_deg: (N,) errors; NaN (missing) never counts.
        thresholds: ``[(t_m, r_deg), ...]``; a NaN or negative ``r_deg`` tests the position only.
        inclusive: ``<=`` (kapture, default) or strict ``<``.

    Returns:
        (K,) float64 fractions in [0, 1]; NaN for every threshold when N == 0.
    """
    pos = np.asarray(pos_err_m, dtype=np.float64).reshape(-1)
    rot = np.asarray(rot_err_deg, dtype=np.float64).reshape(-1)
    if pos.shape != rot.shape:
        raise ValueError(f"{pos.shape} position errors but {rot.shape} rotation errors")
    within = np.less_equal if inclusive else np.less
    out = np.empty(len(thresholds), dtype=np.float64)
    for k, (t_m, r_deg) in enumerate(thresholds):
        ok = within(pos, t_m)
        if not (math.isnan(r_deg) or r_deg < 0):
            ok &= within(rot, r_deg)
        out[k] = ok.sum() / len(pos) if len(pos) else math.nan
    return out


def recall_by_condition(pos_err_m: np.ndarray, rot_err_deg: np.ndarray, conditions: Sequence[str | None],
                        thresholds: Sequence[tuple[float, float]], *, inclusive: bool = True
                        ) -> dict[str, list[list[float]]]:
    """Recall table per condition (day/night, DUC1/DUC2, ...) and over all queries.

    Args:
        pos_err_m, rot_err_deg: (N,) errors (NaN = missing estimate).
        conditions: (N,) condition of each query; ``None`` puts a query in ``"all"`` only.
        thresholds, inclusive: as :func:`recall_at_thresholds`.

    Returns:
        ``{"<condition>": [[t_m, r_deg, percent], ...], ..., "all": [...]}``: conditions sorted by
        name, then ``"all"``; ``percent`` = 100 x localised / queries of that condition.
    """
    pos = np.asarray(pos_err_m, dtype=np.float64).reshape(-1)
    rot = np.asarray(rot_err_deg, dtype=np.float64).reshape(-1)
    conds = list(conditions)
    if len(conds) != len(pos):
        raise ValueError(f"{len(conds)} conditions for {len(pos)} queries")
    names = sorted({c for c in conds if c is not None})
    if "all" in names:
        raise ValueError("'all' is reserved for the table over every query; rename that condition")
    groups: Mapping[str, np.ndarray] = {
        **{n: np.array([c == n for c in conds], dtype=bool) for n in names},
        "all": np.ones(len(pos), dtype=bool),
    }
    table: dict[str, list[list[float]]] = {}
    for name, sel in groups.items():
        fractions = recall_at_thresholds(pos[sel], rot[sel], thresholds, inclusive=inclusive)
        table[name] = [[float(t), float(r), 100.0 * float(f)] for (t, r), f in zip(thresholds, fractions)]
    return table
