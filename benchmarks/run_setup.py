"""Setup helpers of a run, shared by ``mast3r-bench run``, ``sweep``, ``paper`` and ``match``: the
data root, the default device of a matcher, and the resolved configs with ``key=value`` overrides."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.capabilities import uses_torch
from benchmarks.config import apply_overrides, route_overrides

__all__ = ["resolve_data_root", "default_device", "resolve_configs", "check_device"]


def resolve_data_root(cli_value: str | os.PathLike | None = None, bench: str | None = None) -> Path:
    """The data root: ``datasets.paths.data_root`` when available, else the same rule locally
    (the CLI value, else ``$MAST3R_BENCH_DATA``, else ``./data``).

    With ``bench`` (the benchmark's folder name): when ``<root>/<bench>`` does not exist but the
    synthetic suite (the main job's) has it in ``<root>/synthetic/<bench>``, FileNotFoundError says
    so and suggests ``--data <root>/synthetic``; the suite is never used in place of real data
    silently (a run's identity does not include its data root)."""
    try:
        from datasets.paths import data_root
    except ImportError:
        root = Path(cli_value or os.environ.get("MAST3R_BENCH_DATA") or "data")
    else:
        root = Path(data_root(cli_value))
    if bench is not None and not (root / bench).exists() and (root / "synthetic" / bench).is_dir():
        raise FileNotFoundError(
            f"{root / bench}: no {bench} data there; the synthetic suite (rendered by the main job) has it: "
            f"add --data {root / 'synthetic'} (or put the real download in {root / bench})")
    return root


def default_device(matcher_cls: type) -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``; matchers with ``uses_torch = False`` get
    ``"cpu"`` without importing torch."""
    if not uses_torch(matcher_cls):
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | None, option: str = "--device") -> None:
    """Raise ``ValueError`` (one line naming ``option``) unless ``device`` is None, ``"auto"`` or a
    torch device this machine has: ``cpu``, ``cuda[:N]`` (with CUDA available and N < the device
    count), ``mps``, ``xpu[:N]``, ``meta``. torch is imported only for ``cuda``/``mps``/``xpu``."""
    if device in (None, "auto"):
        return
    m = re.fullmatch(r"(cpu|cuda|mps|xpu|meta)(?::(\d+))?", str(device))
    if m is None:
        raise ValueError(f"{option} {device!r} is not a torch device (use cpu, cuda, cuda:N, mps or auto)")
    kind, index = m[1], m[2]
    if kind in ("cpu", "meta"):
        return
    try:
        import torch
    except ImportError:
        raise ValueError(f"{option} {device}: torch is not installed") from None
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{option} {device}: CUDA is not available on this machine "
                             "(torch.cuda.is_available() is False); use --device cpu")
        if index is not None and int(index) >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ValueError(f"{option} {device}: this machine has {count} CUDA device(s)")
    elif kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"{option} {device}: MPS is not available on this machine")
    elif kind == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise ValueError(f"{option} {device}: XPU is not available on this machine")


def resolve_configs(adapter_cls: Any, matcher_cls: Any,
                    overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Default configs of the two classes with ``key=value`` overrides routed and applied:
    ``{"matcher": ..., "adapter": ..., "estimator": ...}``."""
    configs = {"matcher": matcher_cls.Config(), "adapter": adapter_cls.Config(),
               "estimator": adapter_cls.EstimatorConfig()}
    routed = route_overrides(overrides or {}, configs)
    return {g: apply_overrides(cfg, routed[g], prefix=f"{g}.") for g, cfg in configs.items()}
