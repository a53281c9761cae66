"""Training checkpoints in the official container, written atomically, and model initialisation.

A checkpoint is ``torch.save({"model": state_dict, "args": Namespace(model=<constructor string>,
train_criterion=..., ...), "epoch": step, "step": step, "optimizer": state})``: the keys the official
files hold (``load_model`` reads it as an official checkpoint), plus the optimizer for ``--resume``.
It is written to a temporary file in the same folder, fsync'ed, then renamed over the old one, so a
SIGKILL at any moment leaves either the previous or the new checkpoint, never a torn file.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mast3r.fileio import atomic_write
from mast3r.weights import ALLOWED_GLOBALS, CheckpointError, read_checkpoint

__all__ = ["init_from", "load_training_checkpoint", "save_training_checkpoint"]

log = logging.getLogger(__name__)


def save_training_checkpoint(path: str | Path, model: nn.Module, *, step: int, model_string: str,
                             optimizer: torch.optim.Optimizer | None = None, **args: Any) -> None:
    """Write the container atomically. ``args`` become attributes of the stored ``Namespace``
    (literals only: str, int, float, bool)."""
    path = Path(path)
    payload: dict[str, Any] = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "args": argparse.Namespace(model=model_string, **args),
        "epoch": int(step),
        "step": int(step),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    atomic_write(path, lambda fh: torch.save(payload, fh), mkdir=False)


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """The container written by :func:`save_training_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises many types for torn or foreign files
        raise CheckpointError(f"{path}: cannot read the training checkpoint ({exc})") from None
    missing = [k for k in ("model", "args", "step") if k not in payload]
    if not isinstance(payload, dict) or missing:
        raise CheckpointError(f"{path}: not a training checkpoint (missing {', '.join(missing) or 'dict'})")
    return payload


def init_from(model: nn.Module, path: str | Path, fresh: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Initialise ``model`` from any file ``load_model`` reads (official MASt3R/DUSt3R, ours).

    Tensors whose name and shape match are copied; names starting with a prefix in ``fresh`` are
    left at their initial values (e.g. ``downstream_head1.head_local_features``: the paper starts
    MASt3R from DUSt3R with a fresh descriptor head). Returns ``{"loaded", "skipped", "missing"}``
    name lists; raises CheckpointError when nothing matches.
    """
    state, _ = read_checkpoint(path)
    own = model.state_dict()
    loaded, skipped = [], []
    with torch.no_grad():
        for name, value in state.items():
            target = own.get(name)
            if target is None or tuple(target.shape) != tuple(value.shape) or name.startswith(fresh):
                skipped.append(name)
                continue
            target.copy_(value.to(target.dtype))
            loaded.append(name)
    if not loaded:
        raise CheckpointError(f"{path}: no tensor matches this model by name and shape")
    missing = sorted(set(own) - set(loaded))
    log.info("init from %s: %d tensors loaded, %d skipped, %d left at init", path, len(loaded),
             len(skipped), len(missing))
    return {"loaded": loaded, "skipped": skipped, "missing": missing}
