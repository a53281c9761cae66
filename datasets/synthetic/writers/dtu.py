"""DTU MVS layout: MVSNet test set plus the official evaluation ground truth. Units: millimetres.

Writes, per scan ``N`` (table-top scenes: objects on a textured table, black background)::

    scan<N>/images/00000000.jpg ...            views on a spherical cap in front of the object
    scan<N>/cams/00000000_cam.txt ...          'extrinsic' 4x4 world-to-camera (mm), 'intrinsic' 3x3,
                                               'DEPTH_MIN DEPTH_INTERVAL' (192 planes over the scan)
    scan<N>/pair.txt                           N, then per view: id / '10 id score ...' (score:
                                               co-visible pixels on an 8-px grid)
    SampleSet/MVS Data/Points/stl/stl<NNN>_total.ply   surface points seen by the views (binary
                                               float32 x y z, thinned to one per ``stl_spacing_mm``)
    SampleSet/MVS Data/ObsMask/ObsMask<N>_10.mat       ObsMask (bool grid [ix, iy, iz]), BB (2x3), Res
    SampleSet/MVS Data/ObsMask/Plane<N>.mat            P (4x1): the table plane raised by 0.5 mm

The real MVSNet test set has no depth maps: the ``_synthetic/`` sidecar holds exact z-depth (mm).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic.cameras import orbit_pose, view_is_good
from datasets.synthetic.geometry import intrinsics
from datasets.synthetic.gt import backproject, gt_correspondences
from datasets.synthetic.io import fmt, save_jpeg, save_mat, write_ply_xyz, write_text
from datasets.synthetic.scene import tabletop_scene
from datasets.synthetic.sidecar import SidecarWriter
from datasets.synthetic.textures import TextureBank
from datasets.synthetic.writers._common import render_view

__all__ = ["Config", "PRESETS", "write", "cam_file_text", "GT_DIR"]

GT_DIR = "SampleSet/MVS Data"
DEPTH_PLANES = 192


@dataclass(frozen=True)
class Config:
    scans: tuple[int, ...] = (1, 4)
    n_views: int = 10
    width: int = 400
    height: int = 300
    focal: float = 723.0  # 2892 px at 1600 wide, scaled
    stl_spacing_mm: float = 2.0
    obs_res_mm: float = 4.0
    n_neighbours: int = 10


PRESETS = {
    "small": Config(scans=(1,), n_views=5, width=160, height=120, focal=289.2, stl_spacing_mm=4.0,
                    obs_res_mm=8.0),
    "default": Config(),
}


def cam_file_text(K: np.ndarray, cam_from_world_mm: np.ndarray, depth_min: float,
                  depth_interval: float) -> str:
    """MVSNet ``*_cam.txt`` content."""
    rows = ["extrinsic"]
    rows += [" ".join(fmt(v) for v in r) for r in cam_from_world_mm]
    rows += ["", "intrinsic"]
    rows += [" ".join(fmt(v) for v in r) for r in K]
    rows += ["", f"{fmt(depth_min)} {fmt(depth_interval)}"]
    return "\n".join(rows) + "\n"


def _cameras(rng, scene, K, cfg: Config) -> list[np.ndarray]:
    """Views in rows on a spherical cap (like DTU's robot arm), all looking at the object."""
    target = np.array([0.0, 0.0, 0.08])
    n_rows = 2 if cfg.n_views <= 6 else 3
    per_row = [len(r) for r in np.array_split(np.arange(cfg.n_views), n_rows)]
    for _ in range(100):
        base_az = rng.uniform(0, 360)
        poses = []
        for r, n in enumerate(per_row):
            elev = np.deg2rad(25 + 12 * r + rng.uniform(-3, 3))
            dist = rng.uniform(0.6, 0.7)
            for az in np.linspace(-45, 45, n) + rng.uniform(-4, 4, n):
                poses.append(orbit_pose(target, dist * np.cos(elev), base_az + az, dist * np.sin(elev),
                                        target=target + rng.normal(0, 0.01, 3)))
        if all(view_is_good(scene, K, P, cfg.width, cfg.height, min_depth=0.2, min_valid=0.5) for P in poses):
            return poses
    raise RuntimeError("dtu: no acceptable camera rig")


def _to_mm(P: np.ndarray) -> np.ndarray:
    out = P.copy()
    out[:3, 3] *= 1000.0
    return out


def _thin(points: np.ndarray, spacing: float) -> np.ndarray:
    """One point per ``spacing``-mm voxel (the first in voxel-key order; deterministic)."""
    keys = np.floor(points / spacing).astype(np.int64)
    keys -= keys.min(axis=0)
    dims = keys.max(axis=0) + 1
    flat = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]
    _, first = np.unique(flat, return_index=True)
    return points[np.sort(first)]


