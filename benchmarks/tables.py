"""Paper-style tables from run summaries: rows = matchers (and variants), columns = summary metrics.

``collect(results_root)`` gathers every finished run's ``summary.json`` into a long frame;
``bench_table(frame, bench)`` pivots one benchmark into rows ``"matcher"`` (or ``"matcher
[variant]"`` when a matcher has several variants) and columns ``n``, ``failures`` and every summary
metric; ``render`` writes Markdown, CSV or LaTeX, optionally beside a column group of published
numbers. Markdown shows by default only the paper's columns of the benchmark, in the paper's order and
units (:func:`paper_view`: Map-free VCRE / pose medians, precisions and AUCs; Aachen / InLoc recall
triples per condition; CO3Dv2 / RE10K RRA@15, RTA@15, mAA(30); DTU accuracy, completeness, overall),
sized to fit 120 characters, with a legend and the data the runs ran on under it; ``wide=True`` shows
every column, ``columns=`` picks some (in any format). CSV and LaTeX hold every column.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tabulate import tabulate

from benchmarks.store import list_runs

__all__ = ["collect", "bench_table", "render", "write_tables", "FORMATS", "paper_view", "select_columns",
           "default_columns"]
log = logging.getLogger(__name__)

Format = Literal["md", "csv", "latex"]
FORMATS: dict[str, str] = {"md": "md", "csv": "csv", "latex": "tex"}  # format -> file extension
_ID_COLUMNS = ["bench", "matcher", "variant", "key", "data", "n", "failures"]
_EXTRA_DEFAULTS = {"dtu": (("num_unscored_scans", "unscored"),)}  # shown after the paper's columns


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        elif v is None or isinstance(v, (int, float, str, bool)):
            out[prefix + k] = v
    return out


def collect(results_root: Path, benches: Iterable[str] | None = None,
            run_dirs: Iterable[Any] | None = None) -> pd.DataFrame:
    """One row per run that has a ``summary.json``: columns ``bench, matcher, variant, key, data, n,
    failures`` then the summary metrics (nested dicts flattened with ``/``; lists dropped); ``data``
    is what the run ran on (:func:`benchmarks.paper_runs.data_label`). ``run_dirs`` (``RunDir``
    objects) restricts to those runs; ``benches`` to those benchmarks."""
    from benchmarks.paper_runs import data_label
    from benchmarks.store import read_json

    wanted = set(benches) if benches else None
    dirs = list(run_dirs) if run_dirs is not None else list_runs(results_root)
    rows = []
    for run in dirs:
        summary = run.read_summary()
        if summary is None:
            log.info("%s: no summary yet (unfinished run); skipped", run.path)
            continue
        if wanted is not None and summary["bench"] not in wanted:
            continue
        config = read_json(run.config_path) if run.config_path.is_file() else {}
        rows.append({
            "bench": summary["bench"], "matcher": summary["matcher"], "variant": summary["slug"],
            "key": summary["key"], "data": data_label(run.read_manifest(), config),
            "n": summary["num_records"], "failures": summary["num_failures"],
            "data_errors": summary.get("num_data_errors") or None,  # a column only where a run has some
            **_flatten(summary.get("metrics", {})),
        })
    return pd.DataFrame(rows, columns=None if rows else _ID_COLUMNS)


def bench_table(frame: pd.DataFrame, bench: str) -> pd.DataFrame:
    """Rows of one benchmark indexed by ``matcher`` (``matcher [variant]`` where a matcher has more
    than one variant, or a non-default one; `` (data)`` appended when the runs ran on different
    data), sorted; columns ``n``, ``failures`` then the metrics (all-empty metric columns dropped).
    ``attrs``: ``bench`` and ``data`` (the distinct data labels), used by :func:`render`."""
    df = frame[frame["bench"] == bench].copy()
    if df.empty:
        return pd.DataFrame(columns=["n", "failures"])
    multi = df.groupby("matcher")["variant"].transform("nunique") > 1
    label = df["matcher"].where(~multi & (df["variant"] == "default"),
                                df["matcher"] + " [" + df["variant"] + "]")
    data = df["data"].fillna("data: unknown") if "data" in df else pd.Series("data: unknown", index=df.index)
    if data.nunique() > 1:
        label = label + " (" + data + ")"
    df.index = pd.Index(label, name="matcher")
    df = df.sort_index()
    drop = [c for c in _ID_COLUMNS if c not in ("n", "failures") and c in df.columns]
    metrics = df.drop(columns=drop).dropna(axis=1, how="all")
    metrics.attrs.update(bench=bench, data=sorted(set(data)))
    return metrics


def default_columns(bench: str) -> list[tuple[str, str, float]]:
    """The default Markdown columns of ``bench``: ``(header, summary keys, factor)`` for ``n``,
    ``failures``, the paper's metrics (:data:`benchmarks.paper.PAPER_TABLES`, in its order and
    units) and a few of ours (DTU: unscored scans); ``[]`` for benchmarks outside the paper."""
    from benchmarks.paper import PAPER_TABLES

    specs = [m for t in PAPER_TABLES.values() for m in t.metrics.get(bench, ())]
    if not specs:
        return []
    out: list[tuple[str, str, float]] = [("n", "n", 1.0), ("fail", "failures", 1.0),
                                         ("data_errors", "data_errors", 1.0)]  # shown only where some
    for spec in specs:
        out.append((spec.column, "|".join(k for k, _ in (*spec.keys, (spec.id, 1.0))),
                    next((f for _, f in spec.keys), 1.0)))
    out += [(header, key, 1.0) for key, header in _EXTRA_DEFAULTS.get(bench, ())]
    return out


def paper_view(table: pd.DataFrame, bench: str | None = None) -> pd.DataFrame:
    """``table`` reduced to :func:`default_columns` (headers renamed, units converted: the first
    summary key present wins, as in :class:`benchmarks.paper.MetricSpec`); unchanged for a benchmark
    outside the paper."""
    from benchmarks.paper import PAPER_TABLES

    bench = bench or table.attrs.get("bench")
    specs = {m.column: m for t in PAPER_TABLES.values() for m in t.metrics.get(bench or "", ())}
    cols = default_columns(bench) if bench else []
    if not cols:
        return table
    out = pd.DataFrame(index=table.index)
    for header, keys, _ in cols:
        if header in specs:
            out[header] = [specs[header].value(row) for row in table.to_dict("records")]
        else:
            key = keys.split("|")[0]
            out[header] = table[key] if key in table.columns else None
    if "data_errors" in out.columns and out["data_errors"].isna().all():
        out = out.drop(columns=["data_errors"])  # a column only where a run has data errors
    out.attrs.update(table.attrs)
    return out


def select_columns(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The named columns of ``table`` (raw summary keys, or the paper view's headers such as
    ``"VCRE AUC"``), in that order; an unknown name raises ValueError listing the known ones."""
    view = paper_view(table)
    out = pd.DataFrame(index=table.index)
    for name in columns:
        if name in table.columns:
            out[name] = table[name]
        elif name in view.columns:
            out[name] = view[name]
        else:
            import difflib

            known = list(dict.fromkeys([*table.columns, *view.columns]))
            close = difflib.get_close_matches(name, [str(k) for k in known], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown column {name!r}{hint}; known: {', '.join(map(str, known))}")
    out.attrs.update(table.attrs)
    return out


def _md_notes(table: pd.DataFrame, shown: pd.DataFrame, wide: bool) -> list[str]:
    from benchmarks.paper import BENCH_NOTES

    bench = table.attrs.get("bench")
    notes = []
    if bench and not wide and len(shown.columns) < len(table.columns):
        notes.append(f"Columns: the paper's, in its order and units (fail = failed samples); all "
                     f"{len(table.columns)}: `mast3r-bench table {bench} --wide`.")
    if BENCH_NOTES.get(bench or ""):
        notes.append(BENCH_NOTES[bench])
    data = table.attrs.get("data") or []
    if data:
        from benchmarks.paper_runs import SYNTHETIC_LABEL

        synth = any(str(d).startswith(SYNTHETIC_LABEL) for d in data)
        notes.append(f"Data: {', '.join(map(str, data))}" + (
            " (rendered scenes in the benchmark's layout with exact ground truth, not the benchmark's "
            "test set)" if synth else "") + ".")
    return notes


def _cell(value: Any) -> str:
    """A Markdown cell of the paper view: ``-`` when missing, integers as such, else 4 significant
    digits (magnitudes below 1e-3 as ``6e-07``)."""
    if _isna(value):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.0e}" if abs(value) < 1e-3 else f"{value:.4g}"


