"""Map-free relocalization reader (Niantic, ECCV 2022), layout ``<root>/{train,val,test}/sNNNNN/``.

Public API:
    ``MapFreeDataset(root, split="val", depth=None)``: ``root`` holds the split folders.
        ``.scenes() -> list[str]`` (sorted ``sNNNNN`` names; opens nothing),
        ``.scene(name) -> MapFreeScene`` (reads ``intrinsics.txt`` and ``poses.txt``),
        ``.query_frames(scene, stride=5) -> list[View]`` (single-frame track: query frames
        ``[0::stride]`` by position in name order, frame numbers may skip).
    ``MapFreeScene``: ``name, split, root, reference: View | None`` (val/test ``seq0/frame_00000.jpg``),
        ``queries: tuple[View, ...]`` (non-``seq0`` frames, name order), ``views`` (all frames, file
        order), ``intrinsics: dict[frame, MapFreeIntrinsics]``, ``poses: dict[frame, (4, 4) | None]``
        keyed by frame path (``"seq1/frame_00005.jpg"``), ``has_gt``, ``.view(frame) -> View``.
    ``read_intrinsics(path) -> dict[str, MapFreeIntrinsics]``; ``read_poses(path, allow_placeholder)
        -> dict[str, (4, 4) float64 | None]``; ``read_depth_png(path) -> (H, W) float32 metres``;
    ``depth_path(scene_dir, frame, variant)``; ``read_overlaps(path)``; ``check(root, images=True)``.

Conventions: ``View.cam_from_world`` is the file's world-to-camera pose (``x_cam = R(q) x_world + t``,
q = qw qx qy qz, metres); in val/test the reference is the identity, so a query pose is the
reference->query relative pose. Test poses are all-zero placeholders: read as ``None``. ``View.K``
is ``fx fy cx cy`` of ``intrinsics.txt`` as given (pixels of the 540x720 stored image).
``View.name`` is ``"<scene>/<frame>"``; ``View.meta`` has ``scene``, ``frame``, ``seq``, ``frame_number``.
Evaluator quirks (int frame keys, seq0/seq1 collision) belong to the scorer, not here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets._parse import (
    data_lines,
    expect_count,
    parse_float,
    parse_floats,
    require_dir,
    require_file,
    verify_image_size,
)
from datasets.records import DatasetFormatError, K_matrix, View, pose_matrix, quat_wxyz_to_R

__all__ = [
    "DEPTH_VARIANTS",
    "SPLITS",
    "MapFreeDataset",
    "MapFreeIntrinsics",
    "MapFreeScene",
    "check",
    "depth_path",
    "read_depth_png",
    "read_intrinsics",
    "read_overlaps",
    "read_poses",
]

SPLITS = ("train", "val", "test")
DEPTH_VARIANTS = ("dptkitti", "dptnyu")
REFERENCE_FRAME = "seq0/frame_00000.jpg"
_FRAME_RE = re.compile(r"^seq(\d+)/frame_(\d+)\.jpg$")
_SCENE_RE = re.compile(r"^s\d{5}$")


@dataclass(frozen=True)
class MapFreeIntrinsics:
    """One ``intrinsics.txt`` line: ``K`` (3, 3) float64 pixels, stored image ``width`` x ``height``,
    and the 1-based ``line`` it came from (for error messages)."""

    K: np.ndarray
    width: int
    height: int
    line: int = 0


@dataclass(frozen=True)
class MapFreeScene:
    """One scene: its frames, intrinsics and poses (see the module docstring)."""

    name: str
    split: str
    root: Path
    views: tuple[View, ...]
    reference: View | None
    queries: tuple[View, ...]
    intrinsics: Mapping[str, MapFreeIntrinsics]
    poses: Mapping[str, np.ndarray | None]
    has_gt: bool

    def view(self, frame: str) -> View:
        """The view of ``frame`` (``"seq1/frame_00005.jpg"``)."""
        for v in self.views:
            if v.meta["frame"] == frame:
                return v
        raise KeyError(f"{self.name}: no frame {frame!r}")


def _frame_parts(frame: str, path: Path, line: int) -> tuple[int, int]:
    m = _FRAME_RE.match(frame)
    if m is None:
        raise DatasetFormatError(path, line, f"frame path {frame!r} is not 'seq<K>/frame_<NNNNN>.jpg'")
    return int(m.group(1)), int(m.group(2))


def read_intrinsics(path: str | Path) -> dict[str, MapFreeIntrinsics]:
    """``intrinsics.txt``: ``frame_path fx fy cx cy W H`` per line, in file order."""
    path = Path(path)
    out: dict[str, MapFreeIntrinsics] = {}
    for line, tokens in data_lines(path):
        expect_count(tokens, 7, path, line, "frame_path fx fy cx cy W H")
        frame = tokens[0]
        _frame_parts(frame, path, line)
        fx, fy, cx, cy = parse_floats(tokens[1:5], path, line, "intrinsic")
        w, h = (parse_float(t, path, line, "image size") for t in tokens[5:7])
        if fx <= 0 or fy <= 0:
            raise DatasetFormatError(path, line, f"focal lengths must be positive, got {fx}, {fy}")
        if w != int(w) or h != int(h) or w <= 0 or h <= 0:
            raise DatasetFormatError(path, line, f"image size must be positive integers, got {w} {h}")
        if frame in out:
            raise DatasetFormatError(path, line, f"duplicate frame {frame!r}")
        out[frame] = MapFreeIntrinsics(K_matrix(fx, fy, cx, cy), int(w), int(h), line)
    return out


def read_poses(path: str | Path, allow_placeholder: bool = False) -> dict[str, np.ndarray | None]:
    """``poses.txt`` / ``poses_device.txt``: ``frame_path qw qx qy qz tx ty tz`` (world-to-camera).

    Returns (4, 4) float64 ``cam_from_world`` per frame path, in file order. With
    ``allow_placeholder`` (the test split) an all-zero line gives ``None``; otherwise a NaN/inf
    value or a zero quaternion is an error naming file and line.
    """
    path = Path(path)
    out: dict[str, np.ndarray | None] = {}
    for line, tokens in data_lines(path):
        expect_count(tokens, 8, path, line, "frame_path qw qx qy qz tx ty tz")
        frame = tokens[0]
        _frame_parts(frame, path, line)
        if frame in out:
            raise DatasetFormatError(path, line, f"duplicate frame {frame!r}")
        values = parse_floats(tokens[1:], path, line, "pose value")
        if allow_placeholder and not np.any(values):
            out[frame] = None
            continue
        out[frame] = pose_matrix(quat_wxyz_to_R(values[:4], path=path, line=line), values[4:])
    return out


def depth_path(scene_dir: str | Path, frame: str, variant: str) -> Path:
    """Path of the provided depth map of ``frame``: ``seqK/frame_XXXXX.<variant>.png``."""
    if variant not in DEPTH_VARIANTS:
        raise ValueError(f"unknown Map-free depth variant {variant!r}; expected one of {DEPTH_VARIANTS}")
    return Path(scene_dir) / frame.replace(".jpg", f".{variant}.png")


def read_depth_png(path: str | Path) -> np.ndarray:
    """(H, W) float32 depth in metres from a uint16 millimetre PNG (0 stays 0 = no depth)."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "depth map not found") from None
    except OSError as exc:
        raise DatasetFormatError(path, None, f"cannot read depth PNG: {exc}") from None
    if arr.ndim != 2 or arr.dtype not in (np.uint16, np.int32, np.uint8):
        raise DatasetFormatError(path, None, f"expected a single-channel 16-bit PNG, got {arr.dtype} "
                                 f"{arr.shape}")
    return (arr.astype(np.float64) / 1000.0).astype(np.float32)


