"""Paper-style tables from run summaries: rows = matchers (and variants), columns = summary metrics.

``collect(results_root)`` gathers every finished run's ``summary.json`` into a long frame;
``bench_table(frame, bench)`` pivots one benchmark into rows ``"matcher"`` (or ``"matcher
[variant]"`` when a matcher has several variants) and metric columns; ``render`` writes Markdown,
CSV or LaTeX, optionally beside a column group of published numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tabulate import tabulate

from benchmarks.store import list_runs

__all__ = ["collect", "bench_table", "render", "write_tables", "FORMATS"]
log = logging.getLogger(__name__)

Format = Literal["md", "csv", "latex"]
FORMATS: dict[str, str] = {"md": "md", "csv": "csv", "latex": "tex"}  # format -> file extension
_ID_COLUMNS = ["bench", "matcher", "variant", "key", "n", "failures"]


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
    """One row per run that has a ``summary.json``: columns ``bench, matcher, variant, key, n,
    failures`` then the summary metrics (nested dicts flattened with ``/``; lists dropped).
    ``run_dirs`` (``RunDir`` objects) restricts to those runs; ``benches`` to those benchmarks."""
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
        rows.append({
            "bench": summary["bench"], "matcher": summary["matcher"], "variant": summary["slug"],
            "key": summary["key"], "n": summary["num_records"], "failures": summary["num_failures"],
            "data_errors": summary.get("num_data_errors") or None,  # a column only where a run has some
            **_flatten(summary.get("metrics", {})),
        })
    return pd.DataFrame(rows, columns=None if rows else _ID_COLUMNS)


def bench_table(frame: pd.DataFrame, bench: str) -> pd.DataFrame:
    """Rows of one benchmark indexed by ``matcher`` (``matcher [variant]`` where a matcher has more
    than one variant, or a non-default one), sorted; columns ``n`` then the metrics (all-empty
    metric columns dropped)."""
    df = frame[frame["bench"] == bench].copy()
    if df.empty:
        return pd.DataFrame(columns=["n"])
    multi = df.groupby("matcher")["variant"].transform("nunique") > 1
    label = df["matcher"].where(~multi & (df["variant"] == "default"),
                                df["matcher"] + " [" + df["variant"] + "]")
    df.index = pd.Index(label, name="matcher")
    df = df.sort_index()
    metrics = df.drop(columns=[c for c in _ID_COLUMNS if c != "n"]).dropna(axis=1, how="all")
    return metrics


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
           floatfmt: str = ".4g", caption: str | None = None) -> str:
    """Text of ``table`` (rows = matchers, columns = metrics) as Markdown, CSV or LaTeX (booktabs).

    ``published``: optional frame indexed like ``table`` (matcher labels) whose columns (metrics,
    and e.g. ``citation``) form a second column group; columns are then prefixed ``reproduced/``
    and ``published/`` so that every cell says where it comes from. Rows only one side has appear
    with empty cells on the other. CSV keeps full precision; Markdown and LaTeX use ``floatfmt``.
    Missing values print as ``-``.
    """
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
    text = tabulate(rows, headers=[table.index.name or "", *columns], floatfmt=floatfmt, missingval="-",
                    tablefmt="github" if fmt == "md" else "latex_booktabs")
    if groups and fmt == "latex":
        spans = [(g, groups.count(g)) for g in dict.fromkeys(groups)]
        row = " & ".join(["", *(f"\\multicolumn{{{n}}}{{c}}{{{g}}}" for g, n in spans)]) + " \\\\"
        text = text.replace("\\toprule\n", f"\\toprule\n{row}\n", 1)
    if caption and fmt == "md":
        text = f"{caption}\n\n{text}"
    elif caption:
        text = f"% {caption}\n{text}"
    return text + "\n"


def write_tables(table: pd.DataFrame, out_dir: Path, bench: str, published: pd.DataFrame | None = None,
                 formats: Sequence[str] = tuple(FORMATS), caption: str | None = None) -> list[Path]:
    """Write ``<out_dir>/<bench>.{md,csv,tex}``; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{bench}.{FORMATS[fmt]}"
        path.write_text(render(table, fmt, published, caption=caption))  # type: ignore[arg-type]
        paths.append(path)
    return paths
