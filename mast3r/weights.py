"""Load official MASt3R / DUSt3R checkpoints (and plain state dicts / safetensors) safely and strictly.

* ``.pth`` files are read with ``torch.load(weights_only=True)``; the only non-tensor type the
  official container holds, ``argparse.Namespace`` (its ``args``), is allow-listed for the duration
  of the call only (``torch.serialization.safe_globals``). A pickle that references anything else is
  refused before any of it runs.
* The architecture comes from an explicit ``ModelConfig`` or from the stored ``args.model`` string,
  which is parsed (never evaluated) with the official loader rewrite (see ``mast3r.config``).
* Keys are matched strictly: missing, unexpected and mis-shaped entries are all named in one error.
  The DPT aliases (``scratch.layer{i+1}_rn`` == ``scratch.layer_rn.{i}``) may appear once or twice.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mast3r.config import ConfigError, ModelConfig
from mast3r.fileio import sha256_file  # public here too (old import path)
from mast3r.model import Mast3r

__all__ = [
    "CheckpointError",
    "ALLOWED_GLOBALS",
    "load_model",
    "read_checkpoint",
    "load_state_dict_strict",
    "save_safetensors",
    "sha256_file",
]

log = logging.getLogger(__name__)

ALLOWED_GLOBALS: tuple[type, ...] = (argparse.Namespace,)
"""Non-tensor types allowed in a checkpoint pickle (what the official files hold)."""

SAFETENSORS_MODEL_KEY = "args.model"
"""safetensors metadata entry holding the constructor string (our convention, written by save_safetensors)."""

_MAX_NAMES = 8


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names file and keys."""


_ZIP_MAGIC = b"PK\x03\x04"
_TORCH_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
"""``torch.serialization.MAGIC_NUMBER`` as the legacy format pickles it first (LONG1, 10 bytes)."""


def _is_torch_legacy(head: bytes) -> bool:
    """A legacy ``torch.save`` stream: pickle protocol 2-5 whose first object is torch's magic number.

    Protocols 2/3 put the LONG1 opcode right after ``0x80 proto``; 4/5 first open a FRAME (``0x95`` +
    8-byte length).
    """
    if head[:1] != b"\x80" or head[1:2] not in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return False
    if head[1] >= 4:
        return head[2:3] == b"\x95" and head[11:23] == _TORCH_MAGIC
    return head[2:14] == _TORCH_MAGIC


