"""The oracle and random test matchers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.matchers.doubles import (
    GroundTruthUnavailable,
    OracleConfig,
    OracleMatcher,
    RandomConfig,
    RandomMatcher,
)
from benchmarks.types import Correspondences, View

V0 = View("a", Path("a.png"), 40, 30)
V1, V2 = View("b", Path("b.png"), 20, 10), View("c", Path("c.png"), 20, 10)
GT = Correspondences(np.arange(20).reshape(10, 2), np.arange(20).reshape(10, 2) + 0.5, np.zeros(10),
                     pts3d0=np.ones((10, 3)))


def test_oracle_returns_the_ground_truth():
    out = OracleMatcher().match(V0, V1, gt=GT)
    np.testing.assert_array_equal(out.pts0, GT.pts0)
    np.testing.assert_array_equal(out.pts1, GT.pts1)
    np.testing.assert_array_equal(out.pts3d0, GT.pts3d0)
    assert (out.scores == 1).all()
    assert OracleMatcher.needs_ground_truth and not OracleMatcher.cacheable and OracleMatcher.available()[0]
    assert OracleMatcher().weights_checksum() is None


def test_oracle_subsamples_and_adds_seeded_noise():
    sub = OracleMatcher(OracleConfig(max_matches=4)).match(V0, V1, gt=GT)
    np.testing.assert_array_equal(sub.pts0[:, 0], [0, 6, 12, 18])  # evenly spaced rows 0, 3, 6, 9
    noisy = OracleMatcher(OracleConfig(noise_px=2.0)).match(V0, V1, gt=GT)
    again = OracleMatcher(OracleConfig(noise_px=2.0)).match(V0, V1, gt=GT)
    np.testing.assert_array_equal(noisy.pts1, again.pts1)
    np.testing.assert_array_equal(noisy.pts0, GT.pts0)
    assert 0.5 < np.abs(noisy.pts1 - GT.pts1).mean() < 4


def test_oracle_without_ground_truth_raises():
    with pytest.raises(GroundTruthUnavailable, match="a -> b"):
        OracleMatcher().match(V0, V1)


def test_random_is_uniform_in_the_image_and_seeded_by_pair():
    m = RandomMatcher(RandomConfig(num_matches=500))
    c = m.match(V0, V1)
    assert len(c) == 500 and m.available()[0] and not m.cacheable
    assert (c.pts0 >= -0.5).all() and (c.pts0[:, 0] < 39.5).all() and (c.pts0[:, 1] < 29.5).all()
    assert (c.pts1 >= -0.5).all() and (c.pts1[:, 0] < 19.5).all() and (c.pts1[:, 1] < 9.5).all()
    assert c.pts0[:, 0].max() > 35 and c.pts0[:, 0].min() < 4  # spread over the image
    np.testing.assert_array_equal(m.match(V0, V1).pts0, c.pts0)  # deterministic
    assert not np.array_equal(m.match(V0, V2).pts1, c.pts1)  # another pair, other points
    assert not np.array_equal(RandomMatcher(RandomConfig(500, seed=1)).match(V0, V1).pts0, c.pts0)
