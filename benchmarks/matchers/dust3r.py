"""``dust3r``: correspondences from DUSt3R pointmaps by reciprocal nearest neighbours in 3D.

What DUSt3R's README does to get 2D-2D matches from a pair: keep the pixels whose pointmap
confidence exceeds a threshold (the global aligner's ``min_conf_thr`` default, 3), then take the
*reciprocal* nearest neighbours between the two point sets in 3D (``find_reciprocal_matches``:
Euclidean, KD-tree). Both sets are in camera-0's frame (view 0's ``pts3d`` and view 1's
``pts3d_in_other_view``), so no alignment is needed for a pair. DUSt3R keeps all reciprocal pairs
(it only subsamples for drawing); ``max_matches`` optionally keeps an evenly spaced subset.

Works with DUSt3R checkpoints (linear or DPT heads) and with MASt3R ones (their pointmaps; an
ablation of MASt3R without descriptors). The network forward is the inference engine's
(:class:`mast3r.engine.engine.Engine`), shared and cached exactly as for ``mast3r``
(:mod:`benchmarks.matchers._forward_cache`). Outputs as ``mast3r``: ORIGINAL pixels,
``pts3d0``/``pts3d1`` (camera-0 frame; DUSt3R's unit is up to scale), ``meta.focal0_px/focal1_px``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from benchmarks.config import execution
from benchmarks.matchers._forward_cache import ForwardCache, default_forward_cache, prepare_view
from benchmarks.matchers.mast3r import missing_checkpoint_reason
from benchmarks.types import Correspondences, View
from mast3r.engine.engine import Engine
from mast3r.engine.forward import PairForward, focal_px, sample_map_rows
from mast3r.engine.network import PairNetwork

__all__ = ["DUST3R_CHECKPOINT_ENV", "Dust3rConfig", "Dust3rMatcher", "reciprocal_nn_3d"]

DUST3R_CHECKPOINT_ENV = "MAST3R_BENCH_DUST3R_CHECKPOINT"


def _env_checkpoint() -> str:
    return os.environ.get(DUST3R_CHECKPOINT_ENV, "")


@dataclass(frozen=True)
class Dust3rConfig:
    """Options of the ``dust3r`` matcher: all decide the result (run identity) except ``batch_size``,
    execution-only (recorded in ``manifest.json``; rule: :class:`benchmarks.matchers.mast3r.Mast3rConfig`).

    Attributes:
        checkpoint: checkpoint path (default ``$MAST3R_BENCH_DUST3R_CHECKPOINT``).
        size: network long side (512 for the 512 checkpoints, 224 for the 224 linear one).
        precision: ``fp32``, ``bf16`` or ``fp16``.
        conf_thr: keep pixels whose pointmap confidence is strictly above this (DUSt3R: 3).
        border: drop matches within this many network pixels of either image border (0: none).
        conf_mode: match score from the two pointmap confidences: ``min`` or ``geomean``.
        max_matches: keep at most this many matches, evenly spaced in view-0 order (0: all).
        estimate_focals: also run the swapped forward for ``meta.focal1_px``.
        batch_size: pairs of equal shapes per forward in ``match_many`` (batching only).
    """

    checkpoint: str = field(default_factory=_env_checkpoint)
    size: int = 512
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    conf_thr: float = 3.0
    border: int = 0
    conf_mode: Literal["min", "geomean"] = "min"
    max_matches: int = 0
    estimate_focals: bool = True
    batch_size: int = field(default=1, metadata=execution())

    def __post_init__(self) -> None:
        if self.size < 16 or self.border < 0 or self.max_matches < 0 or self.batch_size < 1:
            raise ValueError("dust3r: size >= 16, border >= 0, max_matches >= 0 and batch_size >= 1 required")
        if self.conf_mode not in ("min", "geomean"):
            raise ValueError(f"conf_mode must be 'min' or 'geomean', got {self.conf_mode!r}")


def reciprocal_nn_3d(pts0: np.ndarray, pts1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal Euclidean nearest neighbours between two point sets.

    Args: pts0 (N0, 3), pts1 (N1, 3) (same frame and unit).
    Returns: ``(i0, i1)`` int64 indices of the mutual pairs (``nn01[i0] == i1`` and ``nn10[i1] == i0``),
        sorted by ``i0``.
    """
    from scipy.spatial import cKDTree

    pts0 = np.asarray(pts0, np.float64).reshape(-1, 3)
    pts1 = np.asarray(pts1, np.float64).reshape(-1, 3)
    if not len(pts0) or not len(pts1):
        z = np.zeros(0, np.int64)
        return z, z.copy()
    nn01 = cKDTree(pts1).query(pts0)[1].astype(np.int64)
    nn10 = cKDTree(pts0).query(pts1)[1].astype(np.int64)
    i0 = np.arange(len(pts0), dtype=np.int64)
    mutual = nn10[nn01] == i0
    return i0[mutual], nn01[mutual]


