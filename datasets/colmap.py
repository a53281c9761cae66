"""COLMAP sparse models through pycolmap, converted to this project's conventions.

Public API:
    ``ColmapModel(path)``: a ``cameras/images/points3D`` model folder (``.bin`` or ``.txt``), loaded
        on first use. ``.image_names() -> list[str]``, ``.image(name) -> ColmapImage``,
        ``.images() -> list[ColmapImage]``, ``.cameras() -> dict[int, Camera]``,
        ``.points_of_image(name) -> ImagePoints`` (2D keypoints with a 3D point, OpenCV pixels),
        ``.num_points3d() -> int``, ``.verify()`` (binary file sizes, every pose, every track).
    ``ColmapImage``: ``image_id, name, camera: Camera, cam_from_world`` ((4, 4) float64).
    ``ImagePoints``: ``xy`` (N, 2) float64 OpenCV pixels (COLMAP's -0.5), ``point3d_ids`` (N,) int64,
        ``xyz`` (N, 3) float64 world.

Quaternions are read from pycolmap (xyzw), reordered to wxyz and checked (NaN / zero norm) by
``records.quat_wxyz_to_R``; a bad one raises ``DatasetFormatError`` naming ``images.bin`` and the
image. pycolmap does not notice a truncated binary file: :meth:`ColmapModel.verify` recomputes the
expected byte sizes and compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.records import Camera, DatasetFormatError, pose_matrix, quat_wxyz_to_R

__all__ = ["ColmapImage", "ColmapModel", "ImagePoints"]

_INVALID_ID = (1 << 64) - 1


@dataclass(frozen=True)
class ColmapImage:
    """A registered image of a COLMAP model (``cam_from_world``: (4, 4) float64 OpenCV axes)."""

    image_id: int
    name: str
    camera: Camera
    cam_from_world: np.ndarray


@dataclass(frozen=True)
class ImagePoints:
    """Keypoints of one image that observe a 3D point (``xy`` in OpenCV pixels, centres at integers)."""

    xy: np.ndarray
    point3d_ids: np.ndarray
    xyz: np.ndarray


class ColmapModel:
    """Lazy view of a COLMAP model folder (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rec: Any = None
        self._by_name: dict[str, int] | None = None

    def _file(self, stem: str) -> Path:
        for ext in (".bin", ".txt"):
            if (self.path / f"{stem}{ext}").is_file():
                return self.path / f"{stem}{ext}"
        return self.path / f"{stem}.bin"

    @property
    def reconstruction(self) -> Any:
        """The ``pycolmap.Reconstruction`` (loaded once)."""
        if self._rec is None:
            import pycolmap

            if not self.path.is_dir():
                raise DatasetFormatError(self.path, None, "COLMAP model folder not found")
            for stem in ("cameras", "images", "points3D"):
                if not self._file(stem).is_file():
                    raise DatasetFormatError(self._file(stem), None, "COLMAP model file not found")
            try:
                self._rec = pycolmap.Reconstruction(str(self.path))
            except Exception as exc:  # pycolmap raises ValueError/RuntimeError with its own text
                raise DatasetFormatError(self.path, None, f"cannot read COLMAP model: {exc}") from None
            self._by_name = {im.name: iid for iid, im in self._rec.images.items()}
        return self._rec

    def image_names(self) -> list[str]:
        """Names of all images, sorted."""
        self.reconstruction  # noqa: B018 (loads)
        assert self._by_name is not None
        return sorted(self._by_name)

    def cameras(self) -> dict[int, Camera]:
        """Camera id -> :class:`Camera` (COLMAP parameters, ``K`` in OpenCV pixels)."""
        return {cid: _camera(cam) for cid, cam in self.reconstruction.cameras.items()}

    def image(self, name: str) -> ColmapImage:
        """The image named ``name`` (relative path as stored in the model)."""
        rec = self.reconstruction
        assert self._by_name is not None
        if name not in self._by_name:
            raise KeyError(f"{self.path}: no image named {name!r} in the COLMAP model")
        im = rec.images[self._by_name[name]]
        if not im.has_pose:
            raise DatasetFormatError(self._file("images"), None, f"image {name!r} has no pose")
        rigid = im.cam_from_world()
        x, y, z, w = np.asarray(rigid.rotation.quat, dtype=np.float64)
        try:
            R = quat_wxyz_to_R([w, x, y, z], path=self._file("images"))
        except DatasetFormatError as exc:
            raise DatasetFormatError(exc.path, None, f"image {name!r}: {exc.problem}") from None
        t = np.asarray(rigid.translation, dtype=np.float64)
        if not np.all(np.isfinite(t)):
            raise DatasetFormatError(self._file("images"), None, f"image {name!r}: non-finite translation")
        return ColmapImage(int(im.image_id), name, _camera(im.camera), pose_matrix(R, t))

    def images(self) -> list[ColmapImage]:
        """All images, sorted by name."""
        return [self.image(n) for n in self.image_names()]

    def points_of_image(self, name: str) -> ImagePoints:
        """Keypoints of ``name`` that have a 3D point, with the point ids and world coordinates."""
        rec = self.reconstruction
        assert self._by_name is not None
        if name not in self._by_name:
            raise KeyError(f"{self.path}: no image named {name!r} in the COLMAP model")
        im = rec.images[self._by_name[name]]
        pts = [p for p in im.points2D if p.has_point3D()]
        xy = np.array([p.xy for p in pts], dtype=np.float64).reshape(-1, 2) - 0.5
        ids = np.array([p.point3D_id for p in pts], dtype=np.int64)
        try:
            xyz = np.array([rec.points3D[int(i)].xyz for i in ids], dtype=np.float64).reshape(-1, 3)
        except (KeyError, IndexError, ValueError):
            missing = [int(i) for i in ids if not rec.exists_point3D(int(i))]
            raise DatasetFormatError(self._file("images"), None, f"image {name!r} references missing 3D "
                                     f"point(s) {missing[:5]}") from None
        return ImagePoints(xy, ids, xyz)

    def num_points3d(self) -> int:
        return int(self.reconstruction.num_points3D())

    def verify(self) -> None:
        """Full validation: every pose, and for binary models the exact byte size of each file
        (pycolmap silently accepts truncated or padded files)."""
        rec = self.reconstruction
        for name in self.image_names():
            self.image(name)
        if self._file("cameras").suffix != ".bin":
            return
        sizes = {
            "cameras": 8 + sum(24 + 8 * len(c.params) for c in rec.cameras.values()),
            "images": 8 + sum(4 + 56 + 4 + len(im.name.encode()) + 1 + 8 + 24 * im.num_points2D()
                              for im in rec.images.values()),
            "points3D": 8 + sum(51 + 8 * p.track.length() for p in rec.points3D.values()),
        }
        for stem, expected in sizes.items():
            path = self._file(stem)
            actual = path.stat().st_size
            if actual != expected:
                raise DatasetFormatError(path, None, f"file has {actual} bytes but its records need "
                                         f"{expected} (truncated or corrupt)")


def _camera(cam: Any) -> Camera:
    params = tuple(float(p) for p in cam.params)
    return Camera(cam.model.name, int(cam.width), int(cam.height), params, colmap_centres=True)