def _isna(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _join_published(table: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    ours = table.copy()
    ours.columns = [f"reproduced/{c}" for c in ours.columns]
    theirs = published.copy()
    theirs.columns = [f"published/{c}" for c in theirs.columns]
    out = ours.join(theirs, how="outer")
    out.index.name = table.index.name or "matcher"
    return out


def render(table: pd.DataFrame, fmt: Format = "md", published: pd.DataFrame | None = None,
           floatfmt: str = ".4g", caption: str | None = None, *, wide: bool = False,
           columns: Sequence[str] | None = None) -> str:
    """Text of ``table`` (rows = matchers, columns = metrics) as Markdown, CSV or LaTeX (booktabs).

    ``published``: optional frame indexed like ``table`` (matcher labels) whose columns (metrics,
    and e.g. ``citation``) form a second column group; columns are then prefixed ``reproduced/``
    and ``published/`` so that every cell says where it comes from. Rows only one side has appear
    with empty cells on the other. CSV keeps full precision; Markdown and LaTeX use ``floatfmt``.
    Missing values print as ``-``.

    Markdown of a :func:`bench_table` of a paper benchmark shows :func:`paper_view` (unless
    ``wide``) with notes under it (legend, data); ``columns`` picks columns in every format.
    """
    notes: list[str] = []
    if columns:
        table = select_columns(table, columns)
    elif fmt == "md" and published is None and default_columns(table.attrs.get("bench") or ""):
        full = table
        table = table if wide else paper_view(table)
        notes = _md_notes(full, table, wide)
    if published is not None:
        table = _join_published(table, published)
    if fmt == "csv":
        return table.to_csv(float_format=None)
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r} (choose from {', '.join(FORMATS)})")
    columns = [str(c) for c in table.columns]
    groups = [c.split("/", 1)[0] for c in columns] if published is not None else []
    if groups and fmt == "latex":  # a \multicolumn group row instead of prefixed headers
        columns = [c.split("/", 1)[1] for c in columns]
    rows = [[idx, *(None if _isna(v) else v for v in row)]
            for idx, row in zip(table.index, table.itertuples(index=False))]
    if notes:  # the paper view: padded to its widest cell only, to fit a terminal
        from benchmarks.mdtable import markdown_table

        text = markdown_table([table.index.name or "", *columns],
                              [[str(r[0]), *map(_cell, r[1:])] for r in rows])
    else:
        text = tabulate(rows, headers=[table.index.name or "", *columns], floatfmt=floatfmt, missingval="-",
                        tablefmt="github" if fmt == "md" else "latex_booktabs")
    if groups and fmt == "latex":
        spans = [(g, groups.count(g)) for g in dict.fromkeys(groups)]
        row = " & ".join(["", *(f"\\multicolumn{{{n}}}{{c}}{{{g}}}" for g, n in spans)]) + " \\\\"
        text = text.replace("\\toprule\n", f"\\toprule\n{row}\n", 1)
    if notes:
        from benchmarks.mdtable import wrap_notes

        text = f"{text}\n\n{wrap_notes(notes)}"
    if caption and fmt == "md":
        text = f"{caption}\n\n{text}"
    elif caption:
        text = f"% {caption}\n{text}"
    return text + "\n"


def write_tables(table: pd.DataFrame, out_dir: Path, bench: str, published: pd.DataFrame | None = None,
                 formats: Sequence[str] = tuple(FORMATS), caption: str | None = None, *, wide: bool = False,
                 columns: Sequence[str] | None = None) -> list[Path]:
    """Write ``<out_dir>/<bench>.{md,csv,tex}`` (``wide`` / ``columns`` as in :func:`render`);
    returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{bench}.{FORMATS[fmt]}"
        path.write_text(render(table, fmt, published, caption=caption,  # type: ignore[arg-type]
                               wide=wide, columns=columns))
        paths.append(path)
    return paths
