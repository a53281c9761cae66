"""Typed records produced by the dataset readers (``datasets/<benchmark>.py``).

Conventions (shared with ``benchmarks.types``, which re-exports :class:`View`): poses are 4x4
float64 OpenCV ``cam_from_world`` (x right, y down, z forward); intrinsics are 3x3 float64 in pixels
of the image as stored; pixel centres at integer coordinates; quaternions ``(qw, qx, qy, qz)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "View",
    "Camera",
    "DatasetFormatError",
    "K_matrix",
    "R_to_quat_wxyz",
    "camera_centre",
    "camera_model_num_params",
    "invert_pose",
    "load_image",
    "pose_matrix",
    "quat_wxyz_to_R",
]


@dataclass(frozen=True)
class View:
    """One image of a benchmark, as a dataset reader describes it (nothing is loaded yet).

    Attributes:
        name: identifier unique within the dataset root, e.g. ``"s00460/seq1/frame_00005.jpg"``.
        image_path: absolute path of the image file; read lazily by matchers.
        width, height: size in pixels of the image as stored (after EXIF orientation).
        K: (3, 3) float64 intrinsics in pixels of the stored image, or ``None`` when unknown
            (e.g. hidden test split, or a protocol that forbids GT intrinsics).
        cam_from_world: (4, 4) float64 OpenCV world-to-camera pose in the dataset's world frame and
            unit (metres, except DTU: millimetres), or ``None`` when the ground truth is hidden.
        depth_path: optional path of a metric depth map for depth-based baselines.
        meta: free-form, JSON-serialisable reader metadata (sequence id, condition, building, ...).
    """

    name: str
    image_path: Path
    width: int
    height: int
    K: np.ndarray | None = None
    cam_from_world: np.ndarray | None = None
    depth_path: Path | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Errors, camera records and pose helpers shared by the readers.
# --------------------------------------------------------------------------------------------------


class DatasetFormatError(ValueError):
    """A dataset file is malformed, missing or inconsistent.

    The message is ``"path:line: problem"`` (``"path: problem"`` when no line applies, e.g. a JSON
    entry, which then names its key in ``problem``).

    Attributes:
        path: the offending (or referencing) file.
        line: 1-based line number, or ``None``.
        problem: what is wrong, without the location.
    """

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:  # keep picklable (multiprocessing workers)
        return (type(self), (self.path, self.line, self.problem))


# Number of parameters and (fx, fy, cx, cy) indices of the COLMAP camera models readers meet.
_CAMERA_MODELS: dict[str, tuple[int, tuple[int, int, int, int]]] = {
    "SIMPLE_PINHOLE": (3, (0, 0, 1, 2)),
    "PINHOLE": (4, (0, 1, 2, 3)),
    "SIMPLE_RADIAL": (4, (0, 0, 1, 2)),
    "RADIAL": (5, (0, 0, 1, 2)),
    "OPENCV": (8, (0, 1, 2, 3)),
    "OPENCV_FISHEYE": (8, (0, 1, 2, 3)),
    "FULL_OPENCV": (12, (0, 1, 2, 3)),
    "SIMPLE_RADIAL_FISHEYE": (4, (0, 0, 1, 2)),
    "RADIAL_FISHEYE": (5, (0, 0, 1, 2)),
    "THIN_PRISM_FISHEYE": (12, (0, 1, 2, 3)),
}


def camera_model_num_params(model: str) -> int:
    """Number of parameters of a COLMAP camera model name; ``KeyError`` for unknown models."""
    return _CAMERA_MODELS[model][0]


@dataclass(frozen=True)
class Camera:
    """A calibrated camera in COLMAP's model vocabulary, but with OpenCV pixel centres.

    Attributes:
        model: COLMAP model name (``"SIMPLE_RADIAL"``, ``"PINHOLE"``, ...).
        width, height: image size in pixels.
        params: model parameters in COLMAP order (e.g. SIMPLE_RADIAL: ``f, cx, cy, k``), with the
            principal point in the convention of the file it was read from: text lists of
            Aachen/kapture and COLMAP models use the COLMAP convention (pixel centres at +0.5);
            ``K`` below converts it.
        colmap_centres: True when ``params`` use COLMAP pixel centres (``K`` subtracts 0.5).
    """

    model: str
    width: int
    height: int
    params: tuple[float, ...]
    colmap_centres: bool = True

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 pinhole part in OpenCV pixels (centres at integers) of the stored image."""
        _, (ifx, ify, icx, icy) = _CAMERA_MODELS[self.model]
        p = self.params
        shift = 0.5 if self.colmap_centres else 0.0
        return K_matrix(p[ifx], p[ify], p[icx] - shift, p[icy] - shift)

    @property
    def distortion(self) -> tuple[float, ...]:
        """Parameters after the pinhole ones (e.g. SIMPLE_RADIAL: ``(k,)``)."""
        n_pinhole = 3 if self.model.startswith("SIMPLE") or self.model.startswith("RADIAL") else 4
        return tuple(self.params[n_pinhole:])

    def to_meta(self) -> dict[str, Any]:
        """JSON-serialisable description, for ``View.meta["camera"]``."""
        return {"model": self.model, "width": self.width, "height": self.height,
                "params": list(self.params), "colmap_centres": self.colmap_centres}


