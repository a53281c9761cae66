"""The network end to end: official reference outputs, batching, state-dict layout, precision."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from mast3r.config import PRESETS, ModelConfig
from mast3r.model import Mast3r

SPEC_KEYS = {"mast3r_vitl_512": "mast3r_vitl_keys.txt", "dust3r_vitl_512_dpt": "dust3r_vitl_dpt_keys.txt"}
SPEC_UNIQUE_PARAMS = {
    "mast3r_vitl_512": 688_638_856,
    "dust3r_vitl_512_dpt": 571_171_208,
    "dust3r_vitl_512_linear": 532_342_784,
    "dust3r_vitl_224_linear": 532_342_784,
}


def read_key_file(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, _dtype = line.split("\t")
        rows.append((key, tuple(int(v) for v in re.findall(r"\d+", shape))))
    return rows


def model_keys(model: Mast3r) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("preset", sorted(SPEC_KEYS))
def test_state_dict_layout_equals_spec(refvec_dir: Path, preset):
    model = Mast3r.from_config(ModelConfig.preset(preset), device="meta")
    assert next(model.parameters()).is_meta
    expected = read_key_file(refvec_dir.parent / "spec" / SPEC_KEYS[preset])
    assert model_keys(model) == expected  # same keys, same order, same shapes


@pytest.mark.parametrize("preset", ["dust3r_vitl_512_linear", "dust3r_vitl_224_linear"])
def test_linear_layout_derived_from_spec(refvec_dir: Path, preset):
    """DPT keys list minus the DPT heads plus ``downstream_head{1,2}.proj`` (1024, 768) + bias."""
    dpt_rows = read_key_file(refvec_dir.parent / "spec" / SPEC_KEYS["dust3r_vitl_512_dpt"])
    expected = [row for row in dpt_rows if not row[0].startswith("downstream_head")]
    for head in ("downstream_head1", "downstream_head2"):
        expected += [(f"{head}.proj.weight", (1024, 768)), (f"{head}.proj.bias", (1024,))]
    model = Mast3r.from_config(ModelConfig.preset(preset), device="meta")
    assert model_keys(model) == expected and len(expected) == 877


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_unique_parameter_counts(preset):
    model = Mast3r.from_config(ModelConfig.preset(preset), device="meta")
    assert sum(p.numel() for p in model.parameters()) == SPEC_UNIQUE_PARAMS[preset]


@pytest.mark.parametrize("pair", ["p2", "p3"])
def test_matches_official_outputs(small_outputs, forward_ref, check_reference, pair):
    """p2: same-size pair (joint encoding); p3: 80x128 landscape (odd 5-row grid) with a portrait 128x96."""
    out = small_outputs[pair]
    check_reference(out, forward_ref[pair])
    for view in (out.view0, out.view1):
        assert view.pts3d.dtype == torch.float32 and view.desc is not None and view.desc_conf is not None
        torch.testing.assert_close(view.desc.norm(dim=-1), torch.ones_like(view.conf), atol=1e-5, rtol=0)
    assert out.view0.true_shape == tuple(forward_ref[pair]["view1_true_shape"][0])
    assert out.view1.true_shape == tuple(forward_ref[pair]["view2_true_shape"][0])


def test_batch_of_pairs_equals_single_pairs(small_model):
    torch.manual_seed(5)
    a, c = torch.randn(2, 1, 3, 32, 48).clamp(-1, 1)
    with torch.inference_mode():
        out = small_model(torch.cat((a, c)), torch.cat((c, a)))  # pairs (A, C) and (C, A)
        singles = [small_model(a, c), small_model(c, a)]  # the decoders are asymmetric
    assert out.view0.pts3d.shape == (2, 32, 48, 3)
    for i, single in enumerate(singles):
        for view in ("view0", "view1"):
            for name, want in getattr(single, view).items():
                got = getattr(getattr(out, view), name)[i : i + 1]
                torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4, msg=f"pair {i} {view}.{name}")
    assert not torch.allclose(out.view0.pts3d[0], out.view0.pts3d[1])


def test_separate_encoding_equals_joint(small_model):
    torch.manual_seed(6)
    a, c = torch.randn(2, 1, 3, 32, 48).clamp(-1, 1)
    with torch.inference_mode():
        joint = small_model(a, c)  # same size: one encoder batch
        separate = small_model.forward_encoded(small_model.encode(a), small_model.encode(c))
    for view in ("view0", "view1"):
        for name, want in getattr(joint, view).items():
            got = getattr(getattr(separate, view), name)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4, msg=f"{view}.{name}")


def test_bad_inputs_are_refused(small_model):
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ValueError, match="same number of pairs"):
        small_model(torch.zeros(2, 3, 32, 32), x)
    with pytest.raises(ValueError, match=r"img1: image size 32x40 \(HxW\) is not a positive multiple of 16"):
        small_model(x, torch.zeros(1, 3, 32, 40))
    with pytest.raises(ValueError, match=r"expected a \(B, 3, H, W\)"):
        small_model(torch.zeros(3, 32, 32), x)
    with pytest.raises(ValueError, match="float"):
        small_model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), x)


def test_autocast_bf16_keeps_heads_in_float32(small_model):
    torch.manual_seed(7)
    a, c = torch.randn(1, 3, 48, 32).clamp(-1, 1), torch.randn(1, 3, 32, 64).clamp(-1, 1)
    with torch.inference_mode():
        exact = small_model(a, c)
        out = small_model(a, c, autocast_dtype=torch.bfloat16)
    for got, want in ((out.view0, exact.view0), (out.view1, exact.view1)):
        assert got.pts3d.dtype == got.desc.dtype == got.conf.dtype == torch.float32
        assert (got.desc * want.desc).sum(-1).median() > 0.9  # bf16 trunk: close, not equal
        assert ((got.pts3d - want.pts3d).norm(dim=-1) / want.pts3d.norm(dim=-1)).median() < 0.1
        assert not torch.equal(got.pts3d, want.pts3d)
    assert small_model.backbone_dtype == torch.float32  # autocast does not cast the weights


def _tiny_dust3r(head_type: str) -> Mast3r:
    cfg = ModelConfig(
        model_class="AsymmetricCroCo3DStereo",
        head_type=head_type,
        output_mode="pts3d",
        two_confs=False,
        desc_conf_mode=None,
        enc_embed_dim=32,
        enc_depth=1,
        enc_num_heads=2,
        dec_embed_dim=32,
        dec_depth=10,
        dec_num_heads=2,
    )
    torch.manual_seed(0)
    return Mast3r.from_config(cfg)


@pytest.mark.parametrize("head_type", ["linear", "dpt"])
def test_dust3r_heads_run_on_portrait_landscape_pairs(head_type):
    model = _tiny_dust3r(head_type)
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 48, 80), torch.randn(1, 3, 80, 48))
    assert out.view0.pts3d.shape == (1, 48, 80, 3) and out.view1.pts3d.shape == (1, 80, 48, 3)
    assert out.view0.desc is None and out.view1.desc_conf is None
    assert bool((out.view0.conf > 1).all()) and bool(torch.isfinite(out.view1.pts3d).all())


def test_import_and_forward_leave_global_state_alone():
    before = (
        torch.get_float32_matmul_precision(),
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
    )
    model = _tiny_dust3r("linear")
    model(torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32))
    after = (
        torch.get_float32_matmul_precision(),
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
    )
    assert before == after


def test_rope_cache_is_per_model_and_bounded():
    m1, m2 = _tiny_dust3r("linear"), _tiny_dust3r("linear")
    m1(torch.randn(1, 3, 32, 48), torch.randn(1, 3, 48, 32))
    assert len(m1._rope_cache) == 2 and not m2._rope_cache  # one grid per shape and head dim, per instance
    for k in range(40):
        m1._rope(1, k + 1, 16, torch.device("cpu"), torch.float32)
    assert len(m1._rope_cache) <= 32


@pytest.mark.bench
def test_benchmark_forward_small_cpu(benchmark, small_model, forward_ref):
    """Forward time per pair, small MASt3R, 96x128 pair, CPU float32 (run with --benchmark-enable)."""
    ref = forward_ref["p2"]
    a, c = torch.from_numpy(ref["view1_img"]), torch.from_numpy(ref["view2_img"])

    def run():
        with torch.inference_mode():
            return small_model(a, c)

    out = benchmark(run)
    assert out.view0.pts3d.shape == (1, 96, 128, 3) and math.isfinite(float(out.view0.conf.mean()))


@pytest.mark.gpu
def test_cuda_matches_reference_without_host_syncs(small_model, forward_ref, check_reference):
    """CUDA float32 (TF32 off) matches the official CPU outputs; forward never synchronises with the host."""
    model = Mast3r.from_config(small_model.config, device="cuda")
    model.load_state_dict(small_model.state_dict())
    for pair in ("p2", "p3"):
        ref = forward_ref[pair]
        a, b = (torch.from_numpy(ref[k]).cuda() for k in ("view1_img", "view2_img"))
        model(a, b)  # warm-up: RoPE tables are built (and cached) on first use
        torch.cuda.synchronize()
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                out = model(a, b)
        finally:
            torch.cuda.set_sync_debug_mode(previous)
        check_reference(out.cpu(), ref)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_autocast_and_odd_grid_512x336(small_model, dtype):
    model = Mast3r.from_config(small_model.config, device="cuda")
    model.load_state_dict(small_model.state_dict())
    torch.manual_seed(8)
    a = torch.randn(2, 3, 336, 512, device="cuda").clamp(-1, 1)  # 21 x 32 tokens: DPT crop
    b = torch.randn(2, 3, 512, 336, device="cuda").clamp(-1, 1)  # portrait partner
    with torch.inference_mode():
        exact = model(a, b)
        out = model(a, b, autocast_dtype=dtype)
    assert out.view0.pts3d.shape == (2, 336, 512, 3) and out.view1.desc.shape == (2, 512, 336, 24)
    for got, want in ((out.view0, exact.view0), (out.view1, exact.view1)):
        assert got.pts3d.dtype == torch.float32
        assert (got.desc * want.desc).sum(-1).median() > 0.9
        assert ((got.pts3d - want.pts3d).norm(dim=-1) / want.pts3d.norm(dim=-1)).median() < 0.1
