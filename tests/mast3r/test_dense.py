"""Dense (exhaustive) mutual nearest neighbours: official reference, blocking, backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mast3r.matching import MatchingInputError, dense_nearest_neighbours, dense_reciprocal_nn


@pytest.fixture(scope="module")
def frm_ref(refvec_dir):
    return dict(np.load(refvec_dir / "frm_small.npz"))


@pytest.fixture(scope="module")
def p3(refvec_dir):
    f = np.load(refvec_dir / "forward_p3.npz")
    return f["pred1_desc"][0], f["pred2_desc"][0]


@pytest.mark.parametrize("backend,block_size", [("torch", 2**12), ("faiss", None)])
def test_p3_nearest_neighbours_equal_official(frm_ref, p3, backend, block_size):
    nn01, nn10 = dense_nearest_neighbours(*p3, backend=backend, block_size=block_size)
    np.testing.assert_array_equal(nn01, frm_ref["p3_dense_nn12"])
    np.testing.assert_array_equal(nn10, frm_ref["p3_dense_nn21"])


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_synthetic_mutual_pairs_equal_official(frm_ref, backend):
    d0, d1 = frm_ref["syn_desc1"], frm_ref["syn_desc2"]
    nn12, nn21 = frm_ref["syn_dense_nn12"].astype(np.int64), frm_ref["syn_dense_nn21"].astype(np.int64)
    i = np.flatnonzero(nn21[nn12] == np.arange(len(nn12)))
    xy0, xy1 = dense_reciprocal_nn(d0, d1, backend=backend, block_size=5000)
    np.testing.assert_array_equal(xy0, np.stack([i % 128, i // 128], 1))
    np.testing.assert_array_equal(xy1, np.stack([nn12[i] % 120, nn12[i] // 120], 1))
    assert xy0.dtype == np.int32 and len(xy0) > 1000


def _naive(d0, d1, dist):
    f0, f1 = d0.reshape(-1, d0.shape[-1]).astype(np.float64), d1.reshape(-1, d1.shape[-1]).astype(np.float64)
    if dist == "dot":
        s = f0 @ f1.T
    else:
        s = -((f0[:, None] - f1[None]) ** 2).sum(-1)
    return s.argmax(1), s.argmax(0)  # first maximum: lowest index on ties


@settings(max_examples=25, deadline=None)
@given(h0=st.integers(1, 8), w0=st.integers(1, 8), h1=st.integers(1, 8), w1=st.integers(1, 8),
       d=st.integers(1, 4), seed=st.integers(0, 2**31 - 1), block=st.sampled_from([None, 1, 5, 17]),
       dist=st.sampled_from(["dot", "l2"]), backend=st.sampled_from(["torch", "faiss"]))
def test_integer_maps_equal_naive_including_ties(h0, w0, h1, w1, d, seed, block, dist, backend):
    """Integer descriptors make every score exact, so exact ties are frequent: lowest index wins."""
    rng = np.random.default_rng(seed)
    d0 = rng.integers(-2, 3, (h0, w0, d)).astype(np.float32)
    d1 = rng.integers(-2, 3, (h1, w1, d)).astype(np.float32)
    nn01, nn10 = dense_nearest_neighbours(d0, d1, backend=backend, dist=dist, block_size=block)
    want01, want10 = _naive(d0, d1, dist)
    np.testing.assert_array_equal(nn01, want01)
    np.testing.assert_array_equal(nn10, want10)
    xy0, xy1 = dense_reciprocal_nn(d0, d1, backend=backend, dist=dist, block_size=block)
    i = np.flatnonzero(want10[want01] == np.arange(h0 * w0))
    np.testing.assert_array_equal(xy0[:, 0] + w0 * xy0[:, 1], i)
    np.testing.assert_array_equal(xy1[:, 0] + w1 * xy1[:, 1], want01[i])


def test_planted_pairs_anywhere_are_found():
    rng = np.random.default_rng(1)
    d0 = rng.normal(size=(30, 20, 12)).astype(np.float32)
    d1 = rng.normal(size=(25, 33, 12)).astype(np.float32)
    d0 /= np.linalg.norm(d0, axis=-1, keepdims=True)
    d1 /= np.linalg.norm(d1, axis=-1, keepdims=True)
    src, dst = rng.choice(600, 50, replace=False), rng.choice(825, 50, replace=False)
    d1.reshape(-1, 12)[dst] = d0.reshape(-1, 12)[src]
    xy0, xy1 = dense_reciprocal_nn(d0, d1, block_size=256)
    found = set(zip((xy0[:, 0] + 20 * xy0[:, 1]).tolist(), (xy1[:, 0] + 33 * xy1[:, 1]).tolist()))
    assert set(zip(src.tolist(), dst.tolist())) <= found


def test_tensor_input_and_empty_and_bad_maps():
    d = torch.nn.functional.normalize(torch.randn(6, 5, 4), dim=-1)
    xy0, xy1 = dense_reciprocal_nn(d, d)
    assert len(xy0) == 30 and np.array_equal(xy0, xy1)  # generic maps match themselves
    e0, e1 = dense_reciprocal_nn(np.zeros((0, 5, 4), np.float32), d)
    assert e0.shape == e1.shape == (0, 2)
    with pytest.raises(MatchingInputError, match="dimensions differ"):
        dense_reciprocal_nn(d, torch.randn(6, 5, 3))
    bad = d.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(MatchingInputError, match="NaN"):
        dense_reciprocal_nn(d, bad)


@pytest.mark.gpu
@pytest.mark.parametrize("backend,block_size", [("torch", 2**12), ("torch", 2**14), ("torch", None),
                                                ("auto", 2**12)])
def test_cuda_nearest_neighbours_equal_official(frm_ref, p3, backend, block_size):
    cuda = [torch.from_numpy(d).cuda() for d in p3]
    nn01, nn10 = dense_nearest_neighbours(*cuda, backend=backend, block_size=block_size)
    np.testing.assert_array_equal(nn01, frm_ref["p3_dense_nn12"])
    np.testing.assert_array_equal(nn10, frm_ref["p3_dense_nn21"])
