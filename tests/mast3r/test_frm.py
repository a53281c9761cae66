"""Fast Reciprocal Matching: official reference outputs, a naive per-seed oracle, properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mast3r.matching import (
    FRMConfig,
    MatchingInputError,
    dense_reciprocal_nn,
    fast_reciprocal_nn,
    grid_seeds,
    match_descriptors,
    merge_correspondences,
)

# ------------------------------------------------------------------ official reference outputs

REF_CASES = {
    "syn_s8_": dict(subsample=8),
    "syn_s3_": dict(subsample=3),
    "syn_s8_blk64_": dict(subsample=8, block_size=64),
    "syn_s8_l2_": dict(subsample=8, dist="l2"),
}


@pytest.fixture(scope="module")
def frm_ref(refvec_dir):
    return dict(np.load(refvec_dir / "frm_small.npz"))


@pytest.fixture(scope="module")
def p3(refvec_dir):
    f = np.load(refvec_dir / "forward_p3.npz")
    return f["pred1_desc"][0], f["pred2_desc"][0]


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_p3_matches_official_exactly(frm_ref, p3, backend):
    xy0, xy1, stats = fast_reciprocal_nn(*p3, 8, backend=backend, block_size=2**13, return_stats=True)
    assert xy0.dtype == np.int32 and xy1.dtype == np.int32
    np.testing.assert_array_equal(xy0, frm_ref["p3_s8_xy1"])
    np.testing.assert_array_equal(xy1, frm_ref["p3_s8_xy2"])
    assert stats.query_sizes == tuple(frm_ref["p3_s8_query_sizes"])
    assert stats.num_iterations == 4 and stats.num_seeds == 160 and stats.num_matches == 47


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("prefix", list(REF_CASES))
def test_synthetic_matches_official_exactly(frm_ref, prefix, backend):
    if backend == "faiss" and "blk" in prefix:
        pytest.skip("faiss has no block_size: the same call as syn_s8_")
    kw = REF_CASES[prefix]
    xy0, xy1, stats = fast_reciprocal_nn(frm_ref["syn_desc1"], frm_ref["syn_desc2"], backend=backend,
                                         return_stats=True, **kw)
    np.testing.assert_array_equal(xy0, frm_ref[prefix + "xy1"])
    np.testing.assert_array_equal(xy1, frm_ref[prefix + "xy2"])
    assert stats.query_sizes == tuple(frm_ref[prefix + "query_sizes"])


def test_torch_tensor_input_equals_numpy(frm_ref):
    a = fast_reciprocal_nn(torch.from_numpy(frm_ref["syn_desc1"]), torch.from_numpy(frm_ref["syn_desc2"]))
    b = fast_reciprocal_nn(frm_ref["syn_desc1"], frm_ref["syn_desc2"])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# ------------------------------------------------------------------ naive oracle (the spec, per seed)

def _nn(q: np.ndarray, db: np.ndarray, dist: str) -> int:
    if dist == "dot":
        return int(np.argmax(db @ q))  # first maximum = lowest index on ties
    return int(np.argmin(((db - q) ** 2).sum(1)))


def naive_frm(d0, d1, seeds_lin, max_iter, dist="dot", pixel_tol=0.0):
    """Spec §5 written per seed with plain loops (seeds do not interact until the merge)."""
    (_, w0, d), (_, w1, _) = d0.shape, d1.shape
    f0, f1 = d0.reshape(-1, d).astype(np.float64), d1.reshape(-1, d).astype(np.float64)
    pairs = []
    for seed in seeds_lin:
        x0, x1, old0, old1, active = seed, -1, seed, -1, True
        for it in range(max_iter):
            x1 = _nn(f0[x0], f1, dist)
            if x1 == old1:
                active = False
                break
            x0 = _nn(f1[x1], f0, dist)
            if x0 == old0:
                active = False
                break
            if it + 1 < max_iter:
                old0, old1 = x0, x1
        if pixel_tol > 0:
            dy, dx = old0 // w0 - x0 // w0, old0 % w0 - x0 % w0
            if np.hypot(dx, dy) < pixel_tol:
                pairs.append((old0, x1))
        elif not active:
            pairs.append((x0, x1))
    pairs = sorted(set(pairs))
    xy0 = np.array([(p % w0, p // w0) for p, _ in pairs], np.int32).reshape(-1, 2)
    xy1 = np.array([(q % w1, q // w1) for _, q in pairs], np.int32).reshape(-1, 2)
    return xy0, xy1


def int_maps():
    """Integer-valued descriptors: every backend computes exact scores, so ties are real ties."""
    shape = st.tuples(st.integers(1, 9), st.integers(1, 9))
    return st.tuples(shape, shape, st.integers(1, 4), st.integers(0, 2**31 - 1)).map(_make_maps)


def _make_maps(args):
    (h0, w0), (h1, w1), d, seed = args
    rng = np.random.default_rng(seed)
    return (rng.integers(-2, 3, (h0, w0, d)).astype(np.float32),
            rng.integers(-2, 3, (h1, w1, d)).astype(np.float32))


@settings(max_examples=60, deadline=None)
@given(maps=int_maps(), subsample=st.integers(1, 4), max_iter=st.integers(1, 10),
       backend=st.sampled_from(["torch", "faiss"]), dist=st.sampled_from(["dot", "l2"]),
       block_size=st.sampled_from([None, 3, 2**13]))
def test_grid_mode_equals_naive_oracle(maps, subsample, max_iter, backend, dist, block_size):
    d0, d1 = maps
    got = fast_reciprocal_nn(d0, d1, subsample, max_iter, backend=backend, dist=dist, block_size=block_size)
    want = naive_frm(d0, d1, grid_seeds(d0.shape[:2], subsample), max_iter, dist)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=40, deadline=None)
@given(maps=int_maps(), pixel_tol=st.sampled_from([0.0, 1.0, 1.5, 5.0]), data=st.data())
def test_explicit_seed_mode_equals_naive_oracle(maps, pixel_tol, data):
    d0, d1 = maps
    h, w = d0.shape[:2]
    x = data.draw(arrays(np.int64, st.integers(0, 12), elements=st.integers(0, w - 1)))
    y = data.draw(arrays(np.int64, len(x), elements=st.integers(0, h - 1)))
    got = fast_reciprocal_nn(d0, d1, seeds=(x, y), pixel_tol=pixel_tol)
    want = naive_frm(d0, d1, np.unique(x + w * y), 1, "dot", pixel_tol)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


# ------------------------------------------------------------------ properties

@settings(max_examples=40, deadline=None)
@given(maps=int_maps(), subsample=st.integers(1, 5))
def test_frm_matches_are_dense_mutual_matches(maps, subsample):
    """The paper's Corollary: a converged seed is a true reciprocal (mutual NN) match."""
    xy0, xy1 = fast_reciprocal_nn(*maps, subsample)
    dense = set(map(tuple, np.hstack(dense_reciprocal_nn(*maps)).tolist()))
    assert set(map(tuple, np.hstack([xy0, xy1]).tolist())) <= dense


