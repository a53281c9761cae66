"""One sample into its :class:`~benchmarks.types.Record`: match (unless already matched), solve,
evaluate. Matcher and solver exceptions become failure records
(:func:`benchmarks.run_results.failure_prediction`); ``evaluate`` errors are adapter bugs and
propagate. Used by :class:`benchmarks.runner.Runner`.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.fingerprint import META_KEY
from benchmarks.hashing import derive_seed
from benchmarks.run_errors import check_sample_files
from benchmarks.run_results import failure_prediction
from benchmarks.sample_matching import SampleMatches, match_sample
from benchmarks.types import BenchmarkAdapter, Correspondences, Matcher, Prediction, Record, Sample

__all__ = ["SampleScorer"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleScorer:
    """What scoring a sample needs from its run.

    Attributes:
        adapter, matcher: the run's. cache: its :class:`benchmarks.store.CorrespondenceCache` or None.
        data_root: pair keys hold image paths relative to it. needs_gt: call the matcher with the
        ground-truth correspondences. seed: the run's base seed (the solver gets
        ``derive_seed(seed, sample.key)``). max_pixels: image budget (:func:`check_sample_files`).
    """

    adapter: BenchmarkAdapter
    matcher: Matcher
    cache: Any
    data_root: Path
    needs_gt: bool
    seed: int
    max_pixels: int

    def __call__(self, sample: Sample, fingerprint: dict[str, str], matched: SampleMatches | None = None
                 ) -> Record:
        """The record of ``sample`` (``fingerprint``: its data fingerprint, stored in the meta)."""
        return self.solve(sample, fingerprint, self.match(sample, matched))

    def match(self, sample: Sample, matched: SampleMatches | None = None) -> SampleMatches | Prediction:
        """Phase 1 (the matcher's thread): ``matched``, or the sample matched alone, or the failure
        :class:`Prediction` of a matcher exception (or of bad data)."""
        try:
            check_sample_files(sample, self.max_pixels)
            if matched is None:
                matched = match_sample(self.matcher, self.adapter, sample, cache=self.cache,
                                       data_root=self.data_root, needs_gt=self.needs_gt)
            return matched
        except Exception as e:  # noqa: BLE001 - a failed match is a failure record
            prediction = failure_prediction("matcher", e)
            log.warning("%s: matcher failed: %s", sample.key, prediction.failure_reason)
            log.debug("%s", traceback.format_exc())
            return prediction

    def solve(self, sample: Sample, fingerprint: dict[str, str], matched: SampleMatches | Prediction
              ) -> Record:
        """Phase 2 (any thread: touches neither the matcher nor the cache): solve with the seed of
        ``sample.key`` and evaluate into the record; ``matched`` is :meth:`match`'s result."""
        timings: dict[str, float] = defaultdict(float)
        corrs: list[Correspondences] = []
        hits = 0
        seed = derive_seed(self.seed, sample.key)
        if isinstance(matched, SampleMatches):
            corrs, hits = matched.corrs, matched.cache_hits
            timings.update(matched.timings)
            timings["match"] = matched.seconds
            t0 = time.perf_counter()
            try:
                prediction = self.adapter.solve(sample, corrs, seed)
            except Exception as e:  # noqa: BLE001
                prediction = failure_prediction("solver", e, sum(len(c) for c in corrs))
                log.warning("%s: solver failed: %s", sample.key, prediction.failure_reason)
                log.debug("%s", traceback.format_exc())
            timings["solve"] = time.perf_counter() - t0
        else:
            prediction = matched
        t0 = time.perf_counter()
        metrics = self.adapter.evaluate(sample, prediction)
        timings["evaluate"] = time.perf_counter() - t0
        meta = {**dict(sample.meta), "num_matches": [len(c) for c in corrs], "cache_hits": hits,
                "seed": seed, META_KEY: fingerprint}
        return Record(sample.key, dict(metrics), asdict(prediction), meta, dict(timings))
