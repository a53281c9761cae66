"""The network forward shared by the ``mast3r`` and ``dust3r`` matchers, cached per (model, pair).

Matcher variants that differ only in matching options (FRM subsample, dense NN, border, confidence
threshold, ...) need the same network outputs. :class:`PairNetwork` runs the forward and keys it by
the *model* (checkpoint SHA-256, network size, precision) and the *pair* (SHA-256 of both image
files, in order), never by matching options, so every such variant reuses one forward per pair.

Cache levels (:class:`ForwardCache`):

* memory: the last ``memory_items`` pairs (per cache object; share the object to share entries);
* disk (opt-in, ``root`` set): ``<root>/<model_key[:16]>/<pair_key>.npz``, uncompressed float32.
  Exact (no lossy storage), so a cached forward gives bit-identical matches. Size per pair at the
  default 512 x 384: ``2 x 512 x 384 x (3 + 1 + 24 + 1) x 4 B`` = about 46 MB (+ 3 MB for view 1's
  own-frame pointmap when focals are estimated). ``mast3r-bench sweep`` enables it under
  ``<results>/cache/forward``; ``mast3r-bench run`` does when ``$MAST3R_BENCH_FORWARD_CACHE`` names
  a folder. Delete the folder to reclaim space; entries are written atomically.

Only coarse (full-image) forwards are cached; coarse-to-fine window crops depend on the coarse
matches, hence on matching options, and are recomputed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from benchmarks.types import View
    from mast3r.fast import FastOptions
    from mast3r.preprocess import PreparedImage

__all__ = ["FORWARD_CACHE_ENV", "PRECISIONS", "PairForward", "ForwardCache", "PairNetwork", "file_sha256",
           "default_forward_cache", "sample_map_rows"]
log = logging.getLogger(__name__)

FORWARD_CACHE_ENV = "MAST3R_BENCH_FORWARD_CACHE"
PRECISIONS = ("fp32", "bf16", "fp16")
"""``fp32``: plain float32. ``bf16`` / ``fp16``: encoder and decoders under autocast with that dtype
(the heads always run in float32, as in the official code)."""

_MAPS = ("pts3d", "conf", "desc", "desc_conf")


@functools.lru_cache(maxsize=4096)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, memoised on (path, size, mtime) so checkpoints hash once per process."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def default_forward_cache() -> ForwardCache:
    """Memory-only cache, or a disk cache in ``$MAST3R_BENCH_FORWARD_CACHE`` when that is set
    (``off``/``0``/empty: memory only)."""
    root = os.environ.get(FORWARD_CACHE_ENV, "").strip()
    if root.lower() in ("", "0", "off", "none", "false"):
        return ForwardCache(None)
    return ForwardCache(Path(root))


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


class ForwardCache:
    """Memory LRU (+ optional disk folder) of :class:`PairForward` by key ``"<model16>/<pair hash>"``
    (module docstring)."""

    def __init__(self, root: Path | None = None, memory_items: int = 2) -> None:
        self.root = Path(root) if root is not None else None
        self.memory_items = memory_items
        self._memory: OrderedDict[str, PairForward] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / f"{key}.npz"

    def get(self, key: str, need_own: bool = False) -> PairForward | None:
        """The entry, or None (also when ``need_own`` and the entry lacks view 1's own pointmap)."""
        hit = self._memory.get(key)
        if hit is None and self.root is not None and self._path(key).is_file():
            try:
                with np.load(self._path(key), allow_pickle=False) as z:
                    hit = PairForward.from_arrays(z)
            except Exception as e:  # noqa: BLE001 - an unreadable entry is a miss
                log.warning("ignoring unreadable forward cache entry %s (%s)", self._path(key), e)
                hit = None
        if hit is None or (need_own and hit.own1 is None):
            self.misses += 1
            return None
        self._remember(key, hit)
        self.hits += 1
        return PairForward(hit.view0, hit.view1, hit.own1, hit.seconds, True, hit.focal0, hit.focal1)

    def put(self, key: str, fwd: PairForward) -> None:
        self._remember(key, fwd)
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **fwd.to_arrays())  # type: ignore[arg-type]
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _remember(self, key: str, fwd: PairForward) -> None:
        if self.memory_items <= 0:
            return
        self._memory[key] = fwd
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)