def test_subsample_1_on_float_maps_is_subset_and_most_of_dense(frm_ref):
    d0, d1 = frm_ref["syn_desc1"][:48], frm_ref["syn_desc2"][:56]
    frm = set(map(tuple, np.hstack(fast_reciprocal_nn(d0, d1, 1)).tolist()))
    dense = set(map(tuple, np.hstack(dense_reciprocal_nn(d0, d1)).tolist()))
    assert frm <= dense and len(frm) >= 0.9 * len(dense)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_planted_reciprocal_pairs_on_the_grid_are_all_found(backend):
    rng = np.random.default_rng(0)
    d0 = rng.normal(size=(40, 48, 16)).astype(np.float32)
    d1 = rng.normal(size=(36, 52, 16)).astype(np.float32)
    d0 /= np.linalg.norm(d0, axis=-1, keepdims=True)
    d1 /= np.linalg.norm(d1, axis=-1, keepdims=True)
    seeds = grid_seeds((40, 48), 8)
    chosen = rng.choice(seeds, 20, replace=False)
    targets = rng.choice(36 * 52, 20, replace=False)
    d1.reshape(-1, 16)[targets] = d0.reshape(-1, 16)[chosen]  # unit vectors: similarity 1 is maximal
    xy0, xy1 = fast_reciprocal_nn(d0, d1, 8, backend=backend)
    found = {(int(a[0] + 48 * a[1]), int(b[0] + 52 * b[1])) for a, b in zip(xy0, xy1)}
    assert set(zip(chosen.tolist(), targets.tolist())) <= found