def K_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(3, 3) float64 intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def quat_wxyz_to_R(q: Any, *, path: str | Path | None = None, line: int | None = None) -> np.ndarray:
    """Rotation matrix of a Hamilton quaternion ``(qw, qx, qy, qz)`` (normalised first).

    Returns (3, 3) float64. Raises ``DatasetFormatError`` (when ``path`` is given, naming it and
    ``line``) or ``ValueError`` for a NaN/inf component or a (near-)zero norm.
    """
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    problem = None
    if q.shape != (4,):
        problem = f"quaternion must have 4 components, got {q.size}"
    elif not np.all(np.isfinite(q)):
        problem = f"quaternion has a non-finite component: {q.tolist()}"
    else:
        norm = float(np.linalg.norm(q))
        if norm < 1e-12:
            problem = f"zero-norm quaternion: {q.tolist()}"
    if problem is not None:
        if path is not None:
            raise DatasetFormatError(path, line, problem)
        raise ValueError(problem)
    w, x, y, z = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ], dtype=np.float64)


def R_to_quat_wxyz(R: Any) -> np.ndarray:
    """(4,) float64 unit quaternion ``(qw, qx, qy, qz)`` of a rotation matrix, with ``qw >= 0``."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat()
    q = np.array([w, x, y, z], dtype=np.float64)
    return -q if q[0] < 0 else q


def pose_matrix(R: Any, t: Any) -> np.ndarray:
    """(4, 4) float64 rigid transform ``[[R, t], [0, 1]]``."""
    T = np.eye(4, dtype=np.float64)
    T[:3, :3] = np.asarray(R, dtype=np.float64).reshape(3, 3)
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert_pose(T: Any) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform (float64), e.g. ``world_from_cam`` from ``cam_from_world``."""
    T = np.asarray(T, dtype=np.float64)
    R, t = T[:3, :3], T[:3, 3]
    return pose_matrix(R.T, -R.T @ t)


def camera_centre(cam_from_world: Any) -> np.ndarray:
    """(3,) float64 camera centre ``c = -R^T t`` in world coordinates."""
    T = np.asarray(cam_from_world, dtype=np.float64)
    return -T[:3, :3].T @ T[:3, 3]


def load_image(view: View, mode: str = "RGB") -> Any:
    """Open ``view.image_path`` (EXIF orientation applied) as a PIL image in ``mode``.

    Raises ``DatasetFormatError`` if the file is missing or unreadable, or if its size differs from
    ``(view.width, view.height)`` (the size the intrinsics refer to). Matchers should load images
    through this function so that a wrong-size image never passes silently.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(view.image_path)
    try:
        with Image.open(path) as raw:
            im = ImageOps.exif_transpose(raw).convert(mode)
    except FileNotFoundError:
        raise DatasetFormatError(path, None, f"image of view {view.name!r} not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetFormatError(path, None, f"cannot read image: {exc}") from None
    if im.size != (view.width, view.height):
        raise DatasetFormatError(
            path, None, f"image is {im.size[0]}x{im.size[1]} (WxH), the dataset says "
            f"{view.width}x{view.height} for view {view.name!r}")
    return im
