"""Exact correspondences for the ``oracle`` matcher on synthetic-suite data (``_synthetic/`` sidecar).

The pose adapters' ``gt_correspondences(sample, i, j)`` delegate here. Matches come from the exact
depth the synthetic writers store (Map-free and CO3D: their real-format depth PNGs; RealEstate10K:
the sidecar's ``.npy``) with the views' OWN ground truth (``View.K``, ``View.cam_from_world``, as the
adapter reads them from the benchmark files), so the matches are exactly consistent with the poses the
adapter scores against. ``pts3d0`` is each ``pts0`` pixel back-projected with view i's depth, in
camera i's frame (metres): PnP on it recovers the GT relative pose exactly, whatever the depth
quantisation (millimetre PNGs), because ``pts1`` is the projection of that very point.

Pairs that see nothing in common (the synthetic RealEstate10K clips pan by up to 160 degrees) have no
exact correspondences; an oracle must still be the ceiling, so when fewer than ``min_exact`` exact
matches exist the oracle "sees through walls": view i's depth points that lie in front of camera j
(``z_j > 0.05 * median z_i``), projected into camera j WITHOUT the image-bounds and occlusion tests
(``pts1`` may lie outside image j). They are exact for the geometry, ``meta["virtual"] = True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.types import Correspondences, View
from datasets.synthetic.gt import backproject, gt_correspondences, project
from datasets.synthetic.sidecar import SIDECAR_DIR, Sidecar

__all__ = ["SyntheticTruth", "find_sidecar"]


def find_sidecar(root: Path) -> Sidecar | None:
    """The synthetic suite's ground-truth sidecar of a benchmark folder, or None for real data."""
    root = Path(root)
    return Sidecar(root) if (root / SIDECAR_DIR / "views.json").is_file() else None


class SyntheticTruth:
    """Ground-truth matches between views of a synthetic benchmark root.

    Args:
        root: the benchmark folder (holding ``_synthetic/views.json``); anything else gives None
            for every pair (real data has no exact dense correspondences).
        max_points: keep at most this many matches per pair (a seeded uniform subset).
        stride: sample view-i pixels every ``stride`` pixels.
        min_exact: fewer exact matches -> virtual matches (module docstring).
    """

    def __init__(self, root: Path, max_points: int = 500, stride: int = 1, min_exact: int = 50) -> None:
        self.root = Path(root)
        self.max_points = max_points
        self.stride = stride
        self.min_exact = min_exact
        self._sidecar: Sidecar | None = None
        self._checked = False
        self._depth: dict[str, np.ndarray] = {}

    @property
    def sidecar(self) -> Sidecar | None:
        if not self._checked:  # the value before the flag: a concurrent reader never sees a stale None
            self._sidecar = find_sidecar(self.root)
            self._checked = True
        return self._sidecar

    def _depth_of(self, sidecar: Sidecar, view: View) -> np.ndarray:
        key = sidecar.key(view.image_path)
        if key not in self._depth:
            if len(self._depth) > 64:
                self._depth.clear()
            self._depth[key] = np.asarray(sidecar.depth(view.image_path), np.float64)
        return self._depth[key]

    def correspondences(self, view_i: View, view_j: View, seed: int = 0) -> Correspondences | None:
        """Exact matches view i -> view j with ``pts3d0`` (camera-i frame), or None when the root is
        not synthetic or a view has no ground truth."""
        sidecar = self.sidecar
        if sidecar is None:
            return None
        cams = []
        for v in (view_i, view_j):
            try:
                truth = sidecar.truth(v.image_path)
            except (KeyError, ValueError):
                return None
            K = v.K if v.K is not None else truth.K
            P = v.cam_from_world if v.cam_from_world is not None else truth.cam_from_world
            cams.append((np.asarray(K, np.float64), np.asarray(P, np.float64), self._depth_of(sidecar, v)))
        (K0, P0, d0), (K1, P1, d1) = cams
        pts0, pts1 = gt_correspondences(d0, K0, P0, d1, K1, P1, max_points=self.max_points,
                                        stride=self.stride, seed=seed)
        virtual = len(pts0) < self.min_exact
        if virtual:
            pts0, pts1 = self._virtual(d0, K0, P0, K1, P1, seed)
        xs, ys = pts0[:, 0].astype(np.int64), pts0[:, 1].astype(np.int64)
        z = d0[ys, xs]
        uv1 = np.c_[pts0, np.ones(len(pts0))]
        pts3d0 = z[:, None] * (uv1 @ np.linalg.inv(K0).T)
        return Correspondences(pts0, pts1, np.ones(len(pts0), np.float32), pts3d0=pts3d0,
                               meta={"source": "synthetic_gt", "virtual": virtual})

    def _virtual(self, d0: np.ndarray, K0: np.ndarray, P0: np.ndarray, K1: np.ndarray, P1: np.ndarray,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Virtual matches: every valid view-i pixel whose point is in front of camera j."""
        h, w = d0.shape
        ys, xs = np.mgrid[0:h:self.stride, 0:w:self.stride]
        world = backproject(d0, K0, P0)[ys, xs].reshape(-1, 3)
        pts0 = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        ok = np.isfinite(world).all(1)
        pts0, world = pts0[ok], world[ok]
        if not len(world):
            return pts0, pts0.copy()
        pts1, z1 = project(world, K1, P1)
        z0 = d0[pts0[:, 1].astype(np.int64), pts0[:, 0].astype(np.int64)]
        front = z1 > 0.05 * float(np.median(z0))
        pts0, pts1 = pts0[front], pts1[front]
        if len(pts0) > self.max_points:
            pick = np.sort(np.random.default_rng(seed).choice(len(pts0), self.max_points, replace=False))
            pts0, pts1 = pts0[pick], pts1[pick]
        return pts0, pts1
