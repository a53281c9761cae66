"""Model source of the engine: checkpoint path -> the file to load (empty: the embedded default,
its pinned SHA-256 checked), the network size, the file's checksum, the load itself.

Where the path comes from (``$MAST3R_BENCH_CHECKPOINT``, ``matcher.checkpoint``, ``--checkpoint``)
is the caller's business; here an empty path means the embedded default model
(:data:`mast3r.assets.DEFAULT_MODEL`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from mast3r.fileio import sha256_file as file_sha256  # the one SHA-256 helper (memoised)

__all__ = ["OFFICIAL_SIZE", "file_sha256", "resolve_checkpoint", "resolve_size", "embedded_default_missing",
           "load_network"]
log = logging.getLogger(__name__)

OFFICIAL_SIZE = 512
"""Network long side of the released checkpoints (the official preprocessing)."""


def resolve_checkpoint(checkpoint: str) -> str:
    """The checkpoint file to load: ``checkpoint``, or the embedded default model when it is empty
    (its SHA-256 checked against the pinned one; CheckpointError when it differs)."""
    if checkpoint:
        return checkpoint
    from mast3r.assets import DEFAULT_MODEL, default_checkpoint
    from mast3r.weights import CheckpointError

    path = default_checkpoint()
    digest = file_sha256(str(path))
    if digest != DEFAULT_MODEL.sha256:
        raise CheckpointError(f"{path}: SHA-256 {digest} is not the pinned {DEFAULT_MODEL.sha256} of the "
                              "embedded default model (a damaged install?)")
    return str(path)


def resolve_size(size: int, checkpoint: str) -> int:
    """``size``, or for 0 the embedded model's own size (``checkpoint`` empty) or the official 512."""
    if size:
        return size
    if not checkpoint:
        from mast3r.assets import DEFAULT_MODEL

        return DEFAULT_MODEL.size
    return OFFICIAL_SIZE


def embedded_default_missing() -> str | None:
    """Why the embedded default model cannot be used (None when it is installed)."""
    from mast3r.assets import default_checkpoint

    try:
        default_checkpoint()
    except FileNotFoundError as exc:
        return str(exc)
    return None


def load_network(checkpoint: str | os.PathLike, device: Any = "cpu", *,
                 compute_checksum: bool = False) -> Any:
    """:func:`mast3r.weights.load_model` of ``checkpoint`` (a resolved path) on ``device``, logged."""
    from mast3r.weights import load_model

    t0 = time.perf_counter()
    model = load_model(checkpoint, device=device, compute_checksum=compute_checksum)
    log.info("loaded %s in %.1f s", checkpoint, time.perf_counter() - t0)
    return model
