"""DTU MVS reader: MVSNet-preprocessed test set, the official Rectified/Calibration release, and the
evaluation ground truth (STL points, observation masks, ground planes). Units: millimetres.

Layouts (``root``)::

    mvsnet:   scan<N>/images/00000000.jpg  scan<N>/cams/00000000_cam.txt  scan<N>/pair.txt
    official: Rectified/scan<N>/rect_<001..049>_<light 0..6>_r5000.png
              Calibration/cal18/pos_<001..049>.txt
    GT (``SampleSet/MVS Data``): Points/stl/stl<NNN>_total.ply
                                 ObsMask/ObsMask<N>_10.mat  ObsMask/Plane<N>.mat

Public API:
    ``DtuDataset(root, layout=None, light=3)`` (layout auto-detected): ``.scans() -> list[int]``,
        ``.scan(n) -> DtuScan`` (``views`` with 0-based ``meta["view"]``; ``pairs``: MVSNet
        ``pair.txt`` or ``{}``; ``depth_ranges``: view -> (depth_min, depth_interval) for MVSNet).
    ``read_cam_file(path) -> DtuCam``, ``read_pair_file(path) -> dict[int, list[(int, float)]]``,
    ``read_projection(path) -> (3, 4)``, ``decompose_projection(P) -> (K, cam_from_world)``.
    ``read_dtu_gt(gt_root, scan, points=True) -> DtuGroundTruth`` with ``in_bounds`` (DTUeval's
        asymmetric margins: ``p >= BB_min - patch`` and ``p < BB_max + 2 * patch``), ``voxel_index``
        (round half-even), ``in_obs_mask``, ``above_plane``. ``read_ply_points``, ``ply_vertex_count``.
    ``DTU_TEST_SCANS``, ``check(root, images=True, gt_root=None) -> dict``.

Poses: OpenCV ``cam_from_world`` (4, 4) float64, world = DTU frame (mm); ``K`` in pixels of the stored
image as the file gives it (MVSNet test cams: 1600x1200).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets._parse import (
    image_size,
    load_mat,
    parse_floats,
    parse_int,
    ply_vertex_count,
    read_lines,
    require_dir,
    require_file,
    verify_image_size,
)
from datasets.records import DatasetFormatError, View, pose_matrix

__all__ = [
    "DTU_TEST_SCANS",
    "DtuCam",
    "DtuDataset",
    "DtuGroundTruth",
    "DtuScan",
    "check",
    "decompose_projection",
    "find_gt_root",
    "ply_vertex_count",
    "read_cam_file",
    "read_dtu_gt",
    "read_pair_file",
    "read_ply_points",
    "read_projection",
]

DTU_TEST_SCANS = (1, 4, 9, 10, 11, 12, 13, 15, 23, 24, 29, 32, 33, 34, 48, 49, 62, 75, 77, 110, 114, 118)
NUM_VIEWS = 49
_SCAN_RE = re.compile(r"^scan(\d+)$")


@dataclass(frozen=True)
class DtuCam:
    """MVSNet cam file: ``cam_from_world`` (4, 4) mm, ``K`` (3, 3) px, depth range (mm)."""

    cam_from_world: np.ndarray
    K: np.ndarray
    depth_min: float
    depth_interval: float
    depth_num: int | None = None
    depth_max: float | None = None


def _matrix_after(path: Path, lines: list[str], header: str, rows: int, cols: int, start: int
                  ) -> tuple[np.ndarray, int]:
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip().lower() != header:
        got = lines[i].strip()[:40] if i < len(lines) else "end of file"
        raise DatasetFormatError(path, min(i + 1, len(lines)), f"expected {header!r}, got {got!r}")
    out = []
    for r in range(rows):
        j = i + 1 + r
        tokens = lines[j].split() if j < len(lines) else []
        if len(tokens) != cols:
            raise DatasetFormatError(path, j + 1,
                                     f"{header} row {r}: expected {cols} numbers, got {len(tokens)}")
        out.append(parse_floats(tokens, path, j + 1, f"{header} entry"))
    return np.stack(out), i + 1 + rows


def read_cam_file(path: str | Path) -> DtuCam:
    """``extrinsic`` + 4x4 world-to-camera, ``intrinsic`` + 3x3, then ``DEPTH_MIN DEPTH_INTERVAL
    [DEPTH_NUM DEPTH_MAX]``."""
    path = Path(path)
    lines = read_lines(path)
    E, i = _matrix_after(path, lines, "extrinsic", 4, 4, 0)
    K, i = _matrix_after(path, lines, "intrinsic", 3, 3, i)
    R = E[:3, :3]
    if np.abs(E[3] - [0, 0, 0, 1]).max() > 1e-9 or np.abs(R @ R.T - np.eye(3)).max() > 1e-3:
        raise DatasetFormatError(path, 2, "extrinsic is not a rigid world-to-camera transform")
    rest = [(j + 1, ln.split()) for j, ln in enumerate(lines[i:], start=i) if ln.strip()]
    if not rest:
        raise DatasetFormatError(path, len(lines), "missing the depth range line")
    line, tokens = rest[0]
    if len(tokens) not in (2, 3, 4) or len(rest) > 1:
        raise DatasetFormatError(path, line,
                                 "expected one line 'DEPTH_MIN DEPTH_INTERVAL [DEPTH_NUM DEPTH_MAX]'")
    d = parse_floats(tokens, path, line, "depth value")
    num = int(d[2]) if len(d) > 2 else None
    return DtuCam(E, K, float(d[0]), float(d[1]), num, float(d[3]) if len(d) > 3 else None)


def read_pair_file(path: str | Path) -> dict[int, list[tuple[int, float]]]:
    """MVSNet ``pair.txt``: N, then per view its id and ``k id score id score ...``."""
    path = Path(path)
    lines = [(i + 1, ln.split()) for i, ln in enumerate(read_lines(path)) if ln.strip()]
    if not lines or len(lines[0][1]) != 1:
        raise DatasetFormatError(path, lines[0][0] if lines else None, "expected the number of views")
    n = parse_int(lines[0][1][0], path, lines[0][0], "number of views")
    if len(lines) != 1 + 2 * n:
        raise DatasetFormatError(path, None,
                                 f"{n} views need {1 + 2 * n} non-blank lines, found {len(lines)}")
    out: dict[int, list[tuple[int, float]]] = {}
    for k in range(n):
        (la, ta), (lb, tb) = lines[1 + 2 * k], lines[2 + 2 * k]
        if len(ta) != 1:
            raise DatasetFormatError(path, la, "expected a reference view id")
        ref = parse_int(ta[0], path, la, "view id")
        m = parse_int(tb[0], path, lb, "number of source views")
        if len(tb) != 1 + 2 * m:
            raise DatasetFormatError(path, lb,
                                     f"expected {1 + 2 * m} fields ({m} id/score pairs), got {len(tb)}")
        srcs = [(parse_int(tb[1 + 2 * j], path, lb, "view id"),
                 float(parse_floats([tb[2 + 2 * j]], path, lb, "score")[0])) for j in range(m)]
        for vid in [ref] + [s for s, _ in srcs]:
            if not 0 <= vid < n:
                raise DatasetFormatError(path, lb if vid != ref else la, f"view id {vid} outside [0, {n})")
        if ref in out:
            raise DatasetFormatError(path, la, f"duplicate reference view {ref}")
        out[ref] = srcs
    return out


def read_projection(path: str | Path) -> np.ndarray:
    """``Calibration/cal18/pos_XXX.txt``: (3, 4) float64 projection matrix."""
    path = Path(path)
    rows = [(i + 1, ln.split()) for i, ln in enumerate(read_lines(path)) if ln.strip()]
    if len(rows) != 3:
        raise DatasetFormatError(path, None,
                                 f"expected 3 rows of 4 numbers, found {len(rows)} non-blank lines")
    for line, tokens in rows:
        if len(tokens) != 4:
            raise DatasetFormatError(path, line, f"expected 4 numbers, got {len(tokens)}")
    return np.stack([parse_floats(t, path, line, "matrix entry") for line, t in rows])


def decompose_projection(P: Any) -> tuple[np.ndarray, np.ndarray]:
    """``P = s K [R | t]`` -> ``(K, cam_from_world)``: RQ decomposition, K with positive diagonal and
    ``K[2, 2] = 1``, ``det(R) = +1`` (any scale ``s``, negative included)."""
    from scipy.linalg import rq

    P = np.asarray(P, dtype=np.float64).reshape(3, 4)
    K, R = rq(P[:, :3])
    D = np.diag(np.sign(np.diag(K)))
    K, R = K @ D, D @ R
    t = np.linalg.solve(K, P[:, 3])
    if np.linalg.det(R) < 0:
        R, t = -R, -t
    return K / K[2, 2], pose_matrix(R, t)


@dataclass(frozen=True)
class DtuScan:
    scan: int
    views: tuple[View, ...]
    pairs: dict[int, list[tuple[int, float]]]
    depth_ranges: dict[int, tuple[float, float]]


def _detect_layout(root: Path) -> str:
    if (root / "Rectified").is_dir() and (root / "Calibration").is_dir():
        return "official"
    if any((p / "cams").is_dir() for p in root.glob("scan*")):
        return "mvsnet"
    raise DatasetFormatError(root, None, "neither an MVSNet layout (scan<N>/cams) nor the official "
                             "one (Rectified/ + Calibration/) found")


class DtuDataset:
    """Lazy DTU reader (see the module docstring)."""

    def __init__(self, root: str | Path, layout: str | None = None, light: int = 3) -> None:
        self.root = require_dir(root, "DTU root")
        self.layout = layout or _detect_layout(self.root)
        if self.layout not in ("mvsnet", "official"):
            raise ValueError(f"unknown DTU layout {self.layout!r}")
        self.light = light

    def _scan_dir(self, n: int) -> Path:
        base = self.root / "Rectified" if self.layout == "official" else self.root
        return base / f"scan{n}"

    def scans(self) -> list[int]:
        base = self.root / "Rectified" if self.layout == "official" else self.root
        return sorted(int(m.group(1)) for p in base.iterdir() if p.is_dir() and (m := _SCAN_RE.match(p.name)))

    def scan(self, n: int) -> DtuScan:
        sdir = require_dir(self._scan_dir(n), f"DTU scan {n} folder")
        return self._mvsnet_scan(n, sdir) if self.layout == "mvsnet" else self._official_scan(n, sdir)

    def _mvsnet_scan(self, n: int, sdir: Path) -> DtuScan:
        pair_path = sdir / "pair.txt"
        pairs = read_pair_file(pair_path)
        cam_files = sorted((sdir / "cams").glob("*_cam.txt"))
        if not cam_files:
            raise DatasetFormatError(sdir / "cams", None, "no *_cam.txt files")
        views, ranges = [], {}
        size: tuple[int, int] | None = None
        for cf in cam_files:
            vid = parse_int(cf.name[: -len("_cam.txt")], cf, None, "view id in the file name")
            cam = read_cam_file(cf)
            img = require_file(sdir / "images" / f"{vid:08d}.jpg", cf, None, "image of this camera")
            size = size or image_size(img)
            meta = {"scan": n, "view": vid, "depth_min": cam.depth_min, "depth_interval": cam.depth_interval}
            views.append(View(f"scan{n}/{vid:08d}", img, size[0], size[1], cam.K, cam.cam_from_world,
                              None, meta))
            ranges[vid] = (cam.depth_min, cam.depth_interval)
        for ref, srcs in pairs.items():
            for vid in [ref] + [s for s, _ in srcs]:
                if vid not in ranges:
                    raise DatasetFormatError(pair_path, None, f"view {vid} has no cam file")
        return DtuScan(n, tuple(views), pairs, ranges)

    def _official_scan(self, n: int, sdir: Path) -> DtuScan:
        calib = self.root / "Calibration" / "cal18"
        views = []
        size: tuple[int, int] | None = None
        for v in range(1, NUM_VIEWS + 1):
            img = sdir / f"rect_{v:03d}_{self.light}_r5000.png"
            if not img.is_file():
                raise DatasetFormatError(sdir, None, f"missing image {img.name}")
            K, T = decompose_projection(read_projection(calib / f"pos_{v:03d}.txt"))
            size = size or image_size(img)
            meta = {"scan": n, "view": v - 1, "light": self.light}
            views.append(View(f"scan{n}/{img.stem}", img, size[0], size[1], K, T, None, meta))
        return DtuScan(n, tuple(views), {}, {})


def read_ply_points(path: str | Path) -> np.ndarray:
    """(N, 3) float64 vertices of a PLY point cloud (ascii or binary; ``mast3r.ply``)."""
    from mast3r.ply import PlyFormatError
    from mast3r.ply import read_ply_points as _read

    path = Path(path)
    try:
        return np.asarray(_read(path), dtype=np.float64).reshape(-1, 3)
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "PLY file not found") from None
    except PlyFormatError as exc:
        msg = str(exc)
        raise DatasetFormatError(path, None, msg.removeprefix(f"{path}: ")) from None


@dataclass(frozen=True)
class DtuGroundTruth:
    """DTU evaluation GT of one scan (mm): ``stl_points`` (N, 3) float64 or None, ``obs_mask``
    (X, Y, Z) bool indexed ``[ix, iy, iz]``, ``bb`` (2, 3) min/max corners, ``res`` voxel size,
    ``plane`` (4,) ground plane (points above satisfy ``plane . [p, 1] > 0``)."""

    scan: int
    stl_points: np.ndarray | None
    obs_mask: np.ndarray
    bb: np.ndarray
    res: float
    plane: np.ndarray

    def in_bounds(self, points: Any, patch: float = 60.0) -> np.ndarray:
        """(N,) bool: DTUeval's box test ``p >= BB_min - patch`` and ``p < BB_max + 2 * patch``."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return np.all(p >= self.bb[0] - patch, axis=1) & np.all(p < self.bb[1] + 2 * patch, axis=1)

    def voxel_index(self, points: Any) -> np.ndarray:
        """(N, 3) int32 ``round((p - BB_min) / Res)`` (numpy round half to even)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return np.around((p - self.bb[0]) / self.res).astype(np.int32)

    def in_obs_mask(self, points: Any) -> np.ndarray:
        """(N,) bool: voxel inside the grid and observed (``ObsMask`` true)."""
        idx = self.voxel_index(points)
        inside = np.all(idx >= 0, axis=1) & np.all(idx < np.array(self.obs_mask.shape), axis=1)
        out = np.zeros(len(idx), dtype=bool)
        out[inside] = self.obs_mask[idx[inside, 0], idx[inside, 1], idx[inside, 2]]
        return out

    def above_plane(self, points: Any) -> np.ndarray:
        """(N,) bool: strictly above the ground plane."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return p @ self.plane[:3] + self.plane[3] > 0


