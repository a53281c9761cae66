"""``xfeat``: availability without weights; with the offline weights, the pixel convention on a
stride-aligned shift (exact), a general shift, a 2x scale change and the Middlebury pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.matchers.xfeat import XFeatConfig, XFeatMatcher
from benchmarks.registry import MATCHERS
from benchmarks.weights import WeightsNotFoundError


def test_unavailable_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert MATCHERS.get("xfeat") is XFeatMatcher
    ok, reason = XFeatMatcher.available()
    assert not ok and "xfeat.pt is not installed" in reason and "weights install xfeat" in reason
    with pytest.raises(WeightsNotFoundError, match="weights install xfeat"):
        XFeatMatcher(XFeatConfig(mode="lighterglue"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"mode": "star"}, "mode"), ({"top_k": 1}, "top_k"), ({"min_cossim": 1.0}, "min_cossim")],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        XFeatConfig(**kwargs)


@pytest.fixture(scope="module", params=["mnn", "lighterglue"])
def xfeat(request, mt) -> XFeatMatcher:
    mt.require_weights("xfeat")
    return XFeatMatcher(XFeatConfig(mode=request.param, top_k=2048))


def test_stride_aligned_shift_is_exact(xfeat, images, mt):
    """384 x 320 images (no resampling) shifted by (16, 8): the network sees the same content on
    the same 8 x 8 cell grid, so most keypoints move by exactly the shift."""
    corrs = xfeat.match(mt.view(images["shift32_0"]), mt.view(images["shift32_1"]))
    assert len(corrs) > 300
    err = np.linalg.norm(mt.shift_errors(corrs, mt.SHIFT32), axis=1)
    assert np.mean(err < 1e-3) > 0.8


def test_general_shift(xfeat, images, mt):
    """400 x 320 -> 384 x 320 (x resampled by 24/25): integer keypoints, about a pixel of jitter."""
    corrs = xfeat.match(mt.view(images["shift0"]), mt.view(images["shift1"]))
    assert len(corrs) > 300
    err = mt.shift_errors(corrs, mt.SHIFT)
    assert np.all(np.abs(np.median(err, axis=0)) < 0.5), np.median(err, axis=0)
    assert np.median(np.linalg.norm(err, axis=1)) < 2.0


def test_scale_change_pins_pixel_centres(images, mt):
    mt.require_weights("xfeat")
    m = XFeatMatcher(XFeatConfig(mode="lighterglue", resize_max=200, top_k=1024))
    corrs = m.match(mt.view(images["shift0"]), mt.view(images["half"]))
    assert len(corrs) > 100
    err = corrs.pts1 - ((corrs.pts0 + 0.5) / 2 - 0.5)
    assert np.all(np.abs(np.median(err, axis=0)) < 0.1), np.median(err, axis=0)


def test_middlebury_stereo(xfeat, stereo, mt):
    left, right, disp = stereo
    corrs = xfeat.match(left, right)
    err = mt.stereo_errors(corrs, disp)
    known = np.isfinite(err)
    assert known.sum() > 300
    assert np.mean(err[known] < 2.0) > 0.5  # integer keypoints: looser than DISK / ALIKED


def test_blank_images(xfeat, images, mt):
    corrs = xfeat.match(mt.view(images["blank"]), mt.view(images["blank"]))
    assert len(corrs) == 0 and corrs.meta["reason"].startswith("too few keypoints")
