"""Typed records produced by the dataset readers (``datasets/<benchmark>.py``).

Conventions (shared with ``benchmarks.types``, which re-exports :class:`View`): poses are 4x4
float64 OpenCV ``cam_from_world`` (x right, y down, z forward); intrinsics are 3x3 float64 in pixels
of the image as stored; pixel centres at integer coordinates; quaternions ``(qw, qx, qy, qz)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["View"]


@dataclass(frozen=True)
class View:
    """One image of a benchmark, as a dataset reader describes it (nothing is loaded yet).

    Attributes:
        name: identifier unique within the dataset root, e.g. ``"s00460/seq1/frame_00005.jpg"``.
        image_path: absolute path of the image file; read lazily by matchers.
        width, height: size in pixels of the image as stored (after EXIF orientation).
        K: (3, 3) float64 intrinsics in pixels of the stored image, or ``None`` when unknown
            (e.g. hidden test split, or a protocol that forbids GT intrinsics).
        cam_from_world: (4, 4) float64 OpenCV world-to-camera pose in the dataset's world frame and
            unit (metres, except DTU: millimetres), or ``None`` when the ground truth is hidden.
        depth_path: optional path of a metric depth map for depth-based baselines.
        meta: free-form, JSON-serialisable reader metadata (sequence id, condition, building, ...).
    """

    name: str
    image_path: Path
    width: int
    height: int
    K: np.ndarray | None = None
    cam_from_world: np.ndarray | None = None
    depth_path: Path | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
