"""Export a pair's reconstruction: PLY point cloud and pycolmap ``Reconstruction``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pycolmap

from mast3r.geometry.pose import pycolmap_camera
from mast3r.ply import write_ply

__all__ = ["write_pair_ply", "to_pycolmap_reconstruction"]


def _np(x: Any, dtype: Any = np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _to_u8(colors: np.ndarray) -> np.ndarray:
    """Float colours in [0, 1] -> uint8."""
    return np.clip(np.rint(colors.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _points_and_colors(pts: Any, colors: Any, mask: Any) -> tuple[np.ndarray, np.ndarray | None]:
    p = _np(pts).reshape(-1, 3)
    keep = np.isfinite(p).all(1)
    if mask is not None:
        keep &= _np(mask, bool).reshape(-1)
    col = None
    if colors is not None:
        c = np.asarray(colors.detach().cpu().numpy() if hasattr(colors, "detach") else colors).reshape(-1, 3)
        col = c[keep]
    return p[keep], col


def write_pair_ply(path: str | Path, pts3d0: Any, pts3d1: Any = None, colors0: Any = None,
                   colors1: Any = None, mask0: Any = None, mask1: Any = None, *, binary: bool = True) -> int:
    """Write the points of one or two views (same frame, e.g. camera 0's) to one PLY file.

    Args:
        pts3d0, pts3d1: (H, W, 3) or (N, 3) points; non-finite points are skipped.
        colors0, colors1: matching (H, W, 3) / (N, 3) colours, uint8 or floats in [0, 1].
        mask0, mask1: optional (H, W) / (N,) bool masks (e.g. ``conf > threshold``).
        binary: binary little-endian (else ascii).
    Returns: number of points written.
    """
    parts = [_points_and_colors(pts3d0, colors0, mask0)]
    if pts3d1 is not None:
        parts.append(_points_and_colors(pts3d1, colors1, mask1))
    pts = np.concatenate([p for p, _ in parts])
    colors: np.ndarray | None = None
    cols = [c for _, c in parts if c is not None]
    if len(cols) == len(parts):
        colors = np.concatenate([c if c.dtype == np.uint8 else _to_u8(c) for c in cols])
    write_ply(path, pts, colors, binary=binary)
    return len(pts)


def to_pycolmap_reconstruction(K0: Any, K1: Any, image_size0: tuple[int, int], image_size1: tuple[int, int],
                               cam0_from_world: Any, cam1_from_world: Any, xy0: Any, xy1: Any,
                               points3d: Any, colors: Any = None,
                               names: tuple[str, str] = ("view0.png", "view1.png"),
                               ) -> pycolmap.Reconstruction:
    """Two-view ``pycolmap.Reconstruction``: PINHOLE cameras, posed images, one 3D point per match.

    Args:
        K0, K1: (3, 3) intrinsics (OpenCV convention; shifted by +0.5 for COLMAP here).
        image_size0, image_size1: ``(W, H)``.
        cam0_from_world, cam1_from_world: (4, 4) poses.
        xy0, xy1: (N, 2) matched pixels (centres at integers), observations of ``points3d``.
        points3d: (N, 3) world points (e.g. :func:`triangulate`); non-finite rows are skipped.
        colors: optional (N, 3) uint8 colours.
        names: image names.
    Returns: the reconstruction (cameras 1, 2; images 1, 2; points with 2-view tracks).
    """
    a, b, X = _np(xy0).reshape(-1, 2), _np(xy1).reshape(-1, 2), _np(points3d).reshape(-1, 3)
    if not len(a) == len(b) == len(X):
        raise ValueError(f"to_pycolmap_reconstruction: {len(a)}, {len(b)} and {len(X)} rows differ")
    keep = np.isfinite(a).all(1) & np.isfinite(b).all(1) & np.isfinite(X).all(1)
    a, b, X = a[keep], b[keep], X[keep]
    col = None if colors is None else np.asarray(colors, np.uint8).reshape(-1, 3)[keep]
    rec = pycolmap.Reconstruction()
    for cam_id, (K, size, name, pose, xy) in enumerate(
        ((K0, image_size0, names[0], cam0_from_world, a), (K1, image_size1, names[1], cam1_from_world, b)), 1
    ):
        camera = pycolmap_camera(K, size)
        camera.camera_id = cam_id
        rec.add_camera_with_trivial_rig(camera)
        image = pycolmap.Image(name=name, keypoints=xy + 0.5, camera_id=cam_id, image_id=cam_id)
        T = _np(pose)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(T[:3, :4]))
    for i in range(len(X)):
        track = pycolmap.Track()
        track.add_element(1, i)
        track.add_element(2, i)
        rec.add_point3D(X[i], track, col[i] if col is not None else np.zeros(3, np.uint8))
    return rec
