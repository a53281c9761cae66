"""``dust3r`` matcher: reciprocal 3D NN, confidence threshold, pixel convention, tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.matchers._forward_cache import ForwardCache
from benchmarks.matchers.dust3r import Dust3rConfig, Dust3rMatcher, reciprocal_nn_3d
from benchmarks.matchers.mast3r import make_random_checkpoint
from mast3r.model import EncodedImages, PairOutput, ViewOutput

SHIFT = (8.0, 6.0)  # image 1 pixel (x, y) shows the scene point (x + 8, y + 6) of image 0


class RampPointmapModel:
    """Stand-in for a DUSt3R network: pointmap ``(sx, sy, 10)`` of the scene position read from the
    ramp colours (R = 2 sx, G = 2 sy); confidence 4 where ``sx < 60``, else 2."""

    checksum = "ramp-pointmap"

    def __init__(self) -> None:
        self.calls = 0

    def encode_pair(self, img0, img1):
        return EncodedImages(img0, tuple(img0.shape[-2:])), EncodedImages(img1, tuple(img1.shape[-2:]))

    def forward_encoded(self, enc0, enc1, autocast_dtype=None):
        self.calls += 1
        return PairOutput(self._view(enc0.tokens), self._view(enc1.tokens))

    @staticmethod
    def _view(img):
        u8 = torch.round((img.float() * 0.5 + 0.5) * 255)
        sx, sy = u8[:, 0] / 2, u8[:, 1] / 2
        conf = torch.where(sx < 60, 4.0, 2.0)
        return ViewOutput(pts3d=torch.stack([sx, sy, torch.full_like(sx, 10.0)], -1), conf=conf)


def test_reciprocal_nn_3d_hand_worked():
    p0 = np.array([[0, 0, 0], [1, 0, 0], [5, 0, 0]], np.float32)
    p1 = np.array([[0.1, 0, 0], [4.8, 0, 0], [4.9, 0, 0]], np.float32)
    i0, i1 = reciprocal_nn_3d(p0, p1)  # 1 -> 0 is not mutual (0 -> 0); 4.8 loses to 4.9
    assert i0.tolist() == [0, 2] and i1.tolist() == [0, 2]
    e0, e1 = reciprocal_nn_3d(p0, np.zeros((0, 3)))
    assert e0.shape == e1.shape == (0,)


def test_matches_in_original_pixels_with_confidence_threshold(ramps):
    view0, view1 = ramps
    model = RampPointmapModel()
    matcher = Dust3rMatcher(Dust3rConfig(checkpoint="", size=64, estimate_focals=False),
                            forward_cache=ForwardCache(None), model=model)
    corrs = matcher.match(view0, view1)
    s = corrs.pts3d0[:, :2]
    assert len(corrs) > 50 and np.all(s[:, 0] < 60)  # conf_thr 3 keeps the sx < 60 half only
    inner = (s[:, 0] >= 4) & (s[:, 1] >= 4) & (s[:, 1] <= 99 - SHIFT[1] - 4)
    np.testing.assert_allclose(corrs.pts0[inner], s[inner], atol=1e-4)  # 128x100 -> 64x48 (1 row cropped)
    np.testing.assert_allclose(corrs.pts1[inner], corrs.pts3d1[inner, :2] - np.float32(SHIFT), atol=1e-4)
    np.testing.assert_array_equal(corrs.pts3d0[inner], corrs.pts3d1[inner])  # the same 3D point
    assert np.all(corrs.scores == 4.0) and corrs.timings["forward"] >= 0

    capped = matcher.with_config(Dust3rConfig(checkpoint="", size=64, estimate_focals=False, max_matches=10,
                                              conf_mode="geomean")).match(view0, view1)
    assert len(capped) == 10 and model.calls == 1  # the forward is shared
    none = matcher.with_config(Dust3rConfig(checkpoint="", size=64, estimate_focals=False, conf_thr=5.0))
    out = none.match(view0, view1)
    assert len(out) == 0 and "reason" in out.meta


def test_missing_checkpoint(monkeypatch):
    monkeypatch.delenv("MAST3R_BENCH_DUST3R_CHECKPOINT", raising=False)
    ok, reason = Dust3rMatcher.available()
    assert not ok and "MAST3R_BENCH_DUST3R_CHECKPOINT" in reason
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Dust3rMatcher()


def test_tiny_dust3r_checkpoint_end_to_end(ramps, tmp_path):
    ckpt = make_random_checkpoint(tmp_path / "d.pth", seed=1, preset="tiny-dust3r")
    cfg = Dust3rConfig(checkpoint=str(ckpt), size=64, conf_thr=0.0, border=2)
    corrs = Dust3rMatcher(cfg, forward_cache=ForwardCache(None)).match(*ramps)
    assert len(corrs) > 0 and corrs.pts3d0.shape == (len(corrs), 3) and corrs.pts3d1.shape == (len(corrs), 3)
    assert np.all(corrs.scores > 1.0)  # DUSt3R conf = 1 + exp(.)
    # border 2 in network pixels of 64x48 (scale 2, 1 row cropped): x >= 2*2+0.5, y >= 2*2+2.5
    assert corrs.pts0[:, 0].min() >= 4.5 and corrs.pts0[:, 1].min() >= 6.5
    assert corrs.pts0[:, 0].max() <= 2 * 61 + 0.5 and {"focal0_px", "focal1_px"} <= set(corrs.meta)


def test_batch_size_resumes_the_same_run_from_the_cli(tmp_path, monkeypatch):
    """Issue 17 item 2, through ``mast3r-bench run``: ``matcher.batch_size`` is execution-only (same
    run directory, resumed, one correspondence cache; the manifest records it); ``matcher.precision``
    is a new run."""
    import json

    from benchmarks.cli import main

    monkeypatch.delenv("MAST3R_BENCH_FORWARD_CACHE", raising=False)
    ckpt = make_random_checkpoint(tmp_path / "d.pth", preset="tiny-dust3r")
    results = tmp_path / "r"

    def run(*extra: str) -> int:
        return main(["run", "smoke", "--matcher", "dust3r", "--data", str(tmp_path / "data"), "--results",
                     str(results), "--no-progress", f"matcher.checkpoint={ckpt}", "matcher.size=64",
                     "adapter.num_pairs=3", *extra])

    assert run("--limit", "2") == 0
    assert run("matcher.batch_size=2") == 0
    (run_dir,) = (results / "runs" / "smoke" / "dust3r").iterdir()
    assert (run_dir / "records.jsonl").read_text().count("\n") == 3
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["resumed"] == 1 and manifest["execution"]["matcher"] == {"batch_size": 2}
    assert len(list((results / "cache" / "correspondences").iterdir())) == 1
    assert run("matcher.precision=bf16") == 0
    assert len(list((results / "runs" / "smoke" / "dust3r").iterdir())) == 2
    assert len(list((results / "cache" / "correspondences").iterdir())) == 2
