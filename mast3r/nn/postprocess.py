"""Head output activations: pointmaps, confidences and descriptors (channels-last tensors)."""

from __future__ import annotations

import math

import torch

__all__ = ["reg_depth", "reg_conf", "reg_desc"]


def reg_depth(xyz: torch.Tensor, mode: tuple[str, float, float]) -> torch.Tensor:
    """Pointmap activation on (..., 3) raw values; returns (..., 3).

    ``exp``: ``v / max(|v|, 1e-8) * expm1(|v|)``; ``square``: ``v / max(|v|,1e-8) * |v|^2``;
    ``linear``: identity. Bounded modes are not supported (the reference asserts no bounds).
    """
    kind, vmin, vmax = mode
    if vmin != -math.inf or vmax != math.inf:
        raise ValueError(f"depth_mode {mode!r}: bounded depth modes are not supported")
    if kind == "linear":
        return xyz
    d = xyz.norm(dim=-1, keepdim=True)
    xyz = xyz / d.clip(min=1e-8)
    if kind == "square":
        return xyz * d.square()
    if kind == "exp":
        return xyz * torch.expm1(d)
    raise ValueError(f"unknown depth_mode {mode!r}")


def reg_conf(x: torch.Tensor, mode: tuple[str, float, float]) -> torch.Tensor:
    """Confidence activation, elementwise. ``exp``: ``vmin + min(exp(x), vmax - vmin)``;
    ``sigmoid``: ``(vmax - vmin) * sigmoid(x) + vmin``."""
    kind, vmin, vmax = mode
    if kind == "exp":
        e = x.exp()
        if vmax - vmin != math.inf:
            e = e.clip(max=vmax - vmin)
        return vmin + e
    if kind == "sigmoid":
        return (vmax - vmin) * torch.sigmoid(x) + vmin
    raise ValueError(f"unknown conf mode {mode!r}")


def reg_desc(desc: torch.Tensor, mode: str = "norm") -> torch.Tensor:
    """Descriptor activation on (..., D): ``norm`` divides by the L2 norm (no epsilon)."""
    if mode == "norm":
        return desc / desc.norm(dim=-1, keepdim=True)
    raise ValueError(f"unknown desc_mode {mode!r}")
