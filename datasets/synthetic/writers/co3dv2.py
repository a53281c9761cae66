"""CO3Dv2 layout (facebookresearch/co3d): object-centric turntable-like sequences.

Per category ``<root>/<category>/``::

    <sequence>/images/frame000001.jpg           frames (file numbers 1-based, frame_number 0-based)
    <sequence>/masks/frame000001.png            foreground probability * 255 (uint8), main object
    <sequence>/depths/frame000001.jpg.geometric.png   float16 bits in a uint16 PNG (metres here)
    <sequence>/depth_masks/frame000001.png      binary depth validity (0/255)
    <sequence>/pointcloud.ply                   points of the main object (float32 x y z)
    frame_annotations.jgz                       gzipped JSON list of FrameAnnotation
    sequence_annotations.jgz                    gzipped JSON list of SequenceAnnotation
    set_lists/set_lists_fewview_{dev,test}.json {"train": [], "val": [], "test": [[seq, frame_number, path]]}

``viewpoint`` is PyTorch3D: ``X_cam = X_world @ R + T`` with camera +X left, +Y up, and
``intrinsics_format = "ndc_isotropic"``: ``focal_px = focal_ndc * s`` and
``pp_px = (W/2, H/2) - pp_ndc * s`` with ``s = min(H, W) / 2``, taken as the OpenCV principal
point with no half-pixel shift (DUSt3R's ``opencv_from_cameras_projection`` and
``datasets.co3dv2`` read it that way; strictly, PyTorch3D's screen space has pixel centres at +0.5).
``image.size`` is ``[H, W]``. The two sequences of a category alternate landscape and portrait.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic.cameras import orbit_pose, random_intrinsics, view_is_good
from datasets.synthetic.gt import backproject
from datasets.synthetic.io import (
    depth_to_png_f16,
    save_jpeg,
    save_png,
    save_png_uint16,
    write_jgz,
    write_json,
    write_ply_xyz,
)
from datasets.synthetic.scene import tabletop_scene
from datasets.synthetic.sidecar import SidecarWriter
from datasets.synthetic.textures import TextureBank
from datasets.synthetic.writers._common import render_view

__all__ = ["Config", "PRESETS", "write", "opencv_to_pytorch3d"]


@dataclass(frozen=True)
class Config:
    categories: tuple[str, ...] = ("apple", "teddybear")
    n_sequences: int = 2
    n_frames: int = 12
    long_side: int = 256
    short_side: int = 192


PRESETS = {
    "small": Config(categories=("apple",), n_sequences=1, n_frames=10, long_side=128, short_side=96),
    "default": Config(),
}


def opencv_to_pytorch3d(K: np.ndarray, cam_from_world: np.ndarray, width: int,
                        height: int) -> dict[str, Any]:
    """CO3D ``viewpoint`` dict (R, T, focal_length, principal_point, ndc_isotropic) of an OpenCV camera."""
    flip = np.diag([-1.0, -1.0, 1.0])
    R = (flip @ cam_from_world[:3, :3]).T
    T = flip @ cam_from_world[:3, 3]
    s = min(width, height) / 2.0
    focal = [K[0, 0] / s, K[1, 1] / s]
    pp = [(width / 2.0 - K[0, 2]) / s, (height / 2.0 - K[1, 2]) / s]
    return {"R": R.tolist(), "T": T.tolist(), "focal_length": focal, "principal_point": pp,
            "intrinsics_format": "ndc_isotropic"}


def _sequence_name(rng: np.random.Generator) -> str:
    return f"{rng.integers(100, 700)}_{rng.integers(10000, 99999)}_{rng.integers(10000, 99999)}"


def _orbit(rng, scene, K, width, height, n):
    """Poses around the table-top object over ~360 degrees with irregular steps and elevation."""
    target0 = np.array([0.0, 0.0, 0.08])
    for _ in range(100):
        steps = rng.uniform(0.6, 1.4, n)
        az = rng.uniform(0, 360) + np.concatenate([[0], np.cumsum(steps[:-1])]) / steps.sum() * 345.0
        phase = np.linspace(0, 2 * np.pi, n)
        radius = rng.uniform(0.65, 0.85) * (1 + 0.1 * np.sin(phase + rng.uniform(0, 6)))
        height_ = rng.uniform(0.25, 0.45) + 0.1 * np.sin(2 * phase + rng.uniform(0, 6))
        poses = [orbit_pose(target0, r, a, h, target=target0 + rng.normal(0, 0.02, 3),
                            roll_deg=float(rng.normal(0, 4)))
                 for a, r, h in zip(az, radius, height_)]
        if all(view_is_good(scene, K, P, width, height, min_depth=0.2) for P in poses):
            return poses
    raise RuntimeError("co3dv2: no acceptable orbit")


def write(root: Path, rng: np.random.Generator, bank: TextureBank, cfg: Config) -> dict[str, Any]:
    """Render ``cfg.n_sequences`` sequences per category into ``root/<category>/``."""
    root = Path(root)
    side = SidecarWriter(root, unit="m")
    n_images = 0
    for category in cfg.categories:
        cdir = root / category
        frame_annots: list[dict[str, Any]] = []
        seq_annots: list[dict[str, Any]] = []
        test_list: list[list[Any]] = []
        for si in range(cfg.n_sequences):
            seq = _sequence_name(rng)
            landscape = si % 2 == 0
            width, height = (cfg.long_side, cfg.short_side) if landscape else (cfg.short_side, cfg.long_side)
            scene = tabletop_scene(rng, bank, table_half=0.35, object_size=0.25, n_objects=3, room=True)
            K = random_intrinsics(rng, width, height, (45, 60), pp_jitter=2.0)
            poses = _orbit(rng, scene, K, width, height, cfg.n_frames)
            obj_points = []
            for k, P in enumerate(poses):
                r = render_view(scene, K, P, width, height)
                base = f"{category}/{seq}"
                img = f"{base}/images/frame{k + 1:06d}.jpg"
                depth_p = f"{base}/depths/frame{k + 1:06d}.jpg.geometric.png"
                dmask_p = f"{base}/depth_masks/frame{k + 1:06d}.png"
                mask_p = f"{base}/masks/frame{k + 1:06d}.png"
                fg = r.object_id == 1
                save_jpeg(root / img, r.image)
                save_png_uint16(root / depth_p, depth_to_png_f16(r.depth))
                save_png(root / dmask_p, np.where(r.valid, 255, 0).astype(np.uint8))
                save_png(root / mask_p, np.where(fg, 255, 0).astype(np.uint8))
                frame_annots.append({
                    "sequence_name": seq, "frame_number": k, "frame_timestamp": round(k / 30.0, 6),
                    "image": {"path": img, "size": [height, width]},
                    "depth": {"path": depth_p, "scale_adjustment": 1.0, "mask_path": dmask_p},
                    "mask": {"path": mask_p, "mass": float(np.count_nonzero(fg))},
                    "viewpoint": opencv_to_pytorch3d(K, P, width, height),
                    "meta": {},
                })
                test_list.append([seq, k, img])
                side.add_view(img, K, P, r.depth,
                              meta={"category": category, "sequence": seq, "frame_number": k},
                              depth_file=depth_p, depth_format="png_f16")
                pts = backproject(r.depth, K, P)[fg][::7]
                obj_points.append(pts)
            pts = np.concatenate(obj_points)
            write_ply_xyz(cdir / seq / "pointcloud.ply", pts)
            seq_annots.append({
                "sequence_name": seq, "category": category, "video": None,
                "point_cloud": {"path": f"{category}/{seq}/pointcloud.ply", "quality_score": 1.0,
                                "n_points": int(len(pts))},
                "viewpoint_quality_score": round(float(rng.uniform(0.6, 1.0)), 6),
            })
            keys = [f"{category}/{seq}/images/frame{k + 1:06d}.jpg" for k in range(cfg.n_frames)]
            for a in range(len(keys)):
                for b in range(a + 1, len(keys)):
                    side.add_pair(keys[a], keys[b])
            n_images += cfg.n_frames
        write_jgz(cdir / "frame_annotations.jgz", frame_annots)
        write_jgz(cdir / "sequence_annotations.jgz", seq_annots)
        for subset in ("fewview_dev", "fewview_test"):
            write_json(cdir / "set_lists" / f"set_lists_{subset}.json",
                       {"train": [], "val": [], "test": test_list}, indent=None)
    summary = side.write(
        "CO3Dv2: depth (float16 PNG, metres) and masks are in the real layout (views.json points at "
        "the depth PNGs, so sidecar depth is float16-exact); the sidecar adds OpenCV K/poses and every "
        "within-sequence pair's viewpoint angle.")
    return {"categories": list(cfg.categories), "sequences": cfg.n_sequences * len(cfg.categories),
            "images": n_images, "sidecar": summary}
