"""Random training scenes and view pairs (numpy scene descriptions for the torch renderer).

One pair = one fresh scene (a room with objects, a table-top in a room, or a table-top with no room:
the background is then sky/invalid) and two cameras looking at a common target. The second camera
sits at an azimuth ``Delta ~ U(-max_azimuth, max_azimuth)`` around the target from the first (elevations
and distances drawn independently, small roll), so the viewpoint change (angle of the relative rotation)
covers the whole 0-180 degree range, with the target (an object, the floor or table around it) visible
in both views even when the cameras face each other. The measured distribution is tested in
tests/datasets/synthetic/test_train_pairs.py (roughly uniform over 0-180; about half above 90 degrees).
Measured overlap (seed 0, 128 pairs at 96x128, share of view-1 pixels with a reciprocal GT match,
median / 10th percentile): 0-30 deg 0.36 / 0.20, 30-60 0.22 / 0.15, 60-90 0.18 / 0.06, 90-120
0.12 / 0.06, 120-150 0.12 / 0.03, 150-180 0.10 / 0.04 -- at 320x240 even the 150-180 bucket's median
pair has ~7k reciprocal pixels, more than the 1024 positives of ``n_corres=2048, nneg=0.5``.

The crop/aspect-ratio augmentation is done in the camera: rendering at a random focal length (zoom) and a
random principal point (crop position) is exactly a crop of a larger render, at any aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.synthetic.geometry import intrinsics, look_at, viewpoint_angle_deg
from datasets.synthetic.scene import Scene, room_scene, tabletop_scene
from datasets.synthetic.textures import TextureBank

__all__ = ["SceneConfig", "PairSpec", "random_scene", "pair_cameras", "make_pair"]


@dataclass(frozen=True)
class SceneConfig:
    """Scene/camera distribution. Probabilities of the scene kinds (the rest: room scenes), the
    azimuth range of the second camera around the target, focal range (horizontal FOV, degrees) and
    principal-point jitter (fraction of the image size) of the crop augmentation."""

    p_tabletop_room: float = 0.3
    p_tabletop_open: float = 0.15
    max_azimuth_deg: float = 180.0
    hfov_deg: tuple[float, float] = (45.0, 80.0)
    pp_jitter: float = 0.1
    crop: bool = True
    roll_sigma_deg: float = 4.0


@dataclass(frozen=True)
class PairSpec:
    """One training pair before rendering: the scene, (3, 3) intrinsics and (4, 4) cam_from_world of
    both views, the viewpoint angle (degrees) and a 62-bit key for the pair's torch-side randomness."""

    scene: Scene
    K1: np.ndarray
    P1: np.ndarray
    K2: np.ndarray
    P2: np.ndarray
    angle_deg: float
    key: int


def random_scene(rng: np.random.Generator, bank: TextureBank, cfg: SceneConfig) -> tuple[Scene, str]:
    """A fresh random scene and its kind (``"room"``, ``"tabletop"``, ``"tabletop_open"``)."""
    r = rng.uniform()
    n_obj = int(rng.integers(2, 6))
    if r < cfg.p_tabletop_open:
        half, osz = rng.uniform(0.3, 0.5), rng.uniform(0.18, 0.32)
        return tabletop_scene(rng, bank, table_half=half, object_size=osz, n_objects=n_obj,
                              room=False), "tabletop_open"
    if r < cfg.p_tabletop_open + cfg.p_tabletop_room:
        rs = (rng.uniform(3.5, 7), rng.uniform(3.5, 7), rng.uniform(2.4, 3.4))
        half, osz = rng.uniform(0.3, 0.6), rng.uniform(0.18, 0.35)
        return tabletop_scene(rng, bank, table_half=half, object_size=osz, n_objects=n_obj, room=True,
                              room_size=rs), "tabletop"
    size = (rng.uniform(4.5, 9.0), rng.uniform(4.0, 8.0), rng.uniform(2.5, 3.5))
    counts = rng.integers([2, 0, 0, 3], [7, 4, 4, 9])
    return room_scene(rng, bank, size=size, n_boxes=int(counts[0]), n_spheres=int(counts[1]),
                      n_panels=int(counts[2]), n_posters=int(counts[3]),
                      object_region=float(rng.uniform(0.8, 1.6))), "room"


