"""SMOKE benchmark: a tiny self-contained homography task that exercises the whole harness.

NOT a scientific benchmark. On first use it generates ``num_pairs`` pairs of random-texture images
(into ``<data root>/smoke/cfg-<config hash>``: variants never overwrite each other) where image 1 is
image 0 warped by a known homography ``H_0to1``. The solver estimates the homography from the
matches (pycolmap LO-RANSAC, seeded) and the metric is the mean transfer error of the four image
corners. The ``oracle`` matcher scores 0 px / 100 %, the ``random`` matcher about 0 %.

Files per variant: ``MANIFEST.json`` (generator config + every ``H_0to1``),
``images/pair_XXX_{0,1}.png``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks.config import to_dict
from benchmarks.hashing import sha256_json
from benchmarks.types import Correspondences, PairIndex, Prediction, Record, Sample, View
from mast3r.fileio import atomic_write, atomic_write_json

__all__ = ["SmokeAdapter", "SmokeConfig", "SmokeEstimatorConfig", "corner_error_px"]
log = logging.getLogger(__name__)

SUCCESS_PX = 3.0  # corner error threshold of the success metric (pixels)
_GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SmokeConfig:
    """Attributes:
    num_pairs: number of image pairs (samples).
    width, height: image size in pixels.
    max_corner_shift: corners of image 0 move by up to this fraction of the image size under H_0to1.
    seed: generator seed (textures and homographies).
    """

    num_pairs: int = 8
    width: int = 160
    height: int = 120
    max_corner_shift: float = 0.12
    seed: int = 0


@dataclass(frozen=True)
class SmokeEstimatorConfig:
    """Attributes:
    max_error_px: RANSAC inlier threshold (pixels, image 1).
    min_inliers: fewer inliers than this is a failure (``too_few_inliers``).
    min_trials, max_trials: RANSAC iteration bounds.
    """

    max_error_px: float = 3.0
    min_inliers: int = 15
    min_trials: int = 100
    max_trials: int = 10000


def homography_from_corners(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(3, 3) float64 H with ``dst ~ H @ src`` from 4 point pairs (4, 2) (exact DLT, ``H[2, 2] = 1``)."""
    A, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        A += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        b += [u, v]
    h = np.linalg.solve(np.asarray(A, np.float64), np.asarray(b, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def apply_homography(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points mapped by (3, 3) ``H`` (homogeneous division), float64."""
    pts = np.asarray(pts, np.float64)
    q = np.c_[pts, np.ones(len(pts))] @ np.asarray(H, np.float64).T
    return q[:, :2] / q[:, 2:]


def image_corners(width: int, height: int) -> np.ndarray:
    """(4, 2) centres of the four corner pixels (x, y)."""
    return np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)


def corner_error_px(H_est: np.ndarray, H_gt: np.ndarray, width: int, height: int) -> float:
    """Mean distance (pixels, image 1) between the image-0 corners mapped by ``H_est`` and ``H_gt``."""
    c = image_corners(width, height)
    return float(np.linalg.norm(apply_homography(H_est, c) - apply_homography(H_gt, c), axis=1).mean())


def _texture_sampler(rng: np.random.Generator, width: int, height: int):
    """A smooth random RGB texture defined on the whole plane around the image (value noise)."""
    octaves = []
    for cell, amp in ((20.0, 0.5), (7.0, 0.3), (2.5, 0.2)):
        nx, ny = int(3 * width / cell) + 3, int(3 * height / cell) + 3
        octaves.append((cell, amp, rng.random((ny, nx, 3))))

    def sample(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.zeros((*x.shape, 3))
        for cell, amp, grid in octaves:
            gx = np.clip((x + width) / cell, 0, grid.shape[1] - 1.001)
            gy = np.clip((y + height) / cell, 0, grid.shape[0] - 1.001)
            x0, y0 = gx.astype(int), gy.astype(int)
            fx, fy = (gx - x0)[..., None], (gy - y0)[..., None]
            top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
            bot = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
            out += amp * (top * (1 - fy) + bot * fy)
        return out

    return sample


def _write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    image = Image.fromarray(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8))
    atomic_write(path, lambda f: image.save(f, format="PNG"))


def generate(root: Path, cfg: SmokeConfig) -> dict[str, Any]:
    """Write the SMOKE images and ``MANIFEST.json`` into ``root`` (skipped when already there for
    ``cfg``); returns the manifest."""
    manifest_path = root / "MANIFEST.json"
    wanted = {"generator": "smoke", "version": _GENERATOR_VERSION, "config": to_dict(cfg)}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in wanted} == wanted:
            return manifest
    log.info("SMOKE: generating %d image pairs in %s", cfg.num_pairs, root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    w, h = cfg.width, cfg.height
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    corners = image_corners(w, h)
    pairs = []
    for index in range(cfg.num_pairs):
        rng = np.random.default_rng([cfg.seed, index])
        shift = rng.uniform(-1, 1, (4, 2)) * cfg.max_corner_shift * np.array([w, h])
        H_0to1 = homography_from_corners(corners, corners + shift)
        texture = _texture_sampler(rng, w, h)
        src = apply_homography(np.linalg.inv(H_0to1), np.c_[xs.ravel(), ys.ravel()])
        name = f"pair_{index:03d}"
        _write_png(root / "images" / f"{name}_0.png", texture(xs, ys))
        _write_png(root / "images" / f"{name}_1.png", texture(src[:, 0], src[:, 1]).reshape(h, w, 3))
        pairs.append({"name": name, "H_0to1": H_0to1.tolist()})
    manifest = {**wanted, "pairs": pairs}
    atomic_write_json(manifest_path, manifest, indent=1, sort_keys=False, allow_nan=True)
    return manifest


class SmokeAdapter:
    """The SMOKE homography benchmark (see the module docstring)."""

    name: ClassVar[str] = "smoke"
    title: ClassVar[str] = "SMOKE: generated homography pairs (harness self-test, not a benchmark)"
    version: ClassVar[str] = "1"
    Config: ClassVar[type] = SmokeConfig
    EstimatorConfig: ClassVar[type] = SmokeEstimatorConfig

    def __init__(self, root: Path, config: SmokeConfig | None = None,
                 estimator: SmokeEstimatorConfig | None = None) -> None:
        self.config = config or SmokeConfig()
        self.root = Path(root) / f"cfg-{sha256_json(self.config)[:12]}"  # this variant's dataset
        self.estimator = estimator or SmokeEstimatorConfig()

    def samples(self) -> Iterator[Sample]:
        manifest = generate(self.root, self.config)
        w, h = self.config.width, self.config.height
        for pair in manifest["pairs"]:
            name = pair["name"]
            views = tuple(
                View(f"{name}_{k}.png", self.root / "images" / f"{name}_{k}.png", w, h) for k in (0, 1)
            )
            yield Sample(name, views, gt={"H_0to1": np.asarray(pair["H_0to1"], np.float64)})

    def pairs(self, sample: Sample) -> Sequence[PairIndex]:
        return [(0, 1)]

    def gt_correspondences(self, sample: Sample, i: int, j: int) -> Correspondences | None:
        """Exact matches: image-0 pixel centres on an 8-px grid mapped by ``H_0to1``, kept inside
        image 1 (``(i, j) = (1, 0)`` returns the same matches seen from view 1)."""
        view0 = sample.views[0]
        ys, xs = np.mgrid[2:view0.height:8, 2:view0.width:8]
        pts0 = np.c_[xs.ravel(), ys.ravel()].astype(np.float64)
        pts1 = apply_homography(sample.gt["H_0to1"], pts0)
        v1 = sample.views[1]
        inside = (pts1 >= -0.5).all(1) & (pts1[:, 0] < v1.width - 0.5) & (pts1[:, 1] < v1.height - 0.5)
        corrs = Correspondences(pts0[inside], pts1[inside], np.ones(int(inside.sum())))
        return corrs if (i, j) == (0, 1) else corrs.swapped()

    def solve(self, sample: Sample, corrs: Sequence[Correspondences], seed: int) -> Prediction:
        import pycolmap

        est = self.estimator
        (c,) = corrs
        if len(c) < max(4, est.min_inliers):
            return Prediction(False, failure_reason="too_few_matches", num_matches=len(c))
        options = pycolmap.RANSACOptions(
            max_error=est.max_error_px, random_seed=seed, min_num_trials=est.min_trials,
            max_num_trials=est.max_trials,
        )
        # pycolmap puts pixel centres at +0.5: shift in, and conjugate H back to our convention.
        result = pycolmap.estimate_homography_matrix(
            c.pts0.astype(np.float64) + 0.5, c.pts1.astype(np.float64) + 0.5, options
        )
        if result is None:
            return Prediction(False, failure_reason="ransac_failed", num_matches=len(c))
        T = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        H = np.linalg.inv(T) @ np.asarray(result["H"]) @ T
        H = H / H[2, 2]
        n_in = int(result["num_inliers"])
        ok = n_in >= est.min_inliers
        return Prediction(ok, {"H_0to1": H.tolist()}, None if ok else "too_few_inliers",
                          confidence=float(n_in), num_matches=len(c), num_inliers=n_in)

    def evaluate(self, sample: Sample, prediction: Prediction) -> dict[str, float | None]:
        """``corner_err_px`` (None on failure) and ``success_3px`` (1.0 / 0.0; failures are 0)."""
        if not prediction.success:
            return {"corner_err_px": None, "success_3px": 0.0}
        v = sample.views[0]
        err = corner_error_px(np.asarray(prediction.values["H_0to1"]), sample.gt["H_0to1"], v.width, v.height)
        return {"corner_err_px": err, "success_3px": float(err <= SUCCESS_PX)}

    def summarize(self, records: Iterable[Record]) -> dict[str, Any]:
        """Percent of samples within 3 px, median corner error (failures count as +inf; None if the
        median is a failure), failure percentage."""
        records = list(records)
        if not records:
            return {"success_3px_pct": None, "corner_err_median_px": None, "failure_pct": None}
        errs = np.array([np.inf if r.metrics.get("corner_err_px") is None else r.metrics["corner_err_px"]
                         for r in records])
        median = float(np.median(errs))
        return {
            "success_3px_pct": 100.0 * float(np.mean([r.metrics["success_3px"] for r in records])),
            "corner_err_median_px": median if np.isfinite(median) else None,
            "failure_pct": 100.0 * float(np.mean([not r.prediction.get("success") for r in records])),
        }
