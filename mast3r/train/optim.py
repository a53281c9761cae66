"""AdamW parameter groups and the warm-up + cosine learning-rate schedule (per optimizer step)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mast3r.train.config import OptimConfig

__all__ = ["learning_rate", "make_optimizer", "param_groups"]


def learning_rate(step: int, cfg: OptimConfig) -> float:
    """LR for optimizer step ``step`` (0-based): linear warm-up over ``warmup_steps`` to ``lr``, then
    cosine decay to ``min_lr`` at ``steps``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(cfg.steps - cfg.warmup_steps, 1)
    progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weight decay for matrices/convolutions; none for biases, norms and 1-D tensors
    (as the official croco/dust3r training does). Frozen parameters are left out."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW (fused on CUDA) with :func:`param_groups`."""
    kwargs = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, **kwargs)
