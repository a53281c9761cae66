"""Finished runs for the paper tables: reading them, labelling them, splitting records by bucket.

Used by :mod:`benchmarks.paper` and :mod:`benchmarks.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.store import list_runs, read_json

__all__ = ["RunInfo", "flatten", "collect_runs", "distinct_labels", "nondefault_settings", "run_labels",
           "bucket_key", "bucket_records", "data_label", "SYNTHETIC_LABEL"]

SYNTHETIC_LABEL = "synthetic suite"
"""Data label of runs on the rendered suite (``mast3r-bench synth`` / the main job)."""


@dataclass(frozen=True)
class RunInfo:
    """A finished run: registry names, slug (``default`` or the non-default settings), flattened
    summary metrics, its ``config.json`` and directory."""

    bench: str
    matcher: str
    slug: str
    metrics: Mapping[str, Any]
    config: Mapping[str, Any]
    path: Path
    data: str = ""

    @property
    def label(self) -> str:
        return self.matcher if self.slug == "default" else f"{self.matcher} [{self.slug}]"


def distinct_labels(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Labels of runs (their ``config.json`` contents) that tell them apart: ``matcher [key=value,
    ...]`` with the settings whose values differ between runs of the same matcher (``#n`` appended
    if still equal)."""
    flats = [{**flatten(identity_groups(c)), "seed": c.get("seed")} for c in configs]
    names = [str(c.get("matcher", "?")) for c in configs]

    def short(k: str) -> str:
        k = k.replace("matcher_config/", "", 1).replace("_config/", ".", 1)
        return k.replace("/", ".")

    labels = list(names)
    for name in set(names):
        idx = [i for i, n in enumerate(names) if n == name]
        keys = sorted(set().union(*(flats[i] for i in idx)))
        diff = [k for k in keys if len({repr(flats[i].get(k)) for i in idx}) > 1]
        for i in idx:
            parts = ", ".join(f"{short(k)}={flats[i].get(k)}" for k in diff)
            labels[i] = name + (f" [{parts}]" if parts else "")
    counts: dict[str, int] = {}
    base = list(labels)  # count duplicates before renaming (else the last one stays unnumbered)
    for i, lab in enumerate(base):
        counts[lab] = counts.get(lab, 0) + 1
        if base.count(lab) > 1:
            labels[i] = f"{lab} #{counts[lab]}"
    return labels


def nondefault_settings(run: RunInfo) -> list[str] | None:
    """``key=value`` of the run's settings that differ from the classes' defaults (the checkpoint
    path excepted: it names the weights, it is not a variant); None when the classes are not
    importable."""
    from benchmarks.config import execution_paths, identity_dict

    if run.slug == "default":
        return []
    try:
        classes = _config_classes(run.matcher, run.bench)
        defaults = {group: identity_dict(cls()) for group, cls in classes.items()}
    except Exception:  # noqa: BLE001 - a missing adapter module must not break the tables
        return None
    out = []
    groups = identity_groups(run.config)
    for group, want in defaults.items():
        have, want = flatten(groups[group]), flatten(want)
        prefix = "" if group == "matcher_config" else group.split("_")[0] + "."
        skip = {p.replace(".", "/") for p in execution_paths(classes[group])}  # raw older config.json
        for k in sorted((set(have) | set(want)) - skip):
            if not (group == "matcher_config" and k == "checkpoint") and have.get(k) != want.get(k):
                out.append(f"{prefix}{k.replace('/', '.')}={have.get(k)}")
    if run.config.get("seed"):
        out.append(f"seed={run.config['seed']}")
    return out


def run_labels(runs: Sequence[RunInfo]) -> dict[Path, str]:
    """Per run: its matcher name when it is the only run of that matcher on the benchmark (with its
    non-default settings in brackets), else :func:`distinct_labels` within the (benchmark, matcher)
    group."""
    out: dict[Path, str] = {}
    groups: dict[tuple[str, str], list[RunInfo]] = {}
    for r in runs:
        groups.setdefault((r.bench, r.matcher), []).append(r)
    for group in groups.values():
        if len(group) == 1:
            diff = nondefault_settings(group[0])
            out[group[0].path] = (group[0].label if diff is None else
                                  group[0].matcher + (f" [{', '.join(diff)}]" if diff else ""))
            continue
        for r, lab in zip(group, distinct_labels([r.config for r in group])):
            out[r.path] = lab
    return out


