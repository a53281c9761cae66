"""PoseDiffusion's relpose++ CO3Dv2 annotations: reader, and a rebuild from the raw release.

Public API:
    ``read_relpose_annotations(path) -> dict[seq, list[RelposeFrame]]`` for ``<category>_{train,test}.jgz``
        (``{seq: [{filepath, R, T, focal_length, principal_point, bbox}]}``, order kept);
    ``RelposeFrame.to_view(root, image_size=None) -> View`` (OpenCV pose/K, see ``datasets.co3dv2``);
    ``build_relpose_annotations(ds, category, split="test", min_quality=0.5)`` (relpose++'s
        ``preprocess_co3d.py`` rules: ``set_lists_fewview_dev.json[split]``, sequences with
        ``viewpoint_quality_score > min_quality``, frames with an empty mask dropped);
    ``mask_to_bbox(mask, threshold=0.4) -> [x0, y0, x1, y1]`` (exclusive max; ``[]`` when empty).
PoseDiffusion's own filters (>= 50 frames, sum(T) > 1e5) are the adapter's: the raw fields are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets._parse import image_size as image_size_of
from datasets._parse import json_array, json_field, read_jgz
from datasets.co3dv2 import Co3dDataset, pytorch3d_to_opencv, read_set_list
from datasets.records import DatasetFormatError, View

__all__ = ["RelposeFrame", "build_relpose_annotations", "mask_to_bbox", "read_relpose_annotations"]


@dataclass(frozen=True)
class RelposeFrame:
    """One frame of a relpose++ annotation file (PyTorch3D pose, NDC-isotropic intrinsics, ``bbox``
    xyxy pixels); ``filepath`` is relative to the CO3D root."""

    filepath: str
    R: np.ndarray
    T: np.ndarray
    focal_length: np.ndarray
    principal_point: np.ndarray
    bbox: np.ndarray

    def to_view(self, root: str | Path, image_size: tuple[int, int] | None = None,
                meta: dict[str, Any] | None = None) -> View:
        """View with OpenCV pose/K; ``image_size`` (W, H) defaults to the image header."""
        path = Path(root) / self.filepath
        w, h = image_size if image_size is not None else image_size_of(path)
        T, K = pytorch3d_to_opencv(self.R, self.T, self.focal_length, self.principal_point, (h, w))
        return View(self.filepath, path, w, h, K, T, None, dict(meta or {}))


def read_relpose_annotations(path: str | Path) -> dict[str, list[RelposeFrame]]:
    """PoseDiffusion's ``<category>_{train,test}.jgz``: ``{seq: [{filepath, R, T, focal_length,
    principal_point, bbox}]}``, order kept."""
    path = Path(path)
    data = read_jgz(path)
    if not isinstance(data, dict):
        raise DatasetFormatError(path, None, "expected a JSON object {sequence: [frames]}")
    out: dict[str, list[RelposeFrame]] = {}
    for seq, frames in data.items():
        if not isinstance(frames, list):
            raise DatasetFormatError(path, None, f"sequence {seq!r}: expected a list of frames")
        rows = []
        for i, e in enumerate(frames):
            where = f"sequence {seq!r} frame {i}"
            fp = json_field(e, "filepath", path, where, str)
            arr = {k: json_array(json_field(e, k, path, where), s, path, where, k)
                   for k, s in (("R", (3, 3)), ("T", (3,)), ("focal_length", (2,)),
                                ("principal_point", (2,)), ("bbox", (4,)))}
            rows.append(RelposeFrame(fp, arr["R"], arr["T"], arr["focal_length"], arr["principal_point"],
                                     arr["bbox"]))
        out[seq] = rows
    return out


def mask_to_bbox(mask: np.ndarray, threshold: float = 0.4) -> list[int]:
    """relpose++'s ``[x0, y0, x1, y1]`` box (exclusive max) of ``mask > threshold`` (mask in [0, 1]);
    ``[]`` when empty."""
    m = np.asarray(mask) > threshold
    if not m.any():
        return []
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "mask not found") from None
    scale = float(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else 1.0
    arr = arr.astype(np.float64) / scale  # matplotlib.imread semantics for PNG
    return arr if arr.ndim == 2 else arr[..., 0]


def build_relpose_annotations(ds: Co3dDataset, category: str, split: str = "test",
                              min_quality: float = 0.5) -> dict[str, list[RelposeFrame]]:
    """Rebuild relpose++'s ``<category>_<split>.jgz`` content from the raw release: frames of
    ``set_lists_fewview_dev.json[split]`` in sequences with ``viewpoint_quality_score > min_quality``,
    dropping frames whose mask (``images`` -> ``masks``, ``.jpg`` -> ``.png``) is empty."""
    set_path = ds.root / category / "set_lists" / "set_lists_fewview_dev.json"
    entries = read_set_list(set_path)
    if split not in entries:
        raise DatasetFormatError(set_path, None, f"no {split!r} list")
    good = {n for n, a in ds.sequence_annotations(category).items()
            if a.viewpoint_quality_score is not None and a.viewpoint_quality_score > min_quality}
    by_key = {(f.sequence_name, f.frame_number): f for f in ds.frames(category)}
    out: dict[str, list[RelposeFrame]] = {}
    for e in entries[split]:
        if e.sequence not in good:
            continue
        items = out.setdefault(e.sequence, [])
        mask_path = ds.root / e.image_path.replace("images", "masks").replace(".jpg", ".png")
        bbox = mask_to_bbox(_read_mask(mask_path))
        if not bbox:
            continue
        f = by_key.get((e.sequence, e.frame_number))
        if f is None:
            raise DatasetFormatError(set_path, None, f"{split}: frame {e.frame_number} of {e.sequence!r} "
                                     "has no frame annotation")
        items.append(RelposeFrame(e.image_path, f.R, f.T, f.focal_length, f.principal_point,
                                  np.asarray(bbox, np.float64)))
    return out