def test_pixel_tol_hand_worked():
    """View 0: angles 0, 10, 90, 100 deg (1x4); view 1: 12, 97 deg (1x2), unit 2-D descriptors.
    Seed x=0 -> 12 deg -> back to x=1 (1 px off); seed x=2 -> 97 -> x=3 (1 px off); seed x=3 ->
    97 -> x=3 (closed)."""
    ang0, ang1 = np.deg2rad([0, 10, 90, 100]), np.deg2rad([12, 97])
    d0 = np.stack([np.cos(ang0), np.sin(ang0)], -1)[None].astype(np.float32)
    d1 = np.stack([np.cos(ang1), np.sin(ang1)], -1)[None].astype(np.float32)
    seeds = (np.array([0, 2, 3]), np.array([0, 0, 0]))
    xy0, xy1 = fast_reciprocal_nn(d0, d1, seeds=seeds, pixel_tol=1.5)
    assert xy0.tolist() == [[0, 0], [2, 0], [3, 0]] and xy1.tolist() == [[0, 0], [1, 0], [1, 0]]
    xy0, xy1 = fast_reciprocal_nn(d0, d1, seeds=seeds, pixel_tol=1.0)  # strict <
    assert xy0.tolist() == [[3, 0]] and xy1.tolist() == [[1, 0]]
    xy0, xy1 = fast_reciprocal_nn(d0, d1, seeds=np.array([[0, 0], [2, 0], [3, 0], [3, 0]]))
    assert xy0.tolist() == [[3, 0]] and xy1.tolist() == [[1, 0]]


def test_merge_correspondences_sorts_and_dedups():
    xy0, xy1, first = merge_correspondences(np.array([5, 1, 5, 1, 2]), np.array([0, 3, 0, 2, 7]),
                                            (2, 3), (3, 3), return_index=True)
    assert xy0.tolist() == [[1, 0], [1, 0], [2, 0], [2, 1]]
    assert xy1.tolist() == [[2, 0], [0, 1], [1, 2], [0, 0]]
    assert first.tolist() == [3, 1, 4, 0]


def test_grid_seeds_positions():
    assert grid_seeds((5, 9), 4).tolist() == [2 + 9 * 2, 6 + 9 * 2]
    assert grid_seeds((2, 2), 1).tolist() == [0, 1, 2, 3]
    assert grid_seeds((3, 3), 8).tolist() == []


# ------------------------------------------------------------------ bad input

def test_bad_inputs_raise_clear_errors():
    good = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(MatchingInputError, match="dimensions differ"):
        fast_reciprocal_nn(good, np.zeros((4, 4, 5), np.float32))
    nan = good.copy()
    nan[1, 2, 0] = np.nan
    with pytest.raises(MatchingInputError, match="desc1: 1 pixel"):
        fast_reciprocal_nn(good, nan)
    with pytest.raises(MatchingInputError, match=r"\(H, W, D\)"):
        fast_reciprocal_nn(good[0], good)
    with pytest.raises(MatchingInputError, match="floating"):
        fast_reciprocal_nn(good.astype(np.int32), good)
    with pytest.raises(MatchingInputError, match="outside"):
        fast_reciprocal_nn(good, good, seeds=(np.array([4]), np.array([0])))
    with pytest.raises(MatchingInputError, match="explicit seeds"):
        fast_reciprocal_nn(good, good, pixel_tol=5)
    with pytest.raises(MatchingInputError, match="subsample"):
        fast_reciprocal_nn(good, good, 0)
    with pytest.raises(ValueError, match="backend"):
        fast_reciprocal_nn(good, good, backend="annoy")
    with pytest.raises(TypeError):
        fast_reciprocal_nn([[1.0]], good)


