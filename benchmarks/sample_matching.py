"""Correspondences for every pair of one sample: the correspondence cache first, then the matcher.

Cache misses go to the matcher's optional ``match_many`` in chunks of its ``config.batch_size``
pairs (so a network matcher batches its forwards, and each chunk is cached as soon as it is done),
else to ``match`` one pair at a time. Ground-truth matchers (``needs_ground_truth``) always get
``match(view0, view1, gt=adapter.gt_correspondences(sample, i, j))``. Results come back in the
adapter's pair order whatever was cached.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.hashing import pair_key
from benchmarks.types import Correspondences, Sample

__all__ = ["SampleMatches", "match_sample", "chunk_size"]


@dataclass
class SampleMatches:
    """The pairs of one sample, in ``adapter.pairs(sample)`` order.

    Attributes:
        corrs: one :class:`Correspondences` per pair.
        cache_hits: pairs read from the correspondence cache.
        timings: matcher stage seconds summed over the pairs (``matcher.<stage>``, cached pairs
            included with the seconds they took when computed).
    """

    corrs: list[Correspondences]
    cache_hits: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def chunk_size(matcher: Any) -> int:
    """Pairs per ``match_many`` call: the matcher config's ``batch_size`` (>= 1), else 1."""
    return max(1, int(getattr(getattr(matcher, "config", None), "batch_size", 1) or 1))


def match_sample(matcher: Any, adapter: Any, sample: Sample, *, cache: Any = None,
                 data_root: Path | None = None, needs_gt: bool = False) -> SampleMatches:
    """Match every pair of ``sample`` (module docstring). ``cache``: a
    :class:`benchmarks.store.CorrespondenceCache` or None. Matcher exceptions propagate."""
    pairs = list(adapter.pairs(sample))
    views = sample.views
    keys = [pair_key(views[i], views[j], data_root) if cache else "" for i, j in pairs]
    out: list[Correspondences | None] = [cache.get(k) if cache else None for k in keys]
    hits = sum(c is not None for c in out)
    todo = [n for n, c in enumerate(out) if c is None]

    def done(n: int, corrs: Correspondences) -> None:
        out[n] = corrs
        if cache:
            cache.put(keys[n], corrs)

    if needs_gt:
        for n in todo:
            i, j = pairs[n]
            done(n, matcher.match(views[i], views[j], gt=adapter.gt_correspondences(sample, i, j)))
    elif hasattr(matcher, "match_many") and len(todo) > 1:
        step = chunk_size(matcher)
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            results = matcher.match_many([(views[pairs[n][0]], views[pairs[n][1]]) for n in chunk])
            if len(results) != len(chunk):
                raise RuntimeError(f"match_many returned {len(results)} results for {len(chunk)} pairs")
            for n, corrs in zip(chunk, results):
                done(n, corrs)
    else:
        for n in todo:
            i, j = pairs[n]
            done(n, matcher.match(views[i], views[j]))
    corrs = [c for c in out if c is not None]
    timings: dict[str, float] = defaultdict(float)
    for c in corrs:
        for stage, sec in c.timings.items():
            timings[f"matcher.{stage}"] += float(sec)
    return SampleMatches(corrs, hits, dict(timings))
