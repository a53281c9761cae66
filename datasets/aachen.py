"""Aachen Day-Night v1.1 reader (visual localisation against a COLMAP model).

Layout (``root``; images either in ``root/images_upright`` or hloc's ``root/images/images_upright``)::

    images_upright/{db,sequences,query/{day,night}/<device>}/...
    queries/{day,night}_time_queries_with_intrinsics.txt     name SIMPLE_RADIAL w h f cx cy k
    3D-models/aachen_v_1_1/{cameras,images,points3D}.bin     (or .txt), aachen_v_1_1.nvm,
                           database_intrinsics_v1_1.txt
    pairs/**.txt (hloc "q db"), pairsfile/**.txt (kapture "q, db, score")   optional

Public API:
    ``AachenDataset(root, model_dir=None)``: ``.queries(condition=None) -> list[View]`` (day then
        night, file order; ``K`` from the list, ``meta``: ``condition, device, basename, camera``;
        ``cam_from_world`` None: GT is hidden), ``.model -> ColmapModel``, ``.db_views() -> list[View]``,
        ``.db_view(name) -> View``, ``.db_points(name) -> ImagePoints``,
        ``.pairs(path, topk=None) -> dict[query, list[(db, score)]]`` (validated names).
    ``read_camera_list(path) -> list[(name, Camera)]`` (query and database intrinsics lists),
    ``read_nvm(path, points=False) -> NvmModel``, ``read_hloc_pairs``, ``read_kapture_pairs``,
    ``group_pairs``, ``check(root, images=True) -> dict``.

Conventions: names are relative to ``images_upright/``. ``Camera.params`` keep the file's COLMAP
values; ``View.K`` is in OpenCV pixels (principal point - 0.5). COLMAP and NVM poses become OpenCV
``cam_from_world`` (NVM stores the camera *centre*: ``t = -R c``). Quaternions are wxyz.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets._parse import (
    data_lines,
    expect_count,
    group_pairs,
    parse_floats,
    parse_int,
    read_hloc_pairs,
    read_kapture_pairs,
    require_dir,
    require_file,
    verify_image_size,
)
from datasets.colmap import ColmapModel, ImagePoints
from datasets.records import (
    Camera,
    DatasetFormatError,
    View,
    camera_model_num_params,
    pose_matrix,
    quat_wxyz_to_R,
)

__all__ = [
    "AachenDataset",
    "NvmCamera",
    "NvmModel",
    "check",
    "group_pairs",
    "read_camera_list",
    "read_hloc_pairs",
    "read_kapture_pairs",
    "read_nvm",
]

QUERY_LISTS = {"day": "day_time_queries_with_intrinsics.txt",
               "night": "night_time_queries_with_intrinsics.txt"}
MODEL_DIR = Path("3D-models") / "aachen_v_1_1"


def read_camera_list(path: str | Path) -> list[tuple[str, Camera]]:
    """``name MODEL w h params...`` per line (query lists, ``database_intrinsics_v1_1.txt``)."""
    path = Path(path)
    out: list[tuple[str, Camera]] = []
    seen: set[str] = set()
    for line, tokens in data_lines(path):
        if len(tokens) < 4:
            raise DatasetFormatError(path, line,
                                     f"expected 'name MODEL w h params...', got {len(tokens)} fields")
        name, model = tokens[0], tokens[1]
        try:
            n_params = camera_model_num_params(model)
        except KeyError:
            raise DatasetFormatError(path, line, f"unknown camera model {model!r}") from None
        expect_count(tokens, 4 + n_params, path, line, f"name {model} w h + {n_params} params")
        w, h = parse_int(tokens[2], path, line, "width"), parse_int(tokens[3], path, line, "height")
        if w <= 0 or h <= 0:
            raise DatasetFormatError(path, line, f"image size must be positive, got {w}x{h}")
        params = tuple(float(p) for p in parse_floats(tokens[4:], path, line, "camera parameter"))
        if params[0] <= 0:
            raise DatasetFormatError(path, line, f"focal length must be positive, got {params[0]}")
        if name in seen:
            raise DatasetFormatError(path, line, f"duplicate image {name!r}")
        seen.add(name)
        out.append((name, Camera(model, w, h, params, colmap_centres=True)))
    return out


@dataclass(frozen=True)
class NvmCamera:
    """One NVM camera: ``focal`` (px), ``cam_from_world`` (4, 4) float64, ``radial`` distortion."""

    name: str
    focal: float
    cam_from_world: np.ndarray
    radial: float


@dataclass(frozen=True)
class NvmModel:
    """First model of an NVM_V3 file. Points (when read): ``xyz`` (M, 3) float64, ``rgb`` (M, 3)
    uint8, ``observations`` (K, 3) int64 rows ``(point_index, camera_index, feature_index)`` and
    ``observation_xy`` (K, 2) float64, NVM measurement coordinates (relative to the image centre)."""

    cameras: tuple[NvmCamera, ...]
    xyz: np.ndarray | None = None
    rgb: np.ndarray | None = None
    observations: np.ndarray | None = None
    observation_xy: np.ndarray | None = None


def read_nvm(path: str | Path, points: bool = False) -> NvmModel:
    """Read an NVM_V3 file: cameras (``name f qw qx qy qz cx cy cz radial 0``), optionally points."""
    path = Path(path)
    try:
        fh = path.open("r", encoding="utf-8")
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "file not found") from None
    with fh:
        lines = ((i, raw.split()) for i, raw in enumerate(fh, start=1))
        lines = ((i, t) for i, t in lines if t)  # blank lines are allowed anywhere

        def next_line(what: str) -> tuple[int, list[str]]:
            try:
                return next(lines)
            except StopIteration:
                raise DatasetFormatError(path, None, f"unexpected end of file, expected {what}") from None

        line, tokens = next_line("the NVM_V3 header")
        if tokens[0] != "NVM_V3":
            raise DatasetFormatError(path, line, f"expected 'NVM_V3' header, got {tokens[0]!r}")
        line, tokens = next_line("the number of cameras")
        expect_count(tokens, 1, path, line, "number of cameras")
        n_cams = parse_int(tokens[0], path, line, "number of cameras")
        cameras = []
        for _ in range(n_cams):
            line, tokens = next_line("a camera line")
            expect_count(tokens, (10, 11), path, line, "name f qw qx qy qz cx cy cz radial 0")
            v = parse_floats(tokens[1:10], path, line, "camera value")
            R = quat_wxyz_to_R(v[1:5], path=path, line=line)
            cameras.append(NvmCamera(tokens[0], float(v[0]), pose_matrix(R, -R @ v[5:8]), float(v[8])))
        if not points:
            return NvmModel(tuple(cameras))
        line, tokens = next_line("the number of points")
        expect_count(tokens, 1, path, line, "number of points")
        n_pts = parse_int(tokens[0], path, line, "number of points")
        xyz = np.zeros((n_pts, 3))
        rgb = np.zeros((n_pts, 3), np.uint8)
        obs: list[np.ndarray] = []
        for k in range(n_pts):
            line, tokens = next_line("a point line")
            if len(tokens) < 7:
                raise DatasetFormatError(path, line, "expected 'x y z r g b n [img feat x y]*n'")
            n_obs = parse_int(tokens[6], path, line, "number of measurements")
            expect_count(tokens, 7 + 4 * n_obs, path, line, f"x y z r g b n + {n_obs} measurements")
            xyz[k] = parse_floats(tokens[:3], path, line, "point coordinate")
            rgb[k] = [parse_int(t, path, line, "colour") for t in tokens[3:6]]
            m = parse_floats(tokens[7:], path, line, "measurement").reshape(n_obs, 4)
            if np.any(m[:, 0] >= n_cams) or np.any(m[:, 0] < 0):
                raise DatasetFormatError(path, line, f"camera index out of range [0, {n_cams})")
            obs.append(np.column_stack([np.full(n_obs, k), m]))
    allobs = np.concatenate(obs) if obs else np.zeros((0, 5))
    return NvmModel(tuple(cameras), xyz, rgb, allobs[:, :3].astype(np.int64), allobs[:, 3:].copy())


class AachenDataset:
    """Lazy Aachen Day-Night v1.1 reader (see the module docstring)."""

    def __init__(self, root: str | Path, model_dir: str | Path | None = None) -> None:
        self.root = Path(root)
        hloc_images = self.root / "images" / "images_upright"
        self.images_dir = hloc_images if hloc_images.is_dir() else self.root / "images_upright"
        self.model_dir = Path(model_dir) if model_dir is not None else self.root / MODEL_DIR
        self._model: ColmapModel | None = None

    def query_list_paths(self) -> dict[str, Path]:
        return {c: self.root / "queries" / f for c, f in QUERY_LISTS.items()}

    def queries(self, condition: str | None = None) -> list[View]:
        """Query views of ``condition`` (``"day"``, ``"night"`` or both), list order; images must exist."""
        if condition is not None and condition not in QUERY_LISTS:
            raise ValueError(f"unknown Aachen condition {condition!r}; expected 'day' or 'night'")
        require_dir(self.images_dir, "Aachen images_upright folder")
        out = []
        for cond, path in self.query_list_paths().items():
            if condition is not None and cond != condition:
                continue
            for line, (name, cam) in zip(_line_numbers(path), read_camera_list(path)):
                image = require_file(self.images_dir / name, path, line, "query image")
                parts = name.split("/")
                meta: dict[str, Any] = {"condition": cond, "device": parts[2] if len(parts) > 3 else "",
                                        "basename": parts[-1], "camera": cam.to_meta()}
                out.append(View(name, image, cam.width, cam.height, cam.K, None, None, meta))
        return out

    @property
    def model(self) -> ColmapModel:
        """The reference COLMAP model (loaded on first access of its content)."""
        if self._model is None:
            self._model = ColmapModel(self.model_dir)
        return self._model

    def db_view(self, name: str) -> View:
        """A reference image of the model as a view (pose and K from the model)."""
        im = self.model.image(name)
        meta = {"image_id": im.image_id, "camera": im.camera.to_meta()}
        return View(name, self.images_dir / name, im.camera.width, im.camera.height, im.camera.K,
                    im.cam_from_world, None, meta)

    def db_views(self) -> list[View]:
        """All reference images of the model, sorted by name."""
        return [self.db_view(n) for n in self.model.image_names()]

    def db_points(self, name: str) -> ImagePoints:
        """2D keypoints (OpenCV pixels) of db image ``name`` with their 3D point ids and xyz."""
        return self.model.points_of_image(name)

    def pairs(self, path: str | Path, topk: int | None = None) -> dict[str, list[tuple[str, float]]]:
        """Read an hloc or kapture pairs file; every named image must exist under ``images_upright``."""
        path = Path(path)
        pairs = read_pairs_any(path)
        checked: set[str] = set()
        for line, pair in zip(_line_numbers(path), pairs):
            for name in pair[:2]:
                if name not in checked:
                    require_file(self.images_dir / name, path, line, "image")
                    checked.add(name)
        return group_pairs(pairs, topk)


def read_pairs_any(path: str | Path) -> list[tuple[Any, ...]]:
    """hloc (``q db``) or kapture (``q, db, score``) pairs, told apart by a comma on the first line."""
    first = next(data_lines(path), None)
    if first is not None and "," in " ".join(first[1]):
        return list(read_kapture_pairs(path))
    return list(read_hloc_pairs(path))


def _line_numbers(path: Path) -> list[int]:
    return [line for line, _ in data_lines(path)]


def _find_pair_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for sub in ("pairs", "pairsfile", "pairfiles"):
        if (root / sub).is_dir():
            found.extend(sorted((root / sub).rglob("*.txt")))
    return found


def check(root: str | Path, images: bool = True) -> dict[str, Any]:
    """Validate query lists, the COLMAP model (sizes, poses, image files) and pair files; counts."""
    root = require_dir(root, "Aachen root")
    ds = AachenDataset(root)
    day, night = ds.queries("day"), ds.queries("night")
    if images:
        for cond, views in (("day", day), ("night", night)):
            ref = ds.query_list_paths()[cond]
            for line, v in zip(_line_numbers(ref), views):
                verify_image_size(v.image_path, v.width, v.height, ref, line)
    ds.model.verify()
    db = ds.db_views()
    images_bin = ds.model._file("images")
    for v in db:
        require_file(v.image_path, images_bin, None, f"image of model image {v.name!r}")
        if images:
            verify_image_size(v.image_path, v.width, v.height, images_bin)
    pair_counts = {str(p.relative_to(root)): sum(len(x) for x in ds.pairs(p).values())
                   for p in _find_pair_files(root)}
    nvm = ds.model_dir / "aachen_v_1_1.nvm"
    return {
        "bench": "aachen", "root": str(root),
        "queries": len(day) + len(night), "queries_day": len(day), "queries_night": len(night),
        "database_images": len(db), "cameras": len(ds.model.cameras()),
        "points3d": ds.model.num_points3d(),
        "nvm_cameras": len(read_nvm(nvm).cameras) if nvm.is_file() else None,
        "pairs": sum(pair_counts.values()), "pair_files": pair_counts,
    }

