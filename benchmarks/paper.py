"""The MASt3R paper's tables regenerated from the runs present, beside the published numbers.

Tables (:data:`PAPER_TABLES`): ``mapfree`` (Map-free), ``relpose`` (CO3Dv2 / RealEstate10K),
``visloc`` (Aachen / InLoc), ``dtu`` (DTU), plus ``frm`` (the FRM study: subsample vs accuracy vs
speed, from the ``mast3r`` runs) and ``buckets`` (a viewpoint-bucket split of every run whose records
carry a ``*bucket`` meta key, as the synthetic suite's do).

Published numbers come from ``benchmarks/data/published.csv`` (columns ``table, benchmark, method,
metric, value, unit, citation, verified, note``; numbers from ``spec/benchmarks.md`` §(e), ``verified``
exactly as the spec marks them). Every cell says where it comes from: each metric has an ``ours``
and a ``paper`` column; unverified published values carry a dagger; cells without a run are empty.
A published method is put on the same row as our run of the matching matcher (``MASt3R`` ->
``mast3r``, ``DUSt3R``/``DUSt3R (pairwise)`` -> ``dust3r``) when that run has the default settings
(the checkpoint path aside); other runs get their own rows (``matcher [settings]``).
Our summary keys are mapped to the paper's metrics by :class:`MetricSpec` (with unit factors, e.g.
fractions -> percent). Markdown, CSV (long format: one value per line) and LaTeX (booktabs).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from benchmarks.paper_runs import (
    RunInfo,
    bucket_key,
    bucket_records,
    collect_runs,
    distinct_labels,
    flatten,
    nondefault_settings,
    run_labels,
)
from benchmarks.store import RecordStore

__all__ = ["MetricSpec", "PaperTable", "PAPER_TABLES", "RunInfo", "Cell", "load_published", "collect_runs",
           "distinct_labels", "nondefault_settings", "paper_cells", "frm_cells", "bucket_cells",
           "render_cells", "write_paper_tables"]
log = logging.getLogger(__name__)

PUBLISHED_COLUMNS = ("table", "benchmark", "method", "metric", "value", "unit", "citation", "verified",
                     "note")
METHOD_MATCHERS = {"MASt3R": "mast3r", "DUSt3R": "dust3r", "DUSt3R (pairwise)": "dust3r"}
DAGGER = "†"


@dataclass(frozen=True)
class MetricSpec:
    """A paper metric: ``id`` (as in published.csv), column ``label``, ``unit`` and the candidate
    summary keys of our adapters with the factor that converts each to the paper's unit (the first
    key present wins; the id itself is tried last)."""

    id: str
    label: str
    unit: str = ""
    keys: tuple[tuple[str, float], ...] = ()

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        for key, factor in (*self.keys, (self.id, 1.0)):
            v = metrics.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                return float(v) * factor
        return None


@dataclass(frozen=True)
class PaperTable:
    """``id``, ``title`` and the metrics of each benchmark (in column order)."""

    id: str
    title: str
    metrics: Mapping[str, tuple[MetricSpec, ...]] = field(default_factory=dict)


def _m(mid: str, label: str, unit: str, *keys: str | tuple[str, float]) -> MetricSpec:
    return MetricSpec(mid, label, unit, tuple(k if isinstance(k, tuple) else (k, 1.0) for k in keys))


def _recalls(conds: Sequence[str], thresholds: Sequence[tuple[float, float]]) -> tuple[MetricSpec, ...]:
    out = []
    for c in conds:
        for t, r in thresholds:
            tail = f"{t:g}m_{r:g}deg_pct"
            out.append(_m(f"{c}_{tail}", f"{c} {t:g}m,{r:g}°", "%", f"{c}_recall_{tail}",
                          f"{c.upper()}_recall_{tail}"))
    return tuple(out)


_RELPOSE = (_m("rra15_pct", "RRA@15", "%", "rra15_category_mean_pct", "rra15_pooled_pct"),
            _m("rta15_pct", "RTA@15", "%", "rta15_category_mean_pct", "rta15_pooled_pct"),
            _m("maa30_pct", "mAA(30)", "%", "maa30_category_mean_pct", "maa30_pooled_pct"))
PAPER_TABLES: dict[str, PaperTable] = {t.id: t for t in (
    PaperTable("mapfree", "Map-free relocalization (paper: test set, single frame)", {"mapfree": (
        _m("vcre_auc", "VCRE AUC", "", "auc_vcre"),
        _m("vcre_median_px", "Med. VCRE", "px", "avg_median_vcre_px"),
        _m("vcre_precision_pct", "VCRE Prec.", "%", "precision_vcre_pct", ("precision_vcre", 100.0)),
        _m("trans_median_m", "Med. trans.", "m", "avg_median_trans_err_m"),
        _m("rot_median_deg", "Med. rot.", "deg", "avg_median_rot_err_deg"),
        _m("pose_precision_pct", "Pose Prec.", "%", "precision_pose_pct", ("precision_pose", 100.0)),
        _m("pose_auc", "Pose AUC", "", "auc_pose"))}),
    PaperTable("relpose", "Multi-view relative pose: CO3Dv2 and RealEstate10K (10 frames)",
               {"co3dv2": _RELPOSE, "re10k": _RELPOSE}),
    PaperTable("visloc", "Visual localization: Aachen Day-Night v1.1 and InLoc (recall %)", {
        "aachen": _recalls(("day", "night"), ((0.25, 2), (0.5, 5), (5, 10))),
        "inloc": _recalls(("duc1", "duc2"), ((0.25, 10), (0.5, 10), (1, 10)))}),
    PaperTable("dtu", "DTU multi-view stereo (mm, lower is better)", {"dtu": (
        _m("acc_mm", "Acc.", "mm", "accuracy_mm", "mean_accuracy_mm"),
        _m("comp_mm", "Comp.", "mm", "completeness_mm", "mean_completeness_mm"),
        _m("overall_mm", "Overall", "mm", "chamfer_mm", "mean_overall_mm"))}),
)}


@dataclass(frozen=True)
class Cell:
    """One value of a paper table. ``source`` is ``"ours"`` or ``"paper"``."""

    table: str
    row: str
    bench: str
    metric: str
    label: str
    source: str
    value: float | str | None
    unit: str = ""
    verified: bool | None = None
    citation: str = ""


def load_published(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Rows of published.csv (``value`` float, ``verified`` bool); a bad line raises ValueError
    naming the file and line."""
    if path is None:
        text = resources.files("benchmarks").joinpath("data/published.csv").read_text()
        where = "benchmarks/data/published.csv"
    else:
        text, where = Path(path).read_text(), str(path)
    reader = csv.DictReader(text.splitlines())
    if tuple(reader.fieldnames or ()) != PUBLISHED_COLUMNS:
        raise ValueError(f"{where}:1: expected columns {','.join(PUBLISHED_COLUMNS)}, "
                         f"got {reader.fieldnames}")
    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            value = float(row["value"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}:{line}: value {row['value']!r} is not a number") from None
        if row["verified"] not in ("true", "false"):
            raise ValueError(f"{where}:{line}: verified must be true or false, got {row['verified']!r}")
        rows.append({**row, "value": value, "verified": row["verified"] == "true"})
    return rows


def _fmt_num(v: float) -> str:
    return f"{v:.4g}"


def paper_cells(table: PaperTable, runs: Sequence[RunInfo],
                published: Sequence[Mapping[str, Any]]) -> list[Cell]:
    """Cells of one paper table: published values, and ours for every run on its benchmarks."""
    cells: list[Cell] = []
    specs = {(b, m.id): m for b, ms in table.metrics.items() for m in ms}
    merged: dict[tuple[str, str], str] = {}  # (bench, our run label) -> published method row
    for p in published:
        if p["table"] != table.id:
            continue
        spec = specs.get((p["benchmark"], p["metric"]))
        if spec is None:
            log.warning("published.csv: metric %s/%s is not in paper table %s", p["benchmark"], p["metric"],
                        table.id)
            continue
        cells.append(Cell(table.id, p["method"], p["benchmark"], spec.id, spec.label, "paper", p["value"],
                          p["unit"], p["verified"], p["citation"]))
        if p["method"] in METHOD_MATCHERS:
            merged[(p["benchmark"], METHOD_MATCHERS[p["method"]])] = p["method"]
    labels = run_labels(runs)
    for run in runs:
        if run.bench not in table.metrics:
            continue
        row = merged.get((run.bench, run.matcher)) if nondefault_settings(run) == [] else None
        row = row or f"{labels[run.path]} (ours)"
        for spec in table.metrics[run.bench]:
            cells.append(Cell(table.id, row, run.bench, spec.id, spec.label, "ours", spec.value(run.metrics),
                              spec.unit))
    return cells


def _headline(run: RunInfo) -> tuple[str, float | None]:
    """The first paper metric of the run's benchmark that has a value; for benchmarks outside the
    paper (smoke), the first numeric summary metric that is not a count."""
    for table in PAPER_TABLES.values():
        for spec in table.metrics.get(run.bench, ()):
            v = spec.value(run.metrics)
            if v is not None:
                return spec.label, v
    for key, v in run.metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not key.startswith("num_"):
            return key, float(v)
    return "", None


def frm_cells(runs: Sequence[RunInfo]) -> list[Cell]:
    """The FRM study from every ``mast3r`` run: FRM subsample (``dense`` for exhaustive NN),
    coarse-to-fine, the benchmark's first paper metric, matches / matching time / network time per
    pair. The paper gives no verified numbers for it (none in published.csv)."""
    from benchmarks.sweep import pair_stats

    cells = []
    mine = sorted((r for r in runs if r.matcher == "mast3r"), key=lambda r: (r.bench, r.slug))
    labels = run_labels(mine)
    for run in mine:
        mc = run.config.get("matcher_config", {})
        frm = mc.get("frm", {})
        row = f"{run.bench}: {labels[run.path]}"
        label, value = _headline(run)
        stats = pair_stats(list(RecordStore(run.path / "records.jsonl").load().values()))
        sub = "dense" if frm.get("dense") else frm.get("subsample")
        c2f = "on" if mc.get("c2f") else "off"
        for metric, val in (("subsample", sub), ("c2f", c2f), (label or "metric", value), *stats.items()):
            cells.append(Cell("frm", row, run.bench, metric, metric, "ours", val))
    return cells


def bucket_cells(runs: Sequence[RunInfo], data_root: Path | None = None) -> list[Cell]:
    """Per-bucket summaries (``adapter.summarize`` on each bucket's records) of the runs whose records
    carry a ``*bucket`` meta key, for the benchmark's first three paper metrics."""
    from benchmarks.config import from_dict
    from benchmarks.registry import ADAPTERS
    from benchmarks.run_setup import resolve_data_root

    cells = []
    labels = run_labels(runs)
    for run in runs:
        records = list(RecordStore(run.path / "records.jsonl").load().values())
        key = bucket_key(records)
        specs = [s for t in PAPER_TABLES.values() for s in t.metrics.get(run.bench, ())][:3]
        if key is None or not specs or run.bench not in ADAPTERS:
            continue
        try:
            cls = ADAPTERS.get(run.bench)
            root = resolve_data_root(data_root) / getattr(cls, "data_dir", run.bench)
            adapter = cls(root, from_dict(cls.Config, run.config.get("adapter_config", {})),
                          from_dict(cls.EstimatorConfig, run.config.get("estimator_config", {})))
            groups = {b: flatten(adapter.summarize(rs)) for b, rs in bucket_records(records, key).items()}
        except Exception as e:  # noqa: BLE001 - one unreadable run must not hide the others
            log.warning("%s: no bucket split (%s: %s)", run.path, type(e).__name__, e)
            continue
        for bucket in sorted(groups):
            for spec in specs:
                cells.append(Cell("buckets", f"{run.bench}: {labels[run.path]}", run.bench,
                                  f"{bucket}/{spec.id}", f"{bucket} {spec.label}", "ours",
                                  spec.value(groups[bucket]), spec.unit))
    return cells


def _text(cell: Cell | None, fmt: str, cites: Sequence[str] = ()) -> str:
    if cell is None or cell.value is None:
        return ""
    text = _fmt_num(cell.value) if isinstance(cell.value, float) else str(cell.value)
    if cell.source == "paper" and cell.verified is False:
        text += "$^\\dagger$" if fmt == "latex" else DAGGER
    if cell.citation and len(cites) > 1:
        text += f" [{list(cites).index(cell.citation) + 1}]"
    return text


def _latex_escape(s: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"),
                 ("°", "$^\\circ$")):
        s = s.replace(a, b)
    return s


def render_cells(cells: Sequence[Cell], fmt: str = "md", title: str = "",
                 order: Sequence[tuple[str, str]] = ()) -> str:
    """Markdown / LaTeX: rows in first-seen order, metric columns in ``order`` (``(bench, metric)``;
    others after, first-seen), two columns (ours, paper) per metric when a published value exists,
    published values tagged with their citation ``[n]`` when the table cites several sources;
    CSV: one cell per line."""
    if fmt == "csv":
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["table", "row", "benchmark", "metric", "source", "value", "unit", "verified", "citation"])
        for c in cells:
            w.writerow([c.table, c.row, c.bench, c.metric, c.source, "" if c.value is None else c.value,
                        c.unit, "" if c.verified is None else str(c.verified).lower(), c.citation])
        return buf.getvalue()
    rows = list(dict.fromkeys(c.row for c in cells))
    seen = {(c.bench, c.metric) for c in cells}
    metrics = list(dict.fromkeys([m for m in order if m in seen] + [(c.bench, c.metric) for c in cells]))
    benches = {b for b, _ in metrics}
    has_paper = {(c.bench, c.metric) for c in cells if c.source == "paper"}
    by = {(c.row, c.bench, c.metric, c.source): c for c in cells}
    labels = {(c.bench, c.metric): c.label + (f" ({c.unit})" if c.unit else "") for c in cells}
    cols = [(b, m, s) for b, m in metrics for s in (("ours", "paper") if (b, m) in has_paper else ("ours",))]
    header = [(f"{b} " if len(benches) > 1 else "") + labels[(b, m)]
              + (f" [{s}]" if (b, m) in has_paper else "") for b, m, s in cols]
    cites = list(dict.fromkeys(c.citation for c in cells if c.citation))
    body = [[r, *(_text(by.get((r, b, m, s)), fmt, cites) for b, m, s in cols)] for r in rows]
    notes = ([f"{DAGGER} recalled, not verified against the paper"] if any(
        c.verified is False for c in cells) else []) + [f"[{i + 1}] {t}" for i, t in enumerate(cites)]
    if fmt == "latex":
        lines = ["\\begin{tabular}{l" + "r" * len(cols) + "}", "\\toprule",
                 " & ".join(["method", *map(_latex_escape, header)]) + " \\\\", "\\midrule"]
        lines += [" & ".join([_latex_escape(r[0]), *r[1:]]) + " \\\\" for r in body]
        lines += ["\\bottomrule", "\\end{tabular}"]
        return "\n".join([f"% {title}" if title else "", *lines, *(f"% {n}" for n in notes)]).lstrip() + "\n"
    if fmt != "md":
        raise ValueError(f"unknown format {fmt!r} (md, csv, latex)")
    from tabulate import tabulate

    text = tabulate(body, headers=["method", *header], tablefmt="github", disable_numparse=True)
    parts = [f"### {title}" if title else "", text, "\n".join(notes)]
    return "\n\n".join(p for p in parts if p) + "\n"


