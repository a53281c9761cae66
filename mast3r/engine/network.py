"""The engine's network: loads a MASt3R/DUSt3R checkpoint lazily and runs batched (optionally
fast, CUDA-graphed) pair forwards, keyed for a forward store.

A forward store is anything with ``get(key, need_own) -> PairForward | None`` and
``put(key, forward)`` (the benchmark harness keeps one in memory and on disk); the default keeps
nothing. Keys: :attr:`PairNetwork.model_key` (weights SHA-256, size, precision, fast options) and
:meth:`PairNetwork.pair_key` (that and the SHA-256 of both image files, in order).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from mast3r.engine.forward import PRECISIONS, PairForward, amp_dtype, batch_focals, padded_batch, pair_forward
from mast3r.engine.source import file_sha256, load_network
from mast3r.lru import LRU

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from mast3r.fast import FastOptions
    from mast3r.preprocess import PreparedImage

__all__ = ["ForwardStore", "NoStore", "PairNetwork"]
log = logging.getLogger(__name__)


class ForwardStore(Protocol):
    """Where :meth:`PairNetwork.forward_pairs` looks forwards up and keeps them."""

    def get(self, key: str, need_own: bool = False) -> PairForward | None: ...

    def put(self, key: str, fwd: PairForward) -> None: ...


class NoStore:
    """A forward store that keeps nothing (every forward runs)."""

    def get(self, key: str, need_own: bool = False) -> PairForward | None:
        return None

    def put(self, key: str, fwd: PairForward) -> None:
        return None


class PairNetwork:
    """Loads a MASt3R/DUSt3R checkpoint lazily and runs cached, batched pair forwards.

    Args:
        checkpoint: checkpoint path (official ``.pth``, state dict with config, or safetensors).
        size: network long side (official preprocessing, ``mast3r.preprocess.load_image``).
        precision: one of :data:`PRECISIONS`.
        device: torch device of the model.
        cache: forward store (:class:`ForwardStore`; default :class:`NoStore`).
        model: an already built model (tests, sharing between matcher variants); ``checkpoint``
            is then only informative.
        fast: run :func:`mast3r.fast.make_fast` on the model (weights in ``fast.dtype``, no
            autocast; a passed ``model`` is copied, a loaded one converted in place). Part of the
            forward-cache key (the numerics differ from autocast).
        cuda_graph: on a CUDA device, capture one CUDA graph per (input shapes, batch, focal pass)
            and replay it (:class:`mast3r.fast.CudaGraphForward`); at most :attr:`MAX_GRAPHS` are
            kept. Ignored on other devices.
        square_ok: keep square images square (official preprocessing; no 4:3 crop). Part of the
            model key when set.

    With ``cuda_graph`` or a compiled ``fast`` model a batch of n pairs is padded (copies of its last
    pair, outputs dropped) to the next power of two, at most ``batch_size``, so each image shape needs
    a few captures / compiles at most (1, 2, 4, ..., ``batch_size`` pairs).
    """

    MAX_GRAPHS = 8
    PREPARED_ITEMS = 32
    """Preprocessed images kept (LRU by path, size and mtime): a view used by several pairs of a
    sample is read and resized once."""

    def __init__(self, checkpoint: str, size: int, precision: str, device: Any, *,
                 cache: ForwardStore | None = None, model: Any = None, fast: FastOptions | None = None,
                 cuda_graph: bool = False, square_ok: bool = False) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.checkpoint, self.size, self.precision, self.device = checkpoint, size, precision, device
        self.cache: Any = cache if cache is not None else NoStore()
        self.fast, self.cuda_graph, self.square_ok = fast, cuda_graph, square_ok
        self._model = model
        self._owned = model is None  # loaded here, so it may be converted in place
        self._converted = fast is None
        self._graphs = LRU(self.MAX_GRAPHS)
        self._prepared = LRU(self.PREPARED_ITEMS)
        self.forward_calls = 0  # network passes run by this object (cache misses)

    @property
    def graphed(self) -> bool:
        """Whether forwards replay CUDA graphs (``cuda_graph`` on a CUDA device)."""
        return self.cuda_graph and str(self.device).startswith("cuda")

    @property
    def fixed_batch(self) -> bool:
        """Whether batches are padded to ``batch_size`` (one graph / compiled shape per image size)."""
        return self.graphed or (self.fast is not None and self.fast.compile != "none")

    # -- identity -----------------------------------------------------------------------------------
    def weights_checksum(self) -> str | None:
        if self._model is not None and not self.checkpoint:
            return getattr(self._model, "checksum", None)
        return file_sha256(self.checkpoint)

    @functools.cached_property
    def model_key(self) -> str:
        ident = self.weights_checksum() or f"object:{id(self._model)}"
        text = f"weights={ident}\nsize={self.size}\nprecision={self.precision}"
        if self.fast is not None:  # absent for the autocast path: its existing cache entries stay valid
            text += f"\nfast={json.dumps(self.fast.describe(), sort_keys=True)}"
        if self.square_ok:  # absent by default: existing cache entries stay valid
            text += "\nsquare_ok=1"
        return hashlib.sha256(text.encode()).hexdigest()

    def pair_key(self, prep0: PreparedImage, prep1: PreparedImage) -> str:
        ids = [file_sha256(p.path) if p.path else hashlib.sha256(p.uint8.tobytes()).hexdigest()
               for p in (prep0, prep1)]
        digest = hashlib.sha256(f"{self.model_key}\n{ids[0]}\n{ids[1]}".encode()).hexdigest()
        return f"{self.model_key[:16]}/{digest}"

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_network(self.checkpoint, self.device)
        if not self._converted:
            from mast3r.fast import make_fast

            # a model built elsewhere (shared, tests) is copied; our own is converted in place
            self._model = make_fast(self._model, self.fast, inplace=self._owned)
            self._converted = True
        return self._model

    @property
    def config(self) -> Any:
        """The model's ``ModelConfig`` (loads the model)."""
        return self.model.config

    # -- images -------------------------------------------------------------------------------------
    def prepare(self, path: str | os.PathLike, expect_size: tuple[int, int] | None = None,
                name: str | None = None) -> PreparedImage:
        """Official preprocessing of the image at ``path`` at ``size`` (LRU-cached, see
        :attr:`PREPARED_ITEMS`); with ``expect_size`` the stored (width, height) must match it
        (ValueError naming the file and ``name``, e.g. the view)."""
        from mast3r.preprocess import load_image

        try:
            st = os.stat(path)
        except OSError:
            return load_image(path, self.size, self.square_ok)  # raises ImageLoadError naming the file
        key = (str(path), st.st_size, st.st_mtime_ns)
        prep = self._prepared.get_or(key, lambda: load_image(path, self.size, self.square_ok))
        if expect_size is not None and tuple(prep.orig_size) != tuple(expect_size):
            raise ValueError(f"{path}: image is {prep.orig_size[0]}x{prep.orig_size[1]} pixels "
                             f"but {name or 'the caller'} says {expect_size[0]}x{expect_size[1]}")
        return prep

    # -- forward ------------------------------------------------------------------------------------
    def _amp(self) -> Any:
        if self.fast is not None:  # weights already in the low-precision dtype: no autocast
            return None
        return amp_dtype(self.precision)

    def _graphed(self, img0: torch.Tensor, img1: torch.Tensor, need_own: bool) -> Any:
        """Replay (capturing first) the graph of ``pair_forward`` for these shapes; static outputs."""
        from mast3r.fast import CudaGraphForward

        key = (tuple(img0.shape), tuple(img1.shape), need_own)

        def capture() -> Any:
            fn = functools.partial(pair_forward, self.model, need_own=need_own, amp=self._amp())
            t0 = time.perf_counter()
            graph = CudaGraphForward(fn, img0, img1)
            log.info("captured a CUDA graph for %s in %.1f s", key, time.perf_counter() - t0)
            return graph

        return self._graphs.get_or(key, capture)(img0, img1)

    def run(self, img0: torch.Tensor, img1: torch.Tensor, need_own: bool, n_pairs: int | None = None
            ) -> list[PairForward]:
        """Uncached forward of a batch of same-size pairs (B, 3, H, W) -> one PairForward per pair
        (the first ``n_pairs`` only: the rest is batch padding; ``seconds`` is per real pair)."""
        import torch

        model, amp = self.model, self._amp()
        dev = torch.device(self.device)
        n_pairs = img0.shape[0] if n_pairs is None else n_pairs
        img0, img1 = img0.to(dev), img1.to(dev)
        t0 = time.perf_counter()
        graphed = self.graphed
        with torch.inference_mode():
            if graphed:
                out, back = self._graphed(img0, img1, need_own)
            else:
                out, back = pair_forward(model, img0, img1, need_own=need_own, amp=amp)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        self.forward_calls += 1
        seconds = (time.perf_counter() - t0) / n_pairs

        def take(t: torch.Tensor, b: int) -> torch.Tensor:  # graph outputs are overwritten by the next replay
            t = t[b].float()
            return t.clone() if graphed else t

        own_pts = None if back is None else back.view0.pts3d[:n_pairs]
        focals = batch_focals(out.view0.pts3d[:n_pairs], own_pts)
        results = []
        for b in range(n_pairs):
            v0 = {k: take(t, b) for k, t in out.view0.items()}
            v1 = {k: take(t, b) for k, t in out.view1.items()}
            own = None
            if back is not None:
                own = {k: take(t, b) for k, t in back.view0.items() if k in ("pts3d", "conf")}
            results.append(PairForward(v0, v1, own, seconds, False, focals[0][b], focals[1][b]))
        return results

    def forward_pairs(self, preps: Sequence[tuple[PreparedImage, PreparedImage]], *, need_own: bool,
                      batch_size: int = 1) -> list[PairForward]:
        """Cached forwards of prepared pairs; misses of equal shapes are batched by ``batch_size``."""
        from mast3r.preprocess import stack_images

        stored = not isinstance(self.cache, NoStore)  # without a store, pairs are neither hashed nor kept
        keys = [self.pair_key(a, b) if stored else "" for a, b in preps]
        results: list[PairForward | None] = [self.cache.get(k, need_own) if stored else None for k in keys]
        groups: dict[tuple, list[int]] = {}
        for i, hit in enumerate(results):
            if hit is None:
                shape = (preps[i][0].true_shape, preps[i][1].true_shape)
                groups.setdefault(shape, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), max(1, batch_size)):
                chunk = idx[start:start + max(1, batch_size)]
                padded = chunk + chunk[-1:] * (padded_batch(len(chunk), batch_size) - len(chunk)) \
                    if self.fixed_batch else chunk
                img0 = stack_images([preps[i][0] for i in padded])
                img1 = stack_images([preps[i][1] for i in padded])
                for i, fwd in zip(chunk, self.run(img0, img1, need_own, n_pairs=len(chunk))):
                    if stored:
                        self.cache.put(keys[i], fwd)
                    results[i] = fwd
        return [r for r in results if r is not None]
