"""Byte-deterministic file writers used by the synthetic writers, and depth readers.

Determinism: Pillow writes no timestamps for PNG/JPEG unless asked; gzip streams get ``mtime=0``
and no file name; MATLAB v5 headers get a fixed description instead of the creation date;
JSON keeps insertion order; floats in text files are written with ``repr`` (shortest exact form).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "fmt", "save_jpeg", "save_png", "save_png_uint16", "png_uint16_bytes", "write_bytes", "save_npy",
    "write_text", "write_json",
    "write_jgz", "read_jgz", "save_mat", "write_ply_xyz", "depth_to_png_mm", "png_mm_to_depth",
    "depth_to_png_f16", "png_f16_to_depth", "read_depth",
]

JPEG_QUALITY = 95
_MAT_DESCRIPTION = b"MATLAB 5.0 MAT-file, written by mast3r-bench synthetic suite"


def fmt(x: float) -> str:
    """Exact, shortest decimal text of a float (``repr``), e.g. ``0.1``, ``-2.5e-05``."""
    return repr(float(x))


def _mkdir(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_jpeg(path: Path, image: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """(H, W, 3) uint8 RGB -> baseline JPEG (4:2:0, no EXIF)."""
    Image.fromarray(np.ascontiguousarray(image, np.uint8), "RGB").save(_mkdir(path), "JPEG", quality=quality)


def save_png(path: Path, image: np.ndarray) -> None:
    """(H, W, 3) or (H, W) uint8 -> PNG (RGB or L; zlib level 1: textured renders barely compress)."""
    image = np.ascontiguousarray(image, np.uint8)
    Image.fromarray(image, "RGB" if image.ndim == 3 else "L").save(_mkdir(path), "PNG", compress_level=1)


def png_uint16_bytes(values: np.ndarray) -> bytes:
    """(H, W) uint16 -> bytes of a 16-bit greyscale PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(values, np.uint16)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def save_png_uint16(path: Path, values: np.ndarray) -> None:
    """(H, W) uint16 -> 16-bit greyscale PNG."""
    _mkdir(path).write_bytes(png_uint16_bytes(values))


def write_bytes(path: Path, data: bytes) -> None:
    _mkdir(path).write_bytes(data)


def save_npy(path: Path, array: np.ndarray) -> None:
    np.save(_mkdir(path), np.ascontiguousarray(array), allow_pickle=False)


def write_text(path: Path, text: str) -> None:
    _mkdir(path).write_bytes(text.encode("utf-8"))


def write_json(path: Path, obj: Any, indent: int | None = 1) -> None:
    write_text(path, json.dumps(obj, indent=indent) + "\n")


def write_jgz(path: Path, obj: Any) -> None:
    """Gzipped JSON (``.jgz``, as CO3D's annotations), reproducible (mtime 0, no name)."""
    with open(_mkdir(path), "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(json.dumps(obj).encode("utf-8"))


def read_jgz(path: Path) -> Any:
    with gzip.open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def save_mat(path: Path, variables: dict[str, np.ndarray], compress: bool = True) -> None:
    """MATLAB v5 ``.mat`` via scipy, with a fixed header description (no creation date)."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, variables, do_compression=compress, format="5", oned_as="column")
    data = bytearray(buf.getvalue())
    data[:116] = _MAT_DESCRIPTION.ljust(116, b" ")
    _mkdir(path).write_bytes(bytes(data))


def write_ply_xyz(path: Path, xyz: np.ndarray) -> None:
    """Binary little-endian PLY with one ``vertex`` element of float32 ``x y z``."""
    xyz = np.ascontiguousarray(xyz, dtype="<f4").reshape(-1, 3)
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {len(xyz)}\nproperty float x\nproperty float y\nproperty float z\n"
              "end_header\n").encode("ascii")
    _mkdir(path).write_bytes(header + xyz.tobytes())


def depth_to_png_mm(depth_m: np.ndarray) -> np.ndarray:
    """Metric depth (H, W) metres -> uint16 millimetres (rounded; 0 = invalid; clipped to 65.535 m)."""
    d = np.where(np.isfinite(depth_m) & (depth_m > 0), depth_m, 0.0)
    return np.clip(np.rint(d * 1000.0), 0, 65535).astype(np.uint16)


def png_mm_to_depth(values: np.ndarray) -> np.ndarray:
    """uint16 millimetres -> float32 metres (0 stays 0 = invalid)."""
    return (values.astype(np.float64) / 1000.0).astype(np.float32)


def depth_to_png_f16(depth: np.ndarray) -> np.ndarray:
    """Depth (H, W) -> uint16 holding float16 bits (CO3D ``*.geometric.png``; 0 = invalid)."""
    d = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    return d.astype(np.float16).view(np.uint16)


def png_f16_to_depth(values: np.ndarray) -> np.ndarray:
    """uint16 holding float16 bits -> float32 depth."""
    return np.ascontiguousarray(values, np.uint16).view(np.float16).astype(np.float32)


def read_depth(path: Path, fmt_name: str) -> np.ndarray:
    """Read a depth map written by the suite: (H, W) float32, 0 = invalid.

    ``fmt_name``: ``"npy_f32"`` (exact z-depth), ``"png_u16_mm"`` (Map-free ``.dpt*.png``, returned in
    metres) or ``"png_f16"`` (CO3D ``.geometric.png``).
    """
    path = Path(path)
    if fmt_name == "npy_f32":
        return np.load(path, allow_pickle=False).astype(np.float32, copy=False)
    with Image.open(path) as im:
        values = np.array(im, dtype=np.uint16)
    if fmt_name == "png_u16_mm":
        return png_mm_to_depth(values)
    if fmt_name == "png_f16":
        return png_f16_to_depth(values)
    raise ValueError(f"{path}: unknown depth format {fmt_name!r}")
