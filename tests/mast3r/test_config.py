"""ModelConfig: presets, safe parsing of checkpoint constructor strings, the official loader rewrite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mast3r.config import PRESETS, ConfigError, ModelConfig, parse_constructor_string

SMALL_STRING = (
    "AsymmetricMASt3R(pos_embed='RoPE100', patch_embed_cls='ManyAR_PatchEmbed', img_size=(512, 512), "
    "head_type='catmlp+dpt', output_mode='pts3d+desc24', depth_mode=('exp', -inf, inf), "
    "conf_mode=('exp', 1, inf), enc_embed_dim=192, enc_depth=2, enc_num_heads=3, dec_embed_dim=128, "
    "dec_depth=12, dec_num_heads=2, two_confs=True, desc_conf_mode=('exp', 0, inf))"
)

# The published training command of the 224 linear model (no patch_embed_cls, no landscape_only).
DUST3R_224 = (
    "AsymmetricCroCo3DStereo(pos_embed='RoPE100', img_size=(224, 224), head_type='linear', "
    "output_mode='pts3d', depth_mode=('exp', -inf, inf), conf_mode=('exp', 1, inf), enc_embed_dim=1024, "
    "enc_depth=24, enc_num_heads=16, dec_embed_dim=768, dec_depth=12, dec_num_heads=12)"
)


def test_preset_names_and_contents():
    assert set(PRESETS) == {
        "mast3r_vitl_512",
        "dust3r_vitl_512_dpt",
        "dust3r_vitl_512_linear",
        "dust3r_vitl_224_linear",
    }
    m = ModelConfig.preset("mast3r_vitl_512")
    assert (m.head_type, m.output_mode, m.desc_dim, m.two_confs) == ("catmlp+dpt", "pts3d+desc24", 24, True)
    assert m.desc_conf_mode == ("exp", 0.0, math.inf) and m.conf_mode == ("exp", 1.0, math.inf)
    assert m.dpt_hooks == (0, 6, 9, 12) and m.rope_base == 100.0
    assert ModelConfig() == m and m.name == "mast3r_vitl_512"
    assert ModelConfig.preset("dust3r_vitl_224_linear").img_size == (224, 224)
    assert ModelConfig.preset("dust3r_vitl_512_dpt").desc_dim is None


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean 'mast3r_vitl_512'"):
        ModelConfig.preset("mast3r_vitl512")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_round_trips_through_constructor_string(name):
    cfg = PRESETS[name]
    assert ModelConfig.from_args_string(cfg.to_args_string()) == cfg


@pytest.mark.parametrize(
    ("keys_file", "preset"),
    [("mast3r_vitl_keys.txt", "mast3r_vitl_512"), ("dust3r_vitl_dpt_keys.txt", "dust3r_vitl_512_dpt")],
)
def test_spec_model_strings_parse_to_presets(refvec_dir: Path, keys_file, preset):
    header = (refvec_dir.parent / "spec" / keys_file).read_text().splitlines()[1]
    text = header.split("model string:", 1)[1].strip()
    assert ModelConfig.from_args_string(text) == PRESETS[preset]


def test_official_loader_rewrite_on_stored_training_string():
    cfg = ModelConfig.from_args_string(SMALL_STRING)
    assert cfg.patch_embed_cls == "PatchEmbedDust3R" and cfg.landscape_only is False
    assert (cfg.enc_embed_dim, cfg.enc_depth, cfg.enc_num_heads) == (192, 2, 3)
    assert (cfg.dec_embed_dim, cfg.dec_depth, cfg.dec_num_heads) == (128, 12, 2)
    assert cfg.name == "custom"
    # without the rewrite, the class default landscape_only=True is a training-only mode we refuse
    with pytest.raises(ConfigError, match="ManyAR_PatchEmbed"):
        ModelConfig.from_args_string(SMALL_STRING, loader_rewrite=False)
    with pytest.raises(ConfigError, match="landscape_only"):
        ModelConfig.from_args_string(
            SMALL_STRING.replace("ManyAR_PatchEmbed", "PatchEmbedDust3R"), loader_rewrite=False
        )


def test_released_224_training_command_fills_official_defaults():
    cfg = ModelConfig.from_args_string(DUST3R_224)
    assert cfg == PRESETS["dust3r_vitl_224_linear"]
    # omitted arguments take the official class defaults (CroCo: 224, patch 16, mlp 4)
    short = ModelConfig.from_args_string(
        "AsymmetricCroCo3DStereo(pos_embed='RoPE100', head_type='linear', output_mode='pts3d')"
    )
    assert (short.img_size, short.enc_embed_dim, short.dec_depth, short.dec_num_heads) == (
        (224, 224),
        768,
        8,
        16,
    )
    assert short.conf_mode == ("exp", 1.0, math.inf) and short.two_confs is False


def test_parser_accepts_only_literals():
    name, kwargs = parse_constructor_string("X(a=-inf, b=(1, -2.5, 'c'), c=None, d=True, e=[1, 2])")
    assert name == "X"
    assert kwargs == {"a": -math.inf, "b": (1, -2.5, "c"), "c": None, "d": True, "e": (1, 2)}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("AsymmetricMASt3R(pos_embed=__import__('os').system('true'))", "not a literal"),
        ("AsymmetricMASt3R(pos_embed=open)", "not a literal"),
        ("os.system('true')", "single constructor call"),
        ("AsymmetricMASt3R('RoPE100')", "positional"),
        ("AsymmetricMASt3R(**{'a': 1})", r"'\*\*'"),
        ("AsymmetricMASt3R(pos_embed='RoPE100'", "cannot parse"),
        ("AsymmetricMASt3R(pos_embed='RoPE100', pos_embed='RoPE100')", "given twice"),
        ("CroCoNet(pos_embed='RoPE100')", "unsupported model class 'CroCoNet'"),
        ("AsymmetricMASt3R(pos_embed='RoPE100', head_typ='dpt')", "did you mean 'head_type'"),
        ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', two_confs=True)", "unknown argument"),
        (
            "AsymmetricMASt3R(pos_embed='cosine', head_type='catmlp+dpt', output_mode='pts3d+desc24', "
            "dec_depth=12)",
            "RoPE",
        ),
    ],
)
def test_bad_strings_are_clear_errors(text, match):
    with pytest.raises(ConfigError, match=match) as info:
        ModelConfig.from_args_string(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(head_type="dpt"), "supports output_mode 'pts3d' only"),
        (dict(dec_depth=1), "dec_depth >= 2"),
        (dict(dpt_feature_dim=63), "must be even"),
        (dict(local_feat_hidden_factor=0.0), "local_feat_hidden_factor"),
        (dict(enc_embed_dim=1000), "multiple of enc_num_heads"),
        (dict(dec_embed_dim=24, dec_num_heads=4), "multiple of 4"),
        (dict(img_size=(500, 512)), "multiples of patch_size"),
        (dict(depth_mode=("exp", 0.0, math.inf)), "depth_mode"),
        (dict(head_type="foo"), "head_type"),
        (dict(model_class="AsymmetricCroCo3DStereo"), "needs model_class AsymmetricMASt3R"),
    ],
)
def test_validation(changes, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig().replace(**changes)


def test_to_dict_is_json():
    data = ModelConfig().to_dict()
    assert json.loads(json.dumps(data))["depth_mode"] == ["exp", "-inf", "inf"]


@settings(max_examples=40, deadline=None)
@given(
    head=st.sampled_from(["linear", "dpt", "catmlp+dpt"]),
    enc_heads=st.integers(1, 4),
    dec_heads=st.integers(1, 4),
    head_dim=st.sampled_from([8, 16, 64]),
    enc_depth=st.integers(1, 30),
    dec_depth=st.integers(10, 14),
    desc=st.integers(1, 64),
    base=st.sampled_from(["RoPE100", "RoPE10000", "RoPE2.5"]),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
)
def test_property_constructor_string_round_trip(
    head, enc_heads, dec_heads, head_dim, enc_depth, dec_depth, desc, base, size
):
    mast3r = head == "catmlp+dpt"
    cfg = ModelConfig(
        model_class="AsymmetricMASt3R" if mast3r else "AsymmetricCroCo3DStereo",
        head_type=head,
        output_mode=f"pts3d+desc{desc}" if mast3r else "pts3d",
        two_confs=mast3r,
        desc_conf_mode=("exp", 0.0, math.inf) if mast3r else None,
        enc_embed_dim=enc_heads * head_dim,
        enc_num_heads=enc_heads,
        dec_embed_dim=dec_heads * head_dim,
        dec_num_heads=dec_heads,
        enc_depth=enc_depth,
        dec_depth=dec_depth,
        pos_embed=base,
        img_size=(16 * size[0], 16 * size[1]),
    )
    assert ModelConfig.from_args_string(cfg.to_args_string()) == cfg


def test_own_head_widths_round_trip_and_leave_official_strings_unchanged():
    official = ModelConfig.preset("mast3r_vitl_512").to_args_string()
    assert "dpt_" not in official and "local_feat" not in official
    small = ModelConfig(enc_embed_dim=256, enc_depth=6, enc_num_heads=4, dec_embed_dim=128, dec_depth=6,
                        dec_num_heads=2, dpt_layer_dims=(32, 64, 128, 256), dpt_feature_dim=64,
                        dpt_last_dim=32, local_feat_hidden_factor=0.5)
    text = small.to_args_string()
    assert "dpt_layer_dims=(32, 64, 128, 256)" in text and "local_feat_hidden_factor=0.5" in text
    assert ModelConfig.from_args_string(text) == small
    assert small.dpt_hooks == (0, 3, 4, 6)
