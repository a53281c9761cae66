"""NN backends: one interface, identical tie-breaking (lowest index wins), blocking invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mast3r.matching import MatchingInputError, make_index, nearest_neighbours
from mast3r.matching.nn import as_descriptor_map, resolve_backend


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("block_size", [None, 64, 2**13])
@pytest.mark.parametrize("dist", ["dot", "l2"])
def test_exact_ties_go_to_lowest_index_across_blocks(backend, block_size, dist):
    rng = np.random.default_rng(0)
    db = rng.normal(size=(300, 8)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)  # unit rows: a query's own row is its dot-NN
    db[[70, 130, 299]] = db[200]  # duplicates in three other blocks of 64 (before and after 200)
    db[[100, 250]] = db[5]
    queries = np.concatenate([db[[200, 5]]] * 40)  # 80 queries: exercises faiss' BLAS path too
    nn = nearest_neighbours(queries, db, backend=backend, dist=dist, block_size=block_size)
    assert nn.tolist() == [70, 5] * 40


@pytest.mark.parametrize("dist", ["dot", "l2"])
def test_backends_and_block_sizes_agree_on_random_data(dist):
    rng = np.random.default_rng(1)
    q = rng.normal(size=(500, 24)).astype(np.float32)
    db = rng.normal(size=(3000, 24)).astype(np.float32)
    ref = nearest_neighbours(q, db, backend="torch", dist=dist, block_size=None)
    for backend, bs in [("torch", 100), ("torch", 2**13), ("faiss", None), ("auto", 999)]:
        got = nearest_neighbours(q, db, backend=backend, dist=dist, block_size=bs)
        np.testing.assert_array_equal(got, ref)
    f64 = q.astype(np.float64) @ db.astype(np.float64).T if dist == "dot" else None
    if f64 is not None:  # and it is the true nearest neighbour
        np.testing.assert_array_equal(f64.argmax(1), ref)


def test_index_query_stays_on_device_and_handles_empty():
    db = torch.nn.functional.normalize(torch.randn(10, 4), dim=1)
    for backend in ("torch", "faiss"):
        index = make_index(db, backend)
        out = index.query(db[[3, 7]])
        assert out.dtype == torch.int64 and out.device == db.device and out.tolist() == [3, 7]
        assert index.query(db[:0]).shape == (0,)
    assert make_index(db[:0], "torch").query(db[:2]).tolist() == [-1, -1]
    assert make_index(db[:0], "faiss").query(db[:2]).tolist() == [-1, -1]


def test_resolve_backend_and_input_validation():
    assert resolve_backend("auto") == "torch"
    with pytest.raises(ValueError, match="unknown NN backend"):
        resolve_backend("hnsw")
    with pytest.raises(MatchingInputError, match="D is 0"):
        as_descriptor_map(np.zeros((2, 2, 0), np.float32), "desc0")
    with pytest.raises(MatchingInputError, match="inf"):
        as_descriptor_map(np.full((2, 2, 2), np.inf, np.float32), "desc0")
    with pytest.raises(MatchingInputError, match=r"\(N, D\)"):
        nearest_neighbours(np.zeros(3, np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="dist"):
        make_index(torch.zeros(3, 2), "torch", dist="cosine")
