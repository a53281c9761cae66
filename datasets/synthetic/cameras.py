"""Camera samplers with controlled viewpoint change: orbits, walk-throughs, in-room viewpoints.

All poses are OpenCV ``cam_from_world`` (4, 4) float64 in the scene's z-up world (metres).
Intrinsics are rounded to 4 decimals so every text format that keeps >= 4 decimals is exact.
"""

from __future__ import annotations

import numpy as np

from datasets.synthetic.geometry import intrinsics, look_at
from datasets.synthetic.render import probe_depth
from datasets.synthetic.scene import Scene

__all__ = ["random_intrinsics", "orbit_pose", "view_is_good", "room_viewpoint", "walkthrough"]


def random_intrinsics(rng: np.random.Generator, width: int, height: int,
                      hfov_deg: tuple[float, float] = (50.0, 70.0), pp_jitter: float = 0.0) -> np.ndarray:
    """Square-pixel pinhole K with a horizontal FOV drawn from ``hfov_deg`` and the principal point
    at the image centre ``((W-1)/2, (H-1)/2)`` plus up to ``pp_jitter`` px of uniform noise."""
    hfov = np.deg2rad(rng.uniform(*hfov_deg))
    f = round(width / 2 / np.tan(hfov / 2), 4)
    cx = round((width - 1) / 2 + rng.uniform(-pp_jitter, pp_jitter), 4)
    cy = round((height - 1) / 2 + rng.uniform(-pp_jitter, pp_jitter), 4)
    return intrinsics(f, f, cx, cy)


def orbit_pose(center: np.ndarray, radius: float, azimuth_deg: float, height: float,
               target: np.ndarray | None = None, roll_deg: float = 0.0) -> np.ndarray:
    """Camera on a horizontal circle around ``center`` (at azimuth ``azimuth_deg``, ``height`` above
    it), looking at ``target`` (default: ``center``)."""
    center = np.asarray(center, np.float64)
    a = np.deg2rad(azimuth_deg)
    eye = center + np.array([radius * np.cos(a), radius * np.sin(a), height])
    return look_at(eye, center if target is None else target, roll_deg=roll_deg)


def view_is_good(scene: Scene, K: np.ndarray, cam_from_world: np.ndarray, width: int, height: int,
                 min_depth: float, min_valid: float = 0.98, step: int = 8) -> bool:
    """Cheap check on a ``step``-subsampled pixel grid: enough valid pixels, none closer than
    ``min_depth``, the camera centre outside every keep-out sphere and inside the room (if any)."""
    center = -cam_from_world[:3, :3].T @ cam_from_world[:3, 3]
    if scene.clearance(center) < 0.05:
        return False
    if scene.room is not None and (np.any(center <= scene.room[0]) or np.any(center >= scene.room[1])):
        return False
    s = probe_depth(scene, K, cam_from_world, width, height, step)
    hit = np.isfinite(s)
    return bool(hit.mean() >= min_valid and (not hit.any() or s[hit].min() >= min_depth))


def room_viewpoint(rng: np.random.Generator, scene: Scene, K: np.ndarray, width: int, height: int,
                   eye_z: tuple[float, float] = (1.2, 1.8), wall_margin: float = 0.6,
                   look_at_objects: float = 0.7, min_depth: float = 0.7, tries: int = 200) -> np.ndarray:
    """An upright camera somewhere in a room scene.

    With probability ``look_at_objects`` it looks at a random keep-out centre (an object), else in a
    random horizontal direction with a small pitch. Rejects views failing :func:`view_is_good`.
    """
    lo, hi = scene.bounds
    for _ in range(tries):
        eye = np.array([rng.uniform(lo[0] + wall_margin, hi[0] - wall_margin),
                        rng.uniform(lo[1] + wall_margin, hi[1] - wall_margin), rng.uniform(*eye_z)])
        if scene.keepout and rng.uniform() < look_at_objects:
            c, _ = scene.keepout[int(rng.integers(len(scene.keepout)))]
            target = c + rng.normal(0, 0.2, 3)
        else:
            yaw = rng.uniform(0, 2 * np.pi)
            target = eye + np.array([np.cos(yaw), np.sin(yaw), rng.uniform(-0.25, 0.1)])
        P = look_at(eye, target)
        if view_is_good(scene, K, P, width, height, min_depth):
            return P
    raise RuntimeError("room_viewpoint: no acceptable viewpoint found (scene too cluttered?)")


def walkthrough(rng: np.random.Generator, scene: Scene, K: np.ndarray, width: int, height: int,
                n_frames: int, total_yaw_deg: float, step_m: float = 0.12,
                eye_z: tuple[float, float] = (1.3, 1.7), tries: int = 200) -> list[np.ndarray]:
    """A smooth walk-through: the camera moves along a straight line while panning by
    ``total_yaw_deg`` over ``n_frames`` frames (a real-estate video clip). All frames pass
    :func:`view_is_good`."""
    lo, hi = scene.bounds
    for _ in range(tries):
        eye0 = np.array([rng.uniform(lo[0] + 0.8, hi[0] - 0.8), rng.uniform(lo[1] + 0.8, hi[1] - 0.8),
                         rng.uniform(*eye_z)])
        heading = rng.uniform(0, 2 * np.pi)
        move = np.array([np.cos(heading), np.sin(heading), 0.0]) * step_m
        yaw0 = heading + rng.uniform(-0.6, 0.6)
        sign = 1.0 if rng.uniform() < 0.5 else -1.0
        pitch = rng.uniform(-0.2, 0.05)
        poses = []
        for i in range(n_frames):
            eye = eye0 + i * move
            yaw = yaw0 + sign * np.deg2rad(total_yaw_deg) * i / max(n_frames - 1, 1)
            P = look_at(eye, eye + np.array([np.cos(yaw), np.sin(yaw), pitch]))
            if not view_is_good(scene, K, P, width, height, min_depth=0.5):
                break
            poses.append(P)
        if len(poses) == n_frames:
            return poses
    raise RuntimeError("walkthrough: no acceptable trajectory found")
