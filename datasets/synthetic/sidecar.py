"""The ``_synthetic/`` sidecar: exact ground truth that the real benchmark layouts lack.

Every synthetic benchmark root holds, next to the real-format files::

    _synthetic/README.md        this description, in words
    _synthetic/views.json       {"<image path relative to the root>": {"width", "height", "K",
                                 "cam_from_world", "depth", "depth_format", "unit", "meta"}, ...}
    _synthetic/pairs.json       [{"view0", "view1", "angle_deg", "bucket", "covisible"}, ...]
    _synthetic/depth/<image path>.npy   float32 exact z-depth (0 = invalid), in ``unit``, for
                                images whose real layout has no depth map (elsewhere ``depth``
                                names the real-format depth file: Map-free ``png_u16_mm``,
                                CO3D ``png_f16``)

``K`` is OpenCV (pixel centres at integers), ``cam_from_world`` the 4x4 world-to-camera pose in the
same world frame and unit as the benchmark's own files (Map-free: the reference camera's frame;
DTU: millimetres). ``pairs.json`` lists the pairs the benchmark protocol evaluates (query/reference,
query/retrieved database image, all pairs of a sequence, MVS neighbours) with their viewpoint change
(angle of the relative rotation) and bucket (``0-30``, ``30-60``, ``60-90``, ``90-180``), and
``covisible``: the fraction of valid view-0 pixels (on an 8-px grid) visible in view 1.

Use :meth:`Sidecar.find` on any image path of a synthetic root, then :meth:`Sidecar.correspondences`
for exact dense matches between two of its images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic.geometry import reported_viewpoint, viewpoint_angle_deg
from datasets.synthetic.gt import gt_correspondences
from datasets.synthetic.io import read_depth, save_npy, write_json, write_text

__all__ = ["SIDECAR_DIR", "ViewTruth", "Sidecar", "SidecarWriter"]

SIDECAR_DIR = "_synthetic"


@dataclass(frozen=True)
class ViewTruth:
    """Exact ground truth of one image (see the module docstring for frames and units)."""

    image: str
    width: int
    height: int
    K: np.ndarray
    cam_from_world: np.ndarray
    depth: str
    depth_format: str
    unit: str
    meta: dict[str, Any] = field(default_factory=dict)


class SidecarWriter:
    """Collects views and pairs while a writer renders, then writes ``_synthetic/``."""

    def __init__(self, root: Path, unit: str = "m") -> None:
        self.root = Path(root)
        self.unit = unit
        self.views: dict[str, dict[str, Any]] = {}
        self._depths: dict[str, np.ndarray] = {}
        self.pairs: list[dict[str, Any]] = []

    def add_view(self, image: str, K: np.ndarray, cam_from_world: np.ndarray, depth: np.ndarray,
                 meta: dict[str, Any] | None = None, depth_file: str | None = None,
                 depth_format: str | None = None) -> None:
        """Record an image (path relative to the root, posix) with its exact K, pose and depth.

        The depth goes to ``_synthetic/depth/<image>.npy`` (exact float32) unless ``depth_file``
        names the real-format depth file already written for it (with its ``depth_format``, see
        :func:`datasets.synthetic.io.read_depth`).
        """
        if image in self.views:
            raise ValueError(f"sidecar: view {image!r} added twice")
        depth = np.asarray(depth, np.float32)
        if depth_file is None:
            depth_file, depth_format = f"{SIDECAR_DIR}/depth/{image}.npy", "npy_f32"
            save_npy(self.root / depth_file, depth)
        self._depths[image] = depth
        self.views[image] = {
            "width": int(depth.shape[1]), "height": int(depth.shape[0]),
            "K": np.asarray(K, np.float64).tolist(),
            "cam_from_world": np.asarray(cam_from_world, np.float64).tolist(),
            "depth": depth_file, "depth_format": depth_format, "unit": self.unit, "meta": dict(meta or {}),
        }

    def add_pair(self, view0: str, view1: str, **extra: Any) -> dict[str, Any]:
        """Record an evaluated pair; computes its viewpoint angle, bucket and co-visibility."""
        v0, v1 = self.views[view0], self.views[view1]
        P0, P1 = np.array(v0["cam_from_world"]), np.array(v1["cam_from_world"])
        angle, bucket = reported_viewpoint(viewpoint_angle_deg(P0, P1))
        d0 = self._depths[view0]
        pts0, _ = gt_correspondences(d0, np.array(v0["K"]), P0, self._depths[view1], np.array(v1["K"]), P1,
                                     stride=8)
        n0 = int(np.count_nonzero(d0[::8, ::8] > 0))
        entry = {"view0": view0, "view1": view1, "angle_deg": angle,
                 "bucket": bucket, "covisible": round(len(pts0) / max(n0, 1), 6), **extra}
        self.pairs.append(entry)
        return entry

    def write(self, description: str) -> dict[str, Any]:
        """Write views.json, pairs.json and README.md; returns a summary for the manifest."""
        side = self.root / SIDECAR_DIR
        write_json(side / "views.json", self.views)
        write_json(side / "pairs.json", self.pairs)
        write_text(side / "README.md", f"# Synthetic ground truth\n\n{description.strip()}\n\n"
                   + (__doc__ or "").split("\n\n", 1)[1])
        buckets: dict[str, int] = {}
        for p in self.pairs:
            buckets[p["bucket"]] = buckets.get(p["bucket"], 0) + 1
        return {"dir": SIDECAR_DIR, "views": len(self.views), "pairs": len(self.pairs),
                "pairs_per_bucket": dict(sorted(buckets.items())), "unit": self.unit}


class Sidecar:
    """Read access to a root's ``_synthetic/`` ground truth."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        path = self.root / SIDECAR_DIR / "views.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{path}: not a synthetic benchmark root (no sidecar)") from e
        self.views = {
            name: ViewTruth(image=name, width=int(v["width"]), height=int(v["height"]),
                            K=np.array(v["K"], np.float64),
                            cam_from_world=np.array(v["cam_from_world"], np.float64),
                            depth=v["depth"], depth_format=v["depth_format"], unit=v["unit"],
                            meta=dict(v.get("meta", {})))
            for name, v in raw.items()
        }
        pairs_path = self.root / SIDECAR_DIR / "pairs.json"
        self.pairs: list[dict[str, Any]] = json.loads(pairs_path.read_text()) if pairs_path.is_file() else []

    @classmethod
    def find(cls, path: Path) -> Sidecar:
        """The sidecar of the synthetic root containing ``path`` (searches the parents)."""
        path = Path(path).resolve()
        for parent in [path, *path.parents]:
            if (parent / SIDECAR_DIR / "views.json").is_file():
                return cls(parent)
        raise FileNotFoundError(
            f"{path}: not inside a synthetic benchmark root (no {SIDECAR_DIR}/views.json)")

    def key(self, image_path: Path | str) -> str:
        """Sidecar key (posix path relative to the root) of an absolute or relative image path."""
        p = Path(image_path)
        if p.is_absolute():
            p = p.resolve().relative_to(self.root.resolve())
        key = p.as_posix()
        if key not in self.views:
            raise KeyError(f"{image_path}: no ground truth in {self.root / SIDECAR_DIR / 'views.json'}")
        return key

    def truth(self, image_path: Path | str) -> ViewTruth:
        return self.views[self.key(image_path)]

    def depth(self, image_path: Path | str) -> np.ndarray:
        """(H, W) float32 exact z-depth of an image (0 = invalid), in the sidecar's unit."""
        t = self.truth(image_path)
        return read_depth(self.root / t.depth, t.depth_format)

    def correspondences(self, image0: Path | str, image1: Path | str,
                        **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Exact GT matches ``(pts0, pts1)`` (N, 2) float64 between two images of this root; keyword
        arguments go to :func:`datasets.synthetic.gt.gt_correspondences`."""
        t0, t1 = self.truth(image0), self.truth(image1)
        return gt_correspondences(self.depth(image0), t0.K, t0.cam_from_world, self.depth(image1), t1.K,
                                  t1.cam_from_world, **kwargs)