def write_paper_tables(results_root: Path, out_dir: Path, published: Sequence[Mapping[str, Any]],
                       data_root: Path | None = None) -> dict[str, dict[str, str]]:
    """All paper tables, written as ``<out_dir>/paper-<id>.{md,csv,tex}``; returns
    ``{table id: {format: text}}`` (tables without any cell are skipped)."""
    runs = collect_runs(results_root)
    tables: dict[str, tuple[str, list[Cell]]] = {
        t.id: (t.title, paper_cells(t, runs, published)) for t in PAPER_TABLES.values()}
    tables["frm"] = ("FRM study: subsample vs accuracy vs speed (mast3r runs; no published numbers)",
                     frm_cells(runs))
    tables["buckets"] = ("Viewpoint-bucket split (runs whose records carry a viewpoint bucket)",
                         bucket_cells(runs, data_root))
    out: dict[str, dict[str, str]] = {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for tid, (title, cells) in tables.items():
        if not cells:
            continue
        out[tid] = {}
        spec = PAPER_TABLES.get(tid)
        order = [(b, m.id) for b, ms in spec.metrics.items() for m in ms] if spec else []
        for fmt, ext in (("md", "md"), ("csv", "csv"), ("latex", "tex")):
            out[tid][fmt] = render_cells(cells, fmt, title, order)
            (out_dir / f"paper-{tid}.{ext}").write_text(out[tid][fmt])
    return out
