"""The one backend rule (:func:`mast3r.matching.backend.resolve_backend`) and :class:`MatchingBackend`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.timing import smooth_descriptor_pair
from mast3r.matching import FRMConfig, MatchingBackend, match_descriptors
from mast3r.matching.backend import resolve_backend


def test_auto_is_torch_on_cpu_and_names_pass_through():
    cpu = torch.zeros(4, 24)
    assert resolve_backend("auto", cpu) == "torch"
    assert resolve_backend("auto") == "torch"
    assert resolve_backend("faiss", cpu) == "faiss"
    assert resolve_backend("torch", cpu, "l2") == "torch"
    with pytest.raises(ValueError, match="unknown NN backend"):
        resolve_backend("hnsw", cpu)


def test_triton_demanded_where_impossible_says_why():
    with pytest.raises(ValueError, match="float32 CUDA descriptors"):
        resolve_backend("triton", torch.zeros(4, 24))
    assert resolve_backend("triton") == "triton"  # no tensor: not checked yet


@pytest.mark.parametrize("dense", [False, True])
def test_matching_backend_equals_the_pure_function(dense):
    d0, d1 = smooth_descriptor_pair((24, 32), 24, seed=1)
    c0, c1 = torch.rand(24, 32, generator=torch.Generator().manual_seed(0)) + 1, torch.ones(24, 32)
    cfg = FRMConfig(subsample=4, dense=dense)
    backend = MatchingBackend("cpu")
    got, ref = backend.match(d0, d1, c0, c1, cfg), match_descriptors(d0, d1, c0, c1, cfg)
    assert len(ref) > 0
    for name in ("xy0", "xy1", "conf"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))
    assert got.stats == ref.stats
    assert backend.pool is None  # nothing to keep off CUDA
