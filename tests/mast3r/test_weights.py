"""Checkpoint loading: the official container, safety of unpickling, strict keys, other formats."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import pytest
import torch

from mast3r.config import ConfigError, ModelConfig
from mast3r.model import Mast3r
from mast3r.weights import CheckpointError, load_model, read_checkpoint, save_safetensors, sha256_file

SMALL_SHA256 = "cc4426b78c838f5305c4ec6c60c1dde8ce27b9f3ed2489f49035f90322c10c9c"  # refvec README

# a tiny DUSt3R with a linear head: no full-width DPT, so files are a few hundred kB
TINY = ModelConfig(
    model_class="AsymmetricCroCo3DStereo",
    head_type="linear",
    output_mode="pts3d",
    two_confs=False,
    desc_conf_mode=None,
    enc_embed_dim=32,
    enc_depth=1,
    enc_num_heads=2,
    dec_embed_dim=16,
    dec_depth=2,
    dec_num_heads=1,
    img_size=(64, 64),
)


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in Mast3r(TINY).state_dict().items()}


@pytest.fixture(scope="module")
def small_state(small_checkpoint: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(small_checkpoint)[0]


def test_official_container_loads(small_checkpoint: Path, small_model: Mast3r):
    model = small_model  # loaded by the fixture through load_model(small_checkpoint)
    assert model.checksum == SMALL_SHA256 == sha256_file(small_checkpoint)
    assert model.config.patch_embed_cls == "PatchEmbedDust3R" and not model.config.landscape_only
    assert (model.config.enc_embed_dim, model.config.dec_depth) == (192, 12)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
    state, model_string = read_checkpoint(small_checkpoint)
    assert model_string.startswith("AsymmetricMASt3R(") and "ManyAR_PatchEmbed" in model_string
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_allow_list_is_context_local(small_model):
    assert argparse.Namespace not in torch.serialization.get_safe_globals()


def test_pickle_that_runs_code_is_refused(tmp_path: Path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "args": Evil()}, path)
    with pytest.raises(
        CheckpointError, match=r"evil.pth: refused to unpickle: it references \S*system"
    ) as info:
        load_model(path, config=TINY)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_truncated_file(tmp_path: Path, tiny_state):
    path = tmp_path / "full.pth"
    torch.save({"model": tiny_state, "args": argparse.Namespace(model=TINY.to_args_string())}, path)
    data = path.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pth: truncated or corrupt") as info:
        load_model(cut)
    assert "\n" not in str(info.value)
    assert isinstance(load_model(path), Mast3r)  # the full file is fine


@pytest.mark.parametrize("content", [b"", b"hello world, not a checkpoint at all", b"\x00" * 64])
def test_not_a_checkpoint(tmp_path: Path, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="junk.pth: ") as info:
        load_model(path, config=TINY)
    assert "\n" not in str(info.value)


def test_missing_file():
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model("/nonexistent/ckpt.pth", config=TINY, compute_checksum=False)


def test_plain_state_dict_needs_config(tmp_path: Path, tiny_state):
    path = tmp_path / "plain.pth"
    torch.save(tiny_state, path)
    with pytest.raises(CheckpointError, match="plain.pth: holds no args.model.*config=ModelConfig.preset"):
        load_model(path)
    model = load_model(path, config=TINY)
    assert model.config == TINY and model.checksum == sha256_file(path)
    assert torch.equal(model.downstream_head2.proj.weight, tiny_state["downstream_head2.proj.weight"])


def test_official_container_of_a_dust3r_string(tmp_path: Path, tiny_state):
    text = (
        TINY.to_args_string()
        .replace("'PatchEmbedDust3R'", "'ManyAR_PatchEmbed'")
        .replace("landscape_only=False", "landscape_only=True")
    )
    path = tmp_path / "dust3r.pth"
    torch.save({"model": tiny_state, "args": argparse.Namespace(model=text), "epoch": 3}, path)
    assert load_model(path).config == TINY  # official rewrite applied


def test_missing_unexpected_and_misshaped_keys_are_named(tiny_state):
    state = dict(tiny_state)
    del state["enc_blocks.0.attn.qkv.bias"]
    state["extra.weight"] = torch.zeros(2)
    state["dec_norm.weight"] = torch.zeros(17)
    with pytest.raises(CheckpointError) as info:
        load_model(state_dict=state, config=TINY)
    msg = str(info.value)
    assert "\n" not in msg
    assert "1 missing key(s): enc_blocks.0.attn.qkv.bias" in msg
    assert "1 unexpected key(s): extra.weight" in msg
    assert "dec_norm.weight (file (17,) vs model (16,))" in msg


def test_wrong_architecture_lists_many_keys_compactly(small_state):
    with pytest.raises(CheckpointError, match=r"missing key\(s\).*\(\+\d+ more\)") as info:
        load_model(state_dict=small_state, config=TINY)
    assert len(str(info.value)) < 2000


def test_dpt_aliases_may_appear_once(small_state, small_model):
    state = {k: v for k, v in small_state.items() if ".scratch.layer_rn." not in k}
    model = load_model(state_dict=state, config=small_model.config)
    head = model.downstream_head1.dpt.scratch
    assert head.layer_rn[2].weight is head.layer3_rn.weight
    assert torch.equal(head.layer3_rn.weight, small_state["downstream_head1.dpt.scratch.layer3_rn.weight"])
    # both names absent: reported as missing, by name
    state = {k: v for k, v in state.items() if k != "downstream_head2.dpt.scratch.layer4_rn.weight"}
    with pytest.raises(
        CheckpointError,
        match=r"2 missing key\(s\): downstream_head2.dpt.scratch.layer4_rn.weight, "
        r"downstream_head2.dpt.scratch.layer_rn.3.weight",
    ):
        load_model(state_dict=state, config=small_model.config)


def test_dpt_aliases_must_agree(small_state, small_model):
    state = dict(small_state)
    state["downstream_head1.dpt.scratch.layer_rn.0.weight"] = (
        state["downstream_head1.dpt.scratch.layer_rn.0.weight"] + 1
    )
    with pytest.raises(CheckpointError, match="aliased entries .*layer1_rn.weight and .*layer_rn.0.weight"):
        load_model(state_dict=state, config=small_model.config)


def test_safetensors_round_trip(tmp_path: Path, tiny_state):
    model = load_model(state_dict=tiny_state, config=TINY)
    path = tmp_path / "tiny.safetensors"
    save_safetensors(model, path)
    loaded = load_model(path)  # config from the metadata
    assert loaded.config == TINY and loaded.checksum == sha256_file(path)
    for key, value in tiny_state.items():
        assert torch.equal(loaded.state_dict()[key], value)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.safetensors: truncated"):
        load_model(cut)


def test_safetensors_with_aliases_stored_once(tmp_path: Path, small_model):
    path = tmp_path / "small.safetensors"
    save_safetensors(small_model, path)
    state, model_string = read_checkpoint(path)
    assert not any(".scratch.layer_rn." in k for k in state)
    assert ModelConfig.from_args_string(model_string) == small_model.config
    model = load_model(path)
    assert torch.equal(
        model.downstream_head2.dpt.scratch.layer_rn[1].weight,
        small_model.downstream_head2.dpt.scratch.layer2_rn.weight,
    )


def test_expected_checksum(tmp_path: Path, tiny_state):
    path = tmp_path / "plain.pth"
    torch.save(tiny_state, path)
    load_model(path, config=TINY, expected_sha256=sha256_file(path).upper())
    with pytest.raises(CheckpointError, match="does not match the expected"):
        load_model(path, config=TINY, expected_sha256="0" * 64)


def test_unsupported_stored_string_is_a_config_error(tmp_path: Path, tiny_state):
    path = tmp_path / "croco.pth"
    torch.save({"model": tiny_state, "args": argparse.Namespace(model="CroCoNet(enc_depth=1)")}, path)
    with pytest.raises(ConfigError, match="croco.pth: unsupported model class 'CroCoNet'"):
        load_model(path)


def test_bf16_backbone_keeps_float32_heads(tiny_state):
    model = load_model(state_dict=tiny_state, config=TINY, dtype=torch.bfloat16)
    assert model.enc_blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert model.downstream_head1.proj.weight.dtype == torch.float32
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 32, 48), torch.randn(1, 3, 48, 32))
    assert out.view0.pts3d.dtype == torch.float32 and math.isfinite(float(out.view1.conf.sum()))


def _safetensors_with_header_length(path: Path, tensors: dict[str, torch.Tensor], low: int, mask: int) -> int:
    """Write ``tensors`` with padding metadata until the header length N satisfies ``N % mask == low``."""
    from safetensors.torch import save_file

    def write(pad: int) -> int:
        save_file(tensors, str(path), metadata={"model": TINY.to_args_string(), "pad": "x" * pad})
        return int.from_bytes(path.read_bytes()[:8], "little")

    base = write(0)  # the header grows one byte per pad character, then is space-padded to 8 bytes
    target = base + (low - base) % mask
    for pad in range(max(0, target - base - 8), target - base + 9):
        if (header_len := write(pad)) % mask == low:
            return header_len
    raise AssertionError("no padding gives the wanted header length")


@pytest.mark.parametrize(("low", "mask"), [(0x80, 0x100), (0x0280, 0x10000)])
def test_safetensors_whose_header_length_starts_like_a_pickle(tmp_path: Path, tiny_state, low, mask):
    # N % 256 == 0x80 makes the first byte the pickle PROTO opcode (~1 in 256 files); 0x0280 even gives
    # the exact two bytes of a protocol-2 pickle. Both stay safetensors.
    path = tmp_path / "odd.safetensors"
    header_len = _safetensors_with_header_length(path, tiny_state, low, mask)
    assert path.read_bytes()[:1] == b"\x80" and header_len % mask == low
    model = load_model(path)
    assert model.config == TINY
    for key, value in tiny_state.items():
        assert torch.equal(model.state_dict()[key], value)


def test_torch_magic_constant_matches_torch():
    from mast3r.weights import _TORCH_MAGIC

    assert _TORCH_MAGIC == b"\x8a\x0a" + torch.serialization.MAGIC_NUMBER.to_bytes(10, "little")


@pytest.mark.parametrize("protocol", [2, 3])
def test_legacy_torch_files_load(tmp_path: Path, tiny_state, protocol):
    path = tmp_path / f"legacy{protocol}.pth"
    container = {"model": tiny_state, "args": argparse.Namespace(model=TINY.to_args_string())}
    torch.save(container, path, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    model = load_model(path)
    assert model.config == TINY
    assert torch.equal(model.state_dict()["enc_norm.weight"], tiny_state["enc_norm.weight"])


@pytest.mark.parametrize("protocol", [4, 5])
def test_legacy_torch_files_of_protocol_4_and_5_are_named(tmp_path: Path, tiny_state, protocol):
    # torch's weights-only unpickler lacks the FRAME opcode of protocols 4/5: say that, not "refused"
    path = tmp_path / f"legacy{protocol}.pth"
    torch.save(tiny_state, path, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    with pytest.raises(CheckpointError, match=f"legacy{protocol}.pth: legacy torch.save file with pickle "
                       f"protocol {protocol}, which the safe"):
        load_model(path, config=TINY)


def test_zip_torch_file_is_sniffed_as_zip(tmp_path: Path, tiny_state):
    from mast3r.weights import _sniff

    path = tmp_path / "zip.pth"
    torch.save(tiny_state, path)
    assert _sniff(path) == "zip"
    legacy = tmp_path / "legacy.pth"
    torch.save(tiny_state, legacy, _use_new_zipfile_serialization=False)
    assert _sniff(legacy) == "legacy"


@pytest.mark.parametrize("protocol", [2, 4])
def test_plain_pickle_is_not_a_checkpoint(tmp_path: Path, protocol):
    import pickle

    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"x": [1, 2, 3]}, protocol=protocol))
    with pytest.raises(CheckpointError, match="plain.pkl: a pickle without PyTorch's magic number"):
        load_model(path, config=TINY)