def sample_map_rows(values: torch.Tensor, xy: np.ndarray) -> np.ndarray:
    """Rows of an (H, W, C) or (H, W) map at integer ``(x, y)`` pixels: (N, C) / (N,) float32 numpy."""
    import torch

    xy = np.asarray(xy, np.int64).reshape(-1, 2)
    idx = torch.from_numpy(xy).to(values.device)
    return values[idx[:, 1], idx[:, 0]].detach().float().cpu().numpy()


class PairNetwork:
    """Loads a MASt3R/DUSt3R checkpoint lazily and runs cached, batched pair forwards.

    Args:
        checkpoint: checkpoint path (official ``.pth``, state dict with config, or safetensors).
        size: network long side (official preprocessing, ``mast3r.preprocess.load_image``).
        precision: one of :data:`PRECISIONS`.
        device: torch device of the model.
        cache: forward cache (default :func:`default_forward_cache`).
        model: an already built model (tests, sharing between matcher variants); ``checkpoint``
            is then only informative.
        fast: run :func:`mast3r.fast.make_fast` on the model (weights in ``fast.dtype``, no
            autocast; a passed ``model`` is copied, a loaded one converted in place). Part of the
            forward-cache key (the numerics differ from autocast).
        cuda_graph: on a CUDA device, capture one CUDA graph per (input shapes, batch, focal pass)
            and replay it (:class:`mast3r.fast.CudaGraphForward`); at most :attr:`MAX_GRAPHS` are
            kept. Ignored on other devices.

    With ``cuda_graph`` or a compiled ``fast`` model a batch of n pairs is padded (copies of its last
    pair, outputs dropped) to the next power of two, at most ``batch_size``, so each image shape needs
    a few captures / compiles at most (1, 2, 4, ..., ``batch_size`` pairs).
    """

    MAX_GRAPHS = 8
    PREPARED_ITEMS = 32
    """Preprocessed images kept (LRU by path, size and mtime): a view used by several pairs of a
    sample is read and resized once."""

    def __init__(self, checkpoint: str, size: int, precision: str, device: Any, *,
                 cache: ForwardCache | None = None, model: Any = None, fast: FastOptions | None = None,
                 cuda_graph: bool = False) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.checkpoint, self.size, self.precision, self.device = checkpoint, size, precision, device
        self.cache = cache if cache is not None else default_forward_cache()
        self.fast, self.cuda_graph = fast, cuda_graph
        self._model = model
        self._owned = model is None  # loaded here, so it may be converted in place
        self._converted = fast is None
        self._graphs: OrderedDict[tuple, Any] = OrderedDict()
        self._prepared: OrderedDict[tuple, PreparedImage] = OrderedDict()
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
        return hashlib.sha256(text.encode()).hexdigest()

    def pair_key(self, prep0: PreparedImage, prep1: PreparedImage) -> str:
        ids = [file_sha256(p.path) if p.path else hashlib.sha256(p.uint8.tobytes()).hexdigest()
               for p in (prep0, prep1)]
        digest = hashlib.sha256(f"{self.model_key}\n{ids[0]}\n{ids[1]}".encode()).hexdigest()
        return f"{self.model_key[:16]}/{digest}"

    @property
    def model(self) -> Any:
        if self._model is None:
            from mast3r.weights import load_model

            t0 = time.perf_counter()
            self._model = load_model(self.checkpoint, device=self.device, compute_checksum=False)
            log.info("loaded %s in %.1f s", self.checkpoint, time.perf_counter() - t0)
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
    def prepare(self, view: View) -> PreparedImage:
        """Official preprocessing of ``view.image_path`` at ``size`` (LRU-cached, see
        :attr:`PREPARED_ITEMS`); the stored size must match the view's ``width``/``height``."""
        from mast3r.preprocess import load_image

        try:
            st = os.stat(view.image_path)
        except OSError:
            return load_image(view.image_path, self.size)  # raises ImageLoadError naming the file
        key = (str(view.image_path), st.st_size, st.st_mtime_ns)
        prep = self._prepared.get(key)
        if prep is None:
            prep = load_image(view.image_path, self.size)
            self._prepared[key] = prep
            while len(self._prepared) > self.PREPARED_ITEMS:
                self._prepared.popitem(last=False)
        self._prepared.move_to_end(key)
        if tuple(prep.orig_size) != (view.width, view.height):
            raise ValueError(f"{view.image_path}: image is {prep.orig_size[0]}x{prep.orig_size[1]} pixels "
                             f"but view {view.name!r} says {view.width}x{view.height}")
        return prep

    # -- forward ------------------------------------------------------------------------------------
    def _amp(self) -> Any:
        import torch

        if self.fast is not None:  # weights already in the low-precision dtype: no autocast
            return None
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    def _graphed(self, img0: torch.Tensor, img1: torch.Tensor, need_own: bool) -> Any:
        """Replay (capturing first) the graph of ``_pair_forward`` for these shapes; static outputs."""
        from mast3r.fast import CudaGraphForward

        key = (tuple(img0.shape), tuple(img1.shape), need_own)
        graph = self._graphs.get(key)
        if graph is None:
            while len(self._graphs) >= self.MAX_GRAPHS:
                self._graphs.popitem(last=False)
            fn = functools.partial(_pair_forward, self.model, need_own=need_own, amp=self._amp())
            t0 = time.perf_counter()
            graph = self._graphs[key] = CudaGraphForward(fn, img0, img1)
            log.info("captured a CUDA graph for %s in %.1f s", key, time.perf_counter() - t0)
        self._graphs.move_to_end(key)
        return graph(img0, img1)

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
                out, back = _pair_forward(model, img0, img1, need_own=need_own, amp=amp)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        self.forward_calls += 1
        seconds = (time.perf_counter() - t0) / n_pairs

        def take(t: torch.Tensor, b: int) -> torch.Tensor:  # graph outputs are overwritten by the next replay
            t = t[b].float()
            return t.clone() if graphed else t

        own_pts = None if back is None else back.view0.pts3d[:n_pairs]
        focals = _batch_focals(out.view0.pts3d[:n_pairs], own_pts)
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

        keys = [self.pair_key(a, b) for a, b in preps]
        results: list[PairForward | None] = [self.cache.get(k, need_own) for k in keys]
        groups: dict[tuple, list[int]] = {}
        for i, hit in enumerate(results):
            if hit is None:
                shape = (preps[i][0].true_shape, preps[i][1].true_shape)
                groups.setdefault(shape, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), max(1, batch_size)):
                chunk = idx[start:start + max(1, batch_size)]
                padded = chunk + chunk[-1:] * (_padded_batch(len(chunk), batch_size) - len(chunk)) \
                    if self.fixed_batch else chunk
                img0 = stack_images([preps[i][0] for i in padded])
                img1 = stack_images([preps[i][1] for i in padded])
                for i, fwd in zip(chunk, self.run(img0, img1, need_own, n_pairs=len(chunk))):
                    self.cache.put(keys[i], fwd)
                    results[i] = fwd
        return [r for r in results if r is not None]


def _padded_batch(n: int, batch_size: int) -> int:
    """Batch size that ``n`` pairs are padded to with a fixed-batch network: the next power of two,
    at most ``batch_size`` (so at most ~log2(batch_size) graphs / compiled shapes per image size, and
    a lone pair is not run 8 times)."""
    return max(n, min(batch_size, 1 << (n - 1).bit_length()))


def _pair_forward(model: Any, img0: torch.Tensor, img1: torch.Tensor, *, need_own: bool,
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


def _batch_focals(pts0: torch.Tensor, pts1: torch.Tensor | None) -> tuple[list[float], list[float | None]]:
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
