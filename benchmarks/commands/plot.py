"""``mast3r-bench plot matches | curves | frm | train``: figures (PNG) where a table is not enough.

* ``plot matches IMG0 IMG1 --matcher NAME [--opt KEY=VALUE ...] --out PNG``: the matches of one
  pair drawn between the two images (coloured by score).
* ``plot curves RUN... --metric NAME --out PNG [--kind cumulative|pr]``: per run, the fraction of
  samples whose error ``NAME`` (a per-sample record metric such as ``vcre_px``, ``corner_err_px``,
  ``rot_err_deg``) is below a threshold, or Map-free style precision vs recall by confidence
  (``--kind pr --threshold T``).
* ``plot train TRAIN_DIR [--out PNG]``: loss terms, learning rate and validation curves of a
  ``mast3r-bench train`` run (``log.csv``, ``val.csv``).
* ``plot frm RUN... --metric NAME --out PNG``: the FRM trade-off (summary metric and matching time
  per pair against the FRM subsample) of ``mast3r`` runs, e.g. the runs of a ``sweep``.

RUN is a run directory (``results/runs/<bench>/<matcher>/<slug>-<hash8>``); with ``--bench B`` and
no RUN, every finished run of that benchmark under ``--results`` (``plot frm``: its ``mast3r`` runs).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["register", "handler"]
log = logging.getLogger(__name__)


def _runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="*", type=Path, metavar="RUN", help="run directories")
    p.add_argument("--bench", metavar="B", help="all finished runs of this benchmark (when no RUN is given)")
    p.add_argument("--results", metavar="DIR", help="results root for --bench (default: ./results)")
    p.add_argument("--metric", required=True, metavar="NAME", help="record (curves) or summary (frm) metric")
    p.add_argument("--out", required=True, type=Path, help="output PNG")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plot", help="figures: matches of a pair, accuracy curves, FRM trade-off",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="plot_command", metavar="FIGURE", required=True)
    m = sub.add_parser("matches", help="draw the matches of one image pair")
    m.add_argument("img0", type=Path)
    m.add_argument("img1", type=Path)
    m.add_argument("--matcher", required=True, metavar="NAME")
    m.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="matcher option (repeatable)")
    m.add_argument("--device", default="auto", help="torch device (default: cuda if available)")
    m.add_argument("--max-lines", type=int, default=200, help="matches drawn at most (default 200)")
    m.add_argument("--out", required=True, type=Path, help="output PNG")
    c = sub.add_parser("curves", help="cumulative error / precision-recall curves of runs")
    _runs_args(c)
    c.add_argument("--kind", choices=["cumulative", "pr"], default="cumulative")
    c.add_argument("--max", type=float, dest="max_value",
                   help="cumulative: largest threshold (default: the benchmark's own, e.g. VCRE 90 px)")
    c.add_argument("--threshold", type=float, help="pr: a sample is correct when metric < threshold")
    f = sub.add_parser("frm", help="FRM subsample vs accuracy vs speed of mast3r runs")
    _runs_args(f)
    t = sub.add_parser("train", help="training curves of a `mast3r-bench train` run folder")
    t.add_argument("run", type=Path, metavar="TRAIN_DIR", help="the --out folder of `mast3r-bench train`")
    t.add_argument("--out", type=Path, help="output PNG (default: TRAIN_DIR/curves.png)")
    p.set_defaults(func=handler)


def _select_runs(args: argparse.Namespace, matcher: str | None = None) -> list:
    from benchmarks.store import RunDir, list_runs, results_root

    if args.runs:
        return [RunDir(r) for r in args.runs]
    if not args.bench:
        raise ValueError("give RUN directories or --bench B")
    root = results_root(args.results)
    runs = [r for r in list_runs(root) if r.read_summary() is not None
            and r.path.parent.parent.name == args.bench
            and (matcher is None or r.path.parent.name == matcher)]
    if not runs:
        raise ValueError(f"no finished {matcher or ''} runs of {args.bench} under {root}")
    return runs


def _matches(args: argparse.Namespace) -> Path:
    from benchmarks import plots
    from benchmarks.capabilities import needs_ground_truth
    from benchmarks.config import apply_overrides, parse_assignments
    from benchmarks.matchers._images import view_from_path
    from benchmarks.registry import MATCHERS
    from benchmarks.run_setup import default_device

    cls = MATCHERS.get(args.matcher)
    if needs_ground_truth(cls):
        raise ValueError(f"matcher {args.matcher!r} needs ground-truth correspondences")
    config = apply_overrides(cls.Config(), parse_assignments(args.opt))
    device = default_device(cls) if args.device == "auto" else args.device
    corrs = cls(config, device=device).match(view_from_path(args.img0), view_from_path(args.img1))
    title = f"{args.matcher}: {len(corrs)} matches ({min(len(corrs), args.max_lines)} drawn)"
    return plots.plot_matches(args.img0, args.img1, corrs, args.out, max_lines=args.max_lines, title=title)


def handler(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from benchmarks import plots
    from benchmarks.registry import UnknownNameError

    try:
        if args.plot_command == "matches":
            path = _matches(args)
        elif args.plot_command == "train":
            from benchmarks.plots_train import plot_training

            path = plot_training(args.run, args.out or args.run / "curves.png")
        elif args.plot_command == "curves":
            path = plots.plot_curves(_select_runs(args), args.metric, args.out, kind=args.kind,
                                     max_value=args.max_value, threshold=args.threshold)
        else:
            path = plots.plot_frm(_select_runs(args, "mast3r"), args.metric, args.out)
    except (UnknownNameError, ValueError, RuntimeError, OSError) as e:
        log.debug("plot failed", exc_info=True)
        print(f"mast3r-bench plot: error: {e}".splitlines()[0], file=sys.stderr)
        return 2
    print(path)
    return 0
