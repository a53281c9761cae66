"""CO3Dv2 reader (facebookresearch/co3d layout) and PoseDiffusion's relpose++ annotations.

Layout (``root``)::

    <category>/frame_annotations.jgz       gzipped JSON list of FrameAnnotation
    <category>/sequence_annotations.jgz    gzipped JSON list of SequenceAnnotation
    <category>/set_lists/set_lists_<subset>.json   {"train"|"val"|"test": [[seq, frame_number, path], ...]}
    <category>/<sequence>/{images,masks,depths,depth_masks}/...   (paths in the annotations are
                                                                    relative to ``root``)

Public API:
    ``Co3dDataset(root)``: ``.categories() -> list[str]``, ``.frames(category) -> list[Co3dFrame]``
        (file order, parsed once per instance), ``.sequence_names(category) -> list[str]``,
        ``.sequence(category, name) -> Co3dSequence`` (views sorted by ``frame_number``),
        ``.frame_view(category, frame) -> View``, ``.sequence_annotations(category) ->
        dict[str, Co3dSequenceAnnotation]``, ``.set_list(category, subset="fewview_dev") ->
        dict[split, list[SetListEntry]]``.
    ``Co3dFrame``: raw annotation fields (``R``, ``T`` PyTorch3D, ``focal_length``/``principal_point``
        NDC, ``image_hw`` = ``image.size`` = (H, W)) and ``.cam_from_world``/``.K`` (OpenCV, pixels).
    ``pytorch3d_to_opencv(R, T, focal, pp, image_hw, intrinsics_format) -> (cam_from_world, K)``.
    ``read_frame_annotations``, ``read_sequence_annotations``, ``read_set_list``,
    ``read_depth(path, scale_adjustment) -> (H, W) float32``.
    relpose++ (PoseDiffusion) annotation files: see ``datasets.co3dv2_relpose``.
    ``CATEGORIES`` (51), ``SEEN_CATEGORIES`` (41, PoseDiffusion's training set), ``UNSEEN_CATEGORIES``.
    ``check(root, images=True) -> dict``.

Conventions: PyTorch3D ``X_cam = X_world @ R + T`` (row vectors, +X left, +Y up) becomes OpenCV
``cam_from_world = [[R_cv, t_cv]]`` with ``R_cv = (R with columns 0, 1 negated)^T`` and
``t_cv = T with entries 0, 1 negated``; ``ndc_isotropic``: focal_px = focal_ndc * min(H, W) / 2,
pp_px = (W/2, H/2) - pp_ndc * min(H, W) / 2 (``ndc_norm_image_bounds``: per-axis W/2, H/2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets._parse import (
    json_array,
    json_field,
    read_jgz,
    read_json,
    require_dir,
    require_file,
    verify_image_size,
)
from datasets.records import DatasetFormatError, K_matrix, View, pose_matrix

__all__ = [
    "CATEGORIES",
    "SEEN_CATEGORIES",
    "UNSEEN_CATEGORIES",
    "Co3dDataset",
    "Co3dFrame",
    "Co3dSequence",
    "Co3dSequenceAnnotation",
    "SetListEntry",
    "check",
    "pytorch3d_to_opencv",
    "read_depth",
    "read_frame_annotations",
    "read_sequence_annotations",
    "read_set_list",
]

SEEN_CATEGORIES = (
    "apple", "backpack", "banana", "baseballbat", "baseballglove", "bench", "bicycle", "bottle", "bowl",
    "broccoli", "cake", "car", "carrot", "cellphone", "chair", "cup", "donut", "hairdryer", "handbag",
    "hydrant", "keyboard", "laptop", "microwave", "motorcycle", "mouse", "orange", "parkingmeter", "pizza",
    "plant", "stopsign", "teddybear", "toaster", "toilet", "toybus", "toyplane", "toytrain", "toytruck",
    "tv", "umbrella", "vase", "wineglass",
)
UNSEEN_CATEGORIES = (
    "ball", "book", "couch", "frisbee", "hotdog", "kite", "remote", "sandwich", "skateboard", "suitcase",
)
CATEGORIES = tuple(sorted(SEEN_CATEGORIES + UNSEEN_CATEGORIES))


# --------------------------------------------------------------------------------------------------
# Annotation records and parsers
# --------------------------------------------------------------------------------------------------

_INTRINSICS_FORMATS = ("ndc_isotropic", "ndc_norm_image_bounds")


def pytorch3d_to_opencv(R: Any, T: Any, focal_length: Any, principal_point: Any, image_hw: tuple[int, int],
                        intrinsics_format: str = "ndc_isotropic") -> tuple[np.ndarray, np.ndarray]:
    """OpenCV ``cam_from_world`` (4, 4) and ``K`` (3, 3), float64 pixels, of a PyTorch3D NDC camera."""
    if intrinsics_format not in _INTRINSICS_FORMATS:
        raise ValueError(f"unknown intrinsics_format {intrinsics_format!r}; expected {_INTRINSICS_FORMATS}")
    R = np.asarray(R, dtype=np.float64).reshape(3, 3)
    T = np.asarray(T, dtype=np.float64).reshape(3)
    flip = np.array([-1.0, -1.0, 1.0])
    cam_from_world = pose_matrix((R * flip[None, :]).T, T * flip)
    h, w = image_hw
    half = np.array([w / 2.0, h / 2.0])
    scale = np.full(2, min(h, w) / 2.0) if intrinsics_format == "ndc_isotropic" else half
    f = np.asarray(focal_length, dtype=np.float64).reshape(2) * scale
    pp = half - np.asarray(principal_point, dtype=np.float64).reshape(2) * scale
    return cam_from_world, K_matrix(f[0], f[1], pp[0], pp[1])


@dataclass(frozen=True)
class Co3dFrame:
    """One ``FrameAnnotation`` (paths relative to the CO3D root; ``image_hw`` is ``image.size``)."""

    sequence_name: str
    frame_number: int
    frame_timestamp: float | None
    image_path: str
    image_hw: tuple[int, int]
    R: np.ndarray
    T: np.ndarray
    focal_length: np.ndarray
    principal_point: np.ndarray
    intrinsics_format: str
    depth_path: str | None = None
    depth_scale_adjustment: float | None = None
    depth_mask_path: str | None = None
    mask_path: str | None = None
    mask_mass: float | None = None

    @property
    def cam_from_world(self) -> np.ndarray:
        """(4, 4) float64 OpenCV world-to-camera pose."""
        return pytorch3d_to_opencv(self.R, self.T, self.focal_length, self.principal_point, self.image_hw,
                                   self.intrinsics_format)[0]

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsics in pixels of the stored image."""
        return pytorch3d_to_opencv(self.R, self.T, self.focal_length, self.principal_point, self.image_hw,
                                   self.intrinsics_format)[1]


