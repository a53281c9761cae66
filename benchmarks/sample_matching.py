"""Correspondences for every pair of one sample: the correspondence cache first, then the matcher.

Cache misses go to the matcher's optional ``match_many`` in chunks of its ``config.batch_size``
pairs (so a network matcher batches its forwards, and each chunk is cached as soon as it is done),
else to ``match`` one pair at a time. Ground-truth matchers (``needs_ground_truth``) always get
``match(view0, view1, gt=adapter.gt_correspondences(sample, i, j))``. Results come back in the
adapter's pair order whatever was cached. :func:`match_samples` does the same for several samples
whose misses share the chunks (the runner groups consecutive samples of few pairs,
:func:`sample_groups`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.capabilities import BatchMatcher, batch_size
from benchmarks.hashing import pair_key
from benchmarks.types import Correspondences, Sample

__all__ = ["SampleMatches", "match_sample", "match_samples", "matched_groups", "sample_groups", "chunk_size"]
log = logging.getLogger(__name__)


@dataclass
class SampleMatches:
    """The pairs of one sample, in ``adapter.pairs(sample)`` order.

    Attributes:
        corrs: one :class:`Correspondences` per pair.
        cache_hits: pairs read from the correspondence cache.
        timings: matcher stage seconds summed over the pairs (``matcher.<stage>``, cached pairs
            included with the seconds they took when computed).
        seconds: wall time of the matching, this sample's share (by pair count) when several
            samples were matched together.
    """

    corrs: list[Correspondences]
    cache_hits: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def chunk_size(matcher: Any) -> int:
    """Pairs per ``match_many`` call: the matcher config's ``batch_size`` (>= 1), else 1."""
    return batch_size(matcher)


def sample_groups(samples: Sequence[Sample], adapter: Any, pairs_per_group: int) -> Iterator[list[Sample]]:
    """Consecutive samples with at most ``pairs_per_group`` pairs in all (a larger sample alone), so
    that samples of one or a few pairs (Map-free) still fill the matcher's batches."""
    group: list[Sample] = []
    n = 0
    for sample in samples:
        k = len(adapter.pairs(sample))
        if group and n + k > pairs_per_group:
            yield group
            group, n = [], 0
        group.append(sample)
        n += k
    if group:
        yield group


def match_sample(matcher: Any, adapter: Any, sample: Sample, *, cache: Any = None,
                 data_root: Path | None = None, needs_gt: bool = False) -> SampleMatches:
    """Match every pair of ``sample`` (module docstring). ``cache``: a
    :class:`benchmarks.store.CorrespondenceCache` or None. Matcher exceptions propagate."""
    return match_samples(matcher, adapter, [sample], cache=cache, data_root=data_root, needs_gt=needs_gt)[0]


def match_samples(matcher: Any, adapter: Any, samples: Sequence[Sample], *, cache: Any = None,
                  data_root: Path | None = None, needs_gt: bool = False) -> list[SampleMatches]:
    """:func:`match_sample` for several samples at once: their cache misses share ``match_many``
    chunks. One :class:`SampleMatches` per sample; matcher exceptions propagate (for the group)."""
    t0 = time.perf_counter()
    pairs = [list(adapter.pairs(s)) for s in samples]
    items = [(s, i, j) for s, sp in zip(samples, pairs) for i, j in sp]
    keys = [pair_key(s.views[i], s.views[j], data_root) if cache else "" for s, i, j in items]
    out: list[Correspondences | None] = [cache.get(k) if cache else None for k in keys]
    cached = [c is not None for c in out]
    todo = [n for n, c in enumerate(out) if c is None]

    def done(n: int, corrs: Correspondences) -> None:
        out[n] = corrs
        if cache:
            cache.put(keys[n], corrs)

    def views(n: int) -> tuple[Any, Any]:
        s, i, j = items[n]
        return s.views[i], s.views[j]

    if needs_gt:
        for n in todo:
            s, i, j = items[n]
            done(n, matcher.match(*views(n), gt=adapter.gt_correspondences(s, i, j)))
    elif isinstance(matcher, BatchMatcher) and len(todo) > 1:
        step = chunk_size(matcher)
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            results = matcher.match_many([views(n) for n in chunk])
            if len(results) != len(chunk):
                raise RuntimeError(f"match_many returned {len(results)} results for {len(chunk)} pairs")
            for n, found in zip(chunk, results):
                done(n, found)
    else:
        for n in todo:
            done(n, matcher.match(*views(n)))
    seconds = time.perf_counter() - t0
    result, start = [], 0
    for sp in pairs:
        stop = start + len(sp)
        corrs = [c for c in out[start:stop] if c is not None]
        timings: dict[str, float] = defaultdict(float)
        for c in corrs:
            for stage, sec in c.timings.items():
                timings[f"matcher.{stage}"] += float(sec)
        share = (stop - start) / len(items) if items else 1.0 / len(samples)
        result.append(SampleMatches(corrs, sum(cached[start:stop]), dict(timings), seconds * share))
        start = stop
    return result


def matched_groups(matcher: Any, adapter: Any, samples: Sequence[Sample], *, cache: Any = None,
                   data_root: Path | None = None, needs_gt: bool = False
                   ) -> Iterator[tuple[Sample, SampleMatches | None]]:
    """Each sample with its matches, in order: consecutive samples of few pairs are matched together
    (:func:`sample_groups` of the matcher's chunk size); a lone sample, or every sample of a group
    whose matching raised, comes with None: the caller matches it alone (:func:`match_sample`),
    so a matcher failure stays the failure of one sample."""
    size = chunk_size(matcher) if isinstance(matcher, BatchMatcher) else 1
    for group in sample_groups(samples, adapter, size):
        matched: list[SampleMatches | None] = [None] * len(group)
        if len(group) > 1:
            try:
                matched = list(match_samples(matcher, adapter, group, cache=cache, data_root=data_root,
                                             needs_gt=needs_gt))
            except Exception as e:  # noqa: BLE001 - retried one sample at a time by the caller
                log.debug("matching %d samples together failed (%s); one by one instead", len(group), e)
        yield from zip(group, matched)