@pytest.mark.parametrize("shapes", [((0, 4), (4, 4)), ((4, 0), (4, 4)), ((4, 4), (0, 3)), ((2, 2), (4, 4))])
def test_empty_or_tiny_maps_give_empty_or_valid_results(shapes):
    (h0, w0), (h1, w1) = shapes
    xy0, xy1, stats = fast_reciprocal_nn(np.ones((h0, w0, 3), np.float32), np.ones((h1, w1, 3), np.float32),
                                         8, return_stats=True)
    assert xy0.shape == xy1.shape == (0, 2) and stats.num_matches == 0


def test_match_descriptors_filters_border_and_scores():
    rng = np.random.default_rng(3)
    d = rng.normal(size=(24, 32, 8)).astype(np.float32)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    conf0 = rng.uniform(1, 2, (24, 32)).astype(np.float32)
    conf1 = rng.uniform(1, 2, (24, 32)).astype(np.float32)
    full = match_descriptors(d, d, conf0, conf1, FRMConfig(subsample=1, border=0))
    assert len(full) == 24 * 32  # identical maps: every pixel matches itself
    m = match_descriptors(d, d, conf0, conf1, FRMConfig(subsample=1, border=3, conf_mode="geomean"))
    assert len(m) == (24 - 6) * (32 - 6)
    assert m.xy0.min() == 3 and m.xy0[:, 0].max() == 32 - 4 and m.xy0[:, 1].max() == 24 - 4
    x, y = m.xy0[:, 0], m.xy0[:, 1]
    np.testing.assert_allclose(m.conf, np.sqrt(conf0[y, x].astype(np.float64) * conf1[y, x]), rtol=1e-6)
    dense = match_descriptors(d, d, config=FRMConfig(dense=True, border=3))
    np.testing.assert_array_equal(dense.xy0, m.xy0)
    assert dense.stats is None and np.all(dense.conf == 1)


# ------------------------------------------------------------------ GPU (opt-in)

@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_cuda_tensors_reproduce_the_official_outputs(frm_ref, p3, backend):
    cuda = [torch.from_numpy(d).cuda() for d in p3]
    xy0, xy1, stats = fast_reciprocal_nn(*cuda, 8, backend=backend, return_stats=True)
    np.testing.assert_array_equal(xy0, frm_ref["p3_s8_xy1"])
    np.testing.assert_array_equal(xy1, frm_ref["p3_s8_xy2"])
    assert stats.query_sizes == tuple(frm_ref["p3_s8_query_sizes"])
    syn = [torch.from_numpy(frm_ref[k]).cuda() for k in ("syn_desc1", "syn_desc2")]
    for prefix, kw in REF_CASES.items():
        xy0, xy1 = fast_reciprocal_nn(*syn, backend=backend, **kw)
        np.testing.assert_array_equal(xy0, frm_ref[prefix + "xy1"], err_msg=prefix)
        np.testing.assert_array_equal(xy1, frm_ref[prefix + "xy2"], err_msg=prefix)
    # explicit seeds + pixel_tol on the GPU equal the CPU result
    seeds = np.argwhere(np.ones((80, 128), bool))[::7][:, ::-1]
    gpu = fast_reciprocal_nn(*cuda, seeds=seeds, pixel_tol=5, backend=backend)
    cpu = fast_reciprocal_nn(*p3, seeds=seeds, pixel_tol=5)
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_array_equal(gpu[1], cpu[1])
