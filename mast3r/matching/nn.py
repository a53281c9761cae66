"""Nearest-neighbour search between descriptor sets, behind one interface.

Backends (all return, for every query row, the index of its nearest database row):

* ``torch``: brute-force ``queries @ db.T`` (``dist="dot"``, largest wins) or ``torch.cdist``
  (``dist="l2"``, smallest wins) on the descriptors' device (CPU or GPU). With ``block_size`` set
  and ``len(queries) * len(db) > block_size**2`` both sets are cut into blocks of ``block_size``
  rows, so memory stays at ``block_size**2`` scores; the result is the same as one big matmul.
* ``faiss``: CPU ``IndexFlatIP`` (dot) / ``IndexFlatL2`` (l2), exact search.
* ``triton``: fused matmul + argmax kernels on CUDA (:mod:`mast3r.matching.gpu.kernels`), float32,
  ``dot``; FRM and dense matching go through an fp16 tensor-core screen with a float64 re-check of
  the survivors (:mod:`mast3r.matching.gpu.screen`), exact as well.
* ``auto``: ``triton`` where it can run (float32 CUDA descriptors, ``dist="dot"``, Triton
  importable), else ``torch`` -- one rule for every entry point,
  :func:`mast3r.matching.backend.resolve_backend`.

Tie-breaking, identical in every backend: on exact ties the **lowest database index wins** (what
``torch.argmax`` does within a block; across blocks an earlier block only loses to a strictly
better score; faiss keeps the first of equal scores). Scores are float32 computed by each backend's
own GEMM, so two backends can differ only where two candidates are within float rounding.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from mast3r.matching.backend import resolve_backend
from mast3r.matching.config import DISTANCES

__all__ = [
    "MatchingInputError",
    "NNIndex",
    "TorchNN",
    "FaissNN",
    "TritonNN",
    "make_index",
    "resolve_backend",
    "as_descriptor_map",
    "nearest_neighbours",
    "mutual_nearest_neighbours",
]


class MatchingInputError(ValueError):
    """Descriptor maps or seeds that matching cannot use (wrong shape, mismatched D, NaN, ...)."""


def as_descriptor_map(desc: Any, name: str, *, check_finite: bool = True) -> torch.Tensor:
    """Validate a descriptor map and return it as a torch tensor (no copy where possible).

    Args:
        desc: (H, W, D) float numpy array or torch tensor (any device).
        name: argument name used in error messages.
        check_finite: reject NaN/inf values (one device sync on GPU).
    Returns: (H, W, D) floating tensor on the input's device (numpy -> CPU).
    Raises: MatchingInputError (shape, dtype, non-finite values); TypeError for other types.
    """
    if isinstance(desc, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(desc))
    elif isinstance(desc, torch.Tensor):
        t = desc.detach()
    else:
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(desc).__name__}")
    if t.ndim != 3:
        raise MatchingInputError(f"{name}: expected an (H, W, D) descriptor map, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise MatchingInputError(f"{name}: descriptors must be floating point, got {t.dtype}")
    if t.shape[2] == 0:
        raise MatchingInputError(f"{name}: descriptor dimension D is 0 (shape {tuple(t.shape)})")
    if check_finite and t.numel() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=-1).sum())
        raise MatchingInputError(f"{name}: {bad} pixel(s) have NaN/inf descriptors (shape {tuple(t.shape)})")
    return t


def check_pair(desc0: torch.Tensor, desc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Same D and dtype, same device (desc1 moves to desc0's device); returns flat (N, D) views."""
    if desc0.shape[2] != desc1.shape[2]:
        raise MatchingInputError(
            f"descriptor dimensions differ: desc0 {tuple(desc0.shape)} vs desc1 {tuple(desc1.shape)}"
        )
    if desc1.device != desc0.device:
        desc1 = desc1.to(desc0.device)
    if desc1.dtype != desc0.dtype:
        dtype = torch.promote_types(desc0.dtype, desc1.dtype)
        desc0, desc1 = desc0.to(dtype), desc1.to(dtype)
    d = desc0.shape[2]
    return desc0.reshape(-1, d), desc1.reshape(-1, d)


