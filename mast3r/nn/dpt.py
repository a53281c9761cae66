"""DPT dense prediction head (the ``dpt`` module of the official heads; key names as released).

Input: the per-view token list ``[E, D_1, ..., D_L]`` ((B, S, C_i) each) and the image size (H, W).
Four hooked token maps are reassembled to 4 resolutions, fused coarse-to-fine and decoded to
(B, num_channels, H, W) raw (pre-activation) values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DPT", "ResidualConvUnit", "FusionBlock"]


class ResidualConvUnit(nn.Module):
    """``z + conv2(relu(conv1(relu(z))))`` with 3x3 convs (bias)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(z))
        out = self.conv2(F.relu(out))
        return out + z


class FusionBlock(nn.Module):
    """``out = RCU2(a (+ RCU1(b)))``, bilinear x2 (align_corners=True), 1x1 conv (bias)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        # registration order = official key order: out_conv, resConfUnit1, resConfUnit2
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        out = a if b is None else a + self.resConfUnit1(b)
        out = self.resConfUnit2(out)
        out = F.interpolate(out, scale_factor=2.0, mode="bilinear", align_corners=True)
        return self.out_conv(out)


class _Scratch(nn.Module):
    """Holds ``layer{1..4}_rn`` and their alias list ``layer_rn`` (the same modules) and the refinenets."""

    def __init__(self, layer_dims: Sequence[int], features: int) -> None:
        super().__init__()
        convs = [nn.Conv2d(d, features, kernel_size=3, padding=1, bias=False) for d in layer_dims]
        self.layer1_rn, self.layer2_rn, self.layer3_rn, self.layer4_rn = convs
        self.layer_rn = nn.ModuleList(convs)  # alias: state_dict lists both names, same tensors
        self.refinenet1 = FusionBlock(features)
        self.refinenet2 = FusionBlock(features)
        self.refinenet3 = FusionBlock(features)
        self.refinenet4 = FusionBlock(features)


class _Upsample2x(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class DPT(nn.Module):
    """DPT head with hooks into the token list.

    Args:
        hooks: 4 indices into the token list (``[0, L/2, 3L/4, L]``).
        dim_tokens: channel size of each hooked token map (``[enc_dim, dec_dim, dec_dim, dec_dim]``).
        num_channels: output channels (3 + has_conf).
        patch_size: token stride in pixels.
        layer_dims, feature_dim, last_dim: official widths (96/192/384/768, 256, 128).
    """

    def __init__(
        self,
        hooks: Sequence[int],
        dim_tokens: Sequence[int],
        num_channels: int,
        patch_size: int = 16,
        layer_dims: Sequence[int] = (96, 192, 384, 768),
        feature_dim: int = 256,
        last_dim: int = 128,
    ) -> None:
        super().__init__()
        self.hooks = tuple(hooks)
        self.patch_size = patch_size
        # True: token maps enter the convolutions as channels-last views (no copy); set by
        # ``mast3r.fast`` for GPU inference. False keeps the reference (contiguous NCHW) path.
        self.channels_last_tokens = False
        self.scratch = _Scratch(layer_dims, feature_dim)
        self.head = nn.Sequential(
            nn.Conv2d(feature_dim, feature_dim // 2, kernel_size=3, padding=1),
            _Upsample2x(),
            nn.Conv2d(feature_dim // 2, last_dim, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(last_dim, num_channels, kernel_size=1),
        )
        d0, d1, d2, d3 = layer_dims
        self.act_postprocess = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(dim_tokens[0], d0, 1), nn.ConvTranspose2d(d0, d0, 4, stride=4)),
                nn.Sequential(nn.Conv2d(dim_tokens[1], d1, 1), nn.ConvTranspose2d(d1, d1, 2, stride=2)),
                nn.Sequential(nn.Conv2d(dim_tokens[2], d2, 1)),
                nn.Sequential(nn.Conv2d(dim_tokens[3], d3, 1), nn.Conv2d(d3, d3, 3, stride=2, padding=1)),
            ]
        )

    def forward(self, tokens: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """tokens: list of (B, S, C_i); image_size (H, W). Returns (B, num_channels, H, W) raw values."""
        h, w = image_size[0] // self.patch_size, image_size[1] // self.patch_size
        layers = []
        for idx, hook in enumerate(self.hooks):
            t = tokens[hook]
            if self.channels_last_tokens:  # (B, h*w, C) row-major is (B, C, h, w) channels-last
                fmap = t.reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)
            else:
                fmap = t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)
            fmap = self.act_postprocess[idx](fmap)
            layers.append(self.scratch.layer_rn[idx](fmap))
        l1, l2, l3, l4 = layers
        path4 = self.scratch.refinenet4(l4)[:, :, : l3.shape[2], : l3.shape[3]]  # odd h or w: crop
        path3 = self.scratch.refinenet3(path4, l3)
        path2 = self.scratch.refinenet2(path3, l2)
        path1 = self.scratch.refinenet1(path2, l1)
        return self.head(path1)
