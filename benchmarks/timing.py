"""Timing primitives for ``mast3r-bench time``: statistics, synchronised timers, precision flags,
the analytic FLOP count of the network, environment records and deterministic test inputs.

Times are milliseconds. On CUDA each repeat is bracketed by CUDA events on the current stream
(after ``warmup`` untimed calls); on CPU by ``time.perf_counter``. Statistics are the median and
the inter-quartile range (IQR = q75 - q25) over the repeats.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mast3r.config import ModelConfig

__all__ = [
    "TimingStats",
    "time_fn",
    "DTYPES",
    "precision_flags",
    "environment",
    "forward_flops",
    "smooth_image_pairs",
    "smooth_descriptor_pair",
    "parse_size",
]

DTYPES = ("fp32", "tf32", "bf16", "fp16")
"""``--dtype`` choices: fp32 (TF32 off everywhere), tf32 (TF32 matmuls and convolutions),
bf16 / fp16 (autocast or the fast path in that dtype; float32 parts may use TF32)."""


@dataclass(frozen=True)
class TimingStats:
    """Summary of repeated timings in milliseconds."""

    median_ms: float
    iqr_ms: float
    q25_ms: float
    q75_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    warmup: int

    @staticmethod
    def from_samples(samples_ms: list[float], warmup: int) -> TimingStats:
        if not samples_ms:
            raise ValueError("no timing samples")
        a = np.asarray(samples_ms, dtype=np.float64)
        q25, med, q75 = (float(v) for v in np.percentile(a, [25, 50, 75]))
        return TimingStats(
            med, q75 - q25, q25, q75, float(a.mean()), float(a.min()), float(a.max()), len(a), warmup
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def time_fn(
    fn: Callable[[], Any], device: torch.device | str, *, warmup: int = 5, repeats: int = 30
) -> TimingStats:
    """Time ``fn()`` ``repeats`` times after ``warmup`` calls, synchronised (CUDA events / host clock)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    dev = torch.device(device)
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        events = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            for _ in range(repeats)
        ]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(dev)
        samples = [start.elapsed_time(end) for start, end in events]
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1e3)
    return TimingStats.from_samples(samples, warmup)


@contextlib.contextmanager
def precision_flags(dtype: str) -> Iterator[dict[str, Any]]:
    """Set TF32 flags for ``dtype`` (fp32: off; otherwise on) and restore them on exit.

    Yields the flags in force (recorded in the JSON output).
    """
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {DTYPES}")
    allow = dtype != "fp32"
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    try:
        yield {
            "cuda.matmul.allow_tf32": allow,
            "cudnn.allow_tf32": allow,
            "cudnn.benchmark": bool(torch.backends.cudnn.benchmark),
        }
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def environment(device: torch.device | str) -> dict[str, Any]:
    """Device name and software versions for the JSON record."""
    dev = torch.device(device)
    env: dict[str, Any] = {
        "device": str(dev),
        "device_name": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_threads": torch.get_num_threads(),
    }
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        env.update(
            device_name=props.name,
            sm_count=props.multi_processor_count,
            memory_gb=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
        )
    return env


