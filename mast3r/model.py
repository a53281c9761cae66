"""The MASt3R / DUSt3R two-view network (``Mast3r``) and its outputs.

Both images of a pair go through one shared ViT encoder, two cross-attending decoders (one per
view) and one head per view. Outputs are per-pixel maps at the network input resolution; both
pointmaps are expressed in the camera frame of view 0 (MASt3R: metres).

Parameter names match the official checkpoints (``enc_blocks.*``, ``dec_blocks2.*``,
``downstream_head1.dpt.*``, ...), so ``model.load_state_dict(official_state_dict)`` works as is
(see ``mast3r.weights.load_model``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch
from torch import nn

from mast3r.config import ModelConfig
from mast3r.nn.blocks import DecoderBlock, EncoderBlock, PatchEmbed, layer_norm
from mast3r.nn.heads import build_head
from mast3r.nn.rope import RopeTables, rope_tables

__all__ = ["Mast3r", "PairOutput", "ViewOutput", "EncodedImages"]

_ROPE_CACHE_SIZE = 32


@dataclass
class ViewOutput:
    """Network outputs for one view of each pair in a batch (float32 tensors).

    Attributes:
        pts3d: (B, H, W, 3) pointmap in camera-0's frame (view 0's and view 1's alike), metres for
            MASt3R, up to scale for DUSt3R.
        conf: (B, H, W) pointmap confidence (> 1 with the released ``('exp', 1, inf)``), or None.
        desc: (B, H, W, D) unit-norm local descriptors (D = 24 for MASt3R), None for DUSt3R heads.
        desc_conf: (B, H, W) descriptor confidence (> 0), None for DUSt3R heads.
    """

    pts3d: torch.Tensor
    conf: torch.Tensor | None = None
    desc: torch.Tensor | None = None
    desc_conf: torch.Tensor | None = None

    @property
    def true_shape(self) -> tuple[int, int]:
        """(H, W) of the maps."""
        return (int(self.pts3d.shape[1]), int(self.pts3d.shape[2]))

    def items(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, tensor) for the outputs that are present."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                yield f.name, value

    def to(self, device: torch.device | str) -> ViewOutput:
        return ViewOutput(**{name: t.to(device) for name, t in self.items()})


@dataclass
class PairOutput:
    """Outputs for a batch of pairs: ``view0`` (first images) and ``view1`` (second images)."""

    view0: ViewOutput
    view1: ViewOutput

    def to(self, device: torch.device | str) -> PairOutput:
        return PairOutput(self.view0.to(device), self.view1.to(device))

    def cpu(self) -> PairOutput:
        return self.to("cpu")


@dataclass
class EncodedImages:
    """Encoder output for a batch of same-size images: ``tokens`` (B, h*w, enc_dim), ``shape`` (H, W)."""

    tokens: torch.Tensor
    shape: tuple[int, int]


class Mast3r(nn.Module):
    """Asymmetric CroCo-style two-view network (MASt3R when ``config.head_type == 'catmlp+dpt'``).

    ``forward(img0, img1)`` takes normalised images (B, 3, H, W) (``mast3r.preprocess``), H and W
    multiples of the patch size; the two images of a pair may differ in size, all pairs of a batch
    share sizes. Forward performs no host synchronisation and changes no global state.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.checksum: str | None = None
        enc, dec = config.enc_embed_dim, config.dec_embed_dim
        # registration order = official state-dict order
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec))  # pre-training leftover, unused
        self.patch_embed = PatchEmbed(config.patch_size, enc)
        self.enc_blocks = nn.ModuleList(
            EncoderBlock(enc, config.enc_num_heads, config.mlp_ratio) for _ in range(config.enc_depth)
        )
        self.enc_norm = layer_norm(enc)
        self.decoder_embed = nn.Linear(enc, dec)
        self.dec_blocks = nn.ModuleList(self._decoder_block() for _ in range(config.dec_depth))
        self.dec_norm = layer_norm(dec)
        self.dec_blocks2 = nn.ModuleList(self._decoder_block() for _ in range(config.dec_depth))
        self.downstream_head1 = build_head(config)
        self.downstream_head2 = build_head(config)
        self._rope_cache: dict[tuple, RopeTables] = {}

    def _decoder_block(self) -> DecoderBlock:
        cfg = self.config
        return DecoderBlock(cfg.dec_embed_dim, cfg.dec_num_heads, cfg.mlp_ratio, cfg.norm_im2_in_dec)

    @classmethod
    def from_config(
        cls, config: ModelConfig, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Mast3r:
        """Build (eval mode) directly on ``device``; ``device="meta"`` allocates nothing."""
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = cls(config)
        if dtype is not None:
            model.to(dtype)
        return model.eval()

    # ------------------------------------------------------------------ dtype helpers
    @property
    def backbone_dtype(self) -> torch.dtype:
        return self.patch_embed.proj.weight.dtype

    def set_backbone_dtype(self, dtype: torch.dtype) -> Mast3r:
        """Cast encoder and decoders to ``dtype``; the heads keep their dtype (float32, as released)."""
        with torch.no_grad():
            self.mask_token.data = self.mask_token.data.to(dtype)
        for name, module in self.named_children():
            if not name.startswith("downstream_head"):
                module.to(dtype)
        self._rope_cache.clear()
        return self

    # ------------------------------------------------------------------ building blocks
    def _rope(self, h: int, w: int, head_dim: int, device: torch.device, dtype: torch.dtype) -> RopeTables:
        key = (h, w, head_dim, device, dtype)
        tables = self._rope_cache.get(key)
        if tables is None:
            if len(self._rope_cache) >= _ROPE_CACHE_SIZE:
                self._rope_cache.clear()
            tables = rope_tables(h, w, head_dim, self.config.rope_base, device, dtype)
            self._rope_cache[key] = tables
        return tables

    def _compute_dtype(self, device: torch.device) -> torch.dtype:
        if torch.is_autocast_enabled(device.type):
            return torch.get_autocast_dtype(device.type)
        return self.backbone_dtype

    def _check_images(self, img: torch.Tensor, name: str) -> tuple[int, int]:
        p = self.config.patch_size
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"{name}: expected a (B, 3, H, W) image batch, got shape {tuple(img.shape)}")
        if not img.is_floating_point():
            raise ValueError(f"{name}: expected a normalised float image tensor, got {img.dtype}")
        h, w = int(img.shape[2]), int(img.shape[3])
        if h % p or w % p or h == 0 or w == 0:
            raise ValueError(f"{name}: image size {h}x{w} (HxW) is not a positive multiple of {p}")
        return h, w

    def encode(self, img: torch.Tensor) -> EncodedImages:
        """Encoder: (B, 3, H, W) normalised images -> tokens (B, h*w, enc_dim) after ``enc_norm``."""
        shape = self._check_images(img, "img")
        x = self.patch_embed(img.to(self.backbone_dtype))
        cfg = self.config
        rope = self._rope(
            shape[0] // cfg.patch_size,
            shape[1] // cfg.patch_size,
            cfg.enc_embed_dim // cfg.enc_num_heads,
            x.device,
            self._compute_dtype(x.device),
        )
        for blk in self.enc_blocks:
            x = blk(x, rope)
        return EncodedImages(self.enc_norm(x), shape)

    def encode_pair(self, img0: torch.Tensor, img1: torch.Tensor) -> tuple[EncodedImages, EncodedImages]:
        """Encode both images; same-size images are encoded in one batch (as the reference does)."""
        s0 = self._check_images(img0, "img0")
        s1 = self._check_images(img1, "img1")
        if img0.shape[0] != img1.shape[0]:
            raise ValueError(
                f"img0 and img1 must hold the same number of pairs, got {img0.shape[0]} and {img1.shape[0]}"
            )
        if s0 == s1:
            both = self.encode(torch.cat((img0, img1), dim=0))
            t0, t1 = both.tokens.chunk(2, dim=0)
            return EncodedImages(t0, s0), EncodedImages(t1, s1)
        return self.encode(img0), self.encode(img1)

    def decode(
        self, enc0: EncodedImages, enc1: EncodedImages
    ) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        """Two cross-attending decoders. Returns per view the head input list ``[E, D_1, .., dec_norm(D_L)]``.

        Entries the heads never read are None (saves memory).
        """
        cfg = self.config
        p, hd = cfg.patch_size, cfg.dec_embed_dim // cfg.dec_num_heads
        device = enc0.tokens.device
        dtype = self._compute_dtype(device)
        r0 = self._rope(enc0.shape[0] // p, enc0.shape[1] // p, hd, device, dtype)
        r1 = self._rope(enc1.shape[0] // p, enc1.shape[1] // p, hd, device, dtype)
        keep = set(cfg.dpt_hooks) if cfg.head_type != "linear" else set()
        f0, f1 = self.decoder_embed(enc0.tokens), self.decoder_embed(enc1.tokens)
        out0: list[torch.Tensor | None] = [enc0.tokens]
        out1: list[torch.Tensor | None] = [enc1.tokens]
        depth = len(self.dec_blocks)
        for i, (blk0, blk1) in enumerate(zip(self.dec_blocks, self.dec_blocks2), start=1):
            f0, f1 = blk0(f0, f1, r0, r1), blk1(f1, f0, r1, r0)  # both read the previous layer
            out0.append(f0 if i in keep and i < depth else None)
            out1.append(f1 if i in keep and i < depth else None)
        out0[-1], out1[-1] = self.dec_norm(f0), self.dec_norm(f1)
        return out0, out1

    def _run_head(
        self, head: nn.Module, tokens: list[torch.Tensor | None], shape: tuple[int, int]
    ) -> ViewOutput:
        head_dtype = next(head.parameters()).dtype
        tok = [t.to(head_dtype) if t is not None else None for t in tokens]
        res = head(tok, shape)
        return ViewOutput(
            pts3d=res["pts3d"], conf=res.get("conf"), desc=res.get("desc"), desc_conf=res.get("desc_conf")
        )

    def forward_encoded(
        self, enc0: EncodedImages, enc1: EncodedImages, *, autocast_dtype: torch.dtype | None = None,
        autocast_heads: bool = False,
    ) -> PairOutput:
        """Decoders and heads on already encoded images (reuse one encoding across several pairs)."""
        if enc0.tokens.shape[0] != enc1.tokens.shape[0]:
            raise ValueError(
                f"enc0 and enc1 must hold the same number of pairs, got {enc0.tokens.shape[0]} and "
                f"{enc1.tokens.shape[0]}"
            )
        device_type = enc0.tokens.device.type
        with _autocast(device_type, autocast_dtype):
            dec0, dec1 = self.decode(enc0, enc1)
        heads_ctx = (_autocast(device_type, autocast_dtype) if autocast_heads
                     else torch.autocast(device_type=device_type, enabled=False))  # heads in full precision
        with heads_ctx:
            view0 = self._run_head(self.downstream_head1, dec0, enc0.shape)
            view1 = self._run_head(self.downstream_head2, dec1, enc1.shape)
        return PairOutput(view0, view1)

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor, *, autocast_dtype: torch.dtype | None = None,
        autocast_heads: bool = False,
    ) -> PairOutput:
        """Run the network on a batch of pairs.

        Args:
            img0: (B, 3, H0, W0) normalised first images (``(u8/255 - 0.5)/0.5``).
            img1: (B, 3, H1, W1) normalised second images.
            autocast_dtype: run encoder/decoders under autocast with this dtype (torch.bfloat16 or
                torch.float16); the heads run in their own dtype (float32) with autocast off, unless
                ``autocast_heads`` (training: heads under the same autocast, postprocess in float32).

        Returns:
            PairOutput; ``view1.pts3d`` is expressed in camera-0's frame.
        """
        with _autocast(img0.device.type, autocast_dtype):
            enc0, enc1 = self.encode_pair(img0, img1)
        return self.forward_encoded(enc0, enc1, autocast_dtype=autocast_dtype, autocast_heads=autocast_heads)


def _autocast(device_type: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)
