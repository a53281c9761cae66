"""InLoc layout (original release): iPhone queries against RGB-D cutouts of two buildings.

Writes under ``root``::

    query/iphone7/IMG_<NNNN>.JPG                               queries (4:3; K as hloc assumes:
                                                               f = max(W, H) * 28 / 36, centred)
    database/cutouts/{DUC1,DUC2}/<scan>/DUC_cutout_<scan>_<yaw>_<pitch>.jpg
    database/cutouts/{DUC1,DUC2}/<scan>/DUC_cutout_<scan>_<yaw>_<pitch>.jpg.mat
                                                               XYZcut (H, W, 3) float32 scan-frame
                                                               points (NaN holes), RGBcut (uint8)
    database/alignments/{DUC1,DUC2}/transformations/DUC_trans_<scan>.txt   scan -> world (before /
                                                               after general ICP; "after" is exact)
    database/alignments/{DUC1,DUC2}/all_transformations.txt   the same for every scan
    pairs/inloc/pairs-query-netvlad40-temporal.txt             hloc pairs "query cutout"

Each building is its own room scene and world frame; scans are panorama centres with cutouts every
``yaw_step`` degrees at the listed pitches (60-degree horizontal FOV). Queries are placed anywhere
in one building. Query intrinsics follow ``datasets.inloc`` (principal point ``(W/2, H/2)`` in
COLMAP convention, i.e. ``W/2 - 0.5`` OpenCV). The hidden query ground truth is in
``_synthetic/query_poses.txt`` (``name qw qx qy qz tx ty tz building``); cutout K/poses and all
depths are in ``_synthetic/views.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic.cameras import room_viewpoint, view_is_good
from datasets.synthetic.geometry import intrinsics, invert_pose, make_pose, rotation_about_axis
from datasets.synthetic.gt import backproject, gt_correspondences
from datasets.synthetic.io import fmt, save_jpeg, save_mat, write_text
from datasets.synthetic.scene import room_scene
from datasets.synthetic.sidecar import SIDECAR_DIR, SidecarWriter
from datasets.synthetic.textures import TextureBank
from datasets.synthetic.writers._common import pose_tokens, render_view

__all__ = ["Config", "PRESETS", "write", "PAIRS", "trans_file_text"]

PAIRS = "pairs/inloc/pairs-query-netvlad40-temporal.txt"
BUILDINGS = ("DUC1", "DUC2")


@dataclass(frozen=True)
class Config:
    n_scans: int = 2  # per building
    yaw_step: int = 60
    pitches: tuple[int, ...] = (0,)
    n_queries: int = 8
    cutout_width: int = 256
    cutout_height: int = 192
    query_width: int = 400
    query_height: int = 300
    top_k: int = 40
    sidecar_pairs: int = 10


PRESETS = {
    "small": Config(n_scans=1, yaw_step=90, n_queries=2, cutout_width=128, cutout_height=96,
                    query_width=160, query_height=120, sidecar_pairs=4),
    "default": Config(),
}


def _matrix_text(M: np.ndarray) -> str:
    return "".join(" ".join(fmt(v) for v in row) + "\n" for row in M)


def trans_file_text(before: np.ndarray, after: np.ndarray) -> str:
    """``DUC_trans_<scan>.txt``: after-GICP matrix on 0-based lines 7-10 (where hloc reads it)."""
    return "Before general icp:\n" + _matrix_text(before) + "\nAfter general icp:\n" + _matrix_text(after)


def _scan_frame(rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    """world_from_scan: the scanner's frame (z up, arbitrary heading) at ``centre``."""
    R = rotation_about_axis(np.array([0, 0, 1.0]), rng.uniform(0, 360))
    return make_pose(R, centre)


def _cutout_pose(world_from_scan: np.ndarray, yaw: int, pitch: int) -> np.ndarray:
    """OpenCV cam_from_world of a cutout looking along scan-frame yaw/pitch (degrees)."""
    a, b = np.deg2rad(yaw), np.deg2rad(pitch)
    fwd = np.array([np.cos(b) * np.cos(a), np.cos(b) * np.sin(a), np.sin(b)])  # scan frame
    z = world_from_scan[:3, :3] @ fwd
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return make_pose(R, -R @ world_from_scan[:3, 3])


def _scan_centre(rng, scene, K, w, h) -> np.ndarray:
    for _ in range(500):
        lo, hi = scene.room
        c = np.array([rng.uniform(lo[0] + 1.2, hi[0] - 1.2), rng.uniform(lo[1] + 1.2, hi[1] - 1.2),
                      rng.uniform(1.3, 1.7)])
        wfs = make_pose(np.eye(3), c)
        if all(view_is_good(scene, K, _cutout_pose(wfs, yaw, 0), w, h, min_depth=0.5)
               for yaw in range(0, 360, 45)):
            return c
    raise RuntimeError("inloc: no scan position clear of objects")