def parse_size(text: str) -> tuple[int, int]:
    """``"512x384"`` (W x H) -> (H, W) = (384, 512)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like 512x384 (width x height), got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return h, w


# ----------------------------------------------------------------------------- FLOP count
def _conv(pixels: int, cin: int, cout: int, k: int) -> int:
    return 2 * pixels * cin * cout * k * k


def _dpt_flops(cfg: ModelConfig, h: int, w: int) -> int:
    """DPT head on an h x w token grid (official widths 96/192/384/768, 256, 128)."""
    e, d = cfg.enc_embed_dim, cfg.dec_embed_dim
    d0, d1, d2, d3, f, last = 96, 192, 384, 768, 256, 128
    nc = 3 + int(cfg.has_conf)
    s = h * w
    h4, w4 = (h + 1) // 2, (w + 1) // 2  # stride-2 3x3 conv, padding 1
    rcu = 2 * _conv(1, f, f, 3)  # per pixel: two 3x3 convs
    flops = _conv(s, e, d0, 1) + _conv(s, d0, d0, 4)  # 1x1, then ConvTranspose k4 s4 (per input pixel)
    flops += _conv(s, d, d1, 1) + _conv(s, d1, d1, 2)
    flops += _conv(s, d, d2, 1)
    flops += _conv(s, d, d3, 1) + _conv(h4 * w4, d3, d3, 3)
    flops += _conv(16 * s, d0, f, 3) + _conv(4 * s, d1, f, 3) + _conv(s, d2, f, 3) + _conv(h4 * w4, d3, f, 3)
    flops += h4 * w4 * rcu + _conv(4 * h4 * w4, f, f, 1)  # refinenet4: RCU2, up x2, 1x1
    flops += 2 * s * rcu + _conv(4 * s, f, f, 1)  # refinenet3 at h x w
    flops += 2 * 4 * s * rcu + _conv(16 * s, f, f, 1)  # refinenet2 at 2h x 2w
    flops += 2 * 16 * s * rcu + _conv(64 * s, f, f, 1)  # refinenet1 at 4h x 4w
    flops += _conv(64 * s, f, f // 2, 3)  # head conv at 8h x 8w, then up x2 to 16h x 16w (= H x W)
    flops += _conv(256 * s, f // 2, last, 3) + _conv(256 * s, last, nc, 1)
    return flops


def forward_flops(
    cfg: ModelConfig, shape0: tuple[int, int], shape1: tuple[int, int] | None = None
) -> dict[str, int]:
    """Analytic FLOPs (2 per multiply-add) of one pair forward, by component, and ``total``.

    Counts every matmul, convolution and attention product (QK^T and AV); not biases, norms,
    softmax, activations or resampling. shape0/shape1: (H, W) network input sizes in pixels.
    """
    shape1 = shape1 or shape0
    p, e, d = cfg.patch_size, cfg.enc_embed_dim, cfg.dec_embed_dim
    r = cfg.mlp_ratio
    grids = [(shape0[0] // p, shape0[1] // p), (shape1[0] // p, shape1[1] // p)]
    toks = [gh * gw for gh, gw in grids]
    out = {"patch_embed": 0, "encoder": 0, "decoder": 0, "head_dpt": 0, "head_mlp": 0, "head_linear": 0}
    for s in toks:
        out["patch_embed"] += 2 * s * 3 * p * p * e
        out["encoder"] += cfg.enc_depth * (2 * s * e * e * (4 + 2 * r) + 4 * s * s * e)
        out["decoder"] += 2 * s * e * d  # decoder_embed
    for s, s_other in ((toks[0], toks[1]), (toks[1], toks[0])):
        per_block = 2 * s * d * d * 4 + 4 * s * s * d  # self attention: qkv, proj, QK^T, AV
        per_block += 2 * (2 * s * d * d + 2 * s_other * d * d) + 4 * s * s_other * d  # cross attention
        per_block += 2 * s * d * d * 2 * r  # MLP
        out["decoder"] += cfg.dec_depth * int(per_block)
    for (gh, gw), s in zip(grids, toks):
        if cfg.head_type in ("dpt", "catmlp+dpt"):
            out["head_dpt"] += _dpt_flops(cfg, gh, gw)
        if cfg.head_type == "catmlp+dpt":
            cin = e + d
            nout = (int(cfg.desc_dim or 0) + int(cfg.two_confs)) * p * p
            out["head_mlp"] += 2 * s * cin * 4 * cin + 2 * s * 4 * cin * nout
        if cfg.head_type == "linear":
            out["head_linear"] += 2 * s * d * (3 + int(cfg.has_conf)) * p * p
    out = {k: int(v) for k, v in out.items()}
    out["total"] = sum(out.values())
    return out


# ----------------------------------------------------------------------------- inputs
def _smooth_field(
    gen: torch.Generator, channels: int, h: int, w: int, scales: tuple[int, ...]
) -> torch.Tensor:
    """(1, C, h, w) sum of bicubically upsampled Gaussian noise at several coarse resolutions."""
    field = torch.zeros(1, channels, h, w)
    for i, div in enumerate(scales):
        coarse = torch.randn(1, channels, max(2, h // div), max(2, w // div), generator=gen)
        field += F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False) / (1 + i)
    return field


def _warp(x: torch.Tensor, angle: float, scale: float, shift: tuple[float, float]) -> torch.Tensor:
    """Similarity warp of (B, C, H, W) with bilinear sampling (border padding)."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    theta = torch.tensor([[c, -s, shift[0]], [s, c, shift[1]]], dtype=x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def smooth_image_pairs(
    batch: int, shape: tuple[int, int], seed: int = 0, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic "real-ish" pairs: smooth random textures and a similarity-warped second view.

    Returns (img0, img1), each (batch, 3, H, W) float32 in [-1, 1] (the network's normalisation).
    """
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    img0, img1 = [], []
    for _ in range(batch):
        tex = _smooth_field(gen, 3, h, w, (24, 8, 3)) + 0.02 * torch.randn(1, 3, h, w, generator=gen)
        tex = torch.tanh(tex * 0.8)
        img0.append(tex)
        img1.append(_warp(tex, 0.05, 0.9, (0.1, -0.05)))
    return torch.cat(img0).to(device), torch.cat(img1).to(device)


def smooth_descriptor_pair(
    shape: tuple[int, int], dim: int = 24, seed: int = 0, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth unit-norm descriptor maps (H, W, dim) float32; map 1 = a warp of map 0 plus noise."""
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    f0 = _smooth_field(gen, dim, h, w, (32, 8))
    f1 = _warp(f0, 0.04, 0.95, (0.06, 0.03)) + 0.05 * torch.randn(1, dim, h, w, generator=gen)
    out = []
    for f in (f0, f1):
        f = f[0].permute(1, 2, 0).contiguous()
        out.append((f / f.norm(dim=-1, keepdim=True)).to(device))
    return out[0], out[1]
