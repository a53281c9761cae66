"""InLoc reader (indoor localisation against RGB-D cutouts of DUC1 / DUC2), original release layout.

Layout (``root``)::

    query/iphone7/IMG_XXXX.JPG                                        queries (4032x3024)
    database/cutouts/{DUC1,DUC2}/<scan>/DUC_cutout_<scan>_<yaw>_<pitch>.jpg      1600x1200 cutouts
    database/cutouts/{DUC1,DUC2}/<scan>/DUC_cutout_<scan>_<yaw>_<pitch>.jpg.mat  XYZcut (H, W, 3)
    database/alignments/{DUC1,DUC2}/transformations/DUC_trans_<scan>.txt          scan -> world
    database/alignments/{DUC1,DUC2}/all_transformations.txt                       (alternative)
    pairs/**.txt  (hloc "query/iphone7/IMG.JPG database/cutouts/DUC1/...jpg")                optional

Public API:
    ``InLocDataset(root, cutout_size=None)`` (size read from the first cutout):
        ``.queries() -> list[View]`` (sorted; size from the image header, EXIF applied;
        ``K``: f = 4032*28/36 px scaled by long side / 4032, principal point at the image centre),
        ``.cutouts(building=None) -> list[View]`` (sorted; ``meta``: building, scan, yaw, pitch;
        no ``K``/pose: the 3D comes from XYZcut), ``.cutout(name) -> View``,
        ``.cutout_xyz(view) -> (H, W, 3) float64`` scan-frame points (NaN holes; loaded per call),
        ``.scan_transform(building, scan) -> (4, 4) float64`` after-GICP scan->world,
        ``.cutout_xyz_world(view)``, ``.pairs(path, topk=None) -> dict[query, [(db, score)]]``.
    ``read_trans_file(path) -> ScanAlignment``, ``read_all_transformations(path) -> dict[scan,
    ScanAlignment]``, ``parse_cutout_name(name) -> (scan, yaw, pitch)``, ``QUERY_FOCAL_PX``,
    ``check(root, images=True) -> dict``.

Names are relative to ``root`` (as in hloc's pair files). Queries carry no GT pose (hidden).
World point of a cutout pixel (x, y): ``P_after @ [XYZcut[y, x], 1]`` (hloc).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets._parse import (
    data_lines,
    group_pairs,
    image_size,
    load_mat,
    parse_floats,
    read_hloc_pairs,
    read_lines,
    require_dir,
    require_file,
    verify_image_size,
)
from datasets.records import Camera, DatasetFormatError, View

__all__ = [
    "BUILDINGS",
    "QUERY_FOCAL_PX",
    "InLocDataset",
    "ScanAlignment",
    "check",
    "parse_cutout_name",
    "read_all_transformations",
    "read_trans_file",
]

BUILDINGS = ("DUC1", "DUC2")
QUERY_FOCAL_PX = 4032.0 * 28.0 / 36.0  # iPhone 7: 28 mm equivalent focal on a 4032-px-wide sensor
_CUTOUT_RE = re.compile(r"^[A-Za-z0-9]+_cutout_([0-9A-Za-z]+)_(-?\d+)_(-?\d+)\.jpg$")
_BEFORE, _AFTER = "before general icp:", "after general icp:"


@dataclass(frozen=True)
class ScanAlignment:
    """Scan-to-world transforms (4, 4) float64 before and after general ICP (``after`` is used)."""

    before: np.ndarray | None
    after: np.ndarray


def parse_cutout_name(name: str) -> tuple[str, int, int]:
    """``(scan, yaw, pitch)`` of ``.../DUC_cutout_<scan>_<yaw>_<pitch>.jpg``."""
    m = _CUTOUT_RE.match(Path(name).name)
    if m is None:
        raise ValueError(f"not an InLoc cutout name: {name!r}")
    return m.group(1), int(m.group(2)), int(m.group(3))


def _read_matrix(path: Path, lines: list[str], start: int) -> tuple[np.ndarray, int]:
    """4x4 matrix from the next 4 non-blank lines after index ``start``; returns (matrix, next index)."""
    rows: list[np.ndarray] = []
    i = start
    while len(rows) < 4:
        if i >= len(lines):
            raise DatasetFormatError(path, len(lines), f"unexpected end of file inside a 4x4 matrix "
                                     f"({len(rows)} rows read)")
        tokens = lines[i].split()
        i += 1
        if not tokens:
            continue
        if len(tokens) != 4:
            raise DatasetFormatError(path, i, f"expected a matrix row of 4 numbers, got {len(tokens)} fields")
        rows.append(parse_floats(tokens, path, i, "matrix entry"))
    return np.stack(rows), i


def _parse_alignments(path: Path) -> dict[str | None, ScanAlignment]:
    lines = read_lines(path)
    out: dict[str | None, ScanAlignment] = {}
    scan: str | None = None
    scan_line = 0
    before: np.ndarray | None = None
    i = 0
    while i < len(lines):
        text = lines[i].strip()
        i += 1
        if not text:
            continue
        low = text.lower()
        if low == _BEFORE:
            before, i = _read_matrix(path, lines, i)
        elif low == _AFTER:
            after, i = _read_matrix(path, lines, i)
            if scan in out:
                raise DatasetFormatError(path, scan_line, f"duplicate alignment of scan {scan!r}")
            out[scan] = ScanAlignment(before, after)
            before = None
        elif len(text.split()) == 1 and not low.endswith(":"):
            scan, scan_line, before = text, i, None
        else:
            raise DatasetFormatError(path, i, f"unexpected line {text[:40]!r} (expected a scan id, "
                                     "'Before general icp:' or 'After general icp:')")
    return out


def read_trans_file(path: str | Path) -> ScanAlignment:
    """Per-scan ``DUC_trans_<scan>.txt``: 'Before general icp:' + 4 rows, 'After general icp:' + 4 rows."""
    path = Path(path)
    found = _parse_alignments(path)
    if len(found) != 1:
        raise DatasetFormatError(path, None, f"expected one 'After general icp:' matrix, found {len(found)}")
    return next(iter(found.values()))


def read_all_transformations(path: str | Path) -> dict[str, ScanAlignment]:
    """``all_transformations.txt``: for every scan, its id line then the two matrices."""
    path = Path(path)
    found = _parse_alignments(path)
    if None in found:
        raise DatasetFormatError(path, None, "a matrix block appears before any scan id line")
    return {str(k): v for k, v in found.items()}


class InLocDataset:
    """Lazy InLoc reader (see the module docstring)."""

    def __init__(self, root: str | Path, cutout_size: tuple[int, int] | None = None) -> None:
        """``cutout_size`` (W, H) of every cutout; ``None`` reads it once from the first cutout's
        header (the real release: 1600x1200). All cutouts of a release share one size."""
        self.root = Path(root)
        self._cutout_size = cutout_size
        self._align: dict[tuple[str, str], np.ndarray] = {}
        self._all: dict[str, dict[str, ScanAlignment]] = {}

    @property
    def cutout_size(self) -> tuple[int, int]:
        """(W, H) of the cutouts."""
        if self._cutout_size is None:
            for b in BUILDINGS:
                first = next(iter(sorted((self.root / "database" / "cutouts" / b).glob("*/*.jpg"))), None)
                if first is not None:
                    self._cutout_size = image_size(first)
                    break
            else:
                self._cutout_size = (1600, 1200)
        return self._cutout_size

    def query_paths(self) -> list[Path]:
        qdir = require_dir(self.root / "query" / "iphone7", "InLoc query folder")
        return sorted(p for p in qdir.iterdir() if p.suffix.lower() == ".jpg")

    def query_view(self, path: Path) -> View:
        w, h = image_size(path)
        f = QUERY_FOCAL_PX * max(w, h) / 4032.0
        cam = Camera("SIMPLE_PINHOLE", w, h, (f, w / 2.0, h / 2.0), colmap_centres=True)
        name = path.relative_to(self.root).as_posix()
        return View(name, path, w, h, cam.K, None, None, {"basename": path.name, "camera": cam.to_meta()})

    def queries(self) -> list[View]:
        """All queries, sorted by name (reads each image header for its size)."""
        return [self.query_view(p) for p in self.query_paths()]

    def cutouts(self, building: str | None = None) -> list[View]:
        """Database cutouts of ``building`` (or both), sorted by name."""
        out: list[View] = []
        for b in BUILDINGS if building is None else (building,):
            bdir = require_dir(self.root / "database" / "cutouts" / b, f"InLoc {b} cutout folder")
            out.extend(self._cutout_view(p) for p in sorted(bdir.glob("*/*.jpg")))
        return out

    def cutout(self, name: str) -> View:
        """The cutout named ``database/cutouts/<B>/<scan>/<file>.jpg``."""
        return self._cutout_view(require_file(self.root / name, what="cutout image"))

    def _cutout_view(self, path: Path) -> View:
        name = path.relative_to(self.root).as_posix()
        parts = name.split("/")
        if len(parts) != 5 or parts[:2] != ["database", "cutouts"] or parts[2] not in BUILDINGS:
            raise DatasetFormatError(path, None, "not at database/cutouts/{DUC1,DUC2}/<scan>/<file>.jpg")
        try:
            scan, yaw, pitch = parse_cutout_name(path.name)
        except ValueError as exc:
            raise DatasetFormatError(path, None, str(exc)) from None
        if scan != parts[3]:
            raise DatasetFormatError(path, None, f"cutout of scan {scan!r} stored in folder {parts[3]!r}")
        meta = {"building": parts[2], "scan": scan, "yaw": yaw, "pitch": pitch}
        w, h = self.cutout_size
        return View(name, path, w, h, None, None, None, meta)

    def cutout_xyz(self, view: View | str) -> np.ndarray:
        """(H, W, 3) float64 XYZcut of a cutout in its scan's frame (NaN where no depth)."""
        v = self.cutout(view) if isinstance(view, str) else view
        mat = Path(str(v.image_path) + ".mat")
        xyz = load_mat(mat, ["XYZcut"])["XYZcut"]
        if xyz.shape != (v.height, v.width, 3):
            raise DatasetFormatError(mat, None, f"XYZcut has shape {xyz.shape}, expected "
                                     f"({v.height}, {v.width}, 3) for a {v.width}x{v.height} cutout")
        return xyz.astype(np.float64)

    def scan_transform(self, building: str, scan: str) -> np.ndarray:
        """(4, 4) float64 after-GICP transform scan -> world, from ``transformations/DUC_trans_<scan>.txt``
        or, if absent, ``all_transformations.txt``."""
        key = (building, scan)
        if key not in self._align:
            adir = self.root / "database" / "alignments" / building
            per_scan = adir / "transformations" / f"DUC_trans_{scan}.txt"
            if per_scan.is_file():
                self._align[key] = read_trans_file(per_scan).after
            else:
                all_path = adir / "all_transformations.txt"
                if not all_path.is_file():
                    raise DatasetFormatError(per_scan, None, f"no alignment for scan {scan!r} of {building} "
                                             f"(neither this file nor {all_path.name} exists)")
                if building not in self._all:
                    self._all[building] = read_all_transformations(all_path)
                if scan not in self._all[building]:
                    raise DatasetFormatError(all_path, None, f"no alignment for scan {scan!r}")
                self._align[key] = self._all[building][scan].after
        return self._align[key].copy()

    def cutout_xyz_world(self, view: View | str) -> np.ndarray:
        """(H, W, 3) float64 XYZcut mapped to the world frame by the after-GICP transform."""
        v = self.cutout(view) if isinstance(view, str) else view
        P = self.scan_transform(v.meta["building"], v.meta["scan"])
        xyz = self.cutout_xyz(v)
        return xyz @ P[:3, :3].T + P[:3, 3]

    def pairs(self, path: str | Path, topk: int | None = None) -> dict[str, list[tuple[str, float]]]:
        """hloc pairs ``query db`` (names relative to ``root``); every named image must exist."""
        path = Path(path)
        pairs = read_hloc_pairs(path)
        checked: set[str] = set()
        for (line, _), pair in zip(data_lines(path), pairs):
            for name in pair:
                if name not in checked:
                    require_file(self.root / name, path, line, "image")
                    checked.add(name)
        return group_pairs(pairs, topk)


