"""Matching one sample's pairs: cache first, ``match_many`` in chunks of ``batch_size``, pair order kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from benchmarks.sample_matching import chunk_size, match_sample, match_samples, matched_groups, sample_groups
from benchmarks.store import CorrespondenceCache
from benchmarks.types import Correspondences, Sample, View


@dataclass(frozen=True)
class Cfg:
    batch_size: int = 2


def _corrs(i: int, j: int) -> Correspondences:
    """10 i + j matches, so a result names its pair."""
    n = 10 * i + j
    pts = np.zeros((n, 2), np.float64)
    return Correspondences(pts, pts, np.ones(n, np.float32), timings={"forward": 0.5, "match": 0.25})


class Batched:
    def __init__(self, batch_size: int = 2) -> None:
        self.config = Cfg(batch_size)
        self.chunks: list[list[tuple[str, str]]] = []
        self.single = 0

    def match(self, v0: View, v1: View) -> Correspondences:
        self.single += 1
        return _corrs(int(v0.name), int(v1.name))

    def match_many(self, pairs):
        self.chunks.append([(a.name, b.name) for a, b in pairs])
        return [_corrs(int(a.name), int(b.name)) for a, b in pairs]


class Adapter:
    def __init__(self, pairs):
        self._pairs = pairs

    def pairs(self, sample):
        return self._pairs

    def gt_correspondences(self, sample, i, j):
        return _corrs(j, i)


@pytest.fixture()
def sample(tmp_path: Path) -> Sample:
    views = []
    for k in range(4):
        path = tmp_path / f"{k}.png"
        path.write_bytes(b"x" * (k + 1))
        views.append(View(str(k), path, 8, 6))
    return Sample("s", tuple(views))


PAIRS = [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)]


def test_match_many_in_chunks_in_pair_order(sample):
    matcher = Batched(batch_size=2)
    out = match_sample(matcher, Adapter(PAIRS), sample)
    assert [len(c) for c in out.corrs] == [10 * i + j for i, j in PAIRS]
    assert [len(ch) for ch in matcher.chunks] == [2, 2, 1] and matcher.single == 0
    assert out.cache_hits == 0
    assert out.timings == {"matcher.forward": 2.5, "matcher.match": 1.25}
    assert chunk_size(matcher) == 2 and chunk_size(object()) == 1


def test_cache_hits_are_not_matched_again(sample, tmp_path):
    cache = CorrespondenceCache(tmp_path / "cache")
    first = Batched(batch_size=8)
    match_sample(first, Adapter(PAIRS[:2]), sample, cache=cache, data_root=tmp_path)
    again = Batched(batch_size=8)
    out = match_sample(again, Adapter(PAIRS), sample, cache=cache, data_root=tmp_path)
    assert out.cache_hits == 2 and again.chunks == [[("0", "3"), ("1", "2"), ("2", "3")]]
    assert [len(c) for c in out.corrs] == [10 * i + j for i, j in PAIRS]
    # everything cached now: nothing runs
    last = Batched()
    assert match_sample(last, Adapter(PAIRS), sample, cache=cache, data_root=tmp_path).cache_hits == 5
    assert last.chunks == [] and last.single == 0


def test_single_pair_and_plain_matchers_use_match(sample):
    matcher = Batched()
    match_sample(matcher, Adapter(PAIRS[:1]), sample)
    assert matcher.single == 1 and matcher.chunks == []

    class Plain:
        def match(self, v0, v1):
            return _corrs(int(v0.name), int(v1.name))

    assert [len(c) for c in match_sample(Plain(), Adapter(PAIRS), sample).corrs] == [1, 2, 3, 12, 23]


def test_ground_truth_matchers_get_gt(sample):
    class Oracle:
        def match(self, v0, v1, gt=None):
            return gt

    out = match_sample(Oracle(), Adapter(PAIRS), sample, needs_gt=True)
    assert [len(c) for c in out.corrs] == [10 * j + i for i, j in PAIRS]


def test_wrong_result_count_is_an_error(sample):
    class Broken(Batched):
        def match_many(self, pairs):
            return super().match_many(pairs)[:-1]

    with pytest.raises(RuntimeError, match="returned 1 results for 2 pairs"):
        match_sample(Broken(), Adapter(PAIRS), sample)


class Multi:
    """Adapter whose sample k has k + 1 pairs (0, 1), (0, 2), ..."""

    def pairs(self, sample):
        return [(0, j) for j in range(1, int(sample.key) + 2)]


def test_groups_and_joint_matching_of_several_samples(sample):
    samples = [Sample(str(k), sample.views) for k in (0, 0, 2, 1, 0)]  # 1, 1, 3, 2, 1 pairs
    groups = list(sample_groups(samples, Multi(), 3))
    assert [[len(Multi().pairs(s)) for s in g] for g in groups] == [[1, 1], [3], [2, 1]]
    assert [len(g) for g in sample_groups(samples, Multi(), 1)] == [1] * 5
    matcher = Batched(batch_size=4)
    out = match_samples(matcher, Multi(), samples[2:], cache=None)
    assert [len(ch) for ch in matcher.chunks] == [4, 2]  # 3 + 2 + 1 pairs in chunks of 4
    assert [[len(c) for c in m.corrs] for m in out] == [[1, 2, 3], [1, 2], [1]]
    assert [m.timings["matcher.forward"] for m in out] == [1.5, 1.0, 0.5]
    total = sum(m.seconds for m in out)
    assert total > 0 and out[0].seconds == pytest.approx(total / 2)  # 3 of 6 pairs


def test_matched_groups_fall_back_to_single_samples(sample):
    class FailsOnThree(Batched):
        def match_many(self, pairs):
            if any(b.name == "3" for _, b in pairs):
                raise RuntimeError("bad image")
            return super().match_many(pairs)

    samples = [Sample(str(k), sample.views) for k in (0, 2, 0)]  # 1, 3 (has (0, 3)), 1 pairs
    got = list(matched_groups(FailsOnThree(batch_size=8), Multi(), samples))
    assert [s.key for s, _ in got] == ["0", "2", "0"] and all(m is None for _, m in got)
    ok = list(matched_groups(Batched(batch_size=8), Multi(), samples[:1] * 3))
    assert all(m is not None and len(m.corrs) == 1 for _, m in ok)
