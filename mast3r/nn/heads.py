"""Downstream heads: ``linear`` and ``dpt`` (DUSt3R) and ``catmlp+dpt`` (MASt3R).

Every head maps a view's token list ``[E, D_1, ..., D_{L-1}, dec_norm(D_L)]`` ((B, S, C) each,
float32) and the image size (H, W) to a dict of channels-last maps:
``pts3d`` (B, H, W, 3), ``conf`` (B, H, W), and for MASt3R ``desc`` (B, H, W, N) unit-norm and
``desc_conf`` (B, H, W). The pointmap is in the frame of view 0's camera for both views.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mast3r.config import ModelConfig
from mast3r.nn.blocks import Mlp
from mast3r.nn.dpt import DPT
from mast3r.nn.postprocess import reg_conf, reg_depth, reg_desc

__all__ = ["LinearHead", "DPTHead", "CatMlpDPTHead", "build_head"]

HeadOutput = dict[str, torch.Tensor]


def _tokens_to_pixels(tokens: torch.Tensor, image_size: tuple[int, int], patch_size: int) -> torch.Tensor:
    """(B, S, C*p*p) per-token predictions -> (B, C, H, W) by pixel shuffle.

    Channel ``c*p*p + r*p + s`` of token (i, j) lands on pixel (p*i + r, p*j + s) of channel c.
    """
    b, _, d = tokens.shape
    h, w = image_size[0] // patch_size, image_size[1] // patch_size
    return F.pixel_shuffle(tokens.transpose(1, 2).reshape(b, d, h, w), patch_size)


def _pts_conf(raw: torch.Tensor, config: ModelConfig) -> HeadOutput:
    """raw (B, 3 + has_conf, H, W) -> pts3d (B,H,W,3) [+ conf (B,H,W)]."""
    fmap = raw.permute(0, 2, 3, 1).float()  # postprocess in float32 (heads may run under autocast)
    out = {"pts3d": reg_depth(fmap[..., 0:3], config.depth_mode)}
    if config.conf_mode is not None:
        out["conf"] = reg_conf(fmap[..., 3], config.conf_mode)
    return out


class LinearHead(nn.Module):
    """``proj``: Linear(dec_dim -> (3 + has_conf) * p^2) on the last (normed) decoder tokens."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        p = config.patch_size
        self.proj = nn.Linear(config.dec_embed_dim, (3 + int(config.has_conf)) * p * p)

    def forward(self, tokens: Sequence[torch.Tensor], image_size: tuple[int, int]) -> HeadOutput:
        raw = _tokens_to_pixels(self.proj(tokens[-1]), image_size, self.config.patch_size)
        return _pts_conf(raw, self.config)


def _make_dpt(config: ModelConfig) -> DPT:
    return DPT(
        hooks=config.dpt_hooks,
        dim_tokens=(config.enc_embed_dim, config.dec_embed_dim, config.dec_embed_dim, config.dec_embed_dim),
        num_channels=3 + int(config.has_conf),
        patch_size=config.patch_size,
        layer_dims=config.dpt_layer_dims,
        feature_dim=config.dpt_feature_dim,
        last_dim=config.dpt_last_dim,
    )


class DPTHead(nn.Module):
    """DUSt3R ``dpt`` head: the DPT decoder then the pointmap/confidence activations."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.dpt = _make_dpt(config)

    def forward(self, tokens: Sequence[torch.Tensor], image_size: tuple[int, int]) -> HeadOutput:
        return _pts_conf(self.dpt(tokens, image_size), self.config)


class CatMlpDPTHead(nn.Module):
    """MASt3R ``catmlp+dpt`` head: DPT for pts3d/conf plus an MLP on ``concat(E, dec_norm(D_L))``.

    The MLP (``head_local_features``: Linear(C_e + C_d -> 4x; ``local_feat_hidden_factor``), GELU,
    Linear(-> (N + two_confs) p^2))
    predicts per token a p x p patch of N-d descriptors (and a descriptor confidence).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        desc_dim = config.desc_dim
        assert desc_dim is not None  # guaranteed by ModelConfig validation
        self.config = config
        self.desc_dim = desc_dim
        self.dpt = _make_dpt(config)
        in_dim = config.enc_embed_dim + config.dec_embed_dim
        p = config.patch_size
        hidden = int(config.local_feat_hidden_factor * in_dim)
        self.head_local_features = Mlp(in_dim, hidden, (desc_dim + int(config.two_confs)) * p * p)

    def forward(self, tokens: Sequence[torch.Tensor], image_size: tuple[int, int]) -> HeadOutput:
        cfg = self.config
        out = _pts_conf(self.dpt(tokens, image_size), cfg)
        local = self.head_local_features(torch.cat((tokens[0], tokens[-1]), dim=-1))
        local = _tokens_to_pixels(local, image_size, cfg.patch_size).permute(0, 2, 3, 1).float()
        out["desc"] = reg_desc(local[..., : self.desc_dim], cfg.desc_mode)
        if cfg.two_confs:
            mode = cfg.desc_conf_mode if cfg.desc_conf_mode is not None else cfg.conf_mode
            assert mode is not None  # ModelConfig validation
            out["desc_conf"] = reg_conf(local[..., self.desc_dim], mode)
        elif "conf" in out:
            out["desc_conf"] = out["conf"].clone()
        return out


def build_head(config: ModelConfig) -> nn.Module:
    """The head module for ``config.head_type``."""
    if config.head_type == "linear":
        return LinearHead(config)
    if config.head_type == "dpt":
        return DPTHead(config)
    if config.head_type == "catmlp+dpt":
        return CatMlpDPTHead(config)
    raise ValueError(f"unknown head_type {config.head_type!r}")
