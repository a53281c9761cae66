"""What a run returns and records: :class:`RunResult` (and :class:`RunOutcome`, the part rank 0
broadcasts), the summary of its records, the variant label of a run directory, the
failure record of a sample, and the counts of a run's records by status (ok, method failure,
``data_error``: see :mod:`benchmarks.run_errors`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.config import identity_dict
from benchmarks.hashing import RunSpec
from benchmarks.run_errors import (
    DATA_ERROR,
    data_error_files,
    is_data_error,
    is_resource_error,
    record_status,
)
from benchmarks.store import RunDir
from benchmarks.types import Prediction, Record

__all__ = ["RunResult", "RunOutcome", "run_summary", "variant_slug", "failure_prediction", "status_counts",
           "retry_keys"]


@dataclass
class RunResult:
    """Outcome of :meth:`Runner.run`.

    Attributes:
        run_dir: the run's directory.
        spec: what identifies it.
        summary: the content of ``summary.json`` (``metrics`` = ``adapter.summarize(records)``).
        expected: samples in the requested prefix; done: records present; computed: records written
            by this call (all ranks); failures: method failures (``prediction.success == False``,
            data errors excluded); data_errors: ``(sample key, "<file>: <problem>")`` of the
            ``data_error`` records.
        extra: ``rank`` and ``world_size`` of this process.
    """

    run_dir: RunDir
    spec: RunSpec
    summary: dict[str, Any]
    expected: int
    done: int
    computed: int
    failures: int = 0
    data_errors: list[tuple[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    """What a finished (or already finished) run reports: rank 0 computes it and broadcasts it, every
    rank turns it into its :class:`RunResult` (fields as there)."""

    summary: dict[str, Any]
    expected: int
    done: int
    computed: int
    failures: int = 0
    data_errors: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, summary: dict[str, Any], expected: int, records: Mapping[str, Record], computed: int
           ) -> RunOutcome:
        """The outcome of a run whose records are ``records`` (``computed`` of them written now)."""
        failures, bad = status_counts(records)
        return cls(summary, expected, len(records), computed, failures, tuple(bad))

    def result(self, run_dir: RunDir, spec: RunSpec, extra: dict[str, Any]) -> RunResult:
        return RunResult(run_dir, spec, self.summary, self.expected, self.done, self.computed,
                         self.failures, list(self.data_errors), extra)


def run_summary(spec: RunSpec, slug: str, records: Mapping[str, Record], adapter: Any) -> dict[str, Any]:
    """The content of ``summary.json`` (``exports`` aside): counts, the data errors, and
    ``adapter.summarize`` of the records that are no data error (they say nothing of the method)."""
    failures, bad = status_counts(records)
    errors = {k for k, _ in bad}
    return {
        "bench": spec.bench, "matcher": spec.matcher, "slug": slug, "key": spec.key,
        "num_records": len(records), "num_failures": failures,
        "num_data_errors": len(bad), "data_errors": [{"key": k, "error": e} for k, e in bad],
        "metrics": adapter.summarize([r for k, r in records.items() if k not in errors]),
    }


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def variant_slug(configs: dict[str, Any], seed: int = 0) -> str:
    """A readable label of the settings that differ from the defaults, e.g.
    ``"estimator.max_error_px=2.0"``; ``"default"`` when none do; a path value is shortened to its file
    name (``matcher.checkpoint=w.pth``); execution-only settings are left out (they are not part of
    the run: :func:`benchmarks.config.identity_dict`). Configs whose class cannot be built
    without arguments are compared field by field against nothing (all fields listed)."""
    parts = []
    for group, cfg in configs.items():
        try:
            defaults = _flat(identity_dict(type(cfg)()))
        except TypeError:
            defaults = {}
        for key, value in _flat(identity_dict(cfg)).items():
            if key not in defaults or defaults[key] != value:
                value = Path(value).name if isinstance(value, str) and "/" in value else value  # no paths
                parts.append(f"{group}.{key}={value}")
    if seed:
        parts.append(f"seed={seed}")
    return ",".join(parts) or "default"


def failure_prediction(stage: str, exc: BaseException, n_matches: int = 0) -> Prediction:
    """The failed :class:`Prediction` of a sample whose matcher (``stage="matcher"``) or solver raised
    ``exc``: ``data_error: <file>: <problem>`` for bad data, else ``<stage>_error: <Type>: <msg>``.
    A disk error (full, read-only) is re-raised: it stops the run."""
    if is_resource_error(exc):
        raise exc  # a full or read-only disk stops the run: it is no failure of the method
    msg = str(exc).splitlines()[0][:300] if str(exc) else ""
    if is_data_error(exc):
        return Prediction(False, failure_reason=f"{DATA_ERROR}: {msg}", num_matches=n_matches)
    return Prediction(False, failure_reason=f"{stage}_error: {type(exc).__name__}: {msg}",
                      num_matches=n_matches)


def status_counts(records: Mapping[str, Record]) -> tuple[int, list[tuple[str, str]]]:
    """Method failures, and ``(key, "<file>: <problem>")`` of the data errors, of ``records``."""
    status = {k: record_status(r.prediction) for k, r in records.items()}
    bad = [(k, data_error_files(records[k].prediction)) for k, st in status.items() if st == DATA_ERROR]
    return sum(st == "failure" for st in status.values()), bad


def retry_keys(records: Mapping[str, Record], keys: list[str], retry_failed: bool) -> set[str]:
    """Keys among ``keys`` whose record a run recomputes: data errors, and failures if ``retry_failed``."""
    redo = {DATA_ERROR, "failure"} if retry_failed else {DATA_ERROR}
    wanted = set(keys)
    return {k for k, r in records.items() if k in wanted and record_status(r.prediction) in redo}
