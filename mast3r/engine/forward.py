"""The engine's forward: one pair batch through the network (autocast or fast path), the outputs
kept per pair (:class:`PairForward`), Weiszfeld focals, the fast-path options.

Every forward of the project -- matchers, ``match``, ``infer``, ``time`` -- is :func:`pair_forward`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from mast3r.fast import FastOptions
    from mast3r.preprocess import PreparedImage

__all__ = ["PRECISIONS", "PairForward", "amp_dtype", "fast_options", "pair_forward", "batch_focals",
           "padded_batch", "sample_map_rows", "focal_px", "nearest_net_pixels"]

PRECISIONS = ("fp32", "bf16", "fp16")
"""``fp32``: plain float32. ``bf16`` / ``fp16``: encoder and decoders under autocast with that dtype
(the heads always run in float32, as in the official code), or with the fast path weights in it."""


def amp_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (None for ``fp32``)."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def fast_options(precision: str, *, compile: str = "none", gelu: str = "erf", head_fp32: bool = False,
                 mlp_fp32: bool = False, compile_mode: str | None = None) -> FastOptions:
    """The :class:`mast3r.fast.FastOptions` of the fast path in ``precision`` (``bf16``/``fp16``):
    encoder/decoder weights, DPT and local-feature MLP in that dtype (``head_fp32``: DPT and MLP kept
    float32; ``mlp_fp32``: only the MLP), ``torch.compile`` of ``compile``, ``gelu`` variant."""
    from mast3r.fast import FastOptions

    dtype = amp_dtype(precision) if precision != "fp32" else None
    if dtype is None:
        raise ValueError(f"the fast path needs precision bf16 or fp16, got {precision!r}")
    head = None if head_fp32 else dtype
    return FastOptions(dtype=dtype, head_dtype=None if mlp_fp32 else head, dpt_dtype=head, compile=compile,
                       compile_mode=compile_mode, gelu=gelu)


@dataclass
class PairForward:
    """Network outputs of one ordered pair (torch float32 tensors, any device).

    Attributes:
        view0: ``pts3d`` (H0, W0, 3) in camera-0's frame, ``conf`` (H0, W0), and for MASt3R ``desc``
            (H0, W0, D) unit norm and ``desc_conf`` (H0, W0).
        view1: the same for view 1; ``pts3d`` (H1, W1, 3) is ALSO in camera-0's frame.
        own1: ``pts3d`` / ``conf`` of view 1 in camera-1's own frame (from the swapped forward
            (1, 0), encoder output reused), or None when not computed.
        seconds: wall time of the forward(s) when they were computed (kept through the cache).
        cached: True when this came from the cache.
        focal0, focal1: Weiszfeld focal (network pixels, unclipped, NaN if undetermined) of view 0's
            pointmap and of ``own1``, computed for the whole batch at once; None when not computed
            (e.g. entries cached before they existed).
    """

    view0: dict[str, torch.Tensor]
    view1: dict[str, torch.Tensor]
    own1: dict[str, torch.Tensor] | None = None
    seconds: float = 0.0
    cached: bool = False
    focal0: float | None = None
    focal1: float | None = None

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"seconds": np.asarray(self.seconds, np.float64)}
        for name in ("focal0", "focal1"):
            if getattr(self, name) is not None:
                out[name] = np.asarray(getattr(self, name), np.float64)
        for prefix, maps in (("v0", self.view0), ("v1", self.view1), ("own1", self.own1 or {})):
            for name, t in maps.items():
                out[f"{prefix}.{name}"] = t.detach().float().cpu().numpy()
        return out

    @classmethod
    def from_arrays(cls, arrays: Any) -> PairForward:
        import torch

        groups: dict[str, dict[str, torch.Tensor]] = {"v0": {}, "v1": {}, "own1": {}}
        for key in arrays.files if hasattr(arrays, "files") else arrays:
            if "." in key:
                prefix, name = key.split(".", 1)
                groups[prefix][name] = torch.from_numpy(np.array(arrays[key]))
        names = set(arrays.files if hasattr(arrays, "files") else arrays)
        focals = [float(arrays[k]) if k in names else None for k in ("focal0", "focal1")]
        own1 = groups["own1"] or None
        return cls(groups["v0"], groups["v1"], own1, float(arrays["seconds"]), True, *focals)


def padded_batch(n: int, batch_size: int) -> int:
    """Batch size that ``n`` pairs are padded to with a fixed-batch network: the next power of two,
    at most ``batch_size`` (so at most ~log2(batch_size) graphs / compiled shapes per image size, and
    a lone pair is not run 8 times)."""
    return max(n, min(batch_size, 1 << (n - 1).bit_length()))


def pair_forward(model: Any, img0: torch.Tensor, img1: torch.Tensor, *, need_own: bool,
                  amp: torch.dtype | None) -> tuple[Any, Any]:
    """``(out, back)``: the pair's :class:`~mast3r.model.PairOutput` and, with ``need_own``, the
    swapped pair's (view 1 first; the encoder output is reused), else None. No host sync."""
    import torch

    ctx = torch.autocast(img0.device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    with ctx:
        enc0, enc1 = model.encode_pair(img0, img1)
    out = model.forward_encoded(enc0, enc1, autocast_dtype=amp)
    back = model.forward_encoded(enc1, enc0, autocast_dtype=amp) if need_own else None
    return out, back


def batch_focals(pts0: torch.Tensor, pts1: torch.Tensor | None) -> tuple[list[float], list[float | None]]:
    """Weiszfeld focals (network pixels) of a batch of view-0 pointmaps (B, H, W, 3) and of the
    swapped pass's view-0 maps (or None): a few dozen launches and one host read for the batch."""
    import torch

    from mast3r.geometry import estimate_focals_torch

    if pts1 is None:
        return estimate_focals_torch(pts0).tolist(), [None] * len(pts0)
    if pts1.shape == pts0.shape:
        vals = estimate_focals_torch(torch.cat((pts0, pts1))).tolist()
        return vals[: len(pts0)], vals[len(pts0) :]
    return estimate_focals_torch(pts0).tolist(), estimate_focals_torch(pts1).tolist()


def sample_map_rows(values: torch.Tensor, xy: np.ndarray) -> np.ndarray:
    """Rows of an (H, W, C) or (H, W) map at integer ``(x, y)`` pixels: (N, C) / (N,) float32 numpy."""
    import torch

    xy = np.asarray(xy, np.int64).reshape(-1, 2)
    idx = torch.from_numpy(xy).to(values.device)
    return values[idx[:, 1], idx[:, 0]].detach().float().cpu().numpy()


def focal_px(pts3d: torch.Tensor | None, prep: PreparedImage, focal: float | None = None) -> float | None:
    """Weiszfeld focal (official ``estimate_focal_knowing_depth``, principal point at the network
    image centre) of a pointmap in its own camera frame, converted from network pixels to ORIGINAL
    pixels by the mean of the two axis scales. ``focal``: the network-pixel value when already
    computed (:attr:`PairForward.focal0` / ``focal1``). None when it cannot be estimated or is not
    positive (e.g. a random-init network)."""
    if pts3d is None:
        return None
    from mast3r.geometry import estimate_focal

    # torch path: stays on the GPU when the forward ran there
    f = estimate_focal(pts3d.detach()) if focal is None else focal
    if not np.isfinite(f) or f <= 0:
        return None
    sx, sy = prep.scale_xy
    return float(f * (sx + sy) / 2)


def nearest_net_pixels(prep: PreparedImage, pts: np.ndarray) -> np.ndarray:
    """Nearest network pixel (int64 (N, 2) ``(x, y)``, clipped into the network image) of ORIGINAL
    pixels ``pts`` (N, 2)."""
    h, w = prep.true_shape
    xy = np.rint(prep.orig_to_net(np.asarray(pts, np.float64).reshape(-1, 2))).astype(np.int64).reshape(-1, 2)
    return np.stack([np.clip(xy[:, 0], 0, w - 1), np.clip(xy[:, 1], 0, h - 1)], axis=1)
