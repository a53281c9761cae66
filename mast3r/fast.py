"""Opt-in fast GPU inference for :class:`mast3r.model.Mast3r` (the CPU fp32 path is untouched).

``make_fast(model)`` returns a converted copy whose ``forward`` has the usual signature and
returns float32 :class:`~mast3r.model.PairOutput` maps:

* encoder and decoders hold their weights in ``options.dtype`` (bf16 by default: no per-call weight
  casts as under autocast; LayerNorm statistics, softmax and GEMM accumulation stay fp32 inside the
  kernels; attention through SDPA's flash kernels);
* the DPT convolutions run in ``options.dpt_dtype`` (bf16) on channels-last maps built from the
  tokens without a copy; the local-feature MLP (or the linear head) in ``options.head_dtype``;
  their raw outputs are cast to float32 *before* the postprocess (``exp``/``expm1``, descriptor
  normalisation), which always runs in float32;
* optional ``torch.compile`` of the repeated transformer blocks (``compile="blocks"``: one graph for
  all encoder blocks and one for all decoder blocks, which fuses LayerNorm, RoPE, GELU and the
  residual adds) or of the whole forward (``compile="model"``);
* :class:`CudaGraphForward` replays a captured forward for fixed input shapes (removes the launch
  overhead that dominates at batch 1).

Accuracy against the float32 path is measured by ``mast3r-bench time forward --check`` (FRM match
agreement and pointmap relative error), see ``results/perf/``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mast3r.model import Mast3r

__all__ = [
    "FastOptions",
    "FusedGeluMlp",
    "CastIO",
    "make_fast",
    "compile_blocks",
    "CudaGraphForward",
    "COMPILE_CHOICES",
    "GELU_CHOICES",
]

COMPILE_CHOICES = ("none", "blocks", "blocks+heads", "model")
GELU_CHOICES = ("erf", "tanh-fused")


@torch.library.custom_op("mast3r::linear_gelu_tanh", mutates_args=())
def linear_gelu_tanh(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``gelu_tanh(x @ weight.T + bias)`` for 2-D ``x`` (cuBLASLt bias+GELU epilogue on CUDA).

    An opaque op, so that ``torch.compile`` keeps the fused GEMM instead of splitting it again."""
    return torch._addmm_activation(bias, x, weight.t(), use_gelu=True)


@linear_gelu_tanh.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x.new_empty((x.shape[0], weight.shape[0]))


class FusedGeluMlp(nn.Module):
    """An :class:`~mast3r.nn.blocks.Mlp` whose fc1 + GELU run as one fused GEMM (tanh GELU)."""

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        fc1, fc2 = mlp.fc1, mlp.fc2
        assert isinstance(fc1, nn.Linear) and isinstance(fc2, nn.Linear)
        self.fc1: nn.Linear = fc1
        self.fc2: nn.Linear = fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        h = linear_gelu_tanh(x.reshape(-1, x.shape[-1]), self.fc1.weight, self.fc1.bias)
        return self.fc2(h.view(*lead, h.shape[-1]))


@dataclass(frozen=True)
class FastOptions:
    """How :func:`make_fast` converts a model.

    Attributes:
        dtype: encoder/decoder weights and activations (torch.bfloat16 or torch.float16).
        head_dtype: local-feature MLP / linear head compute dtype; None keeps float32.
        dpt_dtype: DPT convolution dtype; None keeps float32.
        channels_last: DPT convolutions on channels-last maps (recommended on GPU).
        compile: ``"none"``, ``"blocks"`` (regional compile of the transformer blocks),
            ``"blocks+heads"`` (also the DPT and the local-feature MLP) or ``"model"``.
        compile_mode: ``torch.compile`` mode (None = default; e.g. ``"max-autotune-no-cudagraphs"``).
        gelu: ``"erf"`` (the model's exact GELU) or ``"tanh-fused"``: the transformer MLPs' first
            linear layer and GELU in one cuBLASLt GEMM (bias + GELU epilogue; on CUDA torch uses the
            tanh approximation there, on CPU the exact erf),
            which saves a full read and write of the hidden activations; an approximation
            (|gelu_tanh - gelu_erf| < 5e-4), opt-in, its accuracy measured like the rest.
    """

    dtype: torch.dtype = torch.bfloat16
    head_dtype: torch.dtype | None = torch.bfloat16
    dpt_dtype: torch.dtype | None = torch.bfloat16
    channels_last: bool = True
    compile: str = "none"
    compile_mode: str | None = None
    gelu: str = "erf"

    def __post_init__(self) -> None:
        if self.compile not in COMPILE_CHOICES:
            raise ValueError(f"FastOptions.compile must be one of {COMPILE_CHOICES}, got {self.compile!r}")
        if self.gelu not in GELU_CHOICES:
            raise ValueError(f"FastOptions.gelu must be one of {GELU_CHOICES}, got {self.gelu!r}")
        for name in ("dtype", "head_dtype", "dpt_dtype"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, torch.dtype) and value.is_floating_point):
                raise ValueError(f"FastOptions.{name} must be a floating torch.dtype or None, got {value!r}")

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary."""

        def name(d: torch.dtype | None) -> str:
            return "float32" if d is None else str(d).replace("torch.", "")

        return {
            "dtype": name(self.dtype),
            "head_dtype": name(self.head_dtype),
            "dpt_dtype": name(self.dpt_dtype),
            "channels_last": self.channels_last,
            "compile": self.compile,
            "compile_mode": self.compile_mode,
            "gelu": self.gelu,
        }


def _cast(x: Any, dtype: torch.dtype) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    if isinstance(x, (list, tuple)):
        return type(x)(_cast(t, dtype) for t in x)
    return x


class CastIO(nn.Module):
    """Run ``module`` in ``dtype``: tensor inputs (also inside lists) are cast on entry, the output
    is returned as float32 (memory format preserved)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.module = module.to(dtype)
        self.dtype = dtype

    def forward(self, x: Any, *args: Any) -> torch.Tensor:
        return self.module(_cast(x, self.dtype), *args).float()