def find_gt_root(root: str | Path) -> Path | None:
    """The folder holding ``Points/`` and ``ObsMask/`` (``root`` itself or ``root/SampleSet/MVS Data``)."""
    root = Path(root)
    for cand in (root, root / "SampleSet" / "MVS Data", root / "MVS Data"):
        if (cand / "Points" / "stl").is_dir() and (cand / "ObsMask").is_dir():
            return cand
    return None


def read_dtu_gt(gt_root: str | Path, scan: int, points: bool = True) -> DtuGroundTruth:
    """GT of ``scan``: STL points (unless ``points=False``), ``ObsMask<N>_10.mat``, ``Plane<N>.mat``."""
    gt = find_gt_root(gt_root) or Path(gt_root)
    mask_path = gt / "ObsMask" / f"ObsMask{scan}_10.mat"
    m = load_mat(mask_path, ["ObsMask", "BB", "Res"])
    obs, bb, res = m["ObsMask"], np.asarray(m["BB"], dtype=np.float64), np.asarray(m["Res"], dtype=np.float64)
    if obs.ndim != 3 or bb.shape != (2, 3) or res.size != 1 or not res.item() > 0:
        raise DatasetFormatError(mask_path, None, f"expected ObsMask 3D, BB (2, 3), Res scalar > 0; got "
                                 f"{obs.shape}, {bb.shape}, {res.ravel()[:3].tolist()}")
    plane_path = gt / "ObsMask" / f"Plane{scan}.mat"
    plane = np.asarray(load_mat(plane_path, ["P"])["P"], dtype=np.float64)
    if plane.size != 4 or not np.all(np.isfinite(plane)):
        raise DatasetFormatError(plane_path, None,
                                 f"expected P with 4 finite values, got shape {plane.shape}")
    stl = None
    if points:
        stl = read_ply_points(require_file(gt / "Points" / "stl" / f"stl{scan:03d}_total.ply"))
    return DtuGroundTruth(scan, stl, obs.astype(bool), bb, float(res.item()), plane.reshape(4))


