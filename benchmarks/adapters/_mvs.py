"""Multi-view stereo from matches with known cameras: triangulate, filter, fuse (DTU adapter).

Pure numpy on top of :func:`mast3r.geometry.triangulate` (linear two-view DLT). Units follow the
cameras (DTU: millimetres); pixels ``(x, y)`` with centres at integer coordinates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PairFilter", "triangulate_matches", "triangulation_angle_deg", "write_cloud"]


@dataclass(frozen=True)
class PairFilter:
    """Which triangulated matches survive.

    Attributes:
        min_score: match score ``>=`` this (0 keeps all).
        max_reproj_px: reprojection error ``<=`` this in BOTH views (pixels).
        min_angle_deg: triangulation angle (between the two viewing rays at the point) ``>=`` this;
            small angles give depth noise.
        Cheirality (in front of both cameras) and finiteness are always required.
    """

    min_score: float = 0.0
    max_reproj_px: float = 1.0
    min_angle_deg: float = 1.0


def triangulation_angle_deg(points: np.ndarray, centre0: np.ndarray, centre1: np.ndarray) -> np.ndarray:
    """(N,) angle in degrees at each (N, 3) point between the rays to the two camera centres (3,)."""
    a = np.asarray(centre0, np.float64) - points
    b = np.asarray(centre1, np.float64) - points
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def triangulate_matches(pts0: np.ndarray, pts1: np.ndarray, scores: np.ndarray, K0: np.ndarray,
                        cam0_from_world: np.ndarray, K1: np.ndarray, cam1_from_world: np.ndarray,
                        filt: PairFilter) -> tuple[np.ndarray, dict[str, int]]:
    """Triangulate matches of one pair with known cameras and keep the good ones.

    Args:
        pts0, pts1: (N, 2) pixels in views 0 / 1. scores: (N,) match scores.
        K0, K1: (3, 3) intrinsics; cam0_from_world, cam1_from_world: (4, 4) poses (world unit, e.g. mm).
        filt: :class:`PairFilter`.
    Returns:
        ``points`` (M, 3) float64 world points that pass, and counts ``{"matches", "score_ok",
        "in_front", "reproj_ok", "angle_ok"}`` (each stage includes the previous ones).
    """
    from mast3r.geometry import triangulate
    from mast3r.geometry.conventions import transform_points

    pts0 = np.asarray(pts0, np.float64).reshape(-1, 2)
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 2)
    scores = np.asarray(scores, np.float64).reshape(-1)
    stats = {"matches": len(pts0)}
    keep = scores >= filt.min_score if filt.min_score > 0 else np.ones(len(pts0), bool)
    stats["score_ok"] = int(keep.sum())
    if not keep.any():
        stats.update(in_front=0, reproj_ok=0, angle_ok=0)
        return np.zeros((0, 3)), stats
    X, err = triangulate(pts0[keep], pts1[keep], K0, cam0_from_world, K1, cam1_from_world)
    z0 = transform_points(cam0_from_world, X)[:, 2]
    z1 = transform_points(cam1_from_world, X)[:, 2]
    with np.errstate(invalid="ignore"):
        front = np.isfinite(X).all(1) & (z0 > 0) & (z1 > 0)
        reproj = front & (err <= filt.max_reproj_px).all(1)
    c0 = -cam0_from_world[:3, :3].T @ cam0_from_world[:3, 3]
    c1 = -cam1_from_world[:3, :3].T @ cam1_from_world[:3, 3]
    angle_ok = reproj.copy()
    if filt.min_angle_deg > 0:
        angle_ok[reproj] = triangulation_angle_deg(X[reproj], c0, c1) >= filt.min_angle_deg
    stats.update(in_front=int(front.sum()), reproj_ok=int(reproj.sum()), angle_ok=int(angle_ok.sum()))
    return X[angle_ok], stats


def write_cloud(out_dir: Path, stem: str, points: np.ndarray) -> Path:
    """Write ``points`` (N, 3) as a binary float32 PLY named ``<stem>-<sha256[:16]>.ply`` (content
    addressed: the same cloud always lands in the same file, different clouds never collide; an
    existing file is not rewritten). Returns the absolute path."""
    from mast3r.fileio import atomic_write_path
    from mast3r.ply import write_ply

    pts = np.ascontiguousarray(np.asarray(points, np.float64).reshape(-1, 3).astype(np.float32))
    digest = hashlib.sha256(pts.tobytes()).hexdigest()[:16]
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}-{digest}.ply"
    if not path.is_file():
        comment = f"mast3r-bench {stem}: DTU world frame, mm"
        atomic_write_path(path, lambda tmp: write_ply(tmp, pts, comment=comment))
    return path