def check(root: str | Path, images: bool = True,
          cutout_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Validate queries, cutouts (image + ``.jpg.mat`` present), every scan's alignment and the pair
    files under ``root/pairs``; with ``images``, every cutout's header size against ``cutout_size``
    (default: the first cutout's). Returns counts."""
    root = require_dir(root, "InLoc root")
    ds = InLocDataset(root, cutout_size)
    queries = ds.queries()
    counts: dict[str, Any] = {"bench": "inloc", "root": str(root), "queries": len(queries)}
    total, scans = 0, 0
    for b in BUILDINGS:
        cut = ds.cutouts(b)
        for v in cut:
            require_file(Path(str(v.image_path) + ".mat"), v.image_path, None, "XYZcut file")
            if images:
                verify_image_size(v.image_path, v.width, v.height)
        b_scans = sorted({v.meta["scan"] for v in cut})
        for s in b_scans:
            ds.scan_transform(b, s)
        counts[f"database_images_{b}"] = len(cut)
        total += len(cut)
        scans += len(b_scans)
    counts.update(database_images=total, scans=scans)
    pair_files = sorted((root / "pairs").rglob("*.txt")) if (root / "pairs").is_dir() else []
    pair_counts = {str(p.relative_to(root)): sum(len(x) for x in ds.pairs(p).values()) for p in pair_files}
    counts.update(pairs=sum(pair_counts.values()), pair_files=pair_counts)
    return counts
