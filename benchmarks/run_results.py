"""What a run returns and records: :class:`RunResult`, the variant label of a run directory, the
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

__all__ = ["RunResult", "variant_slug", "failure_prediction", "status_counts", "retry_keys"]


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
