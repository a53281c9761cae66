"""GPU-only (opt-in ``gpu`` marker): a pool of captured FRM engines gives the same matches as fresh
engines, for new maps, new seeds of the same count and new sizes, and evicts beyond its capacity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.timing import smooth_descriptor_pair
from mast3r.matching import fast_reciprocal_nn, grid_seeds
from mast3r.matching.gpu.frm import DeviceFRMPool, frm_device

pytestmark = pytest.mark.gpu


def _maps(shape, seed):
    d0, d1 = smooth_descriptor_pair(shape, 24, seed=seed)
    return d0.cuda(), d1.cuda()


def test_pool_replays_equal_fresh_engines():
    pool = DeviceFRMPool(max_engines=2)
    shape = (96, 128)
    for seed, step in ((0, 8), (1, 8), (2, 8)):
        d0, d1 = _maps(shape, seed)
        f0, f1 = d0.reshape(-1, 24), d1.reshape(-1, 24)
        seeds = torch.from_numpy(grid_seeds(shape, step)).cuda()
        if seed == 2:  # same count, other pixels: the graph must read the new seeds
            seeds = torch.flip(seeds, [0]) + 1
        got = pool(f0, f1, seeds, 10)
        ref = frm_device(f0, f1, seeds, 10)
        for name in ("xy0", "xy1", "old0", "active", "counts"):
            assert torch.equal(getattr(got, name), getattr(ref, name)), (seed, name)
    assert len(pool) == 1
    for shape in ((64, 80), (72, 96), (96, 128)):  # two new sizes: the oldest engine is dropped
        d0, d1 = _maps(shape, 5)
        pool(d0.reshape(-1, 24), d1.reshape(-1, 24), torch.from_numpy(grid_seeds(shape, 4)).cuda(), 10)
    assert len(pool) == 2


def test_match_descriptors_with_engines_equals_cpu():
    pool = DeviceFRMPool()
    for seed in (3, 4):
        d0, d1 = smooth_descriptor_pair((384, 512), 24, seed=seed)
        cpu = fast_reciprocal_nn(d0, d1, 8, return_stats=True)
        gpu = fast_reciprocal_nn(d0.cuda(), d1.cuda(), 8, return_stats=True, engines=pool)
        np.testing.assert_array_equal(gpu[0], cpu[0])
        np.testing.assert_array_equal(gpu[1], cpu[1])
        assert gpu[2] == cpu[2]
    assert len(pool) == 1