def _sniff(path: Path) -> str:
    """``"zip"`` (torch >= 1.6 format), ``"legacy"`` (old torch pickle) or ``"safetensors"``.

    Unambiguous: zip files start ``PK\x03\x04``; legacy files are a pickle (``0x80``, protocol 2-5)
    whose first object is torch's magic number; safetensors files start with a u64 LE header length
    ``N`` followed by a JSON object (``{``) that fits in the file. A safetensors ``N`` whose low byte
    is ``0x80`` therefore stays safetensors.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(23)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc.strerror or exc})") from None
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if _is_torch_legacy(head):
        if head[1] >= 4:  # torch's weights-only unpickler has no FRAME opcode: say so, not "refused"
            raise CheckpointError(
                f"{path}: legacy torch.save file with pickle protocol {head[1]}, which the safe "
                "(weights_only) loader cannot read; re-save it with the default torch.save format"
            )
        return "legacy"
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if 8 + header_len > size:
            raise CheckpointError(
                f"{path}: truncated safetensors file (header of {header_len} bytes, file {size})"
            )
        return "safetensors"
    if size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    if head[:1] == b"\x80":
        raise CheckpointError(f"{path}: a pickle without PyTorch's magic number (truncated, or not "
                              "written by torch.save); not a checkpoint")
    raise CheckpointError(f"{path}: not a PyTorch (.pth) or safetensors checkpoint (unrecognised header)")


def _torch_load(path: Path, kind: str) -> Any:
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "zip")
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        found = re.search(
            r"(?:Unsupported global: GLOBAL|Trying to load unsupported GLOBAL)\s*([\w.]+)",
            msg,
        )
        what = f"it references {found.group(1)}" if found else msg.splitlines()[0].strip()
        allowed = ", ".join(f"{t.__module__}.{t.__qualname__}" for t in ALLOWED_GLOBALS)
        raise CheckpointError(
            f"{path}: refused to unpickle: {what}, which is not allow-listed (allowed: {allowed}); "
            "nothing was executed"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({first})") from None


def _safetensors_load(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    from safetensors import SafetensorError, safe_open

    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            for key in fh.keys():
                tensors[key] = fh.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({exc})") from None
    return tensors, meta.get(SAFETENSORS_MODEL_KEY) or meta.get("model")


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """Read a checkpoint file: ``(state_dict, args_model_string or None)``.

    Accepts the official container (``{'model': state_dict, 'args': Namespace(model=...), ...}``),
    a plain state dict saved with ``torch.save``, and safetensors files.
    """
    path = Path(path)
    kind = _sniff(path)
    if kind == "safetensors":
        return _safetensors_load(path)
    obj = _torch_load(path, kind)
    model_string: str | None = None
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        state = obj["model"]
        args = obj.get("args")
        if isinstance(args, argparse.Namespace):
            model_string = getattr(args, "model", None)
        elif isinstance(args, Mapping):
            model_string = args.get("model")
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        state = obj["state_dict"]
    elif isinstance(obj, Mapping):
        state = obj
    else:
        raise CheckpointError(
            f"{path}: expected a dict (checkpoint or state dict), found {type(obj).__name__}"
        )
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state dict entries that are not tensors: {_names(bad)}")
    if model_string is not None and not isinstance(model_string, str):
        raise CheckpointError(f"{path}: args.model is not a string ({type(model_string).__name__})")
    return dict(state), model_string


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_NAMES])
    return shown + (f" (+{len(keys) - _MAX_NAMES} more)" if len(keys) > _MAX_NAMES else "")


def _alias_groups(model: torch.nn.Module) -> list[list[str]]:
    """State-dict keys that name the same tensor (the DPT ``layer_rn`` aliases), grouped."""
    groups: dict[int, list[str]] = {}
    for key, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def load_state_dict_strict(model: Mast3r, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
    """Load ``state`` into ``model`` (possibly on the meta device) requiring an exact key/shape match.

    The model's parameters become the given tensors (``assign=True``; no copy). Aliased keys may be
    present once or twice; if twice they must hold equal values.

    Raises:
        CheckpointError: naming every missing, unexpected or mis-shaped key (one line).
    """
    state = dict(state)
    for group in _alias_groups(model):
        present = [k for k in group if k in state]
        if not present:
            continue
        first = state[present[0]]
        for other in present[1:]:
            b = state[other]
            if b.shape != first.shape or not torch.equal(first, b):
                raise CheckpointError(
                    f"{source}: aliased entries {present[0]} and {other} hold different values"
                )
        for k in group:
            state[k] = first
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} (file {tuple(state[k].shape)} vs model {shape})"
        for k, shape in expected.items()
        if k in state and tuple(state[k].shape) != shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_names(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} wrong shape(s): {_names(wrong)}")
    if problems:
        raise CheckpointError(
            f"{source}: does not fit the {model.config.name} model ({model.config.head_type} head, "
            f"enc {model.config.enc_embed_dim}x{model.config.enc_depth}, dec {model.config.dec_embed_dim}x"
            f"{model.config.dec_depth}): " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True, assign=True)


def load_model(
    path: str | Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    config: ModelConfig | None = None,
    *,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    expected_sha256: str | None = None,
    compute_checksum: bool = True,
) -> Mast3r:
    """Build a ``Mast3r`` from a checkpoint file (or an in-memory ``state_dict``), in eval mode.

    Args:
        path: official ``.pth`` container, a plain state dict saved with ``torch.save``, or a
            ``.safetensors`` file.
        device: where the model goes.
        dtype: dtype of the encoder/decoders; the heads stay float32 (they run in float32, as in the
            official code).
        config: the architecture; required when the file stores no ``args.model`` (plain state
            dicts, safetensors without metadata); otherwise it overrides the stored string.
        state_dict: load from this mapping instead of a file (``config`` then required).
        expected_sha256: if given, the file's digest must match.
        compute_checksum: store the file's SHA-256 in ``model.checksum`` (else None).

    Returns:
        The model (``requires_grad`` off); ``model.config`` and ``model.checksum`` set.

    Raises:
        CheckpointError: unreadable/truncated file, refused pickle, key or shape mismatch, checksum
            mismatch. ``ConfigError``: an unsupported ``args.model`` string.
    """
    if (path is None) == (state_dict is None):
        raise ValueError("load_model: give exactly one of path or state_dict")
    checksum: str | None = None
    if path is not None:
        path = Path(path)
        source = str(path)
        if compute_checksum or expected_sha256:
            checksum = sha256_file(path) if path.is_file() else None
            if expected_sha256 and checksum != expected_sha256.lower():
                raise CheckpointError(
                    f"{path}: SHA-256 {checksum} does not match the expected {expected_sha256}"
                )
        state, model_string = read_checkpoint(path)
    else:
        assert state_dict is not None
        source, state, model_string = "state dict", dict(state_dict), None
    if config is None:
        if model_string is None:
            raise CheckpointError(
                f"{source}: holds no args.model string; pass config=ModelConfig.preset(...) explicitly"
            )
        try:
            config = ModelConfig.from_args_string(model_string)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    elif model_string is not None:
        try:
            stored = ModelConfig.from_args_string(model_string)
        except ConfigError:
            stored = None
        if stored != config:
            log.warning(
                "%s: explicit config differs from the stored args.model; using the explicit one", source
            )
    model = Mast3r.from_config(config, device="meta")
    load_state_dict_strict(model, state, source)
    model.requires_grad_(False)
    model.to(device=device, dtype=torch.float32)
    if dtype != torch.float32:
        model.set_backbone_dtype(dtype)
    model.checksum = checksum if compute_checksum else None
    return model.eval()


def save_safetensors(model: Mast3r, path: str | Path, dtype: torch.dtype | None = None) -> None:
    """Write the model's weights as safetensors (aliases stored once) with ``args.model`` metadata;
    ``dtype`` converts floating-point tensors (e.g. torch.float16 for a small distributable file)."""
    from safetensors.torch import save_file

    aliases = {k for group in _alias_groups(model) for k in group[1:]}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k not in aliases}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={SAFETENSORS_MODEL_KEY: model.config.to_args_string()})