GROUPS = ("matcher_config", "adapter_config", "estimator_config")


def _config_classes(matcher: str, bench: str) -> dict[str, type]:
    from benchmarks.registry import ADAPTERS, MATCHERS

    m_cls, a_cls = MATCHERS.get(matcher), ADAPTERS.get(bench)
    return {"matcher_config": m_cls.Config, "adapter_config": a_cls.Config,
            "estimator_config": a_cls.EstimatorConfig}


def identity_groups(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config groups of a ``config.json`` as today's identity dicts: an older file's renamed keys
    (``KEY_ALIASES``) are moved and its execution-only fields dropped, so that old and new runs of
    the same settings compare equal. A group whose class is not importable, or whose data does not
    load, is kept as written."""
    from benchmarks.config import from_dict, identity_dict

    out = {group: config.get(group) or {} for group in GROUPS}
    try:
        classes = _config_classes(str(config.get("matcher")), str(config.get("adapter")))
    except Exception:  # noqa: BLE001 - unknown names (or a missing module): compare as written
        return out
    for group, cls in classes.items():
        try:
            out[group] = identity_dict(from_dict(cls, out[group]))
        except Exception:  # noqa: BLE001 - the tables must not break on an odd config.json
            pass
    return out


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with ``/``-joined keys (``{"a": {"b": 1}}`` -> ``{"a/b": 1}``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}/") if isinstance(v, Mapping) else {prefix + k: v})
    return out


def data_label(manifest: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> str:
    """What a run ran on, from its ``manifest.json`` (``dataset_root``) and ``config.json``:
    ``"synthetic suite"`` (``", small"`` for the small size) for a folder the suite generator wrote
    (its ``MANIFEST.json``, else a parent folder named ``synthetic``), else the dataset folder's name
    and the adapter's ``split`` when it has one (``"mapfree, val"``); ``"data: unknown"`` without a
    manifest."""
    root = manifest.get("dataset_root") if manifest else None
    if not root:
        return "data: unknown"
    root = Path(str(root))
    try:
        from datasets.synthetic.suite import read_manifest

        suite = read_manifest(root)
    except Exception:  # noqa: BLE001 - a moved or unreadable data root leaves the path rule
        suite = None
    if suite is not None or root.parent.name == "synthetic":
        size = (suite or {}).get("size")
        return SYNTHETIC_LABEL + (f", {size}" if size and size != "default" else "")
    split = ((config or {}).get("adapter_config") or {}).get("split")
    return root.name + (f", {split}" if split else "")


def collect_runs(results_root: Path) -> list[RunInfo]:
    """Every run under ``results_root`` that has a ``summary.json`` (``data``: :func:`data_label`)."""
    out = []
    for run in list_runs(results_root):
        summary = run.read_summary()
        if summary is None:
            continue
        config = read_json(run.config_path) if run.config_path.is_file() else {}
        out.append(RunInfo(summary["bench"], summary["matcher"], summary.get("slug", run.slug),
                           flatten(summary.get("metrics", {})), config, run.path,
                           data_label(run.read_manifest(), config)))
    return out


def bucket_key(records: Sequence[Any]) -> str | None:
    """The first record meta key ending in ``bucket`` (e.g. ``pair_viewpoint_bucket``), or None."""
    for r in records:
        for key, value in r.meta.items():
            if key.endswith("bucket") and value is not None:
                return key
    return None


def bucket_records(records: Sequence[Any], key: str) -> dict[str, list[Any]]:
    """Records split by bucket; with per-pair buckets (lists), each record is cut into per-bucket
    copies whose list-valued metrics of the same length keep only that bucket's pairs."""
    from dataclasses import replace

    groups: dict[str, list[Any]] = {}
    for r in records:
        b = r.meta.get(key)
        if not isinstance(b, list):
            groups.setdefault(str(b), []).append(r)
            continue
        for name in sorted({str(x) for x in b if x is not None}):
            keep = [i for i, x in enumerate(b) if str(x) == name]
            metrics = {k: ([v[i] for i in keep] if isinstance(v, list) and len(v) == len(b) else v)
                       for k, v in r.metrics.items()}
            if "num_pairs" in metrics:
                metrics["num_pairs"] = len(keep)
            groups.setdefault(name, []).append(replace(r, metrics=metrics))
    return groups
