"""Configuration of descriptor matching (Fast Reciprocal Matching, dense mutual NN, filters)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FRMConfig", "BACKENDS", "DISTANCES", "CONF_MODES"]

BACKENDS = ("auto", "torch", "faiss", "triton")
"""NN search backends: ``torch`` (blockwise matmul on the descriptors' device), ``faiss`` (CPU
``IndexFlatIP`` / ``IndexFlatL2``), ``triton`` (fused matmul + argmax on CUDA, float32 ``dot``),
``auto`` (``triton`` where it can run -- float32 CUDA maps, ``dot``, Triton importable -- else
``torch``: :func:`mast3r.matching.backend.resolve_backend`, the one rule)."""

DISTANCES = ("dot", "l2")
"""``dot``: nearest = largest inner product; ``l2``: nearest = smallest Euclidean distance."""

CONF_MODES = ("min", "geomean")
"""Per-match confidence from the two ``desc_conf`` maps: ``min(c0, c1)`` or ``sqrt(c0 * c1)``."""


@dataclass(frozen=True)
class FRMConfig:
    """Options of MASt3R matching between two descriptor maps.

    Attributes:
        subsample: grid step of the FRM seeds in view-0 pixels (official default 8).
        max_iter: FRM iterations; ``None`` = official default (10 with grid seeds, 1 with explicit
            seeds).
        pixel_tol: with explicit seeds, keep a seed whose back-projected pixel is within this
            Euclidean distance (pixels, strict ``<``); 0 = exact cycle consistency.
        backend: ``"auto"``, ``"torch"``, ``"faiss"`` or ``"triton"`` (see :data:`BACKENDS`).
        block_size: block edge of the blockwise matmul (official ``2**13``); ``None`` = one matmul.
        dist: ``"dot"`` or ``"l2"``.
        border: drop matches closer than this many pixels to the border of either image
            (``border <= x < W - border``); 0 disables the filter.
        conf_mode: ``"min"`` or ``"geomean"`` (see :data:`CONF_MODES`).
        dense: use exhaustive mutual NN instead of FRM (the paper's "full matching" baseline).
    """

    subsample: int = 8
    max_iter: int | None = None
    pixel_tol: float = 0.0
    backend: str = "auto"
    block_size: int | None = 2**13
    dist: str = "dot"
    border: int = 3
    conf_mode: str = "min"
    dense: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.subsample, bool) or not isinstance(self.subsample, int) or self.subsample < 1:
            raise ValueError(f"FRMConfig.subsample must be an int >= 1, got {self.subsample!r}")
        if self.max_iter is not None and (not isinstance(self.max_iter, int) or self.max_iter < 1):
            raise ValueError(f"FRMConfig.max_iter must be None or an int >= 1, got {self.max_iter!r}")
        if not self.pixel_tol >= 0:
            raise ValueError(f"FRMConfig.pixel_tol must be >= 0, got {self.pixel_tol!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"FRMConfig.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.block_size is not None and (not isinstance(self.block_size, int) or self.block_size < 1):
            raise ValueError(f"FRMConfig.block_size must be None or an int >= 1, got {self.block_size!r}")
        if self.dist not in DISTANCES:
            raise ValueError(f"FRMConfig.dist must be one of {DISTANCES}, got {self.dist!r}")
        if not isinstance(self.border, int) or self.border < 0:
            raise ValueError(f"FRMConfig.border must be an int >= 0, got {self.border!r}")
        if self.conf_mode not in CONF_MODES:
            raise ValueError(f"FRMConfig.conf_mode must be one of {CONF_MODES}, got {self.conf_mode!r}")
