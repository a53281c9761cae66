"""``loftr``: unavailable without weights (with the message), local checkpoint loading, and the
pixel mapping of its keypoints (reference frame, -0.5) through a patched network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.matchers.loftr import LoftrConfig, LoftrMatcher
from benchmarks.weights import WeightsNotFoundError, sha256_file


@pytest.fixture()
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A torch hub directory with no checkpoints (TORCH_HOME is read at each call)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def random_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoFTR checkpoint of random weights in the official layout (``matcher.`` key prefix)."""
    torch.manual_seed(0)
    model = LoftrMatcher._build(LoftrConfig())
    state = {f"matcher.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("loftr") / "random_loftr.ckpt"
    torch.save({"state_dict": state, "epoch": 0}, path)
    return path


def test_unavailable_without_weights_says_where_to_put_them(empty_hub: Path):
    ok, reason = LoftrMatcher.available()
    assert not ok
    assert "loftr_outdoor.ckpt" in reason and str(empty_hub) in reason and "weights=PATH" in reason
    ok, reason = LoftrMatcher.available(LoftrConfig(variant="indoor"))
    assert not ok and "loftr_indoor.ckpt" in reason
    with pytest.raises(WeightsNotFoundError, match="loftr_outdoor.ckpt"):
        LoftrMatcher(LoftrConfig())
    ok, reason = LoftrMatcher.available(LoftrConfig(weights=str(empty_hub / "mine.ckpt")))
    assert not ok and reason == f"LoFTR weights not found: {empty_hub / 'mine.ckpt'} does not exist"


def test_weights_found_in_the_hub_cache(empty_hub: Path, random_ckpt: Path):
    empty_hub.mkdir(parents=True)
    (empty_hub / "loftr_outdoor.ckpt").symlink_to(random_ckpt)
    assert LoftrMatcher.available() == (True, "")
    matcher = LoftrMatcher(LoftrConfig())
    assert matcher.weights_checksum() == sha256_file(random_ckpt)
    assert not matcher._model.training


def test_bad_checkpoints_name_the_file(tmp_path: Path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.ckpt"):
        LoftrMatcher(LoftrConfig(weights=str(junk)))
    wrong = tmp_path / "wrong.ckpt"
    torch.save({"state_dict": {"foo.weight": torch.zeros(2)}}, wrong)
    with pytest.raises(ValueError, match=r"wrong.ckpt: does not fit LoFTR: missing \['backbone"):
        LoftrMatcher(LoftrConfig(weights=str(wrong)))
    nokey = tmp_path / "nokey.ckpt"
    torch.save({"model": {}}, nokey)
    with pytest.raises(ValueError, match=r"nokey.ckpt: expected a dict with key 'state_dict'"):
        LoftrMatcher(LoftrConfig(weights=str(nokey)))


class _FakeLoftr(torch.nn.Module):
    """Returns, for each image, the reference-frame centre of its top-left and bottom-right pixels
    (kornia's LoFTR frame: pixel (x, y) has its centre at (x + 0.5, y + 0.5))."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, ...]] = []

    def forward(self, data):
        out = {}
        for i in (0, 1):
            h, w = data[f"image{i}"].shape[-2:]
            self.sizes.append(tuple(data[f"image{i}"].shape))
            out[f"keypoints{i}"] = torch.tensor([[0.5, 0.5], [w - 0.5, h - 0.5]])
        out["confidence"] = torch.tensor([0.9, 0.5])
        return out


def test_pixel_mapping_through_a_patched_network(random_ckpt: Path, images, mt):
    matcher = LoftrMatcher(LoftrConfig(weights=str(random_ckpt), resize_max=200))
    fake = _FakeLoftr()
    matcher._model = fake
    corrs = matcher.match(mt.view(images["shift0"]), mt.view(images["half"]))
    # 400 x 320 -> 200 x 160 (multiples of 8): gray, and the half image is not resized
    assert fake.sizes == [(1, 1, 160, 200), (1, 1, 160, 200)]
    # resized pixel 0 of a 2x downscale is original pixel 0.5; pixel 199 is 398.5
    np.testing.assert_allclose(corrs.pts0, [[0.5, 0.5], [398.5, 318.5]], atol=1e-5)
    np.testing.assert_allclose(corrs.pts1, [[0.0, 0.0], [199.0, 159.0]], atol=1e-5)
    np.testing.assert_allclose(corrs.scores, [0.9, 0.5])
    assert corrs.meta["size0"] == [200, 160] and "match" in corrs.timings


def test_random_weights_run_end_to_end(random_ckpt: Path, images, mt):
    """The real kornia forward on small images: any number of matches, all inside the images."""
    matcher = LoftrMatcher(LoftrConfig(weights=str(random_ckpt), resize_max=160, conf_threshold=0.0))
    corrs = matcher.match(mt.view(images["shift0"]), mt.view(images["shift1"]))
    assert corrs.pts0.dtype == np.float32 and corrs.pts0.shape[1] == 2
    if len(corrs):
        assert np.all(corrs.pts0 >= -0.5) and np.all(corrs.pts0 <= [399.5, 319.5])
    else:
        assert corrs.meta["reason"]


def test_config_validation():
    with pytest.raises(ValueError, match="variant"):
        LoftrConfig(variant="night")
    with pytest.raises(ValueError, match="conf_threshold"):
        LoftrConfig(conf_threshold=1.0)
