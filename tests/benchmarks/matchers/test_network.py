"""The engine network (:class:`mast3r.engine.network.PairNetwork`) as the matchers use it: the fast
path (fp16/bf16 weights, forward-cache key, power-of-two batch padding, CUDA graphs) and the
prepared-image cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.config import apply_overrides
from benchmarks.matchers._forward_cache import ForwardCache, prepare_view
from benchmarks.matchers.mast3r import Mast3rConfig, Mast3rMatcher
from benchmarks.types import View
from mast3r.engine.network import PairNetwork


def test_fast_network_on_cpu(tiny_checkpoint, ramps, monkeypatch):
    """``fast``: bf16 weights instead of autocast, its own forward-cache key (the autocast key is
    unchanged), close to the autocast outputs; a fixed batch pads to a power of two and drops the
    padding."""
    view0, view1 = ramps
    base = Mast3rConfig(checkpoint=str(tiny_checkpoint), size=64, precision="bf16", batch_size=2,
                        estimate_focals=True)
    slow = Mast3rMatcher(base, forward_cache=ForwardCache(None))
    fast = Mast3rMatcher(apply_overrides(base, {"fast": "on"}), forward_cache=ForwardCache(None))
    assert slow.network.model_key != fast.network.model_key
    legacy = PairNetwork(str(tiny_checkpoint), 64, "bf16", "cpu", cache=ForwardCache(None))
    assert slow.network.model_key == legacy.model_key
    assert fast.network.model.backbone_dtype == torch.bfloat16
    pairs = [(view0, view1), (view1, view0), (view0, view0)]
    preps = [(prepare_view(slow.network, a), prepare_view(slow.network, b)) for a, b in pairs]
    ref = slow.network.forward_pairs(preps, need_own=True, batch_size=2)
    batches = []
    real_run = PairNetwork.run

    def spy(self, img0, img1, need_own, n_pairs=None):
        batches.append((img0.shape[0], n_pairs))
        return real_run(self, img0, img1, need_own, n_pairs)

    monkeypatch.setattr(PairNetwork, "run", spy)
    monkeypatch.setattr(PairNetwork, "fixed_batch", property(lambda self: True))
    got = fast.network.forward_pairs(preps, need_own=True, batch_size=2)
    assert batches == [(2, 2), (1, 1)] and len(got) == 3  # a lone pair is not padded
    batches.clear()
    fast.network.cache = ForwardCache(None, memory_items=0)  # repeated pairs: no cache hits
    fast.network.forward_pairs(preps * 2, need_own=False, batch_size=4)  # 6 pairs: 4 + (2 padded to 2)
    assert batches == [(4, 4), (2, 2)]
    batches.clear()
    fast.network.forward_pairs(preps[:1] * 3 + preps[1:2] * 4, need_own=False, batch_size=8)
    assert batches == [(8, 7)]  # 7 pairs padded to 8
    for r, g in zip(ref, got):
        for name in ("pts3d", "desc"):
            a, b = r.view1[name], g.view1[name]
            assert a.shape == b.shape and a.dtype == b.dtype == torch.float32
            assert torch.linalg.norm(a - b) <= 0.05 * torch.linalg.norm(a), name
        assert g.own1 is not None and g.own1["pts3d"].shape == r.own1["pts3d"].shape
    out = fast.match_many(pairs)
    assert len(out) == 3 and all(np.isfinite(c.pts3d0).all() for c in out)


@pytest.mark.gpu
def test_fast_graphed_network_on_cuda(tiny_checkpoint, ramps):
    """``fast`` + ``cuda_graph`` on CUDA: one capture per (shape, batch), outputs that are not
    overwritten by later replays and agree with the un-graphed fast forward."""
    view0, view1 = ramps
    cfg = Mast3rConfig(checkpoint=str(tiny_checkpoint), size=64, precision="fp16", fast=True, batch_size=2)
    plain = Mast3rMatcher(cfg, "cuda", forward_cache=ForwardCache(None))
    graphed = Mast3rMatcher(apply_overrides(cfg, {"cuda_graph": "on"}), "cuda",
                            forward_cache=ForwardCache(None))
    assert graphed.network.fixed_batch and not plain.network.fixed_batch
    pairs = [(view0, view1), (view1, view0), (view0, view0)]
    preps = [(prepare_view(plain.network, a), prepare_view(plain.network, b)) for a, b in pairs]
    ref = plain.network.forward_pairs(preps, need_own=True, batch_size=2)
    got = graphed.network.forward_pairs(preps, need_own=True, batch_size=2)
    assert len(graphed.network._graphs) == 2  # batches of 2 and 1 pairs: one capture each
    again = graphed.network.forward_pairs(preps[::-1] * 2, need_own=True, batch_size=2)
    assert len(again) == 6 and len(graphed.network._graphs) == 2  # replays, no new capture
    for r, g in zip(ref, got):
        for name in ("pts3d", "desc", "conf"):
            torch.testing.assert_close(g.view0[name], r.view0[name], rtol=2e-2, atol=2e-2)
        torch.testing.assert_close(g.own1["pts3d"], r.own1["pts3d"], rtol=2e-2, atol=2e-2)
    assert not torch.equal(got[0].view1["pts3d"], got[2].view1["pts3d"])  # not aliased to the graph
    out = graphed.match_many(pairs)
    assert len(out) == 3 and all(len(c) > 0 for c in out)


def test_prepared_images_are_reused_until_the_file_changes(ramps, tmp_path):
    view0, _ = ramps
    net = PairNetwork("", 64, "fp32", "cpu", model=object(), cache=ForwardCache(None))  # model unused
    first = prepare_view(net, view0)
    assert prepare_view(net, view0) is first
    with Image.open(view0.image_path) as im:  # same size, new content and mtime
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(view0.image_path)
    os.utime(view0.image_path, ns=(1, 1))
    again = prepare_view(net, view0)
    assert again is not first and not np.array_equal(again.uint8, first.uint8)
    with pytest.raises(ValueError, match="no such image"):
        prepare_view(net, View("gone", tmp_path / "gone.png", 8, 8))
