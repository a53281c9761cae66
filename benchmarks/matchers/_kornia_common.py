"""Helpers shared by the kornia-based matchers: devices, checkpoint loading, result assembly."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.types import Correspondences

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from benchmarks.matchers._images import PreparedImage

__all__ = ["torch_device", "load_checkpoint", "load_weights_into", "build_correspondences", "Stopwatch"]


def torch_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, with a clear error for a CUDA device on a machine without CUDA."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def load_checkpoint(path: str | Path, key: str | None = None) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on CPU, optionally taking ``checkpoint[key]``.

    Raises:
        ValueError naming the file when it cannot be read as a tensor-only checkpoint or lacks ``key``.
    """
    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise ValueError(f"cannot load {path} as a tensor-only checkpoint: {type(e).__name__}: {e}") from e
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            found = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise ValueError(f"{path}: expected a dict with key {key!r}, found {found}")
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return dict(obj)


def load_weights_into(
    module: torch.nn.Module,
    state_dict: Mapping[str, Any],
    source: str | Path,
    ignore_unexpected: Iterable[str] = (),
) -> None:
    """Load ``state_dict`` into ``module``: every parameter and persistent buffer must be present,
    except buffers the module derives itself; unexpected keys are errors unless they start with a
    prefix in ``ignore_unexpected``. Errors name the file and the first offending keys."""
    result = module.load_state_dict(dict(state_dict), strict=False)
    params = dict(module.named_parameters())
    missing = [k for k in result.missing_keys if k in params]
    prefixes = tuple(ignore_unexpected)
    unexpected = [k for k in result.unexpected_keys if not (prefixes and k.startswith(prefixes))]
    if missing or unexpected:
        raise ValueError(
            f"{source}: does not fit {type(module).__name__}: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}"
        )


def build_correspondences(
    kpts0: np.ndarray | torch.Tensor,
    kpts1: np.ndarray | torch.Tensor,
    scores: np.ndarray | torch.Tensor,
    prep0: PreparedImage,
    prep1: PreparedImage,
    **meta: Any,
) -> Correspondences:
    """Map matched keypoints from the resized images back to original pixels (float32).

    An empty result carries ``meta["reason"]``: too few keypoints (from ``num_keypoints0/1`` in
    ``meta``) or no match passing the matcher's filters.
    """

    def as_np(a: Any) -> np.ndarray:
        if isinstance(a, np.ndarray):
            return a
        return a.detach().to("cpu").float().numpy()

    k0, k1, s = as_np(kpts0).reshape(-1, 2), as_np(kpts1).reshape(-1, 2), as_np(scores).reshape(-1)
    if len(k0) == 0:
        n0, n1 = meta.get("num_keypoints0"), meta.get("num_keypoints1")
        if n0 is not None and n1 is not None and min(n0, n1) < 2:
            reason = f"too few keypoints (view 0: {n0}, view 1: {n1})"
        else:
            reason = "no match passed the matcher's filters"
        return Correspondences.empty(meta={**meta, "reason": reason})
    return Correspondences(prep0.to_original(k0), prep1.to_original(k1), s, meta=dict(meta))


class Stopwatch:
    """Wall-clock seconds since construction (``time.perf_counter``)."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0
