"""``mast3r-bench sweep BENCH --matcher NAME --grid KEY=V1,V2,... [--grid ...] [KEY=VALUE ...]``.

Runs every combination of the grid values (cartesian product; each variant is an ordinary run,
resumable and cached like ``mast3r-bench run``), then prints one table with a row per variant: the
benchmark's summary metrics, matches per pair and matching / network time per pair. Example (the
paper's FRM study)::

    mast3r-bench sweep mapfree --matcher mast3r --grid frm.subsample=1,2,4,8,16 --grid c2f=on,off

Grid keys are config keys as ``run`` takes them (``frm.subsample``, ``estimator.max_error_px``,
...); ``KEY=VALUE`` arguments apply to every variant. Values containing commas: separate the values
with ``;``. Network matchers (``mast3r``, ``dust3r``) share one model and one network forward per
pair across variants that differ only in matching; the forwards also go to a disk cache
(``<results>/cache/forward``, about 46 MB per pair at size 512; ``--no-forward-cache`` keeps them in
memory only). Tables are written to ``<results>/tables/sweep-<bench>-<matcher>.{md,csv,tex}``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from benchmarks.capabilities import title
from benchmarks.config import ConfigError, parse_assignments
from benchmarks.registry import ADAPTERS, MATCHERS, UnknownNameError
from benchmarks.store import RunLockedError, results_root, slugify

__all__ = ["register", "handler"]
log = logging.getLogger(__name__)


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matcher", metavar="NAME", help="matcher whose variants are swept (required)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="one axis of the grid (repeatable)")
    p.add_argument("--metric", action="append", metavar="NAME",
                   help="summary metric column to show (repeatable; default: all)")
    p.add_argument("--data", metavar="ROOT", help="data root (default: $MAST3R_BENCH_DATA, else ./data)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N samples of every variant")
    p.add_argument("--device", default="auto", metavar="D", help="torch device (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="base seed of the solvers")
    p.add_argument("--force", action="store_true", help="restart every variant's run")
    p.add_argument("--results", metavar="DIR",
                   help="results root (default: $MAST3R_BENCH_RESULTS, else ./results)")
    p.add_argument("--forward-cache", metavar="DIR",
                   help="disk cache of network forwards (default: <results>/cache/forward)")
    p.add_argument("--no-forward-cache", action="store_true", help="share forwards in memory only")
    p.add_argument("--format", choices=["md", "csv", "latex"], default="md",
                   help="format printed (default md); all three are written")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a grid of matcher variants on a benchmark and tabulate them",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"benchmarks: {', '.join(ADAPTERS.names())}\nmatchers: {', '.join(MATCHERS.names())}",
    )
    _add_options(p)
    p.add_argument("rest", nargs=argparse.REMAINDER, metavar="BENCH [KEY=VALUE ...]",
                   help="benchmark name, then overrides applied to every variant")
    p.set_defaults(func=handler, _parser=p)


def _parse_rest(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    inner = argparse.ArgumentParser(prog=args._parser.prog, add_help=False)
    _add_options(inner)
    inner.add_argument("-h", "--help", action="store_true")
    inner.add_argument("positionals", nargs="*")
    ns = inner.parse_intermixed_args(args.rest, namespace=args)
    if ns.help:
        args._parser.print_help()
        raise SystemExit(0)
    positionals = list(ns.positionals)
    if not positionals or "=" in positionals[0]:
        raise ConfigError("name the benchmark: mast3r-bench sweep BENCH --matcher NAME --grid KEY=V1,V2")
    return positionals[0], parse_assignments(positionals[1:])


def handler(args: argparse.Namespace) -> int:
    from benchmarks import sweep, tables

    try:
        bench, overrides = _parse_rest(args)
        if not args.matcher:
            raise ConfigError(f"choose a matcher with --matcher NAME (known: {', '.join(MATCHERS.names())})")
        ADAPTERS.target(bench)
        MATCHERS.target(args.matcher)
        grid = sweep.parse_grid(args.grid)
        root = results_root(args.results)
        cache = None if args.no_forward_cache else (args.forward_cache or root / "cache" / "forward")
        variants = sweep.run_sweep(bench, args.matcher, grid, overrides=overrides, data_root=args.data,
                                   results_root=root, limit=args.limit, device=args.device, seed=args.seed,
                                   force=args.force, progress=args.progress, forward_cache=cache)
        table = sweep.sweep_table(variants, args.metric)
    except (ConfigError, UnknownNameError, RunLockedError, ValueError, FileNotFoundError) as e:
        log.debug("sweep failed", exc_info=True)
        print(f"mast3r-bench sweep: error: {e}", file=sys.stderr)
        return 2
    for v in variants:
        r = v.result
        print(f"{v.label}: {r.done}/{r.expected} samples ({r.computed} computed now, {r.failures} failures) "
              f"-> {r.run_dir.path}", file=sys.stderr)
    caption = f"{title(ADAPTERS.get(bench), bench)}: {args.matcher} variants"
    name = slugify(f"sweep-{bench}-{args.matcher}")
    paths = tables.write_tables(table, root / "tables", name, caption=caption)
    print(tables.render(table, args.format, caption=caption), end="")
    print(f"(written: {', '.join(str(p) for p in paths)})", file=sys.stderr)
    return 0
