"""``benchmarks.timing`` and ``mast3r-bench time`` on CPU: FLOP count, statistics, flags, inputs, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.commands.time import main
from benchmarks.timing import (
    TimingStats,
    forward_flops,
    parse_size,
    precision_flags,
    smooth_descriptor_pair,
    smooth_image_pairs,
    time_fn,
)
from mast3r.config import ModelConfig
from mast3r.model import Mast3r

TINY = (
    "AsymmetricMASt3R(pos_embed='RoPE100', img_size=(512, 512), head_type='catmlp+dpt', "
    "output_mode='pts3d+desc24', depth_mode=('exp', -inf, inf), conf_mode=('exp', 1, inf), enc_embed_dim=32, "
    "enc_depth=2, enc_num_heads=2, dec_embed_dim=32, dec_depth=10, dec_num_heads=2, two_confs=True, "
    "desc_conf_mode=('exp', 0, inf))"
)


def _attention_flops(cfg: ModelConfig, s0: int, s1: int) -> int:
    """QK^T and AV products (the flop counter does not see SDPA on fake CPU tensors)."""
    e, d = cfg.enc_embed_dim, cfg.dec_embed_dim
    enc = sum(cfg.enc_depth * 4 * s * s * e for s in (s0, s1))
    dec = sum(cfg.dec_depth * (4 * s * s * d + 4 * s * o * d) for s, o in ((s0, s1), (s1, s0)))
    return enc + dec


@pytest.mark.parametrize(
    ("model", "shape0", "shape1"),
    [
        (TINY, (48, 32), (32, 48)),  # odd token grids: DPT stride-2 rounding and crop
        ("dust3r_vitl_224_linear", (224, 224), (224, 224)),
    ],
)
def test_forward_flops_equal_torch_flop_counter(model, shape0, shape1):
    cfg = ModelConfig.from_args_string(model) if "(" in model else ModelConfig.preset(model)
    with FakeTensorMode():
        net = Mast3r.from_config(cfg)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            net(torch.empty(1, 3, *shape0), torch.empty(1, 3, *shape1))
    ours = forward_flops(cfg, shape0, shape1)
    p = cfg.patch_size
    s0, s1 = (shape0[0] // p) * (shape0[1] // p), (shape1[0] // p) * (shape1[1] // p)
    assert counter.get_total_flops() + _attention_flops(cfg, s0, s1) == ours["total"]


def test_vitl_512x384_pair_costs_2_04_tflop():
    flops = forward_flops(ModelConfig(), (384, 512))
    assert flops["total"] == sum(v for k, v in flops.items() if k != "total")
    assert 2.035e12 < flops["total"] < 2.040e12  # the 2.04 TFLOP per pair
    assert 0.18e12 < flops["head_dpt"] / 2 < 0.19e12 and flops["head_linear"] == 0


def test_timing_stats_hand_worked():
    s = TimingStats.from_samples([4.0, 1.0, 100.0, 3.0, 2.0], warmup=2)
    assert (s.median_ms, s.q25_ms, s.q75_ms, s.iqr_ms) == (3.0, 2.0, 4.0, 2.0)
    assert (s.min_ms, s.max_ms, s.repeats, s.warmup) == (1.0, 100.0, 5, 2)
    assert s.mean_ms == pytest.approx(22.0)
    with pytest.raises(ValueError):
        TimingStats.from_samples([], warmup=0)


def test_time_fn_calls_warmup_plus_repeats():
    calls = []
    stats = time_fn(lambda: calls.append(1), "cpu", warmup=2, repeats=3)
    assert len(calls) == 5 and stats.repeats == 3 and stats.median_ms >= 0
    with pytest.raises(ValueError):
        time_fn(lambda: None, "cpu", repeats=0)


def test_precision_flags_set_and_restore():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with precision_flags("tf32") as flags:
        assert torch.backends.cuda.matmul.allow_tf32 and flags["cudnn.allow_tf32"]
    with precision_flags("fp32") as flags:
        assert not torch.backends.cudnn.allow_tf32 and not flags["cuda.matmul.allow_tf32"]
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with pytest.raises(ValueError, match="unknown dtype"):
        with precision_flags("int8"):
            pass


def test_parse_size():
    assert parse_size("512x384") == (384, 512)
    for bad in ("512", "axb", "0x10"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_inputs_are_deterministic_smooth_and_normalised():
    d0, d1 = smooth_descriptor_pair((24, 40), 24, seed=1)
    assert d0.shape == (24, 40, 24) and d1.shape == (24, 40, 24)
    torch.testing.assert_close(d0.norm(dim=-1), torch.ones(24, 40))
    assert torch.equal(d0, smooth_descriptor_pair((24, 40), 24, seed=1)[0])
    assert (d0[:, 1:] * d0[:, :-1]).sum(-1).mean() > 0.9  # neighbours are similar: a smooth field
    a, b = smooth_image_pairs(2, (32, 48), seed=3)
    assert a.shape == (2, 3, 32, 48) and a.abs().max() <= 1 and not torch.equal(a, b)


def test_time_forward_cli_writes_json_and_markdown(tmp_path, capsys):
    out, md = tmp_path / "t.json", tmp_path / "t.md"
    rc = main(
        [
            "forward",
            "--device",
            "cpu",
            "--model",
            TINY,
            "--size",
            "32x32",
            "--repeats",
            "2",
            "--warmup",
            "0",
            "--fast",
            "--dtype",
            "bf16",
            "--head-fp32",
            "--check",
            "--batch",
            "2",
            "--json",
            str(out),
            "--md",
            str(md),
        ]
    )
    assert rc == 0
    rep = json.loads(out.read_text())
    (entry,) = rep["forward"]
    assert (
        entry["variant"] == "fast bf16 heads-fp32" and entry["batch"] == 2 and entry["stats"]["repeats"] == 2
    )
    assert (
        rep["flops_per_pair"]["total"] == forward_flops(ModelConfig.from_args_string(TINY), (32, 32))["total"]
    )
    assert entry["accuracy_all"]["pairs"] == 2 and entry["accuracy_all"]["pts3d_rel"] < 0.1
    assert rep["env"]["torch"] == torch.__version__ and "cudnn.allow_tf32" in entry["flags"]
    assert "fast bf16" in md.read_text() and "fast bf16" in capsys.readouterr().out


def test_time_frm_cli_and_errors(tmp_path, capsys):
    out = tmp_path / "f.json"
    assert main(["frm", "--device", "cpu", "--size", "40x32", "--repeats", "2", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["frm"]
    assert row["identical"] and row["matches"] > 0 and row["query_sizes"][0] == 20
    assert main(["forward", "--size", "512", "--device", "cpu"]) == 2
    assert main(["forward", "--device", "cpu", "--compile", "blocks"]) == 2  # compile needs --fast
    assert "error:" in capsys.readouterr().err


def test_cli_choices_mirror_the_implementation() -> None:
    """The `time` command lists its choices without importing torch; they must stay in sync."""
    from benchmarks.commands import time as time_cmd
    from benchmarks.timing import DTYPES
    from mast3r.fast import COMPILE_CHOICES

    assert time_cmd.DTYPES == DTYPES and time_cmd.COMPILE_CHOICES == COMPILE_CHOICES


def test_time_variants_use_the_engines_fast_options():
    """``time`` builds the fast path with the same rule as the matcher config (one rule, the engine's)."""
    from benchmarks.matchers.mast3r import Mast3rConfig
    from benchmarks.timing_suite import ForwardVariant

    for precision, compile_, gelu in (("bf16", "none", "erf"), ("fp16", "blocks", "tanh-fused")):
        cfg = Mast3rConfig(checkpoint="x.pth", precision=precision, fast=True, compile=compile_, gelu=gelu)
        variant = ForwardVariant(precision, fast=True, compile=compile_, gelu=gelu)
        assert variant.options() == cfg.fast_options()
    assert ForwardVariant("bf16").amp() is torch.bfloat16 and ForwardVariant("tf32").amp() is None
    assert ForwardVariant("bf16", fast=True).amp() is None