def check(root: str | Path, images: bool = True, gt_root: str | Path | None = None) -> dict[str, Any]:
    """Validate every scan (cams, pairs, images) and, if found, the GT (STL headers, masks, planes)."""
    root = require_dir(root, "DTU root")
    summary: dict[str, Any] = {"bench": "dtu", "root": str(root)}
    gt = Path(gt_root) if gt_root is not None else find_gt_root(root)
    has_inputs = (root / "Rectified").is_dir() or any((p / "cams").is_dir() for p in root.glob("scan*"))
    if not has_inputs and gt is None:
        _detect_layout(root)  # raises the layout error
    n_views = n_pairs = 0
    scans: list[int] = []
    if has_inputs:
        ds = DtuDataset(root)
        summary["layout"] = ds.layout
        for n in ds.scans():
            sc = ds.scan(n)
            if images:
                for v in sc.views:
                    verify_image_size(v.image_path, v.width, v.height)
            n_views += len(sc.views)
            n_pairs += sum(len(s) for s in sc.pairs.values())
            scans.append(n)
    summary.update(scans=len(scans), views=n_views, pairs=n_pairs)
    if gt is not None:
        stl = sorted((gt / "Points" / "stl").glob("stl*_total.ply"))
        gt_scans = [int(p.name[3:-len("_total.ply")]) for p in stl]
        points = 0
        for n, p in zip(gt_scans, stl):
            points += ply_vertex_count(p)  # header only: STL files are large
            read_dtu_gt(gt, n, points=False)  # validates ObsMask and Plane
        summary.update(gt_root=str(gt), gt_scans=len(gt_scans), points3d=points)
    return summary
