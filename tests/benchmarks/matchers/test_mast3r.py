"""``mast3r`` matcher: config/hash, pixel convention (resize + crop), shared forwards, c2f, errors.

A random network's matches are meaningless, so the geometry tests use a stand-in model that decodes
the input colours: the test images are ramps (R = 2x, G = 2y of the scene position), so after the
official preprocessing every network pixel's colour says where PIL put that pixel in the ORIGINAL
image. The stand-in returns descriptors and a pointmap ``(sx, sy, 10)`` of that scene position, so
``pts3d0`` of a match names its true position independently of ``net_to_orig``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from benchmarks.config import apply_overrides, execution_dict, execution_paths, field_paths
from benchmarks.hashing import RunSpec
from benchmarks.matchers._forward_cache import ForwardCache, prepare_view
from benchmarks.matchers.mast3r import Mast3rConfig, Mast3rMatcher, make_random_checkpoint
from benchmarks.store import RecordStore
from benchmarks.types import View
from mast3r.engine.network import PairNetwork
from mast3r.matching import FRMConfig
from mast3r.model import EncodedImages, PairOutput, ViewOutput

SHIFT = (8.0, 6.0)  # image 1 pixel (x, y) shows the scene point (x + 8, y + 6) of image 0


class RampModel:
    """Stand-in for ``Mast3r``: outputs derived from the ramp colours of the (normalised) input."""

    checksum = "ramp-model"

    def __init__(self) -> None:
        self.calls = 0

    def encode_pair(self, img0, img1):
        return EncodedImages(img0, tuple(img0.shape[-2:])), EncodedImages(img1, tuple(img1.shape[-2:]))

    def forward_encoded(self, enc0, enc1, autocast_dtype=None):
        self.calls += 1
        return PairOutput(self._view(enc0.tokens), self._view(enc1.tokens))

    @staticmethod
    def _view(img: torch.Tensor) -> ViewOutput:
        u8 = torch.round((img.float() * 0.5 + 0.5) * 255)
        sx, sy = u8[:, 0] / 2, u8[:, 1] / 2  # scene position, original pixels of image 0
        feats = []
        for k in range(1, 7):
            w = 2 * np.pi * k / 512
            feats += [torch.cos(w * sx), torch.sin(w * sx), torch.cos(w * sy), torch.sin(w * sy)]
        desc = torch.stack(feats, -1) / np.sqrt(12.0)
        pts = torch.stack([sx, sy, torch.full_like(sx, 10.0)], -1)
        ones = torch.ones_like(sx)
        return ViewOutput(pts3d=pts, conf=2 * ones, desc=desc, desc_conf=1.5 * ones)


def _fake(config: Mast3rConfig | None = None, **kw) -> tuple[Mast3rMatcher, RampModel]:
    model = RampModel()
    cfg = config or Mast3rConfig(checkpoint="", size=64, estimate_focals=False)
    return Mast3rMatcher(cfg, forward_cache=ForwardCache(None), model=model, **kw), model


def _interior(corrs, margin=4.0):
    """Rows whose scene position lies where both ramps are unclipped (not at a border)."""
    s = corrs.pts3d0[:, :2]
    return ((s[:, 0] >= margin) & (s[:, 0] <= 127 - SHIFT[0] - margin) & (s[:, 1] >= margin)
            & (s[:, 1] <= 99 - SHIFT[1] - margin))


def test_config_overrides_nested_and_hashed():
    cfg = Mast3rConfig(checkpoint="ckpt.pth")
    assert {"frm.subsample", "frm.dense", "frm.border", "frm.conf_mode", "c2f", "c2f_config.window_size",
            "min_conf", "precision", "batch_size", "estimate_focals"} <= set(field_paths(cfg))
    new = apply_overrides(cfg, {"frm.subsample": "4", "frm.dense": "on", "c2f": "on", "precision": "bf16",
                                "frm.conf_mode": "geomean"})
    assert new.frm == FRMConfig(subsample=4, dense=True, conf_mode="geomean") and new.c2f
    assert new.precision == "bf16" and new.checkpoint == "ckpt.pth"

    def key(c):
        return RunSpec("smoke", "1", {}, {}, "mast3r", c).key

    assert len({key(cfg), key(apply_overrides(cfg, {"frm.subsample": "16"})),
                key(apply_overrides(cfg, {"min_conf": "1.001"}))}) == 3
    with pytest.raises(ValueError):
        apply_overrides(cfg, {"precision": "fp64"})


def test_missing_checkpoint_is_unavailable_with_a_hint(monkeypatch, tmp_path):
    from benchmarks.commands.ls import availability
    from benchmarks.registry import MATCHERS

    monkeypatch.delenv("MAST3R_BENCH_CHECKPOINT", raising=False)
    ok, reason = availability(MATCHERS, "mast3r")
    assert not ok and "checkpoint=PATH" in reason and "MAST3R_BENCH_CHECKPOINT" in reason
    with pytest.raises(FileNotFoundError, match="not found"):
        Mast3rMatcher(Mast3rConfig(checkpoint=str(tmp_path / "missing.pth")))
    (tmp_path / "c.pth").write_bytes(b"x")
    monkeypatch.setenv("MAST3R_BENCH_CHECKPOINT", str(tmp_path / "c.pth"))
    assert Mast3rMatcher.available() == (True, "") and Mast3rConfig().checkpoint == str(tmp_path / "c.pth")


def test_original_pixels_through_resize_and_crop(ramps):
    """128x100 -> 64x50 resized -> 64x48 cropped (1 row off the top): the matcher's pts0/pts1 must be
    where PIL put the matched network pixels (read back from the ramp colours)."""
    view0, view1 = ramps
    matcher, _ = _fake(Mast3rConfig(checkpoint="", size=64, estimate_focals=False,
                                    frm=FRMConfig(subsample=2)))
    corrs = matcher.match(view0, view1)
    inner = _interior(corrs)
    assert inner.sum() > 100
    np.testing.assert_allclose(corrs.pts0[inner], corrs.pts3d0[inner, :2], atol=1e-4)
    np.testing.assert_allclose(corrs.pts1[inner], corrs.pts3d1[inner, :2] - np.float32(SHIFT), atol=1e-4)
    np.testing.assert_allclose(corrs.pts0[inner] - corrs.pts1[inner],
                               np.broadcast_to(SHIFT, (inner.sum(), 2)), atol=1e-4)
    # pixel centres: scale 2 and a 1-row crop put network pixel (i, j) at (2i + 0.5, 2j + 2.5)
    np.testing.assert_allclose(np.mod(corrs.pts0 - [0.5, 2.5], 2), 0, atol=1e-4)
    assert np.all(corrs.scores == np.float32(1.5)) and corrs.meta["net_shape0"] == [48, 64]
    assert set(corrs.timings) == {"forward", "match"}


def test_variants_share_one_forward(ramps, tmp_path):
    view0, view1 = ramps
    base, model = _fake()
    a = base.match(view0, view1)
    b = base.with_config(apply_overrides(base.config, {"frm.subsample": "3", "frm.border": "0"}))
    b = b.match(view0, view1)
    d = base.with_config(apply_overrides(base.config, {"frm.dense": "on", "min_conf": "2"}))
    d = d.match(view0, view1)
    assert model.calls == 1 and len(a) != len(b) and len(d) == 0  # min_conf 2 > desc_conf 1.5
    assert b.meta["forward_cached"] and not a.meta["forward_cached"]
    assert b.timings["forward"] == a.timings["forward"]  # the cost of the forward that was shared
    # a disk cache shares forwards across matcher objects (and processes); results are identical
    cache_dir = tmp_path / "fwd"
    model1 = RampModel()
    cfg = Mast3rConfig(checkpoint="", size=64, estimate_focals=False)
    fresh = Mast3rMatcher(cfg, forward_cache=ForwardCache(cache_dir), model=model1).match(view0, view1)
    model2 = RampModel()
    cached = Mast3rMatcher(cfg, forward_cache=ForwardCache(cache_dir), model=model2).match(view0, view1)
    assert model1.calls == 1 and model2.calls == 0 and len(list(cache_dir.rglob("*.npz"))) == 1
    np.testing.assert_array_equal(fresh.pts0, cached.pts0)
    np.testing.assert_array_equal(fresh.pts3d1, cached.pts3d1)
    # focal estimation needs view 1's own-frame pointmap: a cached entry without it is recomputed
    with_focal = Mast3rMatcher(Mast3rConfig(checkpoint="", size=64), forward_cache=ForwardCache(cache_dir),
                               model=model2).match(view0, view1)
    assert model2.calls == 2  # forward (0, 1) + swapped (1, 0) from the same encoding
    assert with_focal.meta["focal1_px"] is None or with_focal.meta["focal1_px"] > 0


def test_match_many_batches_equal_shapes(ramps):
    view0, view1 = ramps
    matcher, model = _fake(Mast3rConfig(checkpoint="", size=64, estimate_focals=False, batch_size=4))
    out = matcher.match_many([(view0, view1), (view1, view0), (view0, view0)])
    assert model.calls == 1 and [len(c) > 0 for c in out] == [True, True, True]
    np.testing.assert_array_equal(out[0].pts0, matcher.match(view0, view1).pts0)


def test_coarse_to_fine_maps_crops_back(ramps):
    view0, view1 = ramps
    cfg = apply_overrides(Mast3rConfig(checkpoint="", size=64, estimate_focals=False),
                          {"c2f": "on", "c2f_config.window_size": "64", "frm.subsample": "4"})
    matcher, model = _fake(cfg)
    corrs = matcher.match(view0, view1)
    assert corrs.meta["c2f_window_pairs"] >= 1 and "c2f" in corrs.timings and model.calls >= 2
    # fine matches are at full resolution: integer pixels, shifted by exactly SHIFT
    s = corrs.pts0
    inner = (s[:, 0] > 4) & (s[:, 0] < 127 - SHIFT[0] - 4) & (s[:, 1] > 4) & (s[:, 1] < 99 - SHIFT[1] - 4)
    assert inner.sum() > 50
    np.testing.assert_allclose(corrs.pts0[inner] - corrs.pts1[inner],
                               np.broadcast_to(SHIFT, (inner.sum(), 2)), atol=1e-4)
    np.testing.assert_allclose(corrs.pts0, np.round(corrs.pts0), atol=1e-4)


def test_view_size_mismatch_is_an_error(ramps):
    view0, view1 = ramps
    matcher, _ = _fake()
    bad = View(view1.name, view1.image_path, 99, 100)
    with pytest.raises(ValueError, match="99x100"):
        matcher.match(view0, bad)


def test_dust3r_checkpoint_has_no_descriptors(ramps, tmp_path):
    ckpt = make_random_checkpoint(tmp_path / "d.pth", preset="tiny-dust3r")
    matcher = Mast3rMatcher(Mast3rConfig(checkpoint=str(ckpt), size=64, estimate_focals=False))
    with pytest.raises(ValueError, match="dust3r matcher"):
        matcher.match(*ramps)


def test_random_checkpoint_loads_and_is_deterministic(tmp_path):
    from mast3r.weights import load_model, read_checkpoint

    a = make_random_checkpoint(tmp_path / "a.pth", seed=3, preset="tiny-dust3r")
    b = make_random_checkpoint(tmp_path / "b.pth", seed=3, preset="tiny-dust3r")
    c = make_random_checkpoint(tmp_path / "c.pth", seed=4, preset="tiny-dust3r")
    sa, model_string = read_checkpoint(a)
    sb, sc = read_checkpoint(b)[0], read_checkpoint(c)[0]
    assert model_string.startswith("AsymmetricCroCo3DStereo(") and "head_type='linear'" in model_string
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert load_model(a).config.enc_embed_dim == 32
    with pytest.raises(ValueError, match="unknown random checkpoint preset"):
        make_random_checkpoint(tmp_path / "x.pth", preset="huge")


def test_tiny_checkpoint_end_to_end_and_match_command(tiny_checkpoint, ramps, tmp_path):
    from benchmarks.cli import main

    view0, view1 = ramps
    cfg = Mast3rConfig(checkpoint=str(tiny_checkpoint), size=64, frm=FRMConfig(subsample=2))
    matcher = Mast3rMatcher(cfg, forward_cache=ForwardCache(None))
    corrs = matcher.match(view0, view1)
    assert len(corrs) > 0 and corrs.pts3d0.shape == (len(corrs), 3) and corrs.pts3d1.shape == (len(corrs), 3)
    assert corrs.pts0.min() >= 0 and corrs.pts0[:, 0].max() < 128 and corrs.pts0[:, 1].max() < 100
    assert {"focal0_px", "focal1_px"} <= set(corrs.meta) and np.all(corrs.scores > 0)
    assert len(matcher.weights_checksum()) == 64

    out = tmp_path / "m.npz"
    argv = ["match", "--matcher", "mast3r", "--checkpoint", str(tiny_checkpoint), "--opt", "size=64",
            "--opt", "frm.subsample=2", "--device", "cpu", str(view0.image_path), str(view1.image_path),
            "--out", str(out)]
    assert main(argv) == 0
    z = np.load(out)
    assert {"pts0", "pts1", "conf", "xy0", "xy1", "pts3d0", "true_shape0", "orig_size1"} <= set(z.files)
    np.testing.assert_allclose(z["pts0"], corrs.pts0, atol=1e-4)
    prep = PairNetwork("", 64, "fp32", "cpu", model=RampModel()).prepare(view0.image_path)
    np.testing.assert_allclose(prep.net_to_orig(z["xy0"]), z["pts0"], atol=1e-3)
    assert z["true_shape0"].tolist() == [48, 64] and z["orig_size1"].tolist() == [128, 100]


def test_match_command_errors(tmp_path, ramps, monkeypatch):
    from benchmarks.cli import main

    monkeypatch.delenv("MAST3R_BENCH_CHECKPOINT", raising=False)
    args = [str(ramps[0].image_path), str(ramps[1].image_path), "--out", str(tmp_path / "o.npz")]
    assert main(["match", "--matcher", "mast3r", *args]) == 2
    assert main(["match", "--matcher", "mast3r", "--dense", "--checkpoint", "x.pth", *args]) == 2
    assert main(["match", "--matcher", "nope", *args]) == 2
    assert main(["match", *args]) == 2  # neither --checkpoint nor --matcher
    assert main(["match", "--matcher", "random", "--opt", "num_matches=5", *args]) == 0
    z = np.load(tmp_path / "o.npz")
    assert z["pts0"].shape == (5, 2) and z["conf"].shape == (5,) and "xy0" not in z.files


def test_crash_in_one_pair_is_a_failure_record(tmp_path):
    """A corrupt image fails its sample with a reason; the other samples are matched."""
    from benchmarks.adapters.smoke import SmokeAdapter, SmokeConfig, SmokeEstimatorConfig
    from benchmarks.runner import Runner

    cfg, est = SmokeConfig(num_pairs=3, width=64, height=48), SmokeEstimatorConfig()
    adapter = SmokeAdapter(tmp_path / "data" / "smoke", cfg, est)
    samples = list(adapter.samples())
    broken = samples[1].views[1].image_path
    broken.write_bytes(b"not a png")
    matcher, _ = _fake(Mast3rConfig(checkpoint="", size=64, estimate_focals=False,
                                    frm=FRMConfig(subsample=4)))
    result = Runner(adapter, matcher, cfg, est, results_root=tmp_path / "results",
                    data_root=tmp_path / "data", progress=False).run()

    records = RecordStore(result.run_dir.records_path).load()
    assert result.done == 3 and len(records) == 3
    bad = records[samples[1].key].prediction
    # a corrupt image is the data's fault, not the matcher's (issue 15 item 4): a data_error record
    assert not bad["success"] and bad["failure_reason"].startswith("data_error: ") and broken.name in \
        bad["failure_reason"]
    assert [k for k, _ in result.data_errors] == [samples[1].key]
    assert all(records[s.key].meta["num_matches"][0] > 0 for s in (samples[0], samples[2]))


@pytest.mark.gpu
def test_cuda_paths(tiny_checkpoint, ramps):
    """Device plumbing on CUDA: the ramp stand-in gives the same matches as on CPU (FRM, dense, c2f);
    the tiny checkpoint runs in fp32 and bf16, and the dust3r matcher too."""
    from dataclasses import replace

    from benchmarks.matchers.dust3r import Dust3rConfig, Dust3rMatcher

    view0, view1 = ramps
    for over in ({}, {"frm.dense": "on"}, {"c2f": "on", "c2f_config.window_size": "64"}):
        cfg = apply_overrides(Mast3rConfig(checkpoint="", size=64, estimate_focals=False,
                                           frm=FRMConfig(subsample=2)), over)
        cpu = Mast3rMatcher(cfg, "cpu", forward_cache=ForwardCache(None), model=RampModel())
        gpu = Mast3rMatcher(cfg, "cuda", forward_cache=ForwardCache(None), model=RampModel())
        cpu, gpu = cpu.match(view0, view1), gpu.match(view0, view1)
        assert len(gpu) > 50, over
        assert set(map(tuple, gpu.pts0.tolist())) == set(map(tuple, cpu.pts0.tolist())), over
    cfg = Mast3rConfig(checkpoint=str(tiny_checkpoint), size=64, frm=FRMConfig(subsample=2))
    for precision in ("fp32", "bf16", "fp16"):
        matcher = Mast3rMatcher(replace(cfg, precision=precision), "cuda", forward_cache=ForwardCache(None))
        out = matcher.match(view0, view1)
        assert len(out) > 0 and np.isfinite(out.pts3d0).all() and out.timings["forward"] > 0, precision
    dust = Dust3rMatcher(Dust3rConfig(checkpoint=str(tiny_checkpoint), size=64, conf_thr=0.0), "cuda",
                         forward_cache=ForwardCache(None)).match(view0, view1)
    assert len(dust) > 0


def test_fast_path_options_are_validated_and_hashed():
    cfg = Mast3rConfig(checkpoint="ckpt.pth")
    fast = apply_overrides(cfg, {"fast": "on", "precision": "fp16", "compile": "blocks+heads",
                                 "cuda_graph": "on", "gelu": "tanh-fused"})
    opts = fast.fast_options()
    assert opts.dtype == opts.dpt_dtype == opts.head_dtype == torch.float16
    assert (opts.compile, opts.gelu) == ("blocks+heads", "tanh-fused") and cfg.fast_options() is None
    assert fast.network_settings() != cfg.network_settings()

    def key(c):
        return RunSpec("smoke", "1", {}, {}, "mast3r", c).key

    # issue 17 item 2: fast and gelu change the numbers (identity); cuda_graph and compile only how
    # the same operations run (execution-only)
    assert key(fast) == key(apply_overrides(fast, {"cuda_graph": "off", "compile": "none"})) != key(cfg)
    assert key(fast) != key(apply_overrides(fast, {"gelu": "erf"}))
    with pytest.raises(ValueError, match="bf16 or fp16"):
        apply_overrides(cfg, {"fast": "on"})  # fp32 weights are not a fast path
    for over in ({"compile": "blocks"}, {"cuda_graph": "on"}, {"gelu": "tanh-fused"}):
        with pytest.raises(ValueError, match="fast=true"):
            apply_overrides(cfg, over)
    with pytest.raises(ValueError, match="compile"):
        apply_overrides(cfg, {"fast": "on", "precision": "bf16", "compile": "model"})


def test_batch_focals_equal_the_single_estimate_and_survive_the_disk_cache(ramps, tmp_path):
    from mast3r.geometry import estimate_focal

    view0, view1 = ramps
    net = PairNetwork("", 64, "fp32", "cpu", model=RampModel(), cache=ForwardCache(tmp_path / "fwd"))
    p0, p1 = prepare_view(net, view0), prepare_view(net, view1)
    preps = [(p0, p1), (p1, p0)]
    fwds = net.forward_pairs(preps, need_own=True, batch_size=2)
    for f in fwds:
        assert f.focal0 == pytest.approx(estimate_focal(f.view0["pts3d"]), rel=1e-9, nan_ok=True)
        assert f.focal1 == pytest.approx(estimate_focal(f.own1["pts3d"]), rel=1e-9, nan_ok=True)
    again = PairNetwork("", 64, "fp32", "cpu", model=RampModel(), cache=ForwardCache(tmp_path / "fwd"))
    cached = again.forward_pairs(preps, need_own=True, batch_size=2)
    assert all(c.cached for c in cached) and again.forward_calls == 0
    assert [(c.focal0, c.focal1) for c in cached] == [(f.focal0, f.focal1) for f in fwds]  # stored exactly


# -- issue 17 item 2: what decides a result vs how it executes --------------------------------------
def test_execution_only_keys_are_exactly_the_speed_settings():
    """Pins the per-key decision documented in ``Mast3rConfig`` (a speed option that can change the
    numbers, fast / precision / gelu, stays in the identity)."""
    assert sorted(execution_paths(Mast3rConfig)) == sorted(
        ["batch_size", "compile", "cuda_graph", "frm.backend", "frm.block_size", "c2f_config.max_batch"])
    assert len(field_paths(Mast3rConfig)) == 28  # every dotted key is still settable
    cfg = apply_overrides(Mast3rConfig(checkpoint="c.pth"), {"batch_size": "8", "frm.block_size": "64"})
    assert execution_dict(cfg) == {"frm": {"backend": "auto", "block_size": 64},
                                   "c2f_config": {"max_batch": 48}, "batch_size": 8, "compile": "none",
                                   "cuda_graph": False}
    base = RunSpec("smoke", "1", {}, {}, "mast3r", Mast3rConfig(checkpoint="c.pth"))
    spec = RunSpec("smoke", "1", {}, {}, "mast3r", cfg)
    assert (spec.key, spec.matcher_key) == (base.key, base.matcher_key)
    assert "batch_size" not in spec.matcher_config and "block_size" not in spec.matcher_config["frm"]
    for over in ({"precision": "bf16"}, {"fast": "on", "precision": "fp16"}, {"frm.subsample": "4"},
                 {"estimate_focals": "off"}, {"c2f_config.window_size": "256"}):
        other = RunSpec("smoke", "1", {}, {}, "mast3r", apply_overrides(cfg, over))
        assert other.key != base.key and other.matcher_key != base.matcher_key, over


@dataclass(frozen=True)
class _NoOptions:
    pass


class _RampAdapter:
    """Three samples, each a copy of the ramp pair (one pair) with another blue channel (which the
    stand-in model ignores, so the matches are the same); the prediction is the number of matches."""

    name, version = "ramp", "1"

    def __init__(self, views):
        from PIL import Image

        self.root = views[0].image_path.parent
        self.views = []
        for k in range(3):
            copies = []
            for v in views:
                path = self.root / f"s{k}_{v.name}"
                if not path.is_file():
                    rgb = np.array(Image.open(v.image_path).convert("RGB"))
                    rgb[..., 2] = 10 * k
                    Image.fromarray(rgb).save(path)
                copies.append(View(path.name, path, v.width, v.height))
            self.views.append(tuple(copies))

    def samples(self):
        from benchmarks.types import Sample

        return [Sample(f"s{k}", views, gt={}) for k, views in enumerate(self.views)]

    def pairs(self, sample):
        return [(0, 1)]

    def solve(self, sample, corrs, seed):
        from benchmarks.types import Prediction

        return Prediction(True, {"n": len(corrs[0])}, num_matches=len(corrs[0]))

    def evaluate(self, sample, prediction):
        return {"n": prediction.values.get("n")}

    def summarize(self, records):
        return {"count": len(list(records))}


def _run_ramps(tmp_path, ramps, overrides, **kw):
    from benchmarks.runner import Runner

    cfg = apply_overrides(Mast3rConfig(checkpoint="", size=64, estimate_focals=False), overrides)
    matcher, model = _fake(cfg)
    runner = Runner(_RampAdapter(ramps), matcher, _NoOptions(), _NoOptions(),
                    results_root=tmp_path / "results", data_root=tmp_path, progress=False, **kw)
    return runner.run(), model


def test_batch_and_block_size_resume_the_run_and_reuse_the_cache(tmp_path, ramps):
    """Changing ``matcher.batch_size`` or ``matcher.frm.block_size`` is the same run (resumed, same
    correspondence cache); ``matcher.precision`` is another run."""
    first, model = _run_ramps(tmp_path, ramps, {}, limit=2)
    assert first.computed == 2 and model.calls == 2  # no forward cache: one network pass per sample
    manifest = first.run_dir.read_manifest()
    assert manifest["execution"]["matcher"]["batch_size"] == 1 and manifest["execution"]["adapter"] == {}
    resumed, model = _run_ramps(tmp_path, ramps, {"batch_size": "4", "frm.block_size": "64"})
    assert resumed.run_dir == first.run_dir and (resumed.done, resumed.computed) == (3, 1)
    assert model.calls == 1  # only the new sample's pair
    manifest = resumed.run_dir.read_manifest()
    assert manifest["execution"]["matcher"]["batch_size"] == 4 and manifest["resumed"] == 1
    assert manifest["execution"]["matcher"]["frm"]["block_size"] == 64
    config = (resumed.run_dir.path / "config.json").read_text()
    assert "batch_size" not in config and "block_size" not in config
    before = RecordStore(resumed.run_dir.records_path).load()
    again, model = _run_ramps(tmp_path, ramps, {"batch_size": "2"}, force=True)
    assert again.run_dir == first.run_dir and again.computed == 3
    assert model.calls == 0  # every pair came from the correspondence cache
    records = RecordStore(again.run_dir.records_path).load()
    assert all(r.meta["cache_hits"] == 1 for r in records.values())
    assert {k: r.metrics for k, r in records.items()} == {k: r.metrics for k, r in before.items()}
    other, model = _run_ramps(tmp_path, ramps, {"precision": "bf16", "batch_size": "4"})
    assert other.run_dir != first.run_dir and other.computed == 3 and model.calls >= 1
    assert all(r.meta["cache_hits"] == 0 for r in RecordStore(other.run_dir.records_path).load().values())
    assert "matcher.precision=bf16" in other.run_dir.slug and "batch_size" not in other.run_dir.slug
