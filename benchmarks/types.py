"""Data types and protocols shared by matchers, adapters and the runner.

Conventions used everywhere in ``benchmarks`` and ``datasets``:

* Pixel coordinates are ``(x, y)`` with x to the right and y down, in pixels of the ORIGINAL image
  as stored on disk, with pixel *centres at integer coordinates* (the OpenCV convention: the
  top-left pixel covers ``[-0.5, 0.5)^2``). COLMAP/pycolmap put centres at ``+0.5``; the conversion
  happens only where pycolmap is called (``mast3r.geometry``).
* Poses are 4x4 float64 rigid transforms named by direction: ``cam_from_world`` maps world points to
  the OpenCV camera frame (x right, y down, z forward); ``T_0to1`` maps camera-0 points to camera-1
  points (``= cam1_from_world @ inv(cam0_from_world)``).
* Intrinsics ``K`` are 3x3 float64 in pixels of the image as stored.
* Quaternions are ``(qw, qx, qy, qz)`` (Hamilton) wherever they appear.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from datasets.records import View

__all__ = [
    "View",
    "Correspondences",
    "Sample",
    "Prediction",
    "Record",
    "Matcher",
    "BenchmarkAdapter",
    "PairIndex",
]

PairIndex = tuple[int, int]
"""Indices ``(i, j)`` into ``Sample.views``: view ``i`` is matched to view ``j`` (i is "view 0")."""


@dataclass
class Correspondences:
    """Matches between view 0 and view 1 of a pair, as a matcher returns them.

    Attributes:
        pts0: (N, 2) float32 ``(x, y)`` in ORIGINAL view-0 pixels (centres at integers).
        pts1: (N, 2) float32 ``(x, y)`` in ORIGINAL view-1 pixels.
        scores: (N,) float32 match confidence, higher is better (MASt3R: ``min`` or geometric mean of
            the two ``desc_conf``; SIFT: ratio-test score; oracle: 1).
        pts3d0: optional (N, 3) float32 3D points of ``pts0`` in camera-0's frame (MASt3R's metric
            pointmap of view 0, metres), for PnP-based solvers.
        pts3d1: optional (N, 3) float32 3D points of ``pts1`` in camera-0's frame (MASt3R's
            ``pts3d_in_other_view``), metres.
        timings: seconds spent per stage (``"forward"``, ``"match"``, ...) for speed tables.
        meta: JSON-serialisable extras (matcher-specific counters, focal estimates, ...).
    """

    pts0: np.ndarray
    pts1: np.ndarray
    scores: np.ndarray
    pts3d0: np.ndarray | None = None
    pts3d1: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pts0 = np.asarray(self.pts0, dtype=np.float32).reshape(-1, 2)
        self.pts1 = np.asarray(self.pts1, dtype=np.float32).reshape(-1, 2)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        n = len(self.pts0)
        if len(self.pts1) != n or len(self.scores) != n:
            raise ValueError(
                f"Correspondences: pts0 {self.pts0.shape}, pts1 {self.pts1.shape} and scores "
                f"{self.scores.shape} must have the same length"
            )
        for name in ("pts3d0", "pts3d1"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float32).reshape(-1, 3)
                if len(value) != n:
                    raise ValueError(f"Correspondences: {name} has {len(value)} rows, expected {n}")
                setattr(self, name, value)

    def __len__(self) -> int:
        return len(self.pts0)

    @classmethod
    def empty(cls, **kwargs: Any) -> Correspondences:
        """No matches (a matcher that found nothing still returns a valid object)."""
        z2 = np.zeros((0, 2), np.float32)
        return cls(z2, z2.copy(), np.zeros((0,), np.float32), **kwargs)

    def subset(self, mask: np.ndarray) -> Correspondences:
        """Rows selected by a boolean mask or an index array; timings and meta are kept."""
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return Correspondences(
            self.pts0[mask], self.pts1[mask], self.scores[mask], pick(self.pts3d0), pick(self.pts3d1),
            dict(self.timings), dict(self.meta),
        )

    def swapped(self) -> Correspondences:
        """The same matches seen from view 1 (3D points are dropped: they live in camera 0's frame)."""
        return Correspondences(self.pts1, self.pts0, self.scores, timings=dict(self.timings),
                               meta=dict(self.meta))


@dataclass(frozen=True)
class Sample:
    """The unit of evaluation: one query, one sequence, one scan, ... with its ground truth.

    Attributes:
        key: identifier unique within the adapter and stable across runs (records are keyed by it),
            e.g. ``"s00460/seq1/frame_00005.jpg"`` or ``"apple/110_13051_23361"``.
        views: the images involved; ``Adapter.pairs(sample)`` indexes into this tuple.
        gt: adapter-specific ground truth (poses, intrinsics, GT file paths, ...). May be empty for
            hidden-GT splits.
        meta: JSON-serialisable descriptors used for grouping in tables (category, condition,
            building, viewpoint bucket, ...).
    """

    key: str
    views: tuple[View, ...]
    gt: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Prediction:
    """What ``Adapter.solve`` estimates for one sample.

    Attributes:
        success: False when the solver could not produce an estimate (it still counts as a failure
            in the metrics, never silently dropped).
        failure_reason: short machine-readable reason when ``success`` is False
            (``"too_few_matches"``, ``"ransac_failed"``, ``"matcher_error: ..."``).
        values: adapter-specific JSON-serialisable estimate (e.g. ``{"cam_from_world": [[...]]}``,
            ``{"T_0to1": ...}``, per-frame poses, a PLY path). Arrays are stored as nested lists.
        confidence: scalar confidence of the estimate (e.g. inlier count), used by AUC metrics.
        num_matches: total correspondences given to the solver.
        num_inliers: inliers kept by the solver (0 on failure).
    """

    success: bool
    values: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    confidence: float = 0.0
    num_matches: int = 0
    num_inliers: int = 0


@dataclass
class Record:
    """One line of a run's append-only record file (JSON object).

    Attributes:
        key: ``Sample.key``.
        metrics: per-sample metric values (``NaN`` is written as ``null``), e.g.
            ``{"trans_err_m": 0.12, "rot_err_deg": 1.3}``.
        prediction: ``Prediction`` as a dict.
        meta: ``Sample.meta`` plus runner counters (matches per pair, ...).
        timings: seconds per stage summed over the sample's pairs (``match``, ``solve``, ``evaluate``).
    """

    key: str
    metrics: dict[str, float | None]
    prediction: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Matcher(Protocol):
    """Finds correspondences between two images.

    Implementations own their preprocessing and return correspondences in ORIGINAL image pixels.
    Construction is ``MatcherClass(config, device=...)`` where ``config`` is an instance of the
    class attribute ``Config`` (a frozen dataclass whose fields are the matcher's options).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    config: Any

    def match(self, view0: View, view1: View) -> Correspondences:
        """Match ``view0`` to ``view1``."""
        ...

    def weights_checksum(self) -> str | None:
        """SHA-256 of the weights file(s) used, or ``None`` for weight-free matchers."""
        ...


@runtime_checkable
class BenchmarkAdapter(Protocol):
    """Turns one benchmark into samples, solves them from correspondences and scores them.

    Construction is ``AdapterClass(root, config, estimator)`` with ``config`` an instance of
    ``Config`` (protocol options: splits, top-k, frames per sequence, ...) and ``estimator`` an
    instance of ``EstimatorConfig`` (solver options: RANSAC thresholds, seed, ...).
    Methods ``evaluate`` and ``summarize`` are pure.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type]
    EstimatorConfig: ClassVar[type]

    def samples(self) -> Iterator[Sample]:
        """All samples in a deterministic order."""
        ...

    def pairs(self, sample: Sample) -> Sequence[PairIndex]:
        """Which view pairs of ``sample`` to match."""
        ...

    def solve(self, sample: Sample, corrs: Sequence[Correspondences], seed: int) -> Prediction:
        """Estimate from the correspondences of ``pairs(sample)`` (same order); never raises for
        bad geometry: returns ``Prediction(success=False, failure_reason=...)``."""
        ...

    def evaluate(self, sample: Sample, prediction: Prediction) -> dict[str, float | None]:
        """Per-sample metrics (pure)."""
        ...

    def summarize(self, records: Iterable[Record]) -> dict[str, Any]:
        """Benchmark-level metrics from all records (pure). Keys name metric, aggregation and unit."""
        ...


# Optional extras (ground-truth matches, data files, export, setup, batched matching, flags, ...) are
# the typed protocols of ``benchmarks.capabilities``, checked with ``isinstance``.
