"""Setup helpers of a run, shared by ``mast3r-bench run``, ``sweep``, ``paper`` and ``match``: the
data root, the default device of a matcher, and the resolved configs with ``key=value`` overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.config import apply_overrides, route_overrides

__all__ = ["resolve_data_root", "default_device", "resolve_configs"]


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
    if not getattr(matcher_cls, "uses_torch", True):
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_configs(adapter_cls: Any, matcher_cls: Any,
                    overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Default configs of the two classes with ``key=value`` overrides routed and applied:
    ``{"matcher": ..., "adapter": ..., "estimator": ...}``."""
    configs = {"matcher": matcher_cls.Config(), "adapter": adapter_cls.Config(),
               "estimator": adapter_cls.EstimatorConfig()}
    routed = route_overrides(overrides or {}, configs)
    return {g: apply_overrides(cfg, routed[g], prefix=f"{g}.") for g, cfg in configs.items()}
