"""Map-free relocalisation layout (Niantic release, ``val`` split).

Writes ``<root>/val/sNNNNN/`` with ``intrinsics.txt`` (``frame_path fx fy cx cy W H``, 6 decimals),
``poses.txt`` (``frame_path qw qx qy qz tx ty tz``, world-to-camera, the reference camera is the
world: its line is the identity), ``seq0/frame_00000.jpg`` (reference), ``seq1/frame_XXXXX.jpg``
(a continuous query scan whose frame numbers sometimes skip), and metric depth for every frame as
``seqK/frame_XXXXX.dptkitti.png`` and ``.dptnyu.png`` (uint16 millimetres, 0 = invalid; here both
hold the rendered ground truth). Images are portrait, ``width x height`` (real: 540 x 720).

Viewpoint change: the query scan orbits the scene from near the reference viewpoint to ~150-180
degrees away, so the frames the single-frame protocol evaluates (every 5th by position) spread
over the viewpoint buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic.cameras import orbit_pose, random_intrinsics, view_is_good
from datasets.synthetic.geometry import intrinsics, invert_pose
from datasets.synthetic.io import depth_to_png_mm, png_uint16_bytes, save_jpeg, write_bytes, write_text
from datasets.synthetic.scene import room_scene
from datasets.synthetic.sidecar import SidecarWriter
from datasets.synthetic.textures import TextureBank
from datasets.synthetic.writers._common import pose_tokens, render_view

__all__ = ["Config", "PRESETS", "write"]

DEPTH_SUFFIXES = ("dptkitti", "dptnyu")


@dataclass(frozen=True)
class Config:
    n_scenes: int = 4
    n_query_frames: int = 15
    width: int = 240
    height: int = 320
    first_scene: int = 460  # the val split is s00460-s00524
    split: str = "val"


PRESETS = {
    "small": Config(n_scenes=1, n_query_frames=6, width=120, height=160),
    "default": Config(),
}


def _trajectory(rng: np.random.Generator, n: int) -> tuple[float, list[float], list[float], list[float]]:
    """Reference azimuth and per-frame (azimuth offset, radius, height) of a query orbit."""
    a0 = rng.uniform(0, 360)
    sign = 1.0 if rng.uniform() < 0.5 else -1.0
    start, end = rng.uniform(0, 12), rng.uniform(150, 178)
    frac = np.linspace(0, 1, n)
    offsets = sign * (start + (end - start) * frac)
    radius = 2.2 + 0.35 * np.sin(rng.uniform(0, 2 * np.pi) + 3 * frac)
    height = 0.9 + 0.3 * np.sin(rng.uniform(0, 2 * np.pi) + 2 * frac)
    return a0, list(offsets), list(radius), list(height)


def _scene_poses(rng, scene, cfg: Config, K_ref: np.ndarray, Ks: list[np.ndarray]):
    target = np.array([0.0, 0.0, 0.6])
    for _ in range(100):
        a0, offs, radius, height = _trajectory(rng, cfg.n_query_frames)
        ref = orbit_pose(target, float(rng.uniform(2.0, 2.6)), a0, float(rng.uniform(0.7, 1.2)),
                         target=target + rng.normal(0, 0.1, 3))
        queries = [orbit_pose(target, r, a0 + o, h, target=target + rng.normal(0, 0.1, 3),
                              roll_deg=float(rng.normal(0, 3)))
                   for o, r, h in zip(offs, radius, height)]
        ok = view_is_good(scene, K_ref, ref, cfg.width, cfg.height, 0.5)
        ok = ok and all(view_is_good(scene, K, P, cfg.width, cfg.height, 0.5) for K, P in zip(Ks, queries))
        if ok:
            return ref, queries
    raise RuntimeError("mapfree: no acceptable query trajectory")


def write(root: Path, rng: np.random.Generator, bank: TextureBank, cfg: Config) -> dict[str, Any]:
    """Render ``cfg.n_scenes`` scenes into ``root/<split>/sNNNNN/``; returns a manifest summary."""
    root = Path(root)
    side = SidecarWriter(root, unit="m")
    n_frames = 0
    for i in range(cfg.n_scenes):
        name = f"s{cfg.first_scene + i:05d}"
        sdir = root / cfg.split / name
        scene = room_scene(rng, bank, size=(rng.uniform(8, 10), rng.uniform(7, 9), rng.uniform(2.8, 3.4)))
        K_ref = random_intrinsics(rng, cfg.width, cfg.height, (48, 60), pp_jitter=3.0)
        Kq = random_intrinsics(rng, cfg.width, cfg.height, (48, 60), pp_jitter=3.0)
        Ks = []
        for _ in range(cfg.n_query_frames):  # per-frame intrinsics vary slightly (autofocus)
            f = round(Kq[0, 0] * (1 + rng.uniform(-0.01, 0.01)), 4)
            Ks.append(intrinsics(f, f, Kq[0, 2], Kq[1, 2]))
        ref_world, queries_world = _scene_poses(rng, scene, cfg, K_ref, Ks)
        world_from_ref = invert_pose(ref_world)
        numbers = np.concatenate([[0], np.cumsum(rng.choice([1, 1, 1, 2], size=cfg.n_query_frames - 1))])
        frames = [("seq0/frame_00000.jpg", K_ref, ref_world)]
        frames += [(f"seq1/frame_{int(k):05d}.jpg", K, P) for k, K, P in zip(numbers, Ks, queries_world)]
        intr_lines, pose_lines = [], []
        for j, (fname, K, P_world) in enumerate(frames):
            r = render_view(scene, K, P_world, cfg.width, cfg.height)
            P = P_world @ world_from_ref  # pose in the reference camera's frame
            if j == 0:
                P = np.eye(4)
            save_jpeg(sdir / fname, r.image)
            png = png_uint16_bytes(depth_to_png_mm(r.depth))
            for suffix in DEPTH_SUFFIXES:
                write_bytes(sdir / fname.replace(".jpg", f".{suffix}.png"), png)
            intr_lines.append(f"{fname} {K[0, 0]:.6f} {K[1, 1]:.6f} {K[0, 2]:.6f} {K[1, 2]:.6f} "
                              f"{cfg.width} {cfg.height}")
            pose_tokens_j = pose_tokens(P) if j else ["1.0", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"]
            pose_lines.append(" ".join([fname, *pose_tokens_j]))
            side.add_view(f"{cfg.split}/{name}/{fname}", K, P, r.depth,
                          meta={"scene": name, "seq": fname.split("/")[0], "position": max(j - 1, 0)},
                          depth_file=f"{cfg.split}/{name}/" + fname.replace(".jpg", ".dptkitti.png"),
                          depth_format="png_u16_mm")
        write_text(sdir / "intrinsics.txt", "\n".join(intr_lines) + "\n")
        write_text(sdir / "poses.txt", "\n".join(pose_lines) + "\n")
        ref_key = f"{cfg.split}/{name}/seq0/frame_00000.jpg"
        for j, (fname, _, _) in enumerate(frames[1:]):
            side.add_pair(ref_key, f"{cfg.split}/{name}/{fname}", evaluated=(j % 5 == 0))
        n_frames += len(frames)
    summary = side.write(
        "Map-free: depth PNGs (uint16 mm) are in the real layout (views.json points at them); the "
        "sidecar adds per-pair viewpoint angles (every query frame vs. the reference; `evaluated` marks the "
        "single-frame protocol's every-5th frame).")
    return {"scenes": cfg.n_scenes, "images": n_frames, "split": cfg.split, "sidecar": summary}