def write(root: Path, rng: np.random.Generator, bank: TextureBank, cfg: Config) -> dict[str, Any]:
    """Render both buildings' cutouts and the queries into ``root``."""
    root = Path(root)
    side = SidecarWriter(root, unit="m")
    cw, ch = cfg.cutout_width, cfg.cutout_height
    Kc = intrinsics(round(cw / 2 / np.tan(np.deg2rad(30)), 4), round(cw / 2 / np.tan(np.deg2rad(30)), 4),
                    cw / 2 - 0.5, ch / 2 - 0.5)
    scenes, cutouts = {}, {b: [] for b in BUILDINGS}
    scan_ids = np.sort(rng.choice(np.arange(1, 200), size=cfg.n_scans * len(BUILDINGS), replace=False))
    for bi, building in enumerate(BUILDINGS):
        scene = room_scene(rng, bank, size=(rng.uniform(9, 12), rng.uniform(7, 9), 3.0), n_boxes=5,
                           n_spheres=2, n_panels=4, n_posters=12, object_region=2.0)
        scenes[building] = scene
        all_lines = []
        for si in range(cfg.n_scans):
            scan = f"{scan_ids[bi * cfg.n_scans + si]:03d}"
            world_from_scan = _scan_frame(rng, _scan_centre(rng, scene, Kc, cw, ch))
            scan_from_world = invert_pose(world_from_scan)
            jitter = make_pose(rotation_about_axis(rng.normal(size=3), rng.uniform(0.2, 1.0)),
                               rng.normal(0, 0.05, 3))
            before = world_from_scan @ jitter
            text = trans_file_text(before, world_from_scan)
            adir = root / "database" / "alignments" / building
            write_text(adir / "transformations" / f"DUC_trans_{scan}.txt", text)
            all_lines.append(f"{scan}\n\n{text}\n")
            for pitch in cfg.pitches:
                for yaw in range(0, 360, cfg.yaw_step):
                    P = _cutout_pose(world_from_scan, yaw, pitch)
                    r = render_view(scene, Kc, P, cw, ch)
                    name = f"database/cutouts/{building}/{scan}/DUC_cutout_{scan}_{yaw}_{pitch}.jpg"
                    save_jpeg(root / name, r.image)
                    xyz = backproject(r.depth, Kc, P)
                    xyz = xyz @ scan_from_world[:3, :3].T + scan_from_world[:3, 3]
                    save_mat(root / f"{name}.mat", {"XYZcut": xyz.astype(np.float32), "RGBcut": r.image})
                    meta = {"kind": "cutout", "building": building, "scan": scan, "yaw": yaw, "pitch": pitch}
                    side.add_view(name, Kc, P, r.depth, meta=meta)
                    cutouts[building].append((name, P, r.depth))
        write_text(root / "database" / "alignments" / building / "all_transformations.txt",
                   "".join(all_lines))
    qw, qh = cfg.query_width, cfg.query_height
    fq = max(qw, qh) * 28.0 / 36.0
    Kq = intrinsics(fq, fq, qw / 2 - 0.5, qh / 2 - 0.5)
    pairs, gt_lines = [], []
    numbers = np.sort(rng.choice(np.arange(600, 9999), size=cfg.n_queries, replace=False))
    for qi in range(cfg.n_queries):
        building = BUILDINGS[qi % 2]
        scene = scenes[building]
        P = room_viewpoint(rng, scene, Kq, qw, qh, eye_z=(1.2, 1.8), min_depth=0.8)
        r = render_view(scene, Kq, P, qw, qh)
        name = f"query/iphone7/IMG_{numbers[qi]:04d}.JPG"
        save_jpeg(root / name, r.image)
        side.add_view(name, Kq, P, r.depth, meta={"kind": "query", "building": building})
        gt_lines.append(" ".join([name, *pose_tokens(P), building]))
        scores = []
        for b in BUILDINGS:
            for cname, cP, cdepth in cutouts[b]:
                n = 0
                if b == building:
                    n = len(gt_correspondences(r.depth, Kq, P, cdepth, Kc, cP, stride=8)[0])
                scores.append((-n, cname))
        ranked = sorted(scores)[: cfg.top_k]
        for rank, (neg, cname) in enumerate(ranked):
            pairs.append(f"{name} {cname}")
            if rank < cfg.sidecar_pairs and neg < 0:
                side.add_pair(name, cname, rank=rank)
    write_text(root / PAIRS, "\n".join(pairs) + "\n")
    write_text(root / SIDECAR_DIR / "query_poses.txt", "\n".join(gt_lines) + "\n")
    summary = side.write(
        "InLoc: query_poses.txt holds the hidden query ground truth (world-to-camera, building frame) with "
        "the building; views.json gives every query and cutout K/pose (building world frame) and exact "
        "depth. Pairs: each query with its best co-visible cutouts (rank 0 first).")
    n_cut = sum(len(v) for v in cutouts.values())
    return {"buildings": list(BUILDINGS), "scans": cfg.n_scans * len(BUILDINGS), "cutouts": n_cut,
            "cutout_size": [cw, ch], "queries": cfg.n_queries, "images": n_cut + cfg.n_queries,
            "sidecar": summary}
