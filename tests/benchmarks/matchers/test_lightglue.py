"""``disk+lightglue`` / ``aliked+lightglue``: availability messages always; accuracy (shift, scale,
Middlebury stereo) when the offline weights are installed (`mast3r-bench weights install ...`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.matchers.lightglue import (
    AlikedLightGlueConfig,
    AlikedLightGlueMatcher,
    DiskLightGlueConfig,
    DiskLightGlueMatcher,
)
from benchmarks.registry import MATCHERS
from benchmarks.types import Matcher
from benchmarks.weights import WeightsNotFoundError

CLASSES = {"disk+lightglue": DiskLightGlueMatcher, "aliked+lightglue": AlikedLightGlueMatcher}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_unavailable_without_weights(name, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cls = MATCHERS.get(name)
    assert cls is CLASSES[name] and cls.name == name
    ok, reason = cls.available()
    assert not ok
    assert f"run `mast3r-bench weights install {name}`" in reason
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in reason and "not installed" in reason
    with pytest.raises(WeightsNotFoundError, match="weights install"):
        cls(cls.Config())


def test_corrupt_weights_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "depth-save.pth").write_bytes(b"x" * 100)
    ok, reason = DiskLightGlueMatcher.available()
    assert not ok and "depth-save.pth is corrupt" in reason


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (lambda: DiskLightGlueConfig(max_keypoints=1), "max_keypoints"),
        (lambda: DiskLightGlueConfig(nms_window=4), "nms_window"),
        (lambda: DiskLightGlueConfig(depth_confidence=1.5), "depth_confidence"),
        (lambda: AlikedLightGlueConfig(model="aliked-t16"), "model"),
        (lambda: AlikedLightGlueConfig(filter_threshold=-0.1), "filter_threshold"),
    ],
)
def test_config_validation(cfg, message):
    with pytest.raises(ValueError, match=message):
        cfg()


@pytest.fixture(scope="module")
def disk(mt) -> DiskLightGlueMatcher:
    mt.require_weights("disk+lightglue")
    return DiskLightGlueMatcher(DiskLightGlueConfig(max_keypoints=512, resize_max=512))


@pytest.fixture(scope="module")
def aliked(mt) -> AlikedLightGlueMatcher:
    mt.require_weights("aliked+lightglue")
    return AlikedLightGlueMatcher(AlikedLightGlueConfig(max_keypoints=512, resize_max=512))


@pytest.fixture(params=["disk", "aliked"])
def matcher(request):
    return request.getfixturevalue(request.param)


def test_shift(matcher, images, mt):
    assert isinstance(matcher, Matcher)
    assert len(matcher.weights_checksum().split(",")) == 2
    corrs = matcher.match(mt.view(images["shift0"]), mt.view(images["shift1"]))
    assert len(corrs) > 200
    err = mt.shift_errors(corrs, mt.SHIFT)
    assert np.all(np.abs(np.median(err, axis=0)) < 0.5), np.median(err, axis=0)
    assert np.mean(np.linalg.norm(err, axis=1) < 2.0) > 0.9
    assert np.all((corrs.scores > 0.1) & (corrs.scores <= 1.0))


def test_scale_change_pins_pixel_centres(matcher, images, mt):
    """Image 1 is image 0 box-averaged 2x2 (x1 = (x0 + 0.5) / 2 - 0.5). With resize_max=200 the
    networks see two 200 x 160 images, so image 0's keypoints go through the resize mapping."""
    cls = type(matcher)
    m = cls(cls.Config(max_keypoints=256, resize_max=200))
    corrs = m.match(mt.view(images["shift0"]), mt.view(images["half"]))
    assert len(corrs) > 100
    err = corrs.pts1 - ((corrs.pts0 + 0.5) / 2 - 0.5)
    assert np.all(np.abs(np.median(err, axis=0)) < 0.1), np.median(err, axis=0)


def test_middlebury_stereo(matcher, stereo, mt):
    """Real rectified stereo pair: most matches agree with the GT disparity to 2 px."""
    left, right, disp = stereo
    corrs = matcher.match(left, right)
    err = mt.stereo_errors(corrs, disp)
    known = np.isfinite(err)
    assert len(corrs) > 250 and known.sum() > 200
    within = float(np.mean(err[known] < 2.0))
    assert within > 0.7, within


def test_too_few_keypoints_gives_an_empty_result_with_a_reason(disk, images, mt, monkeypatch):
    import torch

    monkeypatch.setattr(disk, "_extract", lambda prep: (torch.zeros(1, 2), torch.zeros(1, 128)))
    corrs = disk.match(mt.view(images["shift0"]), mt.view(images["shift1"]))
    assert len(corrs) == 0
    assert corrs.meta["reason"] == "too few keypoints (view 0: 1, view 1: 1)"