def make_fast(model: Mast3r, options: FastOptions | None = None, *, inplace: bool = False) -> Mast3r:
    """A copy of ``model`` (or ``model`` itself with ``inplace``) converted per ``options``.

    The result is meant for CUDA inference; its outputs are float32 and follow the reference
    semantics up to the rounding of the chosen dtypes.
    """
    opts = options or FastOptions()
    fast = model if inplace else copy.deepcopy(model)
    fast.set_backbone_dtype(opts.dtype)
    for head in (fast.downstream_head1, fast.downstream_head2):
        dpt = getattr(head, "dpt", None)
        if dpt is not None:
            if opts.channels_last:
                dpt.channels_last_tokens = True
                dpt.to(memory_format=torch.channels_last)
            if opts.dpt_dtype is not None:
                head.dpt = CastIO(dpt, opts.dpt_dtype)
        for attr in ("head_local_features", "proj"):  # float32 MLP: still cast its (low-precision) input
            sub = getattr(head, attr, None)
            if sub is not None:
                setattr(head, attr, CastIO(sub, opts.head_dtype or torch.float32))
    if opts.gelu == "tanh-fused":
        for blk in (*fast.enc_blocks, *fast.dec_blocks, *fast.dec_blocks2):
            blk.mlp = FusedGeluMlp(blk.mlp)
    fast.eval()
    if opts.compile in ("blocks", "blocks+heads"):
        compile_blocks(fast, opts.compile_mode, heads=opts.compile == "blocks+heads")
    elif opts.compile == "model":
        fast.compile(mode=opts.compile_mode, dynamic=False)
    return fast


def compile_blocks(model: Mast3r, mode: str | None = None, *, heads: bool = False) -> Mast3r:
    """``torch.compile`` each encoder/decoder block in place (blocks of one kind share one graph);
    with ``heads`` also each head's DPT and local-feature MLP."""
    blocks: list[nn.Module] = [*model.enc_blocks, *model.dec_blocks, *model.dec_blocks2]
    if heads:
        for head in (model.downstream_head1, model.downstream_head2):
            blocks += [
                m for m in (getattr(head, "dpt", None), getattr(head, "head_local_features", None)) if m
            ]
    for blk in blocks:
        blk.compile(mode=mode, dynamic=False)
    return model


class CudaGraphForward:
    """Capture ``model(img0, img1)`` once for fixed shapes and replay it.

    ``__call__(img0, img1)`` copies the inputs into static buffers, replays the graph and returns
    the static output (a :class:`PairOutput` for a model; any tensors ``model`` returns), which the
    next call overwrites (clone what you keep). ``model`` must not synchronise with the host (ours
    does not).
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor, torch.Tensor], Any],
        img0: torch.Tensor,
        img1: torch.Tensor,
        warmup: int = 2,
    ) -> None:
        if not img0.is_cuda:
            raise ValueError("CudaGraphForward needs CUDA inputs")
        self.model = model
        self.img0, self.img1 = img0.clone(), img1.clone()
        with torch.cuda.device(img0.device):  # capture on the inputs' GPU, whatever is current
            stream = torch.cuda.Stream(device=img0.device)
            stream.wait_stream(torch.cuda.current_stream(img0.device))
            with torch.cuda.stream(stream), torch.inference_mode():
                for _ in range(warmup):
                    model(self.img0, self.img1)
            torch.cuda.current_stream(img0.device).wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(self.graph):
                self.out: Any = model(self.img0, self.img1)

    def __call__(self, img0: torch.Tensor, img1: torch.Tensor) -> Any:
        if img0.shape != self.img0.shape or img1.shape != self.img1.shape:
            raise ValueError(
                f"CudaGraphForward was captured for {tuple(self.img0.shape)} / {tuple(self.img1.shape)}, "
                f"got {tuple(img0.shape)} / {tuple(img1.shape)}"
            )
        self.img0.copy_(img0)
        self.img1.copy_(img1)
        self.graph.replay()
        return self.out
