"""RANSAC options of the estimator configs, defined once (``estimator.ransac.<field>``).

The pose adapters (:class:`~benchmarks.adapters._pose_solvers.PoseEstimatorConfig`) and the visual
localization adapters (:class:`~benchmarks.adapters._visloc.VislocEstimatorConfig`) nest one
:class:`RansacOptions` each, with their own defaults (:data:`POSE_RANSAC`, :data:`VISLOC_RANSAC`).
The inlier threshold is not in it: it is an estimator option of its own (one per solver for the pose
adapters, pixels or a fraction of the image diagonal for visloc), and the seed comes from the run.
:meth:`RansacOptions.solver_config` builds the solver's :class:`mast3r.geometry.RansacConfig`.

The flat keys of earlier versions stay accepted on the command line and in ``config.json``
(``KEY_ALIASES`` of the estimator configs, :func:`benchmarks.config.key_aliases`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mast3r.geometry import RansacConfig
from mast3r.geometry.pose import RansacOptions as CoreRansacOptions

__all__ = ["RansacOptions", "POSE_RANSAC", "VISLOC_RANSAC", "POSE_ALIASES", "VISLOC_ALIASES"]


@dataclass(frozen=True)
class RansacOptions(CoreRansacOptions):
    """The estimator configs' RANSAC options: the fields of :class:`mast3r.geometry.RansacOptions`
    (defaults: the official pycolmap ones of MASt3R's visloc), checked when the config is built."""

    def __post_init__(self) -> None:
        """Bad options fail here, when the config is built (not once per sample)."""
        try:
            self.solver_config(None, 0)
        except ValueError as e:
            raise ValueError(f"estimator.ransac options: {e}") from None

    def solver_config(self, max_error_px: float | None, seed: int) -> RansacConfig:
        """The :class:`mast3r.geometry.RansacConfig` with inlier threshold ``max_error_px`` (pixels;
        None: the solver's default) and RANSAC seed ``seed``."""
        return self.with_threshold(max_error_px, seed)


POSE_RANSAC = RansacOptions(min_num_trials=100, max_num_trials=10000, min_matches=10, min_inliers=10)
"""Defaults of the pose adapters (relative pose of one pair)."""

VISLOC_RANSAC = RansacOptions()
"""Defaults of the visual localization adapters (official pycolmap mode: 0.9999, 1000, 100000, 0.01)."""

POSE_ALIASES = {"min_matches": "ransac.min_matches", "min_inliers": "ransac.min_inliers",
                "ransac_confidence": "ransac.confidence", "ransac_min_trials": "ransac.min_num_trials",
                "ransac_max_trials": "ransac.max_num_trials", "refine": "ransac.refine"}
"""The flat ``estimator.<key>`` names of the pose adapters before the options were nested."""

VISLOC_ALIASES = {name: f"ransac.{name}" for name in ("min_matches", "min_inliers", "confidence",
                                                       "min_num_trials", "max_num_trials",
                                                       "min_inlier_ratio", "refine")}
"""The flat ``estimator.<key>`` names of the visloc adapters before the options were nested."""