def _parse_frame(entry: Any, path: Path, i: int) -> Co3dFrame:
    where = f"entry {i}"
    if not isinstance(entry, dict):
        raise DatasetFormatError(path, None, f"{where}: expected an object, got {type(entry).__name__}")
    seq = json_field(entry, "sequence_name", path, where, str)
    number = json_field(entry, "frame_number", path, where, int)
    where = f"entry {i} (sequence {seq!r}, frame {number})"
    size = json_array(json_field(entry, "image.size", path, where), (2,), path, where, "image.size")
    if np.any(size <= 0) or np.any(size != np.round(size)):
        raise DatasetFormatError(path, None, f"{where}: image.size must be two positive integers (H, W)")
    vp = "viewpoint."
    fmt = (json_field(entry, vp + "intrinsics_format", path, where, str, optional=True)
           or "ndc_norm_image_bounds")  # CO3D's ViewpointAnnotation default
    if fmt not in _INTRINSICS_FORMATS:
        raise DatasetFormatError(path, None, f"{where}: unknown intrinsics_format {fmt!r}")
    arrays = {k: json_array(json_field(entry, vp + k, path, where), s, path, where, vp + k)
              for k, s in (("R", (3, 3)), ("T", (3,)), ("focal_length", (2,)), ("principal_point", (2,)))}
    scale = json_field(entry, "depth.scale_adjustment", path, where, (int, float), optional=True)
    mass = json_field(entry, "mask.mass", path, where, (int, float), optional=True)
    ts = json_field(entry, "frame_timestamp", path, where, (int, float), optional=True)
    return Co3dFrame(
        seq, number, None if ts is None else float(ts), json_field(entry, "image.path", path, where, str),
        (int(size[0]), int(size[1])), arrays["R"], arrays["T"], arrays["focal_length"],
        arrays["principal_point"], fmt,
        json_field(entry, "depth.path", path, where, str, optional=True),
        None if scale is None else float(scale),
        json_field(entry, "depth.mask_path", path, where, str, optional=True),
        json_field(entry, "mask.path", path, where, str, optional=True),
        None if mass is None else float(mass),
    )


