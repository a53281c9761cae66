"""``mast3r``: MASt3R matching (FRM, dense mutual NN, coarse-to-fine) behind the ``Matcher`` interface.

Pipeline per pair: official preprocessing (``mast3r.preprocess``, long side ``size``) -> network
forward, cached per (checkpoint, size, precision, image pair) and shared by every variant that
differs only in matching (:mod:`benchmarks.matchers._forward_cache`) -> descriptor matching (FRM or
dense, border filter, ``desc_conf`` confidence) -> optional coarse-to-fine refinement -> matches in
ORIGINAL pixels via ``PreparedImage.net_to_orig`` -> ``min_conf`` filter. Every step but the last
is the inference engine's (:class:`mast3r.engine.engine.Engine`); this module adapts views and
correspondences.

Outputs: ``scores`` = match confidence (``frm.conf_mode`` of the two ``desc_conf``); ``pts3d0`` =
view 0's pointmap at the matched view-0 pixels and ``pts3d1`` = view 1's pointmap (also camera-0's
frame) at the matched view-1 pixels, metres; ``timings`` ``forward`` (seconds of the network pass,
also when it came from the cache), ``match`` and, with coarse-to-fine, ``c2f``; ``meta``
``focal0_px`` / ``focal1_px`` (Weiszfeld focal of each view's own-frame pointmap, ORIGINAL pixels;
view 1's comes from the swapped forward (1, 0) that reuses the encoder output, run only when
``estimate_focals``), ``forward_cached``, ``net_shape0/1`` (H, W), counters.

Coarse-to-fine: window crops of the original images (optionally downscaled to ``c2f_max_size``)
go through the network at their own size (no resampling) and are matched with the same ``frm``
options as the coarse stage (visloc's ``pixel_tol`` seeding needs map points, which a pair matcher
does not have); ``pts3d0/1`` of refined matches come from the coarse pointmaps at the nearest
network pixel. Only the coarse forward is cached.

The checkpoint defaults to ``$MAST3R_BENCH_CHECKPOINT`` (:func:`default_checkpoint_path`), else the
embedded default model trained here (:data:`mast3r.assets.DEFAULT_MODEL`, SHA-256 pinned and checked by
the engine's model source, :mod:`mast3r.engine.source`); ``size`` 0 means the embedded model's own
resolution for it and the official 512 for any other checkpoint.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from benchmarks.config import execution
from benchmarks.matchers._forward_cache import ForwardCache, default_forward_cache, prepare_view
from benchmarks.types import Correspondences, View
from mast3r.coarse_to_fine import CoarseToFineConfig
from mast3r.engine.engine import Engine
from mast3r.engine.forward import PairForward, fast_options, focal_px, nearest_net_pixels, sample_map_rows
from mast3r.engine.network import PairNetwork
from mast3r.engine.source import embedded_default_missing
from mast3r.fileio import atomic_write
from mast3r.matching.config import FRMConfig

__all__ = ["CHECKPOINT_ENV", "Mast3rConfig", "Mast3rMatcher", "RANDOM_PRESETS", "default_checkpoint_path",
           "make_random_checkpoint", "missing_checkpoint_reason"]

CHECKPOINT_ENV = "MAST3R_BENCH_CHECKPOINT"


def default_checkpoint_path() -> str:
    """The configured MASt3R checkpoint: ``$MAST3R_BENCH_CHECKPOINT``, or empty (the engine then
    loads the embedded default model)."""
    return os.environ.get(CHECKPOINT_ENV, "")


def _env_checkpoint() -> str:
    return default_checkpoint_path()


@dataclass(frozen=True)
class Mast3rConfig:
    """Options of the ``mast3r`` matcher.

    What decides the result is hashed into the run identity (and the correspondence-cache key); the
    fields marked :func:`benchmarks.config.execution` only say how it is computed and go to
    ``manifest.json``. Rule: an option is execution-only when it regroups or reschedules the same
    floating-point operations (batching, blocking, graph replay, fused kernels, another NN backend
    that returns the same float32 argmax), so that it changes results at most by float rounding, as
    running on another device does (the device is not part of the identity either). An option that
    changes the function or the precision computed stays in the identity.

    Attributes:
        checkpoint: checkpoint path (default ``$MAST3R_BENCH_CHECKPOINT``; empty: the embedded default
            model, :func:`mast3r.engine.source.resolve_checkpoint`). Identity (with the weights' SHA-256).
        size: network long side in pixels; 0: the embedded model's training size (320) for it, the
            official 512 for other checkpoints (:func:`mast3r.engine.source.resolve_size`). Identity.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast of encoder/decoders). Identity: another
            precision computes other numbers.
        frm: matching options (``frm.subsample``, ``frm.dense``, ``frm.border``, ``frm.conf_mode``,
            ...; :class:`mast3r.matching.FRMConfig`). Identity except ``frm.block_size`` (blocks of
            the same matmul) and ``frm.backend`` (torch, faiss, triton: every backend returns the
            exact float32 nearest neighbour with ties to the lowest index, tests/mast3r/test_nn.py,
            test_gpu.py), which are execution-only.
        min_conf: drop matches whose confidence is below this (0 keeps all; visloc's 1.001 is an
            estimator option of the adapters). Identity.
        c2f: coarse-to-fine refinement on window crops of the original images (paper §3.4). Identity.
        c2f_max_size: downscale the originals to this long side before coarse-to-fine (0: none).
            Identity.
        c2f_config: window grid / selection options (:class:`mast3r.coarse_to_fine.CoarseToFineConfig`).
            Identity except ``c2f_config.max_batch`` (window pairs per network call: batching only).
        estimate_focals: compute ``meta.focal1_px`` from the swapped forward (about +40 % network
            time; ``focal0_px`` is always computed). Identity: the pose solvers use that focal.
        batch_size: pairs of equal shapes per network forward in ``match_many`` (the runner hands
            a sample's pairs to ``match_many`` in chunks of this size). Execution-only.
        fast: GPU inference path (:func:`mast3r.fast.make_fast`): encoder/decoder weights, DPT and
            local-feature MLP in ``precision`` (bf16 or fp16, required) instead of autocast,
            channels-last DPT; float32 postprocess. Identity: weights, heads and norms stored and
            computed in half precision are another precision than autocast's.
        compile: with ``fast``: ``torch.compile`` of ``"blocks"`` (transformer blocks) or
            ``"blocks+heads"`` (also DPT and MLP); one compile per image shape (seconds each).
            Execution-only: the same operations in fused kernels.
        cuda_graph: with ``fast``, on CUDA: replay one captured CUDA graph per image shape
            (:class:`mast3r.fast.CudaGraphForward`); batches are padded to a power of two.
            Execution-only: the eager kernels replayed (tests/mast3r/test_gpu.py).
        gelu: with ``fast``: ``"erf"`` (exact) or ``"tanh-fused"`` (fc1 + tanh GELU in one
            cuBLASLt GEMM on CUDA; an approximation, see :class:`mast3r.fast.FastOptions`).
            Identity: the tanh approximation is another function.
    """

    checkpoint: str = field(default_factory=_env_checkpoint)
    size: int = 0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    frm: FRMConfig = field(default_factory=FRMConfig, metadata=execution("block_size", "backend"))
    min_conf: float = 0.0
    c2f: bool = False
    c2f_max_size: int = 0
    c2f_config: CoarseToFineConfig = field(default_factory=CoarseToFineConfig,
                                           metadata=execution("max_batch"))
    estimate_focals: bool = True
    batch_size: int = field(default=1, metadata=execution())
    fast: bool = False
    compile: Literal["none", "blocks", "blocks+heads"] = field(default="none", metadata=execution())
    cuda_graph: bool = field(default=False, metadata=execution())
    gelu: Literal["erf", "tanh-fused"] = "erf"

    def __post_init__(self) -> None:
        if self.size != 0 and self.size < 16:
            raise ValueError(f"size must be 0 (the model's own) or >= 16 pixels, got {self.size}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if self.batch_size < 1 or self.c2f_max_size < 0:
            raise ValueError("batch_size must be >= 1 and c2f_max_size >= 0")
        if self.compile not in ("none", "blocks", "blocks+heads"):
            raise ValueError(f"compile must be none, blocks or blocks+heads, got {self.compile!r}")
        if self.gelu not in ("erf", "tanh-fused"):
            raise ValueError(f"gelu must be erf or tanh-fused, got {self.gelu!r}")
        if self.fast and self.precision == "fp32":
            raise ValueError("fast=true needs precision bf16 or fp16 (it stores the weights in that dtype)")
        if not self.fast and (self.compile != "none" or self.cuda_graph or self.gelu != "erf"):
            raise ValueError("compile, cuda_graph and gelu apply to the fast path: set fast=true as well")

    def fast_options(self) -> Any:
        """The :class:`mast3r.fast.FastOptions` of ``fast`` (None when off)."""
        if not self.fast:
            return None
        return fast_options(self.precision, compile=self.compile, gelu=self.gelu)

    def network_settings(self) -> tuple:
        """What decides the network outputs (matchers with equal settings share one network)."""
        return (self.checkpoint, self.size, self.precision, self.fast, self.compile, self.cuda_graph,
                self.gelu)


def missing_checkpoint_reason(checkpoint: str, matcher: str = "mast3r",
                              env: str = CHECKPOINT_ENV) -> str | None:
    """Why ``checkpoint`` cannot be used (None when it is a file, or empty and the embedded model is
    installed)."""
    hint = (f"set the {matcher} checkpoint (run: matcher.checkpoint=PATH; match: --checkpoint PATH) or "
            f"${env}; `mast3r-bench weights random-checkpoint OUT` writes a random test one")
    if not checkpoint:
        if matcher == "mast3r":
            missing = embedded_default_missing()
            return None if missing is None else f"no checkpoint configured and {missing}"
        return f"no checkpoint configured: {hint}"
    if not Path(checkpoint).is_file():
        return f"checkpoint {checkpoint} not found: {hint}"
    return None


class Mast3rMatcher:
    """MASt3R matches between two views (see the module docstring).

    Args:
        config: :class:`Mast3rConfig`.
        device: torch device.
        forward_cache: shared forward cache (default: memory only, or ``$MAST3R_BENCH_FORWARD_CACHE``).
        model: an already built ``Mast3r`` (tests, sharing); the checkpoint is then not read.
        network: share this engine network (``with_config``).

    ``engine`` is the :class:`~mast3r.engine.engine.Engine` (network + matching backend), ``network``
    its network.
    """

    name: ClassVar[str] = "mast3r"
    Config: ClassVar[type] = Mast3rConfig

    def __init__(self, config: Mast3rConfig | None = None, device: str = "cpu", *,
                 forward_cache: ForwardCache | None = None, model: Any = None,
                 network: PairNetwork | None = None) -> None:
        self.config = config if config is not None else Mast3rConfig()
        self.device = device
        c = self.config
        if network is None and model is None:
            if reason := missing_checkpoint_reason(c.checkpoint, self.name):
                raise FileNotFoundError(reason)
        store = forward_cache if forward_cache is not None else default_forward_cache()
        self.engine = Engine(c.checkpoint, c.size, c.precision, device, store=store, model=model,
                             fast=c.fast_options(), cuda_graph=c.cuda_graph, network=network)
        self.network = self.engine.network

    @classmethod
    def available(cls, config: Mast3rConfig | None = None) -> tuple[bool, str]:
        reason = missing_checkpoint_reason((config or cls.Config()).checkpoint, cls.name)
        return (reason is None), (reason or "")

    def weights_checksum(self) -> str | None:
        return self.network.weights_checksum()

    def setup(self) -> None:
        """Load the checkpoint now (the runner calls this once before the first sample, so that a
        broken checkpoint stops the run instead of failing every sample); a model without the
        descriptor head (a DUSt3R checkpoint) is refused here."""
        config = getattr(self.network.model, "config", None)  # a test double may have none
        if "desc" not in str(getattr(config, "output_mode", "desc")):
            raise ValueError(f"{self.config.checkpoint or 'the model'} has no descriptor head (output_mode "
                             f"{config.output_mode!r}: a DUSt3R checkpoint?): use the dust3r matcher")

    def with_config(self, config: Mast3rConfig) -> Mast3rMatcher:
        """A matcher for ``config`` sharing this one's model and forward cache when the network
        settings (checkpoint, size, precision, fast path) are the same."""
        if config.network_settings() == self.config.network_settings():
            return type(self)(config, self.device, network=self.network)
        return type(self)(config, self.device, forward_cache=self.network.cache)

    # -- matching -----------------------------------------------------------------------------------
    def match(self, view0: View, view1: View) -> Correspondences:
        """Match ``view0`` to ``view1`` (original pixels, module docstring)."""
        return self.match_many([(view0, view1)])[0]

    def match_many(self, pairs: Sequence[tuple[View, View]]) -> list[Correspondences]:
        """Match several pairs; cache misses of equal image shapes share network forwards (batches of
        ``batch_size``)."""
        c = self.config
        preps = [(prepare_view(self.engine, v0), prepare_view(self.engine, v1)) for v0, v1 in pairs]
        fwds = self.engine.forward_pairs(preps, need_own=c.estimate_focals, batch_size=c.batch_size)
        return [self._finish(v0, v1, p0, p1, f) for (v0, v1), (p0, p1), f in zip(pairs, preps, fwds)]

    def _finish(self, view0: View, view1: View, prep0: Any, prep1: Any, fwd: PairForward) -> Correspondences:
        c = self.config
        v0, v1 = fwd.view0, fwd.view1
        if v0.get("desc") is None or v1.get("desc") is None:
            raise ValueError(f"{c.checkpoint or 'the model'} has no descriptor head (a DUSt3R checkpoint?): "
                             "use the dust3r matcher")
        t0 = time.perf_counter()
        m = self.engine.match(fwd, c.frm)
        timings = {"forward": fwd.seconds, "match": time.perf_counter() - t0}
        meta: dict[str, Any] = {
            "forward_cached": fwd.cached, "net_shape0": list(prep0.true_shape),
            "net_shape1": list(prep1.true_shape), "num_coarse_matches": len(m),
            "focal0_px": focal_px(v0["pts3d"], prep0, fwd.focal0),
            "focal1_px": focal_px(fwd.own1["pts3d"], prep1, fwd.focal1) if fwd.own1 else None,
        }
        if m.stats is not None:
            meta["frm_iterations"] = m.stats.num_iterations
        pts0, pts1, scores = prep0.net_to_orig(m.xy0), prep1.net_to_orig(m.xy1), m.conf
        xy0, xy1 = m.xy0, m.xy1
        if c.c2f:
            t0 = time.perf_counter()
            ref = self.engine.refine(view0.image_path, view1.image_path, pts0, pts1, c.frm, c.c2f_config,
                                     max_size=c.c2f_max_size)
            pts0, pts1, scores = ref.pts0, ref.pts1, ref.conf
            timings["c2f"] = time.perf_counter() - t0
            meta["c2f_window_pairs"] = len(ref.result.windows0)
            xy0, xy1 = nearest_net_pixels(prep0, pts0), nearest_net_pixels(prep1, pts1)
        keep = scores >= c.min_conf if c.min_conf > 0 else np.ones(len(scores), bool)
        corrs = Correspondences(
            pts0[keep], pts1[keep], scores[keep],
            sample_map_rows(v0["pts3d"], xy0[keep]), sample_map_rows(v1["pts3d"], xy1[keep]),
            timings=timings, meta=meta)
        if not len(corrs):
            corrs.meta["reason"] = "no match passed the matcher's filters"
        return corrs


# -- random-init checkpoints (tests, synthetic default) ----------------------------------------------
RANDOM_PRESETS: dict[str, dict[str, Any]] = {
    # the smallest valid MASt3R: DPT heads need dec_depth > 9; their widths are fixed (96..768, 256),
    # so the file is about 170 MB in float32 whatever the encoder/decoder widths.
    "tiny": dict(model_class="AsymmetricMASt3R", head_type="catmlp+dpt", output_mode="pts3d+desc24",
                 two_confs=True, desc_conf_mode=("exp", 0.0, float("inf")), enc_embed_dim=32, enc_depth=1,
                 enc_num_heads=1, dec_embed_dim=32, dec_depth=10, dec_num_heads=1),
    # the released MASt3R ViT-L/B architecture (2.75 GB in float32): timing and scaling runs.
    "vitl": {},
    # DUSt3R with the linear head: well under 1 MB.
    "tiny-dust3r": dict(model_class="AsymmetricCroCo3DStereo", head_type="linear", output_mode="pts3d",
                        two_confs=False, desc_conf_mode=None, enc_embed_dim=32, enc_depth=1,
                        enc_num_heads=1, dec_embed_dim=32, dec_depth=2, dec_num_heads=1),
}


def make_random_checkpoint(path: str | os.PathLike, seed: int = 0, preset: str = "tiny") -> Path:
    """Write a seeded random-init model in the official container format
    (``{'model': state_dict, 'args': Namespace(model='AsymmetricMASt3R(...)'), 'epoch': 0}``),
    loadable by ``mast3r.weights.load_model``. Deterministic for a given seed and preset; the global
    torch RNG is left untouched. Returns the path."""
    import torch

    from mast3r.config import ModelConfig
    from mast3r.model import Mast3r

    if preset not in RANDOM_PRESETS:
        raise ValueError(f"unknown random checkpoint preset {preset!r} (known: {', '.join(RANDOM_PRESETS)})")
    kwargs = dict(RANDOM_PRESETS[preset])
    config = replace(ModelConfig(), **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Mast3r.from_config(config, device="cpu")
    state = model.state_dict()  # the DPT alias keys share storage: stored once
    obj = {"model": state, "args": argparse.Namespace(model=config.to_args_string()), "epoch": 0}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(obj, f))
    return path
