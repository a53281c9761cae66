"""``mast3r-bench table [BENCH ...]``: tables of finished runs (rows = matchers, columns = metrics).

Writes ``<out>/<bench>.md``, ``.csv`` and ``.tex`` for every benchmark and prints the ``--format``
one. Runs without a ``summary.json`` (still running, or killed) are left out. Markdown shows the
paper's columns of each benchmark in the paper's order and units (fits 120 characters), with a
legend and the data the runs ran on; ``--wide`` shows every summary metric, ``--columns a,b,c``
picks columns (summary keys or the default headers) in every format. CSV and LaTeX hold every column.

``mast3r-bench table paper``: the MASt3R paper's tables (Map-free, CO3Dv2/RE10K, Aachen/InLoc, DTU,
the FRM study, and a viewpoint-bucket split): the paper's rows (published numbers verified against
arXiv:2406.09756v1, each citing its table), then our runs as rows of their own labelled with the
data they ran on (``sift (ours, synthetic suite)``), written to ``<out>/paper-<table>.{md,csv,tex}``
(see :mod:`benchmarks.paper`).
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.capabilities import title
from benchmarks.registry import ADAPTERS
from benchmarks.store import results_root

__all__ = ["register", "handler"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("table", help="tables of finished runs (Markdown, CSV, LaTeX)",
                              description=__doc__)
    p.add_argument("benches", nargs="*", metavar="BENCH",
                   help="benchmarks to tabulate (default: all that have runs)")
    p.add_argument("--format", choices=["md", "csv", "latex"], default="md",
                   help="format printed (default: md); all three are written")
    p.add_argument("--out", metavar="DIR", help="where the files go (default: <results>/tables)")
    p.add_argument("--results", metavar="DIR",
                   help="results root (default: $MAST3R_BENCH_RESULTS, else ./results)")
    p.add_argument("--published", metavar="CSV",
                   help="table paper: published numbers (default: the packaged published.csv)")
    p.add_argument("--data", metavar="ROOT",
                   help="table paper: data root, to rebuild adapters for the bucket split")
    p.add_argument("--wide", action="store_true",
                   help="Markdown: every summary metric, not just the paper's columns")
    p.add_argument("--columns", metavar="A,B,...",
                   help="only these columns (summary keys or default headers such as 'VCRE AUC'), "
                        "in every format")
    p.set_defaults(func=handler)


def _paper(args: argparse.Namespace) -> int:
    from benchmarks import paper

    root = results_root(args.results)
    out = root / "tables" if args.out is None else args.out
    try:
        published = paper.load_published(args.published)
    except (OSError, ValueError) as e:
        print(f"mast3r-bench table: error: {e}", file=sys.stderr)
        return 2
    texts = paper.write_paper_tables(root, out, published, args.data)
    for by_format in texts.values():
        print(by_format[args.format])
    print(f"(written: {out}/paper-{{{','.join(texts)}}}.{{md,csv,tex}})", file=sys.stderr)
    return 0


def _check_names(benches: list[str]) -> str | None:
    """An error line for the first name that is neither a benchmark nor ``paper`` (with "did you
    mean"), else None."""
    import difflib

    known = [*ADAPTERS.names(), "paper"]
    for bench in benches:
        if bench not in known:
            close = difflib.get_close_matches(bench, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"unknown benchmark {bench!r}{hint} (known: {', '.join(known)})"
    return None


def handler(args: argparse.Namespace) -> int:
    error = _check_names(args.benches)
    if error:
        print(f"mast3r-bench table: error: {error}", file=sys.stderr)
        return 2
    if args.benches == ["paper"]:
        return _paper(args)
    from benchmarks import tables  # pandas: imported on use, not when the CLI starts

    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    root = results_root(args.results)
    frame = tables.collect(root, args.benches or None)
    benches = args.benches or sorted(frame["bench"].unique())
    if not benches:
        print(f"no finished runs under {root / 'runs'} (run `mast3r-bench run` first)", file=sys.stderr)
        return 1
    out = root / "tables" if args.out is None else args.out
    written = 0
    for bench in benches:
        table = tables.bench_table(frame, bench)
        if table.empty:
            print(f"{bench}: no finished runs under {root / 'runs' / bench}", file=sys.stderr)
            continue
        caption = title(ADAPTERS.get(bench), bench) if bench in ADAPTERS else bench
        try:
            paths = tables.write_tables(table, out, bench, caption=caption, wide=args.wide, columns=columns)
        except ValueError as e:
            print(f"mast3r-bench table: error: {bench}: {e}", file=sys.stderr)
            return 2
        print(tables.render(table, args.format, caption=caption, wide=args.wide, columns=columns))
        print(f"(written: {', '.join(str(p) for p in paths)})", file=sys.stderr)
        written += 1
    return 0 if written else 1