def _check_dist(dist: str) -> None:
    if dist not in DISTANCES:
        raise ValueError(f"unknown dist {dist!r}; choose one of {DISTANCES}")


def _block_best(q: torch.Tensor, db: torch.Tensor, dist: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Best db row per query row in one block: (score (larger is better), index)."""
    if dist == "dot":
        return (q @ db.T).max(dim=1)
    d, idx = torch.cdist(q, db).min(dim=1)
    return d.neg_(), idx


class NNIndex(Protocol):
    """A database of descriptors answering 1-NN queries on the database's device."""

    def query(self, queries: torch.Tensor) -> torch.Tensor:
        """(Q, D) -> (Q,) int64 index of the nearest database row (lowest index on ties)."""
        ...


class TorchNN:
    """Blockwise brute-force NN (see module docstring).

    Args:
        db: (N, D) floating tensor; queries must be on its device and dtype.
        dist: ``"dot"`` or ``"l2"``.
        block_size: block edge (rows); ``None`` = a single matmul.
    """

    def __init__(self, db: torch.Tensor, dist: str = "dot", block_size: int | None = 2**13) -> None:
        _check_dist(dist)
        self.db, self.dist, self.block_size = db, dist, block_size

    def query(self, queries: torch.Tensor) -> torch.Tensor:
        nq, nd, bs = len(queries), len(self.db), self.block_size
        if nq == 0 or nd == 0:
            return torch.full((nq,), -1, dtype=torch.int64, device=queries.device)
        if bs is None or nq * nd <= bs * bs:
            return _block_best(queries, self.db, self.dist)[1]
        out = torch.empty(nq, dtype=torch.int64, device=queries.device)
        for i in range(0, nq, bs):
            q = queries[i : i + bs]
            scores, index = [], []
            for j in range(0, nd, bs):
                s, k = _block_best(q, self.db[j : j + bs], self.dist)
                scores.append(s)
                index.append(k + j)
            # argmax over blocks returns the first maximal block: earlier blocks win exact ties.
            which = torch.stack(scores).argmax(dim=0, keepdim=True)
            out[i : i + bs] = torch.stack(index).gather(0, which)[0]
        return out


class FaissNN:
    """Exact CPU faiss search (``IndexFlatIP`` for dot, ``IndexFlatL2`` for l2).

    Args:
        db: (N, D) tensor (any device; copied to CPU float32).
        dist: ``"dot"`` or ``"l2"``.
    """

    def __init__(self, db: torch.Tensor, dist: str = "dot") -> None:
        import faiss  # lazy: only this backend needs it

        _check_dist(dist)
        self.device = db.device
        self._n = len(db)
        self.index = (faiss.IndexFlatIP if dist == "dot" else faiss.IndexFlatL2)(db.shape[1])
        if self._n:
            self.index.add(_to_faiss(db))

    def query(self, queries: torch.Tensor) -> torch.Tensor:
        if len(queries) == 0 or self._n == 0:
            return torch.full((len(queries),), -1, dtype=torch.int64, device=queries.device)
        _, idx = self.index.search(_to_faiss(queries), 1)
        return torch.from_numpy(idx[:, 0].astype(np.int64)).to(queries.device)


def _to_faiss(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


class TritonNN:
    """Fused matmul + argmax on CUDA (:func:`mast3r.matching.gpu.kernels.nn_search`); float32, ``dot``."""

    def __init__(self, db: torch.Tensor, dist: str = "dot") -> None:
        _check_dist(dist)
        resolve_backend("triton", db, dist)  # raises with the reason where it cannot run
        self.db = db

    def query(self, queries: torch.Tensor) -> torch.Tensor:
        if len(queries) == 0 or len(self.db) == 0:
            return torch.full((len(queries),), -1, dtype=torch.int64, device=queries.device)
        from mast3r.matching.gpu.kernels import nn_search

        return nn_search(queries, self.db)


def make_index(db: torch.Tensor, backend: str = "auto", dist: str = "dot",
               block_size: int | None = 2**13) -> NNIndex:
    """An :class:`NNIndex` over ``db`` (N, D) for the given backend name (``auto``: see
    :func:`~mast3r.matching.backend.resolve_backend`)."""
    backend = resolve_backend(backend, db, dist)
    if backend == "faiss":
        return FaissNN(db, dist)
    if backend == "triton":
        return TritonNN(db, dist)
    return TorchNN(db, dist, block_size)


def nearest_neighbours(queries: Any, db: Any, *, backend: str = "auto", dist: str = "dot",
                       block_size: int | None = 2**13) -> np.ndarray:
    """Index of the nearest ``db`` row for every query row.

    Args: queries (Q, D), db (N, D): float numpy arrays or tensors.
    Returns: (Q,) int64 numpy array (lowest index on exact ties; -1 everywhere if ``db`` is empty).
    """
    q = as_descriptor_map(_as_2d(queries, "queries")[:, None, :], "queries")
    d = as_descriptor_map(_as_2d(db, "db")[:, None, :], "db")
    q0, d0 = check_pair(q, d)
    return make_index(d0, backend, dist, block_size).query(q0).cpu().numpy()


def _as_2d(x: Any, name: str) -> Any:
    if not isinstance(x, (np.ndarray, torch.Tensor)) or x.ndim != 2:
        raise MatchingInputError(f"{name}: expected an (N, D) array, got {getattr(x, 'shape', type(x))}")
    return x


def mutual_nearest_neighbours(a: torch.Tensor, b: torch.Tensor, *, backend: str = "auto",
                              dist: str = "dot", block_size: int | None = 2**12
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest neighbour of every row of ``a`` in ``b`` and of every row of ``b`` in ``a``.

    The torch backend scores each (``a`` block, ``b`` block) once and reduces it both ways, so
    memory stays at ``block_size**2`` scores. Ties: lowest index wins in both directions.
    Args: a (Na, D), b (Nb, D) tensors on one device, same dtype.
    Returns: (nn_ab (Na,), nn_ba (Nb,)) int64 tensors on that device (faiss: CPU).
    """
    _check_dist(dist)
    if resolve_backend(backend) == "faiss":
        return FaissNN(b, dist).query(a), FaissNN(a, dist).query(b)
    na, nb, dev = len(a), len(b), a.device
    if na == 0 or nb == 0:
        return (torch.full((na,), -1, dtype=torch.int64, device=dev),
                torch.full((nb,), -1, dtype=torch.int64, device=dev))
    if resolve_backend(backend, a, dist) == "triton":
        from mast3r.matching.gpu.dense import dense_mutual_nn_device

        return dense_mutual_nn_device(a, b)
    bs = max(na, nb) if block_size is None or na * nb <= block_size * block_size else block_size
    best_a = torch.full((na,), -torch.inf, dtype=a.dtype, device=dev)
    best_b = torch.full((nb,), -torch.inf, dtype=a.dtype, device=dev)
    nn_a = torch.zeros(na, dtype=torch.int64, device=dev)
    nn_b = torch.zeros(nb, dtype=torch.int64, device=dev)
    for i in range(0, na, bs):
        for j in range(0, nb, bs):
            ai, bj = a[i : i + bs], b[j : j + bs]
            s = ai @ bj.T if dist == "dot" else torch.cdist(ai, bj).neg_()
            _merge(best_a[i : i + bs], nn_a[i : i + bs], *s.max(dim=1), offset=j)
            _merge(best_b[j : j + bs], nn_b[j : j + bs], *s.max(dim=0), offset=i)
    return nn_a, nn_b


def _merge(best: torch.Tensor, nn: torch.Tensor, score: torch.Tensor, idx: torch.Tensor, offset: int) -> None:
    """In place: take the block's candidate only where strictly better (earlier blocks win ties)."""
    better = score > best
    best.copy_(torch.where(better, score, best))
    nn.copy_(torch.where(better, idx + offset, nn))
