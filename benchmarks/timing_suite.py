"""Forward benchmarks behind ``mast3r-bench time`` (variants, accuracy, kernel profiles); the matching
benchmarks are in :mod:`benchmarks.timing_matching`.

Every benchmark returns a JSON-friendly dict (times in ms, see :mod:`benchmarks.timing`). The
model is a random-init network of the given config built directly on the device (no checkpoint);
inputs are deterministic smooth images / smooth unit-norm descriptor maps. The forward timed is the
inference engine's (:func:`mast3r.engine.forward.pair_forward`, fast path from
:func:`mast3r.engine.forward.fast_options`): what ``run`` and ``match`` execute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmarks.timing import forward_flops, precision_flags, time_fn
from mast3r.config import ModelConfig
from mast3r.engine.forward import amp_dtype, fast_options, pair_forward
from mast3r.fast import CudaGraphForward, FastOptions, make_fast
from mast3r.matching import fast_reciprocal_nn
from mast3r.model import Mast3r, PairOutput

log = logging.getLogger(__name__)

__all__ = ["ForwardVariant", "build_model", "engine_forward", "ForwardBench", "accuracy", "profile_call"]

_TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CHECK_PAIRS = 8
"""Pairs of a batch compared with the float32 reference (FRM agreement is pooled over them)."""


def summarize_accuracy(per_pair: list[dict[str, float]]) -> dict[str, float]:
    """Worst pointmap/confidence errors and FRM agreement pooled over pairs (sum of identical
    matches / sum of reference matches)."""
    out: dict[str, float] = {"pairs": len(per_pair)}
    for key in ("pts3d_rel", "conf_rel", "desc_conf_rel", "pts3d_px_rel_p99"):
        vals = [a[key] for a in per_pair if key in a]
        if vals:
            out[key] = max(vals)
    ref = sum(a.get("frm_matches_ref", 0) for a in per_pair)
    if ref:
        same = sum(a["frm_same"] * a["frm_matches_ref"] for a in per_pair)
        out.update(frm_matches_ref=ref, frm_same=same / ref)
    return out


@dataclass(frozen=True)
class ForwardVariant:
    """One way to run the forward.

    dtype: fp32 / tf32 (float32 model) or bf16 / fp16 (autocast, or the fast path with ``fast``);
    head_fp32: fast path with DPT and local-feature MLP kept float32 (TF32 allowed); mlp_fp32: only
    the local-feature MLP (descriptors) float32;
    compile: ``none`` | ``blocks`` | ``model`` (fast path only); cuda_graph: replay a captured graph.
    """

    dtype: str
    fast: bool = False
    head_fp32: bool = False
    compile: str = "none"
    cuda_graph: bool = False
    mlp_fp32: bool = False
    compile_mode: str | None = None
    gelu: str = "erf"

    def __post_init__(self) -> None:
        if self.fast and self.dtype not in _TORCH_DTYPES:
            raise ValueError(f"the fast path needs --dtype bf16 or fp16, got {self.dtype!r}")
        if (self.compile != "none" or self.gelu != "erf") and not self.fast:
            raise ValueError("--compile and --gelu apply to the fast path (--fast)")
        if self.compile_mode is not None and self.compile == "none":
            raise ValueError("--compile-mode needs --compile")

    @property
    def name(self) -> str:
        if not self.fast:
            base = {"fp32": "eager fp32", "tf32": "eager tf32"}.get(self.dtype, f"autocast {self.dtype}")
        else:
            base = (
                f"fast {self.dtype}"
                + (" heads-fp32" if self.head_fp32 else "")
                + (" mlp-fp32" if self.mlp_fp32 else "")
            )
            if self.gelu != "erf":
                base += f" gelu={self.gelu}"
            if self.compile != "none":
                base += f" compile={self.compile}" + (f" ({self.compile_mode})" if self.compile_mode else "")
        return base + (" +graph" if self.cuda_graph else "")

    def options(self) -> FastOptions:
        """The engine's fast-path options of this variant."""
        return fast_options(self.dtype, compile=self.compile, gelu=self.gelu, head_fp32=self.head_fp32,
                            mlp_fp32=self.mlp_fp32, compile_mode=self.compile_mode)

    def amp(self) -> torch.dtype | None:
        """Autocast dtype of the engine's forward (None: fp32 / tf32, or the fast path)."""
        return None if self.fast or self.dtype not in _TORCH_DTYPES else amp_dtype(self.dtype)