def read_overlaps(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Train ``overlaps.npz``: ``idxs`` (N, 4) int64 ``(seqA, frameA, seqB, frameB)`` and
    ``overlaps`` (N,) float64 in [0, 1]."""
    path = require_file(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            idxs, overlaps = np.asarray(f["idxs"]), np.asarray(f["overlaps"])
    except KeyError as exc:
        raise DatasetFormatError(path, None, f"missing array {exc}") from None
    except (OSError, ValueError) as exc:
        raise DatasetFormatError(path, None, f"cannot read npz: {exc}") from None
    if idxs.ndim != 2 or idxs.shape[1] != 4 or overlaps.shape != (len(idxs),):
        raise DatasetFormatError(path, None, f"expected idxs (N, 4) and overlaps (N,), got "
                                 f"{idxs.shape} and {overlaps.shape}")
    return idxs.astype(np.int64), overlaps.astype(np.float64)


class MapFreeDataset:
    """Lazy reader of one Map-free split (see the module docstring)."""

    def __init__(self, root: str | Path, split: str = "val", depth: str | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown Map-free split {split!r}; expected one of {SPLITS}")
        if depth is not None and depth not in DEPTH_VARIANTS:
            raise ValueError(f"unknown Map-free depth variant {depth!r}; expected one of {DEPTH_VARIANTS}")
        self.root = Path(root)
        self.split = split
        self.depth = depth
        self.split_dir = self.root / split

    def scenes(self) -> list[str]:
        """Sorted scene names of the split (directory listing only)."""
        require_dir(self.split_dir, f"Map-free {self.split} split folder")
        return sorted(p.name for p in self.split_dir.iterdir() if p.is_dir() and _SCENE_RE.match(p.name))

    def scene(self, name: str) -> MapFreeScene:
        """Read one scene's ``intrinsics.txt`` and ``poses.txt``; image files must exist."""
        sdir = require_dir(self.split_dir / name, "Map-free scene folder")
        intr_path = sdir / "intrinsics.txt"
        intrinsics = read_intrinsics(intr_path)
        if not intrinsics:
            raise DatasetFormatError(intr_path, None, "no frames listed")
        pose_path = sdir / "poses.txt"
        placeholder = self.split == "test"
        if pose_path.is_file():
            poses = read_poses(pose_path, allow_placeholder=placeholder)
        elif placeholder:
            poses = dict.fromkeys(intrinsics)
        else:
            raise DatasetFormatError(pose_path, None, "file not found")
        missing = [f for f in intrinsics if f not in poses]
        extra = [f for f in poses if f not in intrinsics]
        if missing or extra:
            problem = (f"frames without a pose line: {missing[:5]}" if missing
                       else f"frames missing from intrinsics.txt: {extra[:5]}")
            raise DatasetFormatError(pose_path, None, problem)
        views = []
        for frame, intr in intrinsics.items():
            views.append(self._view(sdir, name, frame, intr, poses[frame], intr_path, intr.line))
        by_frame = {v.meta["frame"]: v for v in views}
        reference = by_frame.get(REFERENCE_FRAME) if self.split != "train" else None
        if self.split != "train" and reference is None:
            raise DatasetFormatError(intr_path, None, f"no reference frame {REFERENCE_FRAME!r}")
        queries = tuple(by_frame[f] for f in sorted(by_frame) if not f.startswith("seq0/"))
        has_gt = any(p is not None for p in poses.values())
        return MapFreeScene(name, self.split, sdir, tuple(views), reference, queries, intrinsics, poses,
                            has_gt)

    def _view(self, sdir: Path, scene: str, frame: str, intr: MapFreeIntrinsics, pose: np.ndarray | None,
              ref: Path, line: int) -> View:
        image = require_file(sdir / frame, ref, line, "image")
        seq, number = (int(x) for x in _FRAME_RE.match(frame).groups())  # type: ignore[union-attr]
        dpath = None
        if self.depth is not None:
            dpath = require_file(depth_path(sdir, frame, self.depth), ref, line, "depth map")
        meta: dict[str, Any] = {"scene": scene, "frame": frame, "seq": seq, "frame_number": number}
        return View(f"{scene}/{frame}", image, intr.width, intr.height, intr.K.copy(),
                    None if pose is None else pose.copy(), dpath, meta)

    def query_frames(self, scene: str | MapFreeScene, stride: int = 5) -> list[View]:
        """Evaluated query frames of the single-frame track: ``queries[0::stride]``."""
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        sc = self.scene(scene) if isinstance(scene, str) else scene
        return list(sc.queries[::stride])


def check(root: str | Path, images: bool = True, splits: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Validate every split present under ``root`` (all text files, every image exists and, with
    ``images``, has the size ``intrinsics.txt`` states) and return counts."""
    root = require_dir(root, "Map-free root")
    present = [s for s in (splits or SPLITS) if (root / s).is_dir()]
    if not present:
        raise DatasetFormatError(root, None, f"no split folder ({', '.join(splits or SPLITS)}) found")
    summary: dict[str, Any] = {"bench": "mapfree", "root": str(root), "splits": {}}
    totals = dict.fromkeys(("scenes", "views", "queries", "evaluated_queries"), 0)
    for split in present:
        ds = MapFreeDataset(root, split)
        counts = dict.fromkeys(totals, 0)
        counts["with_gt"] = 0
        for name in ds.scenes():
            sc = ds.scene(name)
            if images:
                intr_path = sc.root / "intrinsics.txt"
                for v in sc.views:
                    line = sc.intrinsics[v.meta["frame"]].line
                    verify_image_size(v.image_path, v.width, v.height, intr_path, line)
            counts["scenes"] += 1
            counts["views"] += len(sc.views)
            counts["queries"] += len(sc.queries)
            counts["evaluated_queries"] += len(ds.query_frames(sc)) if split != "train" else 0
            counts["with_gt"] += int(sc.has_gt)
        summary["splits"][split] = counts
        for k in totals:
            totals[k] += counts[k]
    summary.update(totals)
    return summary
