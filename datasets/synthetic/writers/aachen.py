"""Aachen Day-Night v1.1 layout: database images with a COLMAP model, day and night queries.

Writes under ``root``::

    images_upright/db/<id>.jpg                                    database images
    images_upright/query/day/{milestone,nexus4,nexus5x}/<name>.jpg   day queries
    images_upright/query/night/{nexus5x,milestone}/<name>.jpg        night queries (darker, noisy)
    queries/{day,night}_time_queries_with_intrinsics.txt   name SIMPLE_RADIAL w h f cx cy k
    3D-models/aachen_v_1_1/{cameras,images,points3D}.bin   COLMAP binary model of the database
    3D-models/aachen_v_1_1/database_intrinsics_v1_1.txt    same line format as the query lists
    pairs/aachen_v1.1/pairs-query-netvlad50.txt            hloc retrieval pairs "query db"
    pairsfile/query/fire_top50.txt                         kapture pairs "query, db, score"

Principal points in the text lists and the model use COLMAP's convention (pixel centres at +0.5):
``cx_file = cx_opencv + 0.5`` (the cameras are rendered with ``cx_opencv = W/2 - 0.5``, so files
say ``W/2`` as the real ones do); ``k = 0`` (renders are distortion-free). 3D points are surface
points seen from a database image, kept when at least two database images see them (exact depth
test); 2D observations are their exact projections. Retrieval ranks database images by true
co-visibility. The query ground truth (hidden in the real benchmark) is in
``_synthetic/query_poses.txt`` (``name qw qx qy qz tx ty tz condition``, world-to-camera, names
relative to ``images_upright/``, condition ``day``/``night``) and ``_synthetic/views.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic.cameras import room_viewpoint, view_is_good
from datasets.synthetic.geometry import intrinsics, look_at
from datasets.synthetic.gt import backproject, gt_correspondences, project, sample_depth
from datasets.synthetic.io import fmt, save_jpeg, write_text
from datasets.synthetic.render import apply_night
from datasets.synthetic.scene import room_scene
from datasets.synthetic.sidecar import SIDECAR_DIR, SidecarWriter
from datasets.synthetic.textures import TextureBank
from datasets.synthetic.writers._common import pose_tokens, render_view

__all__ = ["Config", "PRESETS", "write", "MODEL_DIR", "HLOC_PAIRS", "KAPTURE_PAIRS"]

MODEL_DIR = "3D-models/aachen_v_1_1"
HLOC_PAIRS = "pairs/aachen_v1.1/pairs-query-netvlad50.txt"
KAPTURE_PAIRS = "pairsfile/query/fire_top50.txt"
DAY_DEVICES = ("milestone", "nexus4", "nexus5x")
NIGHT_DEVICES = ("nexus5x", "milestone")


@dataclass(frozen=True)
class Config:
    n_db: int = 24
    n_day: int = 6
    n_night: int = 4
    width: int = 320
    height: int = 240
    point_stride: int = 10  # database pixels sampled for 3D points
    top_k: int = 50
    sidecar_pairs: int = 10  # query/db pairs (best first) recorded with viewpoint angles


PRESETS = {
    "small": Config(n_db=8, n_day=2, n_night=1, width=160, height=120, point_stride=8, sidecar_pairs=4),
    "default": Config(),
}


def _camera(rng: np.random.Generator, width: int, height: int, hfov: tuple[float, float]) -> np.ndarray:
    f = round(width / 2 / np.tan(np.deg2rad(rng.uniform(*hfov)) / 2), 4)
    return intrinsics(f, f, width / 2 - 0.5, height / 2 - 0.5)


def camera_line(name: str, K: np.ndarray, width: int, height: int) -> str:
    """``name SIMPLE_RADIAL w h f cx cy k`` (COLMAP pixel centres)."""
    f, cx, cy = fmt(K[0, 0]), fmt(K[0, 2] + 0.5), fmt(K[1, 2] + 0.5)
    return f"{name} SIMPLE_RADIAL {width} {height} {f} {cx} {cy} 0.0"


def _near_query(rng, scene, K, db_pose, width, height) -> np.ndarray:
    """A query near a database camera: moved up to ~1.5 m, turned by 10-45 degrees."""
    c = -db_pose[:3, :3].T @ db_pose[:3, 3]
    fwd = db_pose[2, :3]
    for _ in range(200):
        eye = c + np.array([*rng.uniform(-1.5, 1.5, 2), rng.uniform(-0.2, 0.2)])
        yaw = np.deg2rad(rng.uniform(10, 45) * rng.choice([-1, 1]))
        c_, s_ = np.cos(yaw), np.sin(yaw)
        d = np.array([c_ * fwd[0] - s_ * fwd[1], s_ * fwd[0] + c_ * fwd[1], fwd[2] + rng.uniform(-0.1, 0.1)])
        P = look_at(eye, eye + d)
        if view_is_good(scene, K, P, width, height, min_depth=0.7):
            return P
    raise RuntimeError("aachen: no query viewpoint near the database camera")


def _model(out: Path, names, Ks, poses, depths, images, cfg: Config, rng: np.random.Generator) -> dict:
    """COLMAP binary model of the database: points seen by >= 2 database images."""
    import pycolmap

    rec = pycolmap.Reconstruction()
    n = len(names)
    keypoints: list[list[np.ndarray]] = [[] for _ in range(n)]
    tracks: list[list[tuple[int, int]]] = []
    xyzs, colours = [], []
    counts = [0] * n
    for i in range(n):
        s = cfg.point_stride
        ys, xs = np.mgrid[s // 2:cfg.height:s, s // 2:cfg.width:s]
        xs = np.clip(xs + rng.integers(-(s // 3), s // 3 + 1, xs.shape), 0, cfg.width - 1).ravel()
        ys = np.clip(ys + rng.integers(-(s // 3), s // 3 + 1, ys.shape), 0, cfg.height - 1).ravel()
        ok = depths[i][ys, xs] > 0
        xs, ys = xs[ok], ys[ok]
        world = backproject(depths[i], Ks[i], poses[i])[ys, xs]
        obs = {i: np.stack([xs, ys], 1).astype(np.float64)}
        for j in range(n):
            if j == i:
                continue
            pix, z = project(world, Ks[j], poses[j])
            inside = (z > 0) & (pix[:, 0] >= -0.5) & (pix[:, 0] < cfg.width - 0.5) & (pix[:, 1] >= -0.5) \
                & (pix[:, 1] < cfg.height - 0.5)
            near = sample_depth(depths[j], np.where(inside[:, None], pix, 0.0))
            with np.errstate(invalid="ignore"):
                vis = inside & (np.abs(near - z[:, None]) <= 0.01 * z[:, None]).any(axis=1)
            obs[j] = np.where(vis[:, None], pix, np.nan)
        seen = sum((~np.isnan(o[:, 0])).astype(int) for o in obs.values())
        for k in np.nonzero(seen >= 2)[0]:
            track = []
            for j in sorted(obs):
                if not np.isnan(obs[j][k, 0]):
                    track.append((j, counts[j]))
                    keypoints[j].append(obs[j][k] + 0.5)  # COLMAP pixel centres
                    counts[j] += 1
            tracks.append(track)
            xyzs.append(world[k])
            colours.append(images[i][ys[k], xs[k]])
    for i in range(n):
        params = [Ks[i][0, 0], Ks[i][0, 2] + 0.5, Ks[i][1, 2] + 0.5, 0.0]  # COLMAP pixel centres
        cam = pycolmap.Camera(model="SIMPLE_RADIAL", width=cfg.width, height=cfg.height, params=params,
                              camera_id=i + 1)
        rec.add_camera_with_trivial_rig(cam)
        kp = np.array(keypoints[i], np.float64).reshape(-1, 2)
        im = pycolmap.Image(name=names[i], keypoints=kp, camera_id=i + 1, image_id=i + 1)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(poses[i][:3, :3]), poses[i][:3, 3])
        rec.add_image_with_trivial_frame(im, pose)
    for xyz, col, track in zip(xyzs, colours, tracks):
        tr = pycolmap.Track()
        for j, idx in track:
            tr.add_element(j + 1, idx)
        rec.add_point3D(np.asarray(xyz, np.float64), tr, np.asarray(col, np.uint8))
    out.mkdir(parents=True, exist_ok=True)
    rec.write(str(out))
    for extra in ("rigs.bin", "frames.bin"):  # the v1.1 release predates rigs/frames
        (out / extra).unlink(missing_ok=True)
    return {"points3D": len(xyzs), "observations": int(sum(counts))}


def write(root: Path, rng: np.random.Generator, bank: TextureBank, cfg: Config) -> dict[str, Any]:
    """Render the database, day and night queries, the COLMAP model and retrieval pairs into ``root``."""
    root = Path(root)
    img_root = root / "images_upright"
    side = SidecarWriter(root, unit="m")
    scene = room_scene(rng, bank, size=(14, 11, 5), n_boxes=8, n_spheres=3, n_panels=5, n_posters=14,
                       object_region=3.5)
    db_names, db_K, db_P, db_depth, db_img = [], [], [], [], []
    ids = np.sort(rng.choice(np.arange(1, 5000), size=cfg.n_db, replace=False))
    for i in range(cfg.n_db):
        K = _camera(rng, cfg.width, cfg.height, (50, 65))
        P = room_viewpoint(rng, scene, K, cfg.width, cfg.height, eye_z=(1.4, 1.9), min_depth=0.8)
        r = render_view(scene, K, P, cfg.width, cfg.height)
        name = f"db/{ids[i]}.jpg"
        save_jpeg(img_root / name, r.image)
        side.add_view(f"images_upright/{name}", K, P, r.depth, meta={"kind": "db", "name": name})
        db_names.append(name)
        db_K.append(K)
        db_P.append(P)
        db_depth.append(r.depth)
        db_img.append(r.image)
    model = _model(root / MODEL_DIR, db_names, db_K, db_P, db_depth, db_img, cfg, rng)
    write_text(root / MODEL_DIR / "database_intrinsics_v1_1.txt",
               "".join(camera_line(n, K, cfg.width, cfg.height) + "\n" for n, K in zip(db_names, db_K)))
    lists: dict[str, list[str]] = {"day": [], "night": []}
    gt_lines, hloc, kapture = [], [], []
    q_index = 0
    for cond, n_q, devices in (("day", cfg.n_day, DAY_DEVICES), ("night", cfg.n_night, NIGHT_DEVICES)):
        for _ in range(n_q):
            device = devices[q_index % len(devices)]
            K = _camera(rng, cfg.width, cfg.height, (45, 70))
            P = _near_query(rng, scene, K, db_P[int(rng.integers(cfg.n_db))], cfg.width, cfg.height)
            r = render_view(scene, K, P, cfg.width, cfg.height)
            image = apply_night(r.image, rng) if cond == "night" else r.image
            stamp = int(rng.integers(100000, 999999))
            name = f"query/{cond}/{device}/IMG_{20161227 + q_index:08d}_{stamp}.jpg"
            q_index += 1
            save_jpeg(img_root / name, image)
            side.add_view(f"images_upright/{name}", K, P, r.depth,
                          meta={"kind": "query", "name": name, "condition": cond, "device": device})
            lists[cond].append(camera_line(name, K, cfg.width, cfg.height))
            gt_lines.append(" ".join([name, *pose_tokens(P), cond]))
            scores = []
            for j in range(cfg.n_db):
                p0, _ = gt_correspondences(r.depth, K, P, db_depth[j], db_K[j], db_P[j], stride=8)
                scores.append((-len(p0), db_names[j]))
            ranked = sorted(scores)[: cfg.top_k]
            n0 = max(int(np.count_nonzero(r.depth[::8, ::8] > 0)), 1)
            for rank, (neg, db) in enumerate(ranked):
                hloc.append(f"{name} {db}")
                kapture.append(f"{name}, {db}, {-neg / n0:.6f}")
                if rank < cfg.sidecar_pairs:
                    side.add_pair(f"images_upright/{name}", f"images_upright/{db}", rank=rank)
    write_text(root / "queries" / "day_time_queries_with_intrinsics.txt",
               "".join(x + "\n" for x in lists["day"]))
    write_text(root / "queries" / "night_time_queries_with_intrinsics.txt",
               "".join(x + "\n" for x in lists["night"]))
    write_text(root / HLOC_PAIRS, "\n".join(hloc) + "\n")
    write_text(root / KAPTURE_PAIRS, "# kapture format: 1.0\n# query_image, map_image, score\n"
               + "\n".join(kapture) + "\n")
    write_text(root / SIDECAR_DIR / "query_poses.txt", "\n".join(gt_lines) + "\n")
    summary = side.write(
        "Aachen: view keys are paths relative to the root (images_upright/<Aachen name>); "
        "query_poses.txt holds the hidden query ground truth (world-to-camera). Pairs: "
        "each query with its best retrieved database images (rank 0 first).")
    return {"database_images": cfg.n_db, "queries_day": cfg.n_day, "queries_night": cfg.n_night,
            "images": cfg.n_db + cfg.n_day + cfg.n_night, "model": model, "sidecar": summary}
