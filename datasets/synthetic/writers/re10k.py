"""RealEstate10K layout: camera files of the release plus frames extracted the PoseDiffusion way.

Writes ``<root>/test/<sequence_id>.txt`` (line 1: a YouTube URL; then per frame
``timestamp_us fx fy cx cy 0.0 0.0`` + the row-major 3x4 world-to-camera matrix, intrinsics
normalised by the frame width/height) and ``<root>/frames/test/<sequence_id>/<timestamp_us>.png``.
Normalised intrinsics are ``K / (W, H)`` with no half-pixel shift (as ``datasets.re10k`` and
PoseDiffusion read them: ``cx_px = cx * W``). Clips are walk-throughs of a room that pan by
20-160 degrees, so their frame pairs cover the viewpoint buckets. The real layout has no depth:
the ``_synthetic/`` sidecar holds exact depth for every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic.cameras import random_intrinsics, walkthrough
from datasets.synthetic.io import fmt, save_png, write_text
from datasets.synthetic.scene import room_scene
from datasets.synthetic.sidecar import SidecarWriter
from datasets.synthetic.textures import TextureBank
from datasets.synthetic.writers._common import render_view

__all__ = ["Config", "PRESETS", "write"]

_HEX = np.array(list("0123456789abcdef"))
_URL_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
FRAME_US = 33367  # 29.97 fps


@dataclass(frozen=True)
class Config:
    n_clips: int = 4
    n_frames: int = 12
    width: int = 320
    height: int = 180
    split: str = "test"


PRESETS = {
    "small": Config(n_clips=1, n_frames=10, width=160, height=90),
    "default": Config(),
}


def camera_line(timestamp_us: int, K: np.ndarray, cam_from_world: np.ndarray, width: int, height: int) -> str:
    """One camera-file line (19 numbers) of a frame."""
    intr = [K[0, 0] / width, K[1, 1] / height, K[0, 2] / width, K[1, 2] / height]
    return " ".join([str(int(timestamp_us)), *(fmt(v) for v in intr), "0.0", "0.0",
                     *(fmt(v) for v in cam_from_world[:3, :4].ravel())])


def write(root: Path, rng: np.random.Generator, bank: TextureBank, cfg: Config) -> dict[str, Any]:
    """Render ``cfg.n_clips`` clips into ``root/<split>/`` and ``root/frames/<split>/``."""
    root = Path(root)
    side = SidecarWriter(root, unit="m")
    for _ in range(cfg.n_clips):
        seq = "".join(rng.choice(_HEX, 16))
        url = "https://www.youtube.com/watch?v=" + "".join(rng.choice(_URL_CHARS, 11))
        scene = room_scene(rng, bank, size=(rng.uniform(6, 9), rng.uniform(5, 7), rng.uniform(2.6, 3.2)),
                           n_boxes=5, n_spheres=2, n_panels=3, n_posters=8, object_region=2.0)
        K = random_intrinsics(rng, cfg.width, cfg.height, (55, 75), pp_jitter=1.0)
        poses = walkthrough(rng, scene, K, cfg.width, cfg.height, cfg.n_frames,
                            total_yaw_deg=float(rng.uniform(20, 160)))
        t0 = int(rng.integers(1_000_000, 200_000_000))
        stamps = t0 + FRAME_US * np.concatenate([[0], np.cumsum(rng.integers(3, 7, cfg.n_frames - 1))])
        lines = [url]
        keys = []
        for ts, P in zip(stamps, poses):
            r = render_view(scene, K, P, cfg.width, cfg.height)
            rel = f"frames/{cfg.split}/{seq}/{int(ts)}.png"
            save_png(root / rel, r.image)
            lines.append(camera_line(int(ts), K, P, cfg.width, cfg.height))
            side.add_view(rel, K, P, r.depth, meta={"sequence": seq, "timestamp_us": int(ts)})
            keys.append(rel)
        write_text(root / cfg.split / f"{seq}.txt", "\n".join(lines) + "\n")
        for a in range(len(keys)):
            for b in range(a + 1, len(keys)):
                side.add_pair(keys[a], keys[b])
    summary = side.write(
        "RealEstate10K: the real layout has no depth; the sidecar holds exact float32 depth (metres) for "
        "every frame, OpenCV K/poses and every within-clip pair's viewpoint angle.")
    return {"clips": cfg.n_clips, "images": cfg.n_clips * cfg.n_frames, "split": cfg.split,
            "sidecar": summary}