def engine_forward(model: Mast3r, img0: torch.Tensor, img1: torch.Tensor, amp: torch.dtype | None = None
                   ) -> PairOutput:
    """The engine's pair forward (no swapped pass): what ``run`` and ``match`` execute."""
    return pair_forward(model, img0, img1, need_own=False, amp=amp)[0]


def build_model(config: ModelConfig, device: torch.device | str, seed: int = 0) -> Mast3r:
    """Random-init float32 model built directly on ``device`` (eval mode)."""
    torch.manual_seed(seed)
    return Mast3r.from_config(config, device=device)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def _match_set(desc0: torch.Tensor, desc1: torch.Tensor, subsample: int) -> set[tuple[int, ...]]:
    xy0, xy1 = fast_reciprocal_nn(desc0, desc1, subsample)
    return {tuple(r) for r in np.concatenate([xy0, xy1], axis=1).tolist()}


def accuracy(ref: PairOutput, out: PairOutput, pair: int = 0, subsample: int = 8) -> dict[str, float]:
    """Agreement of ``out`` with the float32 reference ``ref`` on batch element ``pair``.

    ``pts3d_rel``: max over views of ||pts - ref||_F / ||ref||_F; ``pts3d_px_rel_median`` /
    ``_p99``: per-pixel relative error quantiles; ``conf_rel``; ``desc_cos_median``; ``frm_same``:
    fraction of the reference FRM matches (subsample 8) found identical; ``frm_jaccard``.
    """
    res: dict[str, float] = {}
    px: list[torch.Tensor] = []
    for name in ("pts3d", "conf", "desc_conf"):
        vals = []
        for v_ref, v_out in ((ref.view0, out.view0), (ref.view1, out.view1)):
            a, b = getattr(v_out, name), getattr(v_ref, name)
            if a is None or b is None:
                continue
            vals.append(_rel(a[pair], b[pair]))
            if name == "pts3d":
                px.append(
                    ((a[pair] - b[pair]).norm(dim=-1) / b[pair].norm(dim=-1).clamp_min(1e-12)).flatten()
                )
        if vals:
            res[f"{name}_rel"] = max(vals)
    if px:
        q = torch.quantile(torch.cat(px).float().cpu()[::7], torch.tensor([0.5, 0.99]))
        res["pts3d_px_rel_median"], res["pts3d_px_rel_p99"] = float(q[0]), float(q[1])
    if ref.view0.desc is not None and out.view0.desc is not None:
        cos = torch.cat(
            [
                (o.desc[pair] * r.desc[pair]).sum(-1).flatten()
                for o, r in ((out.view0, ref.view0), (out.view1, ref.view1))
            ]
        )
        res["desc_cos_median"] = float(cos.float().median())
        m_ref = _match_set(ref.view0.desc[pair], ref.view1.desc[pair], subsample)
        m_out = _match_set(out.view0.desc[pair], out.view1.desc[pair], subsample)
        inter = len(m_ref & m_out)
        res.update(
            frm_matches_ref=len(m_ref),
            frm_matches=len(m_out),
            frm_same=inter / max(1, len(m_ref)),
            frm_jaccard=inter / max(1, len(m_ref | m_out)),
        )
    return res