def read_frame_annotations(path: str | Path) -> list[Co3dFrame]:
    """``frame_annotations.jgz`` -> frames in file order (validated field by field)."""
    path = Path(path)
    data = read_jgz(path)
    if not isinstance(data, list):
        raise DatasetFormatError(path, None, "expected a JSON list of frame annotations")
    frames = [_parse_frame(e, path, i) for i, e in enumerate(data)]
    seen: set[tuple[str, int]] = set()
    for i, f in enumerate(frames):
        if (f.sequence_name, f.frame_number) in seen:
            raise DatasetFormatError(path, None, f"entry {i}: duplicate frame {f.frame_number} of "
                                     f"sequence {f.sequence_name!r}")
        seen.add((f.sequence_name, f.frame_number))
    return frames


@dataclass(frozen=True)
class Co3dSequenceAnnotation:
    """One ``SequenceAnnotation``: name, category, ``viewpoint_quality_score`` (may be None)."""

    sequence_name: str
    category: str | None
    viewpoint_quality_score: float | None


def read_sequence_annotations(path: str | Path) -> dict[str, Co3dSequenceAnnotation]:
    """``sequence_annotations.jgz`` -> by sequence name."""
    path = Path(path)
    data = read_jgz(path)
    if not isinstance(data, list):
        raise DatasetFormatError(path, None, "expected a JSON list of sequence annotations")
    out = {}
    for i, e in enumerate(data):
        name = json_field(e, "sequence_name", path, f"entry {i}", str)
        score = json_field(e, "viewpoint_quality_score", path, f"entry {i}", (int, float), optional=True)
        if score is not None and not np.isfinite(score):
            raise DatasetFormatError(path, None, f"entry {i}: viewpoint_quality_score is not finite")
        cat = json_field(e, "category", path, f"entry {i}", str, optional=True)
        out[name] = Co3dSequenceAnnotation(name, cat, None if score is None else float(score))
    return out


@dataclass(frozen=True)
class SetListEntry:
    """``[sequence_name, frame_number, image_path]`` of a set list."""

    sequence: str
    frame_number: int
    image_path: str


def read_set_list(path: str | Path) -> dict[str, list[SetListEntry]]:
    """``set_lists_<subset>.json`` -> ``{"train"|"val"|"test": [SetListEntry, ...]}``."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetFormatError(path, None, "expected a JSON object of split lists")
    out: dict[str, list[SetListEntry]] = {}
    for split, entries in data.items():
        if not isinstance(entries, list):
            raise DatasetFormatError(path, None, f"{split!r}: expected a list")
        rows = []
        for i, e in enumerate(entries):
            ok = (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and isinstance(e[1], int)
                  and not isinstance(e[1], bool) and isinstance(e[2], str))
            if not ok:
                raise DatasetFormatError(path, None, f"{split}[{i}]: expected [sequence, frame_number, "
                                         f"image_path], got {str(e)[:80]}")
            rows.append(SetListEntry(e[0], e[1], e[2]))
        out[split] = rows
    return out


@dataclass(frozen=True)
class Co3dSequence:
    """One sequence: views sorted by ``frame_number`` and the matching raw frames."""

    category: str
    name: str
    views: tuple[View, ...]
    frames: tuple[Co3dFrame, ...]
    viewpoint_quality_score: float | None


def frame_to_view(root: Path, category: str, frame: Co3dFrame) -> View:
    """A :class:`View` of a frame (image path under ``root``; no file is opened)."""
    h, w = frame.image_hw
    meta: dict[str, Any] = {"category": category, "sequence": frame.sequence_name,
                            "frame_number": frame.frame_number}
    if frame.depth_path is not None:
        meta["depth_scale_adjustment"] = frame.depth_scale_adjustment
    if frame.mask_path is not None:
        meta["mask_path"] = frame.mask_path
    depth = root / frame.depth_path if frame.depth_path is not None else None
    return View(frame.image_path, root / frame.image_path, w, h, frame.K, frame.cam_from_world, depth, meta)


def read_depth(path: str | Path, scale_adjustment: float = 1.0) -> np.ndarray:
    """(H, W) float32 depth: the PNG's uint16 words reinterpreted as float16, times
    ``scale_adjustment``; non-finite values become 0 (CO3D's loader)."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            arr = np.array(im, dtype=np.uint16)
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "depth map not found") from None
    except (OSError, ValueError) as exc:
        raise DatasetFormatError(path, None, f"cannot read 16-bit depth PNG: {exc}") from None
    if arr.ndim != 2:
        raise DatasetFormatError(path, None, f"expected a single-channel PNG, got shape {arr.shape}")
    depth = arr.view(np.float16).astype(np.float32) * np.float32(scale_adjustment)
    depth[~np.isfinite(depth)] = 0.0
    return depth