class Dust3rMatcher:
    """DUSt3R pointmap matching (module docstring). Same constructor as ``Mast3rMatcher``."""

    name: ClassVar[str] = "dust3r"
    Config: ClassVar[type] = Dust3rConfig

    def __init__(self, config: Dust3rConfig | None = None, device: str = "cpu", *,
                 forward_cache: ForwardCache | None = None, model: Any = None,
                 network: PairNetwork | None = None) -> None:
        self.config = config if config is not None else Dust3rConfig()
        self.device = device
        c = self.config
        if network is None and model is None:
            if reason := missing_checkpoint_reason(c.checkpoint, self.name, DUST3R_CHECKPOINT_ENV):
                raise FileNotFoundError(reason)
        store = forward_cache if forward_cache is not None else default_forward_cache()
        # no embedded DUSt3R: the checkpoint is set (checked above) unless a model or network is given
        self.engine = Engine(c.checkpoint, c.size, c.precision, device, store=store, model=model,
                             network=network)
        self.network = self.engine.network

    @classmethod
    def available(cls, config: Dust3rConfig | None = None) -> tuple[bool, str]:
        checkpoint = (config or cls.Config()).checkpoint
        reason = missing_checkpoint_reason(checkpoint, cls.name, DUST3R_CHECKPOINT_ENV)
        return (reason is None), (reason or "")

    def weights_checksum(self) -> str | None:
        return self.network.weights_checksum()

    def setup(self) -> None:
        """Load the checkpoint now (the runner calls this once before the first sample, so that a
        broken checkpoint stops the run instead of failing every sample)."""
        _ = self.network.model

    def with_config(self, config: Dust3rConfig) -> Dust3rMatcher:
        """Same as ``Mast3rMatcher.with_config``: shares the model when the network settings agree."""
        c = self.config
        if (config.checkpoint, config.size, config.precision) == (c.checkpoint, c.size, c.precision):
            return type(self)(config, self.device, network=self.network)
        return type(self)(config, self.device, forward_cache=self.network.cache)

    def match(self, view0: View, view1: View) -> Correspondences:
        return self.match_many([(view0, view1)])[0]

    def match_many(self, pairs: Sequence[tuple[View, View]]) -> list[Correspondences]:
        c = self.config
        preps = [(prepare_view(self.engine, v0), prepare_view(self.engine, v1)) for v0, v1 in pairs]
        fwds = self.engine.forward_pairs(preps, need_own=c.estimate_focals, batch_size=c.batch_size)
        return [self._finish(p0, p1, f) for (p0, p1), f in zip(preps, fwds)]

    def _valid_pixels(self, maps: dict[str, Any]) -> np.ndarray:
        """(M, 2) int64 ``(x, y)`` of the pixels kept for matching, in linear (row-major) order."""
        h, w = maps["pts3d"].shape[:2]
        ys, xs = np.mgrid[0:h, 0:w]
        keep = np.ones((h, w), bool)
        if self.config.conf_thr is not None and maps.get("conf") is not None:
            keep &= maps["conf"].detach().float().cpu().numpy() > self.config.conf_thr
        b = self.config.border
        if b:
            keep &= (xs >= b) & (xs < w - b) & (ys >= b) & (ys < h - b)
        return np.stack([xs[keep], ys[keep]], axis=1).astype(np.int64)

    def _finish(self, prep0: Any, prep1: Any, fwd: PairForward) -> Correspondences:
        c = self.config
        v0, v1 = fwd.view0, fwd.view1
        t0 = time.perf_counter()
        xy0, xy1 = self._valid_pixels(v0), self._valid_pixels(v1)
        p0, p1 = sample_map_rows(v0["pts3d"], xy0), sample_map_rows(v1["pts3d"], xy1)
        i0, i1 = reciprocal_nn_3d(p0, p1)
        if c.max_matches and len(i0) > c.max_matches:
            pick = np.linspace(0, len(i0) - 1, c.max_matches).round().astype(np.int64)
            i0, i1 = i0[pick], i1[pick]
        m0, m1 = xy0[i0], xy1[i1]
        if v0.get("conf") is not None and v1.get("conf") is not None:
            c0, c1 = sample_map_rows(v0["conf"], m0).astype(np.float64), sample_map_rows(v1["conf"], m1)
            scores = np.minimum(c0, c1) if c.conf_mode == "min" else np.sqrt(c0 * c1)
        else:
            scores = np.ones(len(m0))
        meta: dict[str, Any] = {
            "forward_cached": fwd.cached, "net_shape0": list(prep0.true_shape),
            "net_shape1": list(prep1.true_shape), "num_valid0": len(xy0), "num_valid1": len(xy1),
            "focal0_px": focal_px(v0["pts3d"], prep0, fwd.focal0),
            "focal1_px": focal_px(fwd.own1["pts3d"], prep1, fwd.focal1) if fwd.own1 else None,
        }
        corrs = Correspondences(prep0.net_to_orig(m0), prep1.net_to_orig(m1), scores, p0[i0], p1[i1],
                                timings={"forward": fwd.seconds, "match": time.perf_counter() - t0},
                                meta=meta)
        if not len(corrs):
            corrs.meta["reason"] = "no reciprocal 3D neighbours above the confidence threshold"
        return corrs
