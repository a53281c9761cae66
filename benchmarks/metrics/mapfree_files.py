"""Map-free pose and intrinsics files, parsed exactly as the official evaluator parses them.

The quirks kept on purpose are listed in :mod:`benchmarks.metrics.mapfree` and in each docstring.
Pure: text in, :class:`FramePose` / :class:`Intrinsics` out. Units: metres, pixels.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from benchmarks.metrics._geometry import rotmat_to_quat_wxyz, split_pose
from benchmarks.metrics._transforms3d import to_cam2world as _to_cam2world

__all__ = [
    "SUBSAMPLE", "FramePose", "Intrinsics", "load_poses", "load_intrinsics", "subsample_poses",
    "frame_pose_from_cam_from_world",
]

log = logging.getLogger("benchmarks.metrics.mapfree")

SUBSAMPLE = 5
"""Every 5th query frame is evaluated (by position in the file)."""


@dataclass(frozen=True)
class FramePose:
    """One parsed pose line, converted to camera-to-world as the evaluator does.

    Attributes:
        q_c2w: (4,) float64 ``(qw, qx, qy, qz)``: ``conj(q) / |q|`` of the file's world-to-camera
            quaternion ``q`` (transforms3d ``qinverse``; unit norm even when ``q`` is not).
        centre: (3,) float64 camera centre in the world frame, metres: ``-R(q)^T t``.
        confidence: the 9th column of a submission line, ``None`` for GT lines.
    """

    q_c2w: np.ndarray
    centre: np.ndarray
    confidence: float | None = None


@dataclass(frozen=True)
class Intrinsics:
    """``intrinsics.txt`` as the evaluator reads it.

    Attributes:
        K: frame key -> (3, 3) float32 ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (pixels); colliding
            keys keep the later line.
        width, height: image size (float) taken from the LAST line of the file, used for every frame.
    """

    K: Mapping[int, np.ndarray]
    width: float
    height: float


def _lines(text: str) -> list[str]:
    """Lines as ``TextIOWrapper(..., encoding='utf-8').readlines()`` yields them (universal newlines)."""
    return io.StringIO(text, newline=None).readlines()


def load_poses(text: str, *, load_confidence: bool = False, source: str = "<text>") -> dict[int, FramePose]:
    """Parse a ``poses.txt`` / ``pose_<scene>.txt`` text exactly like the evaluator's ``load_poses``.

    Lines are ``name qw qx qy qz tx ty tz [confidence]`` (world-to-camera). Skipped (logged at
    WARNING, or INFO for comments), which makes the frame a failure when it is evaluated:

    * a token count other than 8 (``load_confidence=False``) or 9, after ``strip().split(' ')``:
      consecutive spaces or tabs therefore invalidate a line;
    * a ``#`` anywhere in the first token;
    * a name whose ``name[-9:-4]`` is not an ``int`` literal;
    * a token that is not a float, or any NaN/inf value (confidence included);
    * a quaternion with ``np.isclose(|q|, 0)`` (norm <= 1e-8).

    The key is ``int(name[-9:-4])``; a later line with the same key replaces the value but keeps the
    insertion position of the first (the seq0/seq1 ``frame_00000`` collision). Returns an ordered
    ``dict`` key -> :class:`FramePose` (camera-to-world, as the evaluator stores them).
    """
    expected = 9 if load_confidence else 8
    poses: dict[int, FramePose] = {}
    for number, line in enumerate(_lines(text)):
        parts = tuple(line.strip().split(" "))
        if len(parts) != expected:
            log.warning("%s line %d: expected %d fields, got %d; line ignored", source, number,
                        expected, len(parts))
            continue
        name = parts[0]
        if "#" in name:
            log.info("%s line %d: comment ignored", source, number)
            continue
        try:
            key = int(name[-9:-4])
        except ValueError:
            log.warning("%s line %d: no frame number in %r; line ignored", source, number, name)
            continue
        try:
            values = tuple(map(float, parts[1:]))
        except ValueError:
            values = ()
        if len(values) != expected - 1 or not all(math.isfinite(v) for v in values):
            log.warning("%s line %d: invalid or non-finite number; line ignored", source, number)
            continue
        q = np.array(values[:4], dtype=np.float64)
        t = np.array(values[4:7], dtype=np.float64)
        if np.isclose(np.linalg.norm(q), 0):
            log.warning("%s line %d: zero-norm quaternion; line ignored", source, number)
            continue
        q_c2w, centre = _to_cam2world(q, t)
        poses[key] = FramePose(q_c2w, centre, values[7] if load_confidence else None)
    return poses


def load_intrinsics(text: str, *, source: str = "<text>") -> Intrinsics:
    """Parse ``intrinsics.txt`` (``name fx fy cx cy W H``) like the evaluator's ``load_K``.

    Lines containing ``#`` anywhere are skipped; every other line must parse (the official code
    crashes on a malformed line; this raises ``ValueError`` naming ``source`` and the 1-based line).
    ``K`` is float32 (as official); W and H of the last parsed line apply to all frames.
    """
    K: dict[int, np.ndarray] = {}
    size: tuple[float, float] | None = None
    for number, line in enumerate(_lines(text), start=1):
        if "#" in line:
            continue
        parts = line.strip().split(" ")
        try:
            key = int(parts[0][-9:-4])
            fx, fy, cx, cy, width, height = map(float, parts[1:])
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: expected 'name fx fy cx cy W H' with a "
                             f"frame_XXXXX name, got {line.strip()!r} ({exc})") from None
        K[key] = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float32)
        size = (width, height)
    if size is None:
        raise ValueError(f"{source}: no intrinsics lines")
    return Intrinsics(K, size[0], size[1])


def subsample_poses(poses: Mapping[int, FramePose], subsample: int = SUBSAMPLE) -> dict[int, FramePose]:
    """Every ``subsample``-th entry by insertion POSITION (not by frame number), as the evaluator does."""
    return {k: v for i, (k, v) in enumerate(poses.items()) if i % subsample == 0}


def frame_pose_from_cam_from_world(cam_from_world: np.ndarray, confidence: float | None = None) -> FramePose:
    """The :class:`FramePose` the evaluator would parse from a line written for this pose.

    ``cam_from_world``: (4, 4) or (3, 4) float64 OpenCV world-to-camera, metres. For adapters that
    score in-process: identical to writing a submission line at full precision and parsing it.
    """
    R, t = split_pose(cam_from_world)
    q = rotmat_to_quat_wxyz(R)
    q_c2w, centre = _to_cam2world(q, np.array(t, dtype=np.float64))
    return FramePose(q_c2w, centre, None if confidence is None else float(confidence))
