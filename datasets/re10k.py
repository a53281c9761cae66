"""RealEstate10K reader: camera files of the release plus frames extracted the PoseDiffusion way.

Layout::

    <root>/{train,test}/<sequence_id>.txt                    camera files (line 1: YouTube URL)
    <frames_root>/{train,test}/<sequence_id>/<timestamp>.png  extracted frames (default frames_root:
                                                              <root>/frames)

The release extracts to ``RealEstate10K/{train,test}/``: ``root`` may also be the folder holding
``RealEstate10K/`` (and ``frames/``), or ``RealEstate10K/`` itself with ``frames/`` inside or beside it
(:func:`camera_root`, :func:`default_frames_root`).

Camera line (19 numbers): ``timestamp_us fx fy cx cy 0 0 r00 r01 r02 t0 r10 r11 r12 t1 r20 r21 r22 t2``
with ``fx fy cx cy`` normalised by the frame width/height and a row-major 3x4 world-to-camera
matrix (OpenCV axes).

Public API:
    ``Re10kDataset(root, split="test", frames_root=None, missing_frames="error")``:
        ``.sequences() -> list[str]`` (camera files, sorted), ``.has_frames(seq) -> bool``,
        ``.sequence(seq, frame_size=None) -> Re10kSequence`` (views in file order; frame size from
        the first frame's PNG header unless given as (W, H)).
    ``Re10kSequence``: ``name, url, views, cameras, missing`` (timestamps skipped when
        ``missing_frames="skip"``; with ``"error"`` a missing frame is an error naming the camera
        file line).
    ``Re10kCamera``: ``timestamp_us, intrinsics_norm (4,), cam_from_world (4, 4)``, ``.K(W, H)``.
    ``camera_root(path)``, ``default_frames_root(camera_root)``: the layout resolution above.
    ``read_camera_file(path) -> (url, list[Re10kCamera])``, ``read_sequence_list(path) -> list[str]``
    (e.g. PoseDiffusion's ``re10k_test_1800.txt``), ``check(root, images=True) -> dict``.

``View.K = [[fx*W, 0, cx*W], [0, fy*H, cy*H], [0, 0, 1]]`` as PoseDiffusion computes it (no half-pixel
shift). ``View.name`` is ``"<sequence>/<timestamp>"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets._parse import (
    data_lines,
    expect_count,
    image_size,
    parse_floats,
    parse_int,
    read_lines,
    require_dir,
    verify_image_size,
)
from datasets.records import DatasetFormatError, K_matrix, View

__all__ = ["RELEASE_DIR", "Re10kCamera", "Re10kDataset", "Re10kSequence", "camera_root", "check",
           "default_frames_root", "has_camera_files", "read_camera_file", "read_sequence_list"]

SPLITS = ("train", "test")
RELEASE_DIR = "RealEstate10K"
"""The folder the release's camera files extract to (``RealEstate10K/{train,test}/``)."""


def has_camera_files(path: Path) -> bool:
    """True when ``path`` holds a ``train`` or ``test`` folder with ``.txt`` camera files."""
    return any((path / s).is_dir() and any((path / s).glob("*.txt")) for s in SPLITS)


def camera_root(path: str | Path) -> Path:
    """The folder holding ``{train,test}/``: ``path`` itself when it holds camera files, else
    ``path/RealEstate10K`` when that does (the release extracted into ``path``), else ``path``."""
    path = Path(path)
    if not has_camera_files(path) and has_camera_files(path / RELEASE_DIR):
        return path / RELEASE_DIR
    return path


def default_frames_root(root: str | Path) -> Path:
    """Folder of ``<split>/<sequence>/<timestamp>.png`` for a camera root: ``root/frames``, or
    ``root/../frames`` when ``root`` is a ``RealEstate10K`` release folder without ``frames/`` and its
    parent has one (frames extracted beside the release)."""
    root = Path(root)
    inside, beside = root / "frames", root.parent / "frames"
    if root.name == RELEASE_DIR and not inside.is_dir() and beside.is_dir():
        return beside
    return inside


@dataclass(frozen=True)
class Re10kCamera:
    """One camera line: ``intrinsics_norm`` = (fx, fy, cx, cy) / (W, H, W, H); ``line`` in the file."""

    timestamp_us: int
    intrinsics_norm: np.ndarray
    cam_from_world: np.ndarray
    line: int = 0

    def K(self, width: int, height: int) -> np.ndarray:
        """(3, 3) float64 intrinsics in pixels of a ``width`` x ``height`` frame."""
        fx, fy, cx, cy = self.intrinsics_norm
        return K_matrix(fx * width, fy * height, cx * width, cy * height)


@dataclass(frozen=True)
class Re10kSequence:
    name: str
    url: str
    views: tuple[View, ...]
    cameras: tuple[Re10kCamera, ...]
    missing: tuple[int, ...] = ()


