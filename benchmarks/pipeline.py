"""Pipelined execution of a run: the CPU solvers of earlier samples overlap the matching of later ones.

:func:`scored_records` yields one :class:`~benchmarks.types.Record` per sample, in sample order. With
``workers == 0`` it is the serial path (match, solve, evaluate, one sample after the other). With
``workers = N > 0`` the matching (the matcher, its correspondence cache, the data fingerprints) stays
on the calling thread, and each matched sample's solve + evaluate
(:meth:`benchmarks.sample_eval.SampleScorer.solve`) goes to a pool of N threads (numpy, OpenCV and
pycolmap's estimators do their work without the GIL). At most ``in_flight`` samples (default
``2 * N``) are matched and not yet recorded, so memory stays bounded and a killed run loses at most
those. Results are bit-identical to the serial path: every solver gets
``derive_seed(seed, sample.key)`` whatever thread runs it, and records come back in sample order.

A matcher that prepares inputs on the host (image decoding) does it inside its own ``match_many``;
no prefetch of the next group happens here (see the README's "Runs" section).
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from benchmarks.sample_eval import SampleScorer
from benchmarks.sample_matching import SampleMatches
from benchmarks.types import Record, Sample

__all__ = ["Execution", "SERIAL", "scored_records"]


@dataclass(frozen=True)
class Execution:
    """How a run executes (recorded in ``manifest.json`` under ``execution.runner``; not part of the
    run identity: results are the same for every value).

    Attributes:
        workers: solver threads (0: the serial path).
        in_flight: most samples matched and not yet recorded (0: ``2 * workers``).
    """

    workers: int = 0
    in_flight: int = 0

    def __post_init__(self) -> None:
        if self.workers < 0 or self.in_flight < 0:
            raise ValueError(f"workers and in_flight must be >= 0, got {self.workers}, {self.in_flight}")

    @property
    def window(self) -> int:
        """Samples in flight at most (>= 1)."""
        return max(1, self.in_flight or 2 * self.workers)

    def as_dict(self) -> dict[str, int]:
        return {"workers": self.workers, "in_flight": self.window if self.workers else 0}


SERIAL = Execution()
"""Today's serial path (no pool)."""


def scored_records(groups: Iterable[tuple[Sample, SampleMatches | None]], scorer: SampleScorer,
                   fingerprint: Callable[[Sample], dict[str, str]], execution: Execution = SERIAL,
                   sleep: float = 0.0) -> Iterator[Record]:
    """The record of each ``(sample, matches or None)`` of ``groups``
    (:func:`benchmarks.sample_matching.matched_groups`), in order. ``fingerprint(sample)``: its data
    fingerprint (called on this thread). ``sleep``: seconds before each sample (test hook).
    Exceptions (an adapter's ``evaluate``, a disk error, Ctrl-C) propagate on this thread, in order;
    samples still in flight are dropped (their solves are cancelled or left to finish)."""
    if execution.workers == 0:
        for sample, matched in groups:
            if sleep:
                time.sleep(sleep)
            yield scorer(sample, fingerprint(sample), matched)
        return
    pending: collections.deque[Future[Record]] = collections.deque()
    pool = ThreadPoolExecutor(max_workers=execution.workers, thread_name_prefix="mast3r-bench-solve")
    try:
        for sample, matched in groups:
            if sleep:
                time.sleep(sleep)
            fp = fingerprint(sample)
            found = scorer.match(sample, matched)
            pending.append(pool.submit(scorer.solve, sample, fp, found))
            while pending and (len(pending) >= execution.window or pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False, cancel_futures=True)