class Co3dDataset:
    """Lazy CO3Dv2 reader (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._frames: dict[str, list[Co3dFrame]] = {}

    def categories(self) -> list[str]:
        """Sorted category folders that hold a ``frame_annotations.jgz``."""
        require_dir(self.root, "CO3D root")
        return sorted(p.name for p in self.root.iterdir() if (p / "frame_annotations.jgz").is_file())

    def frames(self, category: str) -> list[Co3dFrame]:
        """All frame annotations of ``category`` in file order."""
        if category not in self._frames:
            self._frames[category] = read_frame_annotations(self.root / category / "frame_annotations.jgz")
        return self._frames[category]

    def sequence_names(self, category: str) -> list[str]:
        return sorted({f.sequence_name for f in self.frames(category)})

    def sequence_annotations(self, category: str) -> dict[str, Co3dSequenceAnnotation]:
        return read_sequence_annotations(self.root / category / "sequence_annotations.jgz")

    def set_list(self, category: str, subset: str = "fewview_dev") -> dict[str, list[SetListEntry]]:
        return read_set_list(self.root / category / "set_lists" / f"set_lists_{subset}.json")

    def frame_view(self, category: str, frame: Co3dFrame) -> View:
        return frame_to_view(self.root, category, frame)

    def sequence(self, category: str, name: str) -> Co3dSequence:
        frames = sorted((f for f in self.frames(category) if f.sequence_name == name),
                        key=lambda f: f.frame_number)
        if not frames:
            raise KeyError(f"CO3D {category}: no sequence {name!r}")
        score = None
        if (self.root / category / "sequence_annotations.jgz").is_file():
            ann = self.sequence_annotations(category).get(name)
            score = ann.viewpoint_quality_score if ann is not None else None
        views = tuple(self.frame_view(category, f) for f in frames)
        return Co3dSequence(category, name, views, tuple(frames), score)


def check(root: str | Path, images: bool = True) -> dict[str, Any]:
    """Validate every category's annotations, set lists and image files; with ``images``, each image's
    size against ``image.size`` (H, W). Returns counts."""
    root = require_dir(root, "CO3D root")
    ds = Co3dDataset(root)
    cats = ds.categories()
    if not cats:
        raise DatasetFormatError(root, None, "no <category>/frame_annotations.jgz found")
    n_seq = n_views = n_set = 0
    for cat in cats:
        frames = ds.frames(cat)
        ann_path = root / cat / "frame_annotations.jgz"
        for i, f in enumerate(frames):
            where = f"entry {i} (sequence {f.sequence_name!r}, frame {f.frame_number})"
            require_file(root / f.image_path, ann_path, None, f"image of {where}")
            if images:
                h, w = f.image_hw
                verify_image_size(root / f.image_path, w, h, ann_path)
        n_seq += len({f.sequence_name for f in frames})
        n_views += len(frames)
        if (root / cat / "sequence_annotations.jgz").is_file():
            ds.sequence_annotations(cat)
        known = {(f.sequence_name, f.frame_number) for f in frames}
        sl_dir = root / cat / "set_lists"
        for sl in sorted(sl_dir.glob("set_lists_*.json")) if sl_dir.is_dir() else []:
            for split, entries in read_set_list(sl).items():
                for e in entries:
                    if (e.sequence, e.frame_number) not in known:
                        raise DatasetFormatError(sl, None, f"{split}: frame {e.frame_number} of sequence "
                                                 f"{e.sequence!r} is not in frame_annotations.jgz")
                n_set += len(entries)
    return {"bench": "co3dv2", "root": str(root), "categories": len(cats), "sequences": n_seq,
            "views": n_views, "set_list_entries": n_set}