def read_camera_file(path: str | Path) -> tuple[str, list[Re10kCamera]]:
    """``(url, cameras)`` of a camera file; malformed lines raise naming file and line."""
    path = Path(path)
    lines = read_lines(path)
    url = lines[0].strip() if lines else ""
    if not url or len(url.split()) != 1 or url[0].isdigit() or url[0] == "-":
        raise DatasetFormatError(path, 1, f"expected the video URL on line 1, got {url[:60]!r}")
    cams: list[Re10kCamera] = []
    seen: set[int] = set()
    for line, tokens in data_lines(path, comment=None):
        if line == 1:
            continue
        expect_count(tokens, 19, path, line, "timestamp fx fy cx cy 0 0 + 3x4 world-to-camera")
        ts = parse_int(tokens[0], path, line, "timestamp")
        v = parse_floats(tokens[1:], path, line, "camera value")
        if np.any(v[:4] <= 0):
            raise DatasetFormatError(path, line,
                                     f"normalised intrinsics must be positive, got {v[:4].tolist()}")
        P = v[6:].reshape(3, 4)
        R = P[:, :3]
        if np.abs(R.T @ R - np.eye(3)).max() > 1e-3 or np.linalg.det(R) <= 0:
            raise DatasetFormatError(path, line, "the 3x3 part of the pose is not a rotation")
        T = np.eye(4)
        T[:3] = P
        if ts in seen:
            raise DatasetFormatError(path, line, f"duplicate timestamp {ts}")
        seen.add(ts)
        cams.append(Re10kCamera(ts, v[:4].copy(), T, line))
    return url, cams


def read_sequence_list(path: str | Path) -> list[str]:
    """One sequence id per line (blank lines and ``#`` comments skipped)."""
    out = []
    for line, tokens in data_lines(path):
        expect_count(tokens, 1, path, line, "sequence_id")
        out.append(tokens[0])
    return out


class Re10kDataset:
    """Lazy RealEstate10K reader (see the module docstring)."""

    def __init__(self, root: str | Path, split: str = "test", frames_root: str | Path | None = None,
                 missing_frames: str = "error") -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown RealEstate10K split {split!r}; expected one of {SPLITS}")
        if missing_frames not in ("error", "skip"):
            raise ValueError(f"missing_frames must be 'error' or 'skip', got {missing_frames!r}")
        self.root = camera_root(root)
        self.split = split
        self.frames_root = Path(frames_root) if frames_root is not None else default_frames_root(self.root)
        self.frames_dir = self.frames_root / split
        self.missing_frames = missing_frames

    def camera_path(self, seq: str) -> Path:
        return self.root / self.split / f"{seq}.txt"

    def sequences(self) -> list[str]:
        d = require_dir(self.root / self.split, f"RealEstate10K {self.split} camera folder")
        return sorted(p.stem for p in d.glob("*.txt"))

    def has_frames(self, seq: str) -> bool:
        return (self.frames_dir / seq).is_dir()

    def frame_path(self, seq: str, timestamp_us: int) -> Path:
        return self.frames_dir / seq / f"{timestamp_us}.png"

    def sequence(self, seq: str, frame_size: tuple[int, int] | None = None) -> Re10kSequence:
        cam_path = self.camera_path(seq)
        url, cams = read_camera_file(cam_path)
        if not self.has_frames(seq):
            raise DatasetFormatError(cam_path, None, f"no frames extracted for this sequence "
                                     f"(expected folder {self.frames_dir / seq})")
        present, missing = [], []
        for c in cams:
            if self.frame_path(seq, c.timestamp_us).is_file():
                present.append(c)
            elif self.missing_frames == "skip":
                missing.append(c.timestamp_us)
            else:
                frame = self.frame_path(seq, c.timestamp_us)
                raise DatasetFormatError(cam_path, c.line, f"missing frame {frame}")
        if frame_size is None and present:
            frame_size = image_size(self.frame_path(seq, present[0].timestamp_us))
        views = []
        for c in present:
            w, h = frame_size  # type: ignore[misc]
            meta: dict[str, Any] = {"sequence": seq, "timestamp_us": c.timestamp_us}
            views.append(View(f"{seq}/{c.timestamp_us}", self.frame_path(seq, c.timestamp_us), w, h,
                              c.K(w, h), c.cam_from_world.copy(), None, meta))
        return Re10kSequence(seq, url, tuple(views), tuple(present), tuple(missing))


def check(root: str | Path, images: bool = True, splits: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Validate all camera files of the splits present; for sequences with extracted frames every
    frame must exist and (with ``images``) share the first frame's size. Returns counts."""
    root = camera_root(require_dir(root, "RealEstate10K root"))
    present = [s for s in (splits or SPLITS) if (root / s).is_dir()]
    if not present:
        raise DatasetFormatError(root, None, f"no split folder (train, test) of camera files found, "
                                 f"nor a {RELEASE_DIR}/ folder holding one")
    summary: dict[str, Any] = {"bench": "re10k", "root": str(root),
                               "frames_root": str(default_frames_root(root)), "splits": {}}
    keys = ("sequences", "sequences_with_frames", "cameras", "views")
    totals = dict.fromkeys(keys, 0)
    for split in present:
        ds = Re10kDataset(root, split)
        counts = dict.fromkeys(keys, 0)
        for seq in ds.sequences():
            _, cams = read_camera_file(ds.camera_path(seq))
            counts["sequences"] += 1
            counts["cameras"] += len(cams)
            if not ds.has_frames(seq):
                continue
            sq = ds.sequence(seq)
            if images:
                for v, c in zip(sq.views, sq.cameras):
                    verify_image_size(v.image_path, v.width, v.height, ds.camera_path(seq), c.line)
            counts["sequences_with_frames"] += 1
            counts["views"] += len(sq.views)
        summary["splits"][split] = counts
        for k in keys:
            totals[k] += counts[k]
    summary.update(totals)
    return summary