class ForwardBench:
    """Times forward variants of one random-init model on fixed inputs.

    Args:
        config: model architecture; images: (img0, img1) (B_max, 3, H, W) on the device.
    """

    def __init__(
        self,
        config: ModelConfig,
        images: tuple[torch.Tensor, torch.Tensor],
        *,
        seed: int = 0,
        warmup: int = 5,
        repeats: int = 30,
        reference: bool = True,
    ) -> None:
        self.device = images[0].device
        self.config = config
        self.images = images
        self.model = build_model(config, self.device, seed)
        self.warmup, self.repeats = warmup, repeats
        self._fast: dict[tuple[Any, ...], tuple[Mast3r, float]] = {}
        self.ref: PairOutput | None = None
        if reference:
            with precision_flags("fp32"), torch.inference_mode():  # pairs 0..CHECK_PAIRS-1 are checked
                self.ref = engine_forward(self.model, images[0][:CHECK_PAIRS], images[1][:CHECK_PAIRS])
        shape = (int(images[0].shape[2]), int(images[0].shape[3]))
        self.flops = forward_flops(config, shape, (int(images[1].shape[2]), int(images[1].shape[3])))

    def _model_for(self, v: ForwardVariant) -> tuple[Mast3r, float]:
        if not v.fast:
            return self.model, 0.0
        key = (v.dtype, v.head_fp32, v.mlp_fp32, v.compile)
        if key not in self._fast:
            t0 = time.perf_counter()
            self._fast[key] = (make_fast(self.model, v.options()), time.perf_counter() - t0)
        return self._fast[key]

    def profile(self, v: ForwardVariant, batch: int) -> dict[str, Any]:
        """torch.profiler kernel breakdown of ``v`` (without CUDA graph) at ``batch``."""
        model, _ = self._model_for(v)
        amp = v.amp()
        img0, img1 = (x[:batch] for x in self.images)
        with precision_flags(v.dtype), torch.inference_mode():
            prof = profile_call(lambda: engine_forward(model, img0, img1, amp), self.device)
        return {"variant": v.name, "batch": batch, **prof}

    def run(self, v: ForwardVariant, batch: int, *, check: bool = True) -> dict[str, Any]:
        """Time ``v`` at ``batch`` pairs; with ``check``, compare pairs 0..1 with the fp32 reference."""
        img0, img1 = (x[:batch] for x in self.images)
        if batch > self.images[0].shape[0]:
            raise ValueError(f"batch {batch} > {self.images[0].shape[0]} prepared pairs")
        model, convert_s = self._model_for(v)
        amp = v.amp()
        entry: dict[str, Any] = {"variant": v.name, "batch": batch, **vars(v)}
        cuda = self.device.type == "cuda"
        with precision_flags(v.dtype) as flags, torch.inference_mode():
            entry["flags"] = flags

            def call() -> PairOutput:
                return engine_forward(model, img0, img1, amp)

            t0 = time.perf_counter()
            out = call()  # first call: compiles where asked
            if cuda:
                torch.cuda.synchronize(self.device)
            entry["first_call_s"] = time.perf_counter() - t0 + convert_s
            fn: Callable[[], PairOutput] = call
            if v.cuda_graph:
                graph = CudaGraphForward(lambda a, b: engine_forward(model, a, b, amp), img0, img1)
                fn = lambda: graph(img0, img1)  # noqa: E731
            if cuda:
                torch.cuda.synchronize(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
                before = torch.cuda.memory_allocated(self.device)
                out = fn()
                torch.cuda.synchronize(self.device)
                entry["peak_activation_gb"] = (torch.cuda.max_memory_allocated(self.device) - before) / 2**30
                entry["model_gb"] = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
            stats = time_fn(fn, self.device, warmup=self.warmup, repeats=self.repeats)
            if check and self.ref is not None:
                entry["accuracy"] = [accuracy(self.ref, out, p) for p in range(min(batch, CHECK_PAIRS))]
                entry["accuracy_all"] = summarize_accuracy(entry["accuracy"])
        entry["stats"] = stats.to_dict()
        entry["ms_per_pair"] = stats.median_ms / batch
        entry["pairs_per_s"] = 1e3 * batch / stats.median_ms
        entry["tflops"] = self.flops["total"] * batch / (stats.median_ms * 1e-3) / 1e12
        return entry


_CATEGORIES = (
    ("attention", ("flash", "fmha", "attention")),
    ("conv", ("conv", "cudnn", "fprop", "dgrad", "implicit", "winograd")),
    ("gemm", ("gemm", "nvjet", "sm90_xmma", "cutlass", "matmul")),
    ("inductor (fused)", ("triton_",)),
    ("resample", ("upsample", "interp")),
)


def _category(name: str) -> str:
    low = name.lower()
    for cat, keys in _CATEGORIES:
        if any(k in low for k in keys):
            return cat
    return "elementwise/other"


def profile_call(
    fn: Callable[[], Any], device: torch.device, steps: int = 3, top: int = 25
) -> dict[str, Any]:
    """Kernel time per call from torch.profiler (CUDA activity), top kernels and totals by category."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize(device)
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if t > 0:
            rows.append(
                {
                    "name": e.key,
                    "ms": t / steps / 1e3,
                    "calls": e.count // steps,
                    "category": _category(e.key),
                }
            )
    rows.sort(key=lambda r: -r["ms"])
    cats: dict[str, float] = {}
    for r in rows:
        cats[r["category"]] = cats.get(r["category"], 0.0) + r["ms"]
    cats["total"] = sum(r["ms"] for r in rows)
    return {"kernels": rows[:top], "categories": dict(sorted(cats.items(), key=lambda kv: -kv[1]))}
