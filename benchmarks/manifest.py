"""Provenance written to each run's ``manifest.json``: code version, packages, device, precision, data,
and the execution-only config settings of the latest session (not part of the run identity).

Everything here only *reads* state (git, installed versions, torch flags); nothing is set.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.config import execution_dict

__all__ = ["git_info", "package_versions", "precision_flags", "now_iso", "base_manifest",
           "execution_settings"]

# Distribution names to report (first installed name wins for each label).
_PACKAGES = {
    "mast3r-bench": ("mast3r-bench",),
    "torch": ("torch",),
    "numpy": ("numpy",),
    "pycolmap": ("pycolmap",),
    "kornia": ("kornia",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss"),
}


def now_iso() -> str:
    """UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def git_info(repo: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha | None, "dirty": bool | None}`` of the source tree the package runs from.

    Only a git work tree whose top level is ``repo`` (default: the folder holding the ``benchmarks``
    package) counts, so an installed copy inside some other repository reports ``None``. Dirty means
    tracked files differ from the commit (untracked files are ignored).
    """
    repo = Path(repo) if repo else Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                 timeout=20, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != repo.resolve():
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages results depend on (None when absent)."""
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for label, dists in _PACKAGES.items():
        out[label] = None
        for dist in dists:
            try:
                out[label] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def precision_flags() -> dict[str, Any] | None:
    """torch's matmul/cuDNN precision flags as currently set, or None if torch was never imported
    by this process (then nothing could have changed torch's defaults)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cuda_matmul_allow_fp16_reduced_precision_reduction":
            bool(torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
    }


def device_info(device: str) -> dict[str, Any]:
    """The device string and, for CUDA when torch is loaded, the card's name."""
    info: dict[str, Any] = {"device": device}
    torch = sys.modules.get("torch")
    if torch is not None and device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return info


def execution_settings(configs: Mapping[str, Any]) -> dict[str, Any]:
    """``{group: execution-only settings}`` of ``{"matcher": cfg, "adapter": cfg, ...}``: how this
    session computed the results (:func:`benchmarks.config.execution_dict`; ``{}`` for a group
    without such fields)."""
    return {group: execution_dict(cfg) for group, cfg in configs.items()}


def base_manifest(*, device: str, data_root: Path, dataset_root: Path, dataset_checksum: str | None,
                  seed: int, configs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Provenance fields collected at the start of a run (counts and status are added by the runner);
    with ``configs`` (``{"matcher": cfg, ...}``) also ``execution``, :func:`execution_settings`."""
    return {
        "git": git_info(),
        "packages": package_versions(),
        **device_info(device),
        "precision": precision_flags(),
        "hostname": socket.gethostname(),
        "world_size": 1,
        "data_root": str(Path(data_root).resolve()),
        "dataset_root": str(Path(dataset_root).resolve()),
        "dataset_checksum": dataset_checksum,
        "seed": seed,
        **({"execution": execution_settings(configs)} if configs is not None else {}),
    }