def _ground_truth(gt_root: Path, scan: int, points: np.ndarray, cfg: Config, table_z_mm: float) -> dict:
    from scipy.ndimage import binary_dilation

    stl = _thin(points, cfg.stl_spacing_mm).astype(np.float32)
    write_ply_xyz(gt_root / "Points" / "stl" / f"stl{scan:03d}_total.ply", stl)
    res = cfg.obs_res_mm
    bb = np.stack([np.floor(stl.min(0) / res) * res - 2 * res, np.ceil(stl.max(0) / res) * res + 2 * res])
    shape = tuple(int(v) for v in np.round((bb[1] - bb[0]) / res).astype(int) + 1)
    idx = np.around((stl.astype(np.float64) - bb[0]) / res).astype(np.int64)
    mask = np.zeros(shape, bool)
    mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    mask = binary_dilation(mask, iterations=1)
    save_mat(gt_root / "ObsMask" / f"ObsMask{scan}_10.mat",
             {"ObsMask": mask, "BB": bb, "Res": np.array([[res]])})
    plane = np.array([[0.0], [0.0], [1.0], [-(table_z_mm + 0.5)]])
    save_mat(gt_root / "ObsMask" / f"Plane{scan}.mat", {"P": plane})
    return {"stl_points": int(len(stl)), "obs_mask_shape": list(shape), "obs_res_mm": res}


def write(root: Path, rng: np.random.Generator, bank: TextureBank, cfg: Config) -> dict[str, Any]:
    """Render ``cfg.scans`` into ``root/scan<N>/`` with GT under ``root/SampleSet/MVS Data``."""
    root = Path(root)
    side = SidecarWriter(root, unit="mm")
    gt_info = {}
    for scan in cfg.scans:
        sdir = root / f"scan{scan}"
        scene = tabletop_scene(rng, bank, table_half=0.35, object_size=0.25, n_objects=4, room=False)
        sx, sy = cfg.width / 1600 * 23.0, cfg.height / 1200 * 19.0  # DTU's off-centre principal point
        K = intrinsics(cfg.focal, round(cfg.focal * 0.997, 4), round((cfg.width - 1) / 2 + sx, 4),
                       round((cfg.height - 1) / 2 + sy, 4))
        poses_m = _cameras(rng, scene, K, cfg)
        renders = [render_view(scene, K, P, cfg.width, cfg.height) for P in poses_m]
        depths = [np.where(r.valid, r.depth.astype(np.float64) * 1000.0, 0.0).astype(np.float32)
                  for r in renders]
        poses = [_to_mm(P) for P in poses_m]
        valid = np.concatenate([d[d > 0] for d in depths])
        dmin = float(np.floor(valid.min() * 0.9))
        interval = float(np.ceil((valid.max() * 1.1 - dmin) / DEPTH_PLANES * 100) / 100)
        points = []
        keys = []
        for v, (r, d, P) in enumerate(zip(renders, depths, poses)):
            img = f"scan{scan}/images/{v:08d}.jpg"
            save_jpeg(root / img, r.image)
            write_text(sdir / "cams" / f"{v:08d}_cam.txt", cam_file_text(K, P, dmin, interval))
            side.add_view(img, K, P, d, meta={"scan": scan, "view": v})
            pts = backproject(d, K, P)
            points.append(pts[d > 0])
            keys.append(img)
        # pair.txt: neighbours by co-visibility
        lines = [str(len(poses))]
        for i in range(len(poses)):
            scores = []
            for j in range(len(poses)):
                if j != i:
                    p0, _ = gt_correspondences(depths[i], K, poses[i], depths[j], K, poses[j], stride=8)
                    scores.append((-len(p0), j))
            best = sorted(scores)[: cfg.n_neighbours]
            lines += [str(i), " ".join([str(len(best))] + [f"{j} {float(-s):.2f}" for s, j in best])]
            for _, j in best:
                side.add_pair(keys[i], keys[j])
        write_text(sdir / "pair.txt", "\n".join(lines) + "\n")
        gt_info[f"scan{scan}"] = _ground_truth(root / GT_DIR, scan, np.concatenate(points), cfg, 0.0)
    summary = side.write(
        "DTU: the MVSNet test layout has no depth; the sidecar holds exact float32 z-depth in millimetres "
        "for every view (DTU world frame, mm) and the pair.txt neighbour pairs' viewpoint angles.")
    return {"scans": list(cfg.scans), "images": len(cfg.scans) * cfg.n_views, "ground_truth": gt_info,
            "gt_dir": GT_DIR, "sidecar": summary}
