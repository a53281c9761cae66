"""The MASt3R paper's tables regenerated from the runs present, beside the published numbers.

Tables (:data:`PAPER_TABLES`): ``mapfree`` (Map-free, Table 2), ``relpose`` (CO3Dv2 / RealEstate10K,
Table 3 left), ``visloc`` (Aachen / InLoc, Table 4), ``dtu`` (DTU, Table 3 right), plus ``frm`` (the FRM
study: subsample vs accuracy vs speed, from the ``mast3r`` runs) and ``buckets`` (a viewpoint-bucket
split of every run whose records carry a ``*bucket`` meta key, as the synthetic suite's do).

Published numbers come from ``benchmarks/data/published.csv`` (columns ``table, benchmark, method,
metric, value, unit, citation, verified, note``): every value of those paper tables as
``spec/published_numbers.md`` verified it, each citing its table (arXiv:2406.09756v1). Rows: the
paper's methods (``source`` ``paper``), then one row per run of ours, labelled with the data it ran
on (``sift (ours, synthetic suite)``, ``mast3r (ours, mapfree, val)``): a number of ours never sits
on a paper row, so a synthetic-suite number cannot pass for a test-set one. Columns: the paper's
metrics in the paper's order and units (:class:`MetricSpec` maps our summary keys, with unit
factors, e.g. fractions -> percent). Markdown (split per benchmark when wider than
:data:`MAX_WIDTH`), CSV (long format: one value per line) and LaTeX (booktabs).
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

from benchmarks.mdtable import MAX_WIDTH, markdown_table, width, wrap_notes
from benchmarks.paper_runs import (
    SYNTHETIC_LABEL,
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
           "render_cells", "write_paper_tables", "ours_label", "MAX_WIDTH", "TABLE_NOTES", "BENCH_NOTES"]
log = logging.getLogger(__name__)

PUBLISHED_COLUMNS = ("table", "benchmark", "method", "metric", "value", "unit", "citation", "verified",
                     "note")
DAGGER = "†"


@dataclass(frozen=True)
class MetricSpec:
    """A paper metric: ``id`` (as in published.csv), column ``label``, ``unit`` and the candidate
    summary keys of our adapters with the factor that converts each to the paper's unit (the first
    key present wins; the id itself is tried last). ``header``: the column header (default: ``label
    (unit)``; compact tables name the unit in the label or the table's note instead)."""

    id: str
    label: str
    unit: str = ""
    keys: tuple[tuple[str, float], ...] = ()
    header: str = ""

    @property
    def column(self) -> str:
        """The column header."""
        return self.header or (f"{self.label} ({self.unit})" if self.unit else self.label)

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        for key, factor in (*self.keys, (self.id, 1.0)):
            v = metrics.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                return float(v) * factor
        return None


@dataclass(frozen=True)
class PaperTable:
    """``id``, ``title`` and the metrics of each benchmark (in column order); ``note``: the legend
    printed under the table (column abbreviations, thresholds)."""

    id: str
    title: str
    metrics: Mapping[str, tuple[MetricSpec, ...]] = field(default_factory=dict)
    note: str = ""


def _m(mid: str, label: str, unit: str, *keys: str | tuple[str, float], header: str = "") -> MetricSpec:
    return MetricSpec(mid, label, unit, tuple(k if isinstance(k, tuple) else (k, 1.0) for k in keys), header)


def _recalls(conds: Sequence[str], thresholds: Sequence[tuple[float, float]]) -> tuple[MetricSpec, ...]:
    out = []
    for c in conds:
        for t, r in thresholds:
            tail = f"{t:g}m_{r:g}deg_pct"
            name = c.upper() if c.startswith("duc") else c
            out.append(_m(f"{c}_{tail}", f"{name} {t:g}m,{r:g}°", "%", f"{c}_recall_{tail}",
                          f"{c.upper()}_recall_{tail}", header=f"{name} {t:g}"))
    return tuple(out)


_RELPOSE = (_m("rra15_pct", "RRA@15", "%", "rra15_category_mean_pct", "rra15_pooled_pct"),
            _m("rta15_pct", "RTA@15", "%", "rta15_category_mean_pct", "rta15_pooled_pct"),
            _m("maa30_pct", "mAA(30)", "%", "maa30_category_mean_pct", "maa30_pooled_pct"))
_MAPFREE_NOTE = ("VCRE px, trans m, rot °: median errors; VCRE %: precision at VCRE < 90 px; pose %: "
                 "precision at < 25 cm and 5°; AUC: area under the precision-recall curve (Map-free).")
PAPER_TABLES: dict[str, PaperTable] = {t.id: t for t in (
    PaperTable("mapfree", "Map-free relocalization (paper: Table 2, test set, single frame)", {"mapfree": (
        _m("vcre_median_px", "VCRE med.", "px", "avg_median_vcre_px", header="VCRE px"),
        _m("vcre_precision_pct", "VCRE prec.", "%", "precision_vcre_pct", ("precision_vcre", 100.0),
           header="VCRE %"),
        _m("vcre_auc", "VCRE AUC", "", "auc_vcre"),
        _m("trans_median_m", "trans. med.", "m", "avg_median_trans_err_m", header="trans m"),
        _m("rot_median_deg", "rot. med.", "deg", "avg_median_rot_err_deg", header="rot °"),
        _m("pose_precision_pct", "pose prec.", "%", "precision_pose_pct", ("precision_pose", 100.0),
           header="pose %"),
        _m("pose_auc", "pose AUC", "", "auc_pose"))}, _MAPFREE_NOTE),
    PaperTable("relpose", "Multi-view relative pose: CO3Dv2 and RealEstate10K (paper: Table 3 left)",
               {"co3dv2": _RELPOSE, "re10k": _RELPOSE},
               "RRA@15 / RTA@15: % of pairs with rotation / translation-direction error < 15°; mAA(30): "
               "mean accuracy of min(RRA, RTA) over thresholds up to 30°."),
    PaperTable("visloc", "Visual localization: Aachen Day-Night v1.1 and InLoc (paper: Table 4, recall %)", {
        "aachen": _recalls(("day", "night"), ((0.25, 2), (0.5, 5), (5, 10))),
        "inloc": _recalls(("duc1", "duc2"), ((0.25, 10), (0.5, 10), (1, 10)))},
               "Recall (%) of queries localized within (0.25 m, 2°) / (0.5 m, 5°) / (5 m, 10°) (Aachen) and "
               "(0.25 m, 10°) / (0.5 m, 10°) / (1 m, 10°) (InLoc); columns are named by their distance."),
    PaperTable("dtu", "DTU multi-view stereo (paper: Table 3 right, mm, lower is better)", {"dtu": (
        _m("acc_mm", "Acc.", "mm", "accuracy_mm", "mean_accuracy_mm"),
        _m("comp_mm", "Comp.", "mm", "completeness_mm", "mean_completeness_mm"),
        _m("overall_mm", "Overall", "mm", "chamfer_mm", "mean_overall_mm"))},
               "Overall = (Acc. + Comp.) / 2 (DTUeval). On the synthetic suite exact matches (oracle) do not "
               "score 0: its GT cloud keeps one point per 2 mm voxel (4 mm with --suite-size small), so a "
               "point exactly on the surface is on average ~0.35 x that spacing from the nearest GT point "
               "(accuracy floor), and completeness adds the oracle's 2-px sampling and the surface that no "
               "matched pair sees. A scan with no point within 20 mm of its GT (or without GT) has no "
               "score: the official evaluators give NaN for it, so we print '-' for the mean over scans "
               "rather than invent a penalty; 'unscored' counts such scans."),
)}
TABLE_NOTES = {t.id: t.note for t in PAPER_TABLES.values()}
"""The legend printed under each paper table."""
BENCH_NOTES = {
    **{b: t.note for t in PAPER_TABLES.values() for b in t.metrics},
    "aachen": "Recall (%) of queries localized within (0.25 m, 2°) / (0.5 m, 5°) / (5 m, 10°); columns are "
              "named by their distance.",
    "inloc": "Recall (%) of queries localized within (0.25 m, 10°) / (0.5 m, 10°) / (1 m, 10°); columns are "
             "named by their distance.",
}
"""The legend under a benchmark's own table (:mod:`benchmarks.tables`)."""


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
    """4 significant digits; magnitudes below 1e-3 as ``6e-07`` (the oracle's float noise)."""
    return f"{v:.0e}" if 0 < abs(v) < 1e-3 else f"{v:.4g}"


def ours_label(run: RunInfo, label: str) -> str:
    """The row of a run of ours: ``<label> (ours, <data>)`` (see :func:`benchmarks.paper_runs.data_label`)."""
    return f"{label} (ours, {run.data or 'data: unknown'})"


def paper_cells(table: PaperTable, runs: Sequence[RunInfo],
                published: Sequence[Mapping[str, Any]]) -> list[Cell]:
    """Cells of one paper table: the published values (rows = the paper's methods, ``source``
    ``paper``), then ours for every run on its benchmarks (rows of their own, :func:`ours_label`)."""
    cells: list[Cell] = []
    specs = {(b, m.id): m for b, ms in table.metrics.items() for m in ms}
    for p in published:
        if p["table"] != table.id:
            continue
        spec = specs.get((p["benchmark"], p["metric"]))
        if spec is None:
            log.warning("published.csv: metric %s/%s is not in paper table %s", p["benchmark"], p["metric"],
                        table.id)
            continue
        cells.append(Cell(table.id, p["method"], p["benchmark"], spec.id, spec.column, "paper", p["value"],
                          p["unit"], p["verified"], p["citation"]))
    labels = run_labels(runs)
    for run in runs:
        if run.bench not in table.metrics:
            continue
        row = ours_label(run, labels[run.path])
        for spec in table.metrics[run.bench]:
            cells.append(Cell(table.id, row, run.bench, spec.id, spec.column, "ours", spec.value(run.metrics),
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


_FRM_HEADERS = {"matches/pair": "matches", "match s/pair": "match s", "forward s/pair": "fwd s"}
FRM_NOTE = ("subsample: FRM seed spacing in pixels (dense = exhaustive reciprocal NN); matches, match s, "
            "fwd s: means per image pair (matching and network seconds).")


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
        row = f"{run.bench}: {ours_label(run, labels[run.path])}"
        label, value = _headline(run)
        stats = pair_stats(list(RecordStore(run.path / "records.jsonl").load().values()))
        sub = "dense" if frm.get("dense") else frm.get("subsample")
        c2f = "on" if mc.get("c2f") else "off"
        for metric, val in (("subsample", sub), ("c2f", c2f), (label or "metric", value), *stats.items()):
            cells.append(Cell("frm", row, run.bench, metric, _FRM_HEADERS.get(metric, metric), "ours", val))
    return cells


def bucket_cells(runs: Sequence[RunInfo], data_root: Path | None = None) -> list[Cell]:
    """Per-bucket summaries (``adapter.summarize`` on each bucket's records) of the runs whose records
    carry a ``*bucket`` meta key, for the benchmark's first three paper metrics: one row per (run,
    bucket), ``<bench>: <run label>, <bucket>``."""
    from benchmarks.config import from_dict
    from benchmarks.registry import ADAPTERS
    from benchmarks.run_build import build_adapter
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
            adapter = build_adapter(cls, resolve_data_root(data_root), run.bench,
                                    from_dict(cls.Config, run.config.get("adapter_config", {})),
                                    from_dict(cls.EstimatorConfig, run.config.get("estimator_config", {})))
            groups = {b: flatten(adapter.summarize(rs)) for b, rs in bucket_records(records, key).items()}
        except Exception as e:  # noqa: BLE001 - one unreadable run must not hide the others
            log.warning("%s: no bucket split (%s: %s)", run.path, type(e).__name__, e)
            continue
        for bucket in sorted(groups):
            for spec in specs:
                row = f"{run.bench}: {ours_label(run, labels[run.path])}, {bucket}"
                cells.append(Cell("buckets", row, run.bench, spec.id, spec.column, "ours",
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


def _notes(cells: Sequence[Cell], cites: Sequence[str], note: str) -> list[str]:
    out = [note] if note else []
    if any(c.verified is False for c in cells):
        out.append(f"{DAGGER} not verified against the paper")
    if any(c.source == "ours" for c in cells):
        data = sorted({c.row.rsplit("(ours, ", 1)[-1].rstrip(")") for c in cells if "(ours, " in c.row})
        synth = any(d.startswith(SYNTHETIC_LABEL) for d in data)
        out.append("(ours, DATA): our runs and the data they ran on" + (
            f"; {SYNTHETIC_LABEL} = rendered scenes in the benchmark's layout with exact ground truth, "
            "not the benchmark's test set: not comparable with the paper's rows" if synth else ""))
    if len(cites) == 1:
        out.append(f"Paper rows: {cites[0]}.")
    else:
        out += [f"[{i + 1}] {t}" for i, t in enumerate(cites)]
    return out


def _md_block(rows: Sequence[str], cols: Sequence[tuple[str, str]], headers: Sequence[str],
              by: Mapping[tuple[str, str, str], Cell], cites: Sequence[str]) -> str:
    keep = [r for r in rows if any((r, b, m) in by for b, m in cols)]
    body = [[r, *(_text(by.get((r, b, m)), "md", cites) for b, m in cols)] for r in keep]
    return markdown_table(["method", *headers], body)


def render_cells(cells: Sequence[Cell], fmt: str = "md", title: str = "",
                 order: Sequence[tuple[str, str]] = (), note: str = "") -> str:
    """Markdown / LaTeX: rows in first-seen order (the paper's methods, then ours), one column per
    metric in ``order`` (``(bench, metric)``; others after, first-seen), published values tagged with
    their citation ``[n]`` when the table cites several sources; ``note`` and the sources under it.
    Markdown wider than :data:`MAX_WIDTH` is split into one block per benchmark. CSV: one cell per
    line."""
    if fmt == "csv":
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["table", "row", "benchmark", "metric", "source", "value", "unit", "verified", "citation"])
        for c in cells:
            w.writerow([c.table, c.row, c.bench, c.metric, c.source, "" if c.value is None else c.value,
                        c.unit, "" if c.verified is None else str(c.verified).lower(), c.citation])
        return buf.getvalue()
    if fmt not in ("md", "latex"):
        raise ValueError(f"unknown format {fmt!r} (md, csv, latex)")
    if not order:  # the paper's column order of the table the cells belong to
        order = [(b, m.id) for c in dict.fromkeys(c.table for c in cells) if c in PAPER_TABLES
                 for b, ms in PAPER_TABLES[c].metrics.items() for m in ms]
    rows = list(dict.fromkeys(c.row for c in cells))
    seen = {(c.bench, c.metric) for c in cells}
    metrics = list(dict.fromkeys([m for m in order if m in seen] + [(c.bench, c.metric) for c in cells]))
    benches = list(dict.fromkeys(b for b, _ in metrics))
    by = {(c.row, c.bench, c.metric): c for c in cells}
    labels = {(c.bench, c.metric): c.label for c in cells}
    header = [(f"{b} " if len(benches) > 1 else "") + labels[(b, m)] for b, m in metrics]
    cites = list(dict.fromkeys(c.citation for c in cells if c.citation))
    notes = _notes(cells, cites, note)
    if fmt == "latex":
        body = [[r, *(_text(by.get((r, b, m)), fmt, cites) for b, m in metrics)] for r in rows]
        lines = ["\\begin{tabular}{l" + "r" * len(metrics) + "}", "\\toprule",
                 " & ".join(["method", *map(_latex_escape, header)]) + " \\\\", "\\midrule"]
        lines += [" & ".join([_latex_escape(r[0]), *r[1:]]) + " \\\\" for r in body]
        lines += ["\\bottomrule", "\\end{tabular}"]
        return "\n".join([f"% {title}" if title else "", *lines, *(f"% {n}" for n in notes)]).lstrip() + "\n"
    blocks = [_md_block(rows, metrics, header, by, cites)]
    if len(benches) > 1 and width(blocks[0]) > MAX_WIDTH:
        blocks = []
        for bench in benches:
            cols = [(b, m) for b, m in metrics if b == bench]
            blocks.append(f"{bench}:\n\n" + _md_block(rows, cols, [labels[c] for c in cols], by, cites))
    parts = [f"### {title}" if title else "", *blocks, wrap_notes(notes)]
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
            note = FRM_NOTE if tid == "frm" else TABLE_NOTES.get(tid, "")
            out[tid][fmt] = render_cells(cells, fmt, title, order, note)
            (out_dir / f"paper-{tid}.{ext}").write_text(out[tid][fmt])
    return out
