"""The one rule that turns a backend name into the NN search that runs.

``resolve_backend(name, desc, dist)`` is called by every matching entry point (``make_index``,
``mutual_nearest_neighbours``, ``fast_reciprocal_nn``, ``dense_*``), so ``auto`` means the same
everywhere:

* ``auto``: ``triton`` where it can run -- float32 CUDA descriptors, ``dist="dot"`` and Triton
  importable -- else ``torch``. On CPU (where the official reference outputs come from) this is
  ``torch``; on a GPU the Triton kernels give the same matches (exact search, lowest index on ties)
  without per-iteration host syncs.
* ``triton``: demanded; ValueError (with the reason) where it cannot run.
* ``torch`` / ``faiss``: as named.
"""

from __future__ import annotations

from typing import Any

from mast3r.matching.config import BACKENDS
from mast3r.matching.gpu.kernels import triton_available

__all__ = ["resolve_backend"]


def resolve_backend(backend: str, desc: Any = None, dist: str = "dot") -> str:
    """The concrete backend (``torch``, ``faiss`` or ``triton``) for ``backend`` on ``desc``.

    Args:
        backend: one of :data:`~mast3r.matching.config.BACKENDS`.
        desc: a descriptor tensor of the search (its device and dtype decide ``auto``); None:
            unknown, so ``auto`` is ``torch`` and ``triton`` is not checked.
        dist: ``"dot"`` or ``"l2"`` (Triton supports ``dot`` only).
    Raises: ValueError for an unknown name, or ``triton`` where it cannot run on ``desc``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown NN backend {backend!r}; choose one of {BACKENDS}")
    if backend in ("torch", "faiss"):
        return backend
    if desc is None:
        return "torch" if backend == "auto" else backend
    import torch

    possible = desc.is_cuda and dist == "dot" and desc.dtype == torch.float32 and triton_available()
    if backend == "triton" and not possible:
        have = "present" if triton_available() else "missing"
        raise ValueError(
            f"backend 'triton' needs float32 CUDA descriptors, dist='dot' and Triton (got device "
            f"{desc.device}, dtype {desc.dtype}, dist {dist!r}, triton {have})"
        )
    return "triton" if possible else "torch"