def _intrinsics(rng: np.random.Generator, h: int, w: int, cfg: SceneConfig) -> np.ndarray:
    hfov = np.deg2rad(rng.uniform(*cfg.hfov_deg) if cfg.crop else float(np.mean(cfg.hfov_deg)))
    f = (w / 2) / np.tan(hfov / 2)
    jx, jy = (rng.uniform(-cfg.pp_jitter, cfg.pp_jitter, 2) if cfg.crop else (0.0, 0.0))
    return intrinsics(f, f, (w - 1) / 2 + jx * w, (h - 1) / 2 + jy * h)


def _eye(target, dist, az, el):
    return target + dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def _ok(scene: Scene, centres: np.ndarray, radii: np.ndarray, eye: np.ndarray, clearance: float) -> bool:
    """``eye`` inside the room (15 cm from its walls) and ``clearance`` m outside every keep-out sphere."""
    if scene.room is not None:
        lo, hi = scene.room
        if np.any(eye <= lo + 0.15) or np.any(eye >= hi - 0.15):
            return False
    if not len(radii):
        return True
    d = centres - eye
    return bool(np.all(np.sqrt((d * d).sum(1)) - radii >= clearance))


def pair_cameras(rng: np.random.Generator, scene: Scene, kind: str, h: int, w: int,
                 cfg: SceneConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two cameras looking at a common target of ``scene``: ``(K1, P1, K2, P2)`` (cam_from_world)."""
    table = kind != "room"
    if table:
        target0 = np.array([0.0, 0.0, 0.08])
        spread, dist, el_rng, clear = 0.12, (0.55, 1.4), (12.0, 65.0), 0.08
    else:
        spread, dist, el_rng, clear = 0.25, (1.2, 3.2), (5.0, 45.0), 0.25
        if scene.keepout and rng.uniform() < 0.85:
            target0 = np.asarray(scene.keepout[int(rng.integers(len(scene.keepout)))][0], float)
        else:
            target0 = np.array([*rng.uniform(-1.0, 1.0, 2), rng.uniform(0.0, 0.6)])
    centres = np.array([c for c, _ in scene.keepout], float).reshape(-1, 3)
    radii = np.array([r for _, r in scene.keepout], float)
    eyes, target = None, target0
    for _ in range(30):
        target = target0 + rng.normal(0.0, spread, 3) * np.array([1.0, 1.0, 0.5])
        az1 = rng.uniform(0, 2 * np.pi)
        delta = np.deg2rad(rng.uniform(-cfg.max_azimuth_deg, cfg.max_azimuth_deg))
        e1 = _eye(target, rng.uniform(*dist), az1, np.deg2rad(rng.uniform(*el_rng)))
        e2 = _eye(target, rng.uniform(*dist), az1 + delta, np.deg2rad(rng.uniform(*el_rng)))
        eyes = (e1, e2)
        if _ok(scene, centres, radii, e1, clear) and _ok(scene, centres, radii, e2, clear):
            break
        if scene.room is not None:  # pull the cameras inside the room and try that
            lo, hi = scene.room
            e1c, e2c = (np.clip(e, lo + 0.3, hi - 0.3) for e in (e1, e2))
            if (np.linalg.norm(e1c - target) > 0.5 and np.linalg.norm(e2c - target) > 0.5
                    and _ok(scene, centres, radii, e1c, clear) and _ok(scene, centres, radii, e2c, clear)):
                eyes = (e1c, e2c)
                break
    assert eyes is not None
    out = []
    for e in eyes:
        K = _intrinsics(rng, h, w, cfg)
        look = target + rng.normal(0.0, spread * 0.3, 3)
        out += [K, look_at(e, look, roll_deg=float(rng.normal(0.0, cfg.roll_sigma_deg)))]
    return out[0], out[1], out[2], out[3]


def make_pair(rng: np.random.Generator, bank: TextureBank, h: int, w: int, cfg: SceneConfig) -> PairSpec:
    """A fresh scene and a view pair at (h, w), all drawn from ``rng``."""
    scene, kind = random_scene(rng, bank, cfg)
    K1, P1, K2, P2 = pair_cameras(rng, scene, kind, h, w, cfg)
    key = int(rng.integers(0, 1 << 62))
    return PairSpec(scene, K1, P1, K2, P2, viewpoint_angle_deg(P1, P2), key)
