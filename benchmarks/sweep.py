"""Variant sweeps: a cartesian grid of config overrides, one run per variant, one table.

``run_sweep("mapfree", "mast3r", [("frm.subsample", ["1", "2", "4", "8", "16"]), ("c2f", ["on",
"off"])])`` runs every combination through :func:`benchmarks.runner.build_run` (same assembly, run
directories, resume and correspondence cache as ``mast3r-bench run``) and :func:`sweep_table` makes
one row per variant: the adapter's summary metrics, then ``matches/pair``, ``match s/pair``
(matching, plus the coarse-to-fine stage) and ``forward s/pair`` (network time of the forward, also
when it was served from the forward cache) from the records. This regenerates the paper's FRM study
(subsample vs accuracy vs speed).

Sharing: consecutive variants reuse one matcher object through the optional
``matcher.with_config(config)`` hook (:class:`benchmarks.capabilities.Reconfigurable`;
``mast3r``/``dust3r``: same model in memory, and the forward cache, so variants that differ only in
matching run the network once per pair). A disk forward cache (``forward_cache``;
:mod:`benchmarks.matchers._forward_cache`) also shares forwards with later sweeps.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.config import ConfigError
from benchmarks.registry import ADAPTERS, MATCHERS
from benchmarks.run_build import run_device
from benchmarks.run_setup import resolve_configs
from benchmarks.runner import RunResult, build_run
from benchmarks.store import RecordStore
from benchmarks.store import results_root as results_root_of
from benchmarks.types import Matcher, Record

__all__ = ["GridAxis", "Variant", "parse_grid", "expand_grid", "run_sweep", "pair_stats", "sweep_table",
           "SPEED_COLUMNS"]
log = logging.getLogger(__name__)

GridAxis = tuple[str, list[str]]
SPEED_COLUMNS = ("matches/pair", "match s/pair", "forward s/pair")


def parse_grid(items: Sequence[str]) -> list[GridAxis]:
    """``["frm.subsample=1,2,4", "c2f=on,off"]`` -> ``[("frm.subsample", ["1", "2", "4"]), ...]``.

    Values are split on ``;`` when the text has one (for values that contain commas, e.g. tuples:
    ``c2f_config.spread_quantiles=0.1,0.9;0.2,0.8``), else on ``,``. A key may appear only once.
    """
    axes: list[GridAxis] = []
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"--grid {item!r} is not of the form KEY=V1,V2,...")
        values = [v.strip() for v in text.split(";" if ";" in text else ",")]
        if not values or any(v == "" for v in values):
            raise ConfigError(f"--grid {item!r}: empty value")
        if key in {k for k, _ in axes}:
            raise ConfigError(f"--grid: key {key!r} given twice")
        axes.append((key, values))
    return axes


def expand_grid(axes: Sequence[GridAxis]) -> list[dict[str, str]]:
    """Cartesian product of the axes (first axis varies slowest); ``[{}]`` for no axis."""
    return [dict(zip([k for k, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


@dataclass
class Variant:
    """One grid point: ``overrides`` (grid values only), its ``label`` and its run."""

    overrides: dict[str, str]
    label: str
    result: RunResult


def _label(overrides: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "default"


def run_sweep(bench: str, matcher: str, grid: Sequence[GridAxis], *,
              overrides: Mapping[str, str] | None = None, data_root: str | Path | None = None,
              results_root: str | Path | None = None,
              limit: int | None = None, device: str | None = None, seed: int = 0, force: bool = False,
              progress: bool | None = None, forward_cache: str | Path | None = None) -> list[Variant]:
    """Run every grid point of ``matcher`` on ``bench`` (``overrides`` apply to all of them).

    Every variant's config is resolved before anything runs, so a bad key or value fails at once.
    ``forward_cache``: folder of the disk forward cache (None: in-memory sharing only).
    Returns the variants in grid order.
    """
    from benchmarks.matchers._forward_cache import ForwardCache

    adapter_cls, matcher_cls = ADAPTERS.get(bench), MATCHERS.get(matcher)
    points = expand_grid(grid)
    configs = [resolve_configs(adapter_cls, matcher_cls, {**(overrides or {}), **p}) for p in points]
    results = results_root_of(results_root)
    device = run_device(device, matcher_cls)  # once: every variant's matcher on the same device
    cache = ForwardCache(Path(forward_cache)) if forward_cache is not None else None
    out: list[Variant] = []
    previous: Matcher | None = None
    for point, cfg in zip(points, configs):
        runner = build_run(bench, matcher, configs=cfg, data_root=data_root, results_root=results,
                           limit=limit, device=device, seed=seed, force=force, progress=progress,
                           previous=previous, forward_cache=cache)
        previous = runner.matcher
        log.info("sweep %s/%s: %s", bench, matcher, _label(point))
        out.append(Variant(dict(point), _label(point), runner.run()))
    return out


def pair_stats(records: Sequence[Record]) -> dict[str, float | None]:
    """Per-pair means over a run's records: ``matches/pair`` (from ``meta.num_matches``), ``match
    s/pair`` (``matcher.match`` + ``matcher.c2f`` timings) and ``forward s/pair``
    (``matcher.forward``). None when no pair was matched."""
    pairs = sum(len(r.meta.get("num_matches") or []) for r in records)
    if not pairs:
        return dict.fromkeys(SPEED_COLUMNS)
    matches = sum(sum(r.meta.get("num_matches") or []) for r in records)

    def total(*stages: str) -> float:
        return sum(float(r.timings.get(f"matcher.{s}", 0.0) or 0.0) for r in records for s in stages)

    has_forward = any("matcher.forward" in r.timings for r in records)
    return {"matches/pair": matches / pairs, "match s/pair": total("match", "c2f") / pairs,
            "forward s/pair": total("forward") / pairs if has_forward else None}


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}/"))
        elif v is None or isinstance(v, (int, float, str, bool)):
            out[prefix + k] = v
    return out


def sweep_table(variants: Sequence[Variant], metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per variant (index ``variant``): ``n``, ``failures``, the summary metrics (``metrics``
    restricts and orders them; all-empty ones are dropped; a ``num_failures`` metric equal to
    ``failures`` is not repeated) and :data:`SPEED_COLUMNS`."""
    rows = []
    for v in variants:
        summary = v.result.summary
        records = list(RecordStore(v.result.run_dir.records_path).load().values())
        found = _flatten(summary.get("metrics", {}))
        if found.get("num_failures") == summary.get("num_failures"):
            found.pop("num_failures", None)  # one failures column
        if metrics is not None:
            missing = [m for m in metrics if m not in found]
            if missing:
                raise ConfigError(f"unknown metric(s) {', '.join(missing)} (known: {', '.join(found)})")
            found = {m: found[m] for m in metrics}
        rows.append({"variant": v.label, "n": summary.get("num_records"),
                     "failures": summary.get("num_failures"), **found, **pair_stats(records)})
    frame = pd.DataFrame(rows).set_index("variant")
    keep = [c for c in frame.columns if c in SPEED_COLUMNS or c in ("n", "failures")
            or not frame[c].map(lambda x: x is None or (isinstance(x, float) and math.isnan(x))).all()]
    return frame[keep]
