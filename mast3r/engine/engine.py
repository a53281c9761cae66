"""The MASt3R inference engine: model source -> load + checksum -> preprocess -> batched / fast /
graphed forward -> matching backend (with its GPU engine pools) -> coarse-to-fine.

Every caller (the ``mast3r`` and ``dust3r`` matchers, ``mast3r-bench match``, ``infer`` and
``time``) goes through :class:`Engine` or the functions it is made of; none re-implements a step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mast3r.coarse_to_fine import CoarseToFineConfig
from mast3r.engine.c2f import Refinement, refine
from mast3r.engine.forward import PairForward
from mast3r.engine.network import ForwardStore, PairNetwork
from mast3r.engine.source import resolve_checkpoint, resolve_size
from mast3r.matching import FRMConfig, MatchingBackend, PixelMatches

__all__ = ["Engine", "NoDescriptorHead"]


class NoDescriptorHead(ValueError):
    """The model has no descriptor head (a DUSt3R checkpoint): it cannot match descriptors."""


class Engine:
    """One network (lazily loaded) and one matching backend on one device.

    Args:
        checkpoint: checkpoint path; empty: the embedded default model (SHA-256 checked,
            :func:`~mast3r.engine.source.resolve_checkpoint`). Not read when ``model`` or ``network``
            is given.
        size: network long side; 0: the embedded model's own, 512 for other checkpoints.
        precision: ``fp32`` / ``bf16`` / ``fp16`` (:data:`~mast3r.engine.forward.PRECISIONS`).
        device: torch device.
        store: forward store (:class:`~mast3r.engine.network.ForwardStore`; default keeps nothing).
        model: an already built model (tests, sharing); fast / cuda_graph / square_ok: as
            :class:`~mast3r.engine.network.PairNetwork`.
        network: share this network (then the options above but ``device`` are not used).
    """

    def __init__(self, checkpoint: str | os.PathLike = "", size: int = 0, precision: str = "fp32",
                 device: Any = "cpu", *, store: ForwardStore | None = None, model: Any = None,
                 fast: Any = None, cuda_graph: bool = False, square_ok: bool = False,
                 network: PairNetwork | None = None) -> None:
        if network is None:
            ckpt = str(checkpoint) if checkpoint else ""
            path = ckpt if model is not None else resolve_checkpoint(ckpt)
            network = PairNetwork(path, resolve_size(size, ckpt), precision, device, cache=store, model=model,
                                  fast=fast, cuda_graph=cuda_graph, square_ok=square_ok)
        self.network = network
        self.device = device
        self.backend = MatchingBackend(device)

    # -- network --------------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The network (loaded on first use)."""
        return self.network.model

    def prepare(self, path: str | os.PathLike, expect_size: tuple[int, int] | None = None,
                name: str | None = None) -> Any:
        """Official preprocessing of one image (:meth:`PairNetwork.prepare`)."""
        return self.network.prepare(path, expect_size, name)

    def forward_pairs(self, preps: Sequence[tuple[Any, Any]], *, need_own: bool, batch_size: int = 1
                      ) -> list[PairForward]:
        """Stored-or-computed forwards of prepared pairs (:meth:`PairNetwork.forward_pairs`)."""
        return self.network.forward_pairs(preps, need_own=need_own, batch_size=batch_size)

    # -- matching -------------------------------------------------------------------------------------
    def match(self, fwd: PairForward, frm: FRMConfig) -> PixelMatches:
        """Descriptor matching of one forward (network pixels); NoDescriptorHead without ``desc``."""
        v0, v1 = fwd.view0, fwd.view1
        if v0.get("desc") is None or v1.get("desc") is None:
            raise NoDescriptorHead("the model has no descriptor head (a DUSt3R checkpoint?)")
        return self.backend.match(v0["desc"], v1["desc"], v0["desc_conf"], v1["desc_conf"], frm)

    def refine(self, path0: str | os.PathLike, path1: str | os.PathLike, pts0: np.ndarray, pts1: np.ndarray,
               frm: FRMConfig, config: CoarseToFineConfig, *, max_size: int = 0, fine_size: int = 0,
               isotropic: bool = False) -> Refinement:
        """Coarse-to-fine from ORIGINAL-pixel coarse matches (:func:`mast3r.engine.c2f.refine`)."""
        return refine(self.network, self.backend, path0, path1, pts0, pts1, frm, config, max_size=max_size,
                      fine_size=fine_size, isotropic=isotropic)
