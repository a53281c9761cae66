"""Helpers shared by the benchmark writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.synthetic.geometry import quat_from_rotmat
from datasets.synthetic.io import fmt
from datasets.synthetic.render import Render, render
from datasets.synthetic.scene import Scene

__all__ = ["render_view", "pose_tokens", "rel"]


def render_view(scene: Scene, K: np.ndarray, cam_from_world: np.ndarray, width: int, height: int) -> Render:
    """Render one view (thin wrapper kept for a single place to add caching/progress later)."""
    return render(scene, K, cam_from_world, width, height)


def pose_tokens(cam_from_world: np.ndarray) -> list[str]:
    """``qw qx qy qz tx ty tz`` tokens (exact ``repr`` text) of a world-to-camera pose."""
    q = quat_from_rotmat(cam_from_world[:3, :3])
    return [fmt(v) for v in (*q, *cam_from_world[:3, 3])]


def rel(path: Path, root: Path) -> str:
    """Posix path of ``path`` relative to ``root``."""
    return Path(path).relative_to(root).as_posix()
