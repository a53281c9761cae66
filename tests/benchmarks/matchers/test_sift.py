"""``sift``: pixel convention pinned by integer, subpixel and scale-change pairs; no-match cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.matchers.sift import SiftConfig, SiftMatcher
from benchmarks.registry import MATCHERS
from benchmarks.types import Correspondences, Matcher


@pytest.fixture(scope="module")
def sift() -> SiftMatcher:
    return SiftMatcher(SiftConfig())


def _blobs(width: int, height: int, offset: tuple[float, float], seed: int = 0) -> np.ndarray:
    """Sum of random Gaussian blobs sampled at pixel centres ``(x + ox, y + oy)``: an exact
    sub-pixel shift of the same continuous image for every ``offset``. (H, W) uint8."""
    rng = np.random.default_rng(seed)
    n = 160
    cx, cy = rng.uniform(-10, width + 10, n), rng.uniform(-10, height + 10, n)
    sigma, amp = rng.uniform(1.5, 5.0, n), rng.uniform(-1.0, 1.0, n)
    x = np.arange(width, dtype=np.float64) + offset[0]
    y = np.arange(height, dtype=np.float64) + offset[1]
    img = np.zeros((height, width))
    for k in range(n):
        gx = np.exp(-((x - cx[k]) ** 2) / (2 * sigma[k] ** 2))
        gy = np.exp(-((y - cy[k]) ** 2) / (2 * sigma[k] ** 2))
        img += amp[k] * np.outer(gy, gx)
    return np.clip(np.round(128 + 90 * img), 0, 255).astype(np.uint8)


def test_registered_and_protocol(sift):
    assert MATCHERS.get("sift") is SiftMatcher
    assert isinstance(sift, Matcher)
    assert SiftMatcher.available() == (True, "")
    assert sift.weights_checksum() is None


def test_integer_shift(sift, images, mt):
    corrs = sift.match(mt.view(images["shift0"]), mt.view(images["shift1"]))
    assert isinstance(corrs, Correspondences) and len(corrs) > 300
    err = mt.shift_errors(corrs, mt.SHIFT)
    assert np.all(np.abs(np.median(err, axis=0)) < 0.05), np.median(err, axis=0)
    assert np.mean(np.linalg.norm(err, axis=1) < 1.0) > 0.95
    assert corrs.timings["match"] > 0
    assert corrs.scores.min() >= 0.2 - 1e-6 and corrs.scores.max() <= 1.0  # 1 - ratio, ratio <= 0.8


def test_subpixel_shift(sift, tmp_path: Path, mt):
    shift = (4.5, -2.25)
    p0, p1 = tmp_path / "b0.png", tmp_path / "b1.png"
    Image.fromarray(_blobs(320, 256, (0.0, 0.0))).save(p0)
    Image.fromarray(_blobs(320, 256, shift)).save(p1)
    corrs = sift.match(mt.view(p0), mt.view(p1))
    assert len(corrs) > 40
    err = mt.shift_errors(corrs, shift)
    assert np.all(np.abs(np.median(err, axis=0)) < 0.15), np.median(err, axis=0)


@pytest.mark.parametrize("resize_max", [None, 200])
def test_scale_change_pins_pixel_centres(images, mt, resize_max):
    """Image 1 is image 0 box-averaged 2x2: x1 = (x0 + 0.5) / 2 - 0.5. With resize_max=200 both
    images are detected at 200 px wide, so the mapping back to image 0 is exercised; a mapping
    without the half-pixel terms would be off by 0.25 px."""
    matcher = SiftMatcher(SiftConfig(resize_max=resize_max))
    corrs = matcher.match(mt.view(images["shift0"]), mt.view(images["half"]))
    assert len(corrs) > 50
    expected = (corrs.pts0 + 0.5) / 2 - 0.5
    err = corrs.pts1 - expected
    assert np.all(np.abs(np.median(err, axis=0)) < 0.1), np.median(err, axis=0)
    if resize_max is not None:
        assert np.all(np.max(corrs.pts0, axis=0) <= [399.5, 319.5])


def test_blank_images_give_no_matches(sift, images, mt):
    corrs = sift.match(mt.view(images["blank"]), mt.view(images["blank"]))
    assert len(corrs) == 0
    assert corrs.pts0.shape == (0, 2) and corrs.scores.shape == (0,)
    assert corrs.meta["reason"] == "too few keypoints (view 0: 0, view 1: 0)"


@pytest.mark.parametrize(("ratio", "mutual"), [(None, True), (0.8, False), (None, False)])
def test_matching_variants(images, mt, ratio, mutual):
    m = SiftMatcher(SiftConfig(ratio=ratio, mutual=mutual, max_keypoints=500))
    corrs = m.match(mt.view(images["shift0"]), mt.view(images["shift1"]))
    err = np.linalg.norm(mt.shift_errors(corrs, mt.SHIFT), axis=1)
    assert len(corrs) > 50 and np.median(err) < 0.5
    assert np.all((corrs.scores > 0) & (corrs.scores <= 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 1.5}, "ratio"),
        ({"max_keypoints": 0}, "max_keypoints"),
        ({"detector": "orb"}, "detector"),
        ({"backend": "x"}, "backend"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SiftConfig(**kwargs)
