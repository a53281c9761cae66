"""The engine: network + matching backend; descriptor-less models refused; coarse-to-fine image
opening (scales, unreadable files)."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from mast3r.engine.c2f import open_rgb
from mast3r.engine.engine import Engine, NoDescriptorHead
from mast3r.engine.forward import PairForward
from mast3r.matching import FRMConfig, match_descriptors
from mast3r.preprocess import ImageLoadError


def _maps(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    desc = torch.nn.functional.normalize(torch.randn(12, 16, 8, generator=g), dim=-1)
    return {"pts3d": torch.zeros(12, 16, 3), "conf": torch.ones(12, 16), "desc": desc,
            "desc_conf": torch.rand(12, 16, generator=g) + 1}


def test_engine_match_is_the_matching_of_the_forward():
    engine = Engine(model=object())  # the model is never loaded here
    fwd = PairForward(_maps(0), _maps(0))
    cfg = FRMConfig(subsample=2, border=1)
    got = engine.match(fwd, cfg)
    v0, v1 = fwd.view0, fwd.view1
    ref = match_descriptors(v0["desc"], v1["desc"], v0["desc_conf"], v1["desc_conf"], cfg)
    assert len(ref) > 10
    np.testing.assert_array_equal(got.xy0, ref.xy0)
    np.testing.assert_array_equal(got.conf, ref.conf)
    no_desc = {k: v for k, v in _maps(1).items() if not k.startswith("desc")}
    with pytest.raises(NoDescriptorHead):
        engine.match(PairForward(no_desc, no_desc), cfg)


def test_engine_shares_a_network():
    first = Engine(model=object(), size=64)
    second = Engine(network=first.network)
    assert second.network is first.network and second.backend is not first.backend


def test_open_rgb_scales_per_axis_and_names_unreadable_files(tmp_path):
    path = tmp_path / "a.png"
    PIL.Image.new("RGB", (1000, 687)).save(path)
    img, (sx, sy) = open_rgb(path, 640)
    assert img.shape == (440, 640, 3)
    assert sx == pytest.approx(1000 / 640) and sy == pytest.approx(687 / 440)
    assert open_rgb(path)[1] == (1.0, 1.0)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageLoadError, match="bad.png"):
        open_rgb(tmp_path / "bad.png")
