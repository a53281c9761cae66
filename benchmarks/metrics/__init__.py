"""Benchmark metrics, pure numpy, exactly as each benchmark's official evaluator computes them.

Submodules:

* :mod:`~benchmarks.metrics.mapfree` -- Map-free relocalisation (official ``benchmark/mapfree.py``).
* :mod:`~benchmarks.metrics.pose` -- CO3Dv2 / RealEstate10K RRA, RTA, mAA(30) (PoseDiffusion).
* :mod:`~benchmarks.metrics.localization` -- Aachen Day-Night / InLoc recall at thresholds.
* :mod:`~benchmarks.metrics.dtu` -- DTU accuracy / completeness / overall (DTUeval-python).
* :mod:`~benchmarks.metrics.submission` -- submission writers/readers (the only I/O here).

No function here rounds its results; failures are part of every denominator.
"""

from benchmarks.metrics import dtu, localization, mapfree, pose, submission
from benchmarks.metrics.dtu import DtuResult, dtu_chamfer, greedy_radius_downsample
from benchmarks.metrics.localization import (
    AACHEN_THRESHOLDS,
    INLOC_THRESHOLDS,
    localization_errors,
    recall_at_thresholds,
    recall_by_condition,
)
from benchmarks.metrics.mapfree import MapfreeMetrics
from benchmarks.metrics.mapfree import aggregate as mapfree_aggregate
from benchmarks.metrics.mapfree import evaluate_scene as mapfree_evaluate_scene
from benchmarks.metrics.pose import (
    all_pairs,
    mean_average_accuracy,
    pair_errors,
    relative_pose_errors,
    relative_rotation_accuracy,
    relative_translation_accuracy,
)
from benchmarks.metrics.submission import (
    SubmissionFormatError,
    read_mapfree_submission,
    read_visloc_results,
    write_mapfree_submission,
    write_visloc_results,
)

__all__ = [
    "dtu", "localization", "mapfree", "pose", "submission",
    "DtuResult", "dtu_chamfer", "greedy_radius_downsample",
    "AACHEN_THRESHOLDS", "INLOC_THRESHOLDS", "localization_errors", "recall_at_thresholds",
    "recall_by_condition",
    "MapfreeMetrics", "mapfree_aggregate", "mapfree_evaluate_scene",
    "all_pairs", "mean_average_accuracy", "pair_errors", "relative_pose_errors",
    "relative_rotation_accuracy", "relative_translation_accuracy",
    "SubmissionFormatError", "read_mapfree_submission", "read_visloc_results",
    "write_mapfree_submission", "write_visloc_results",
]
