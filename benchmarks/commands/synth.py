"""``mast3r-bench synth``: render the synthetic suite into the six benchmarks' real layouts.

Writes ``DIR/{mapfree,aachen,inloc,co3dv2,re10k,dtu}`` (default ``DIR``: ``<data root>/synthetic``),
each usable as that benchmark's ``--data`` root, with a ``MANIFEST.json`` (checksums, seed, version)
and the ``_synthetic/`` ground-truth sidecar. Same seed and size: byte-identical output.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from tabulate import tabulate

from datasets.paths import synthetic_root
from datasets.synthetic.suite import BENCHMARKS, SIZES, ensure_suite, write_suite

__all__ = ["register", "handler"]

log = logging.getLogger(__name__)


def _benchmarks(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown benchmark(s) {unknown or value!r}; choose from "
                                         f"{', '.join(BENCHMARKS)}")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("synth", help="render the synthetic suite in the six benchmark layouts",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="DIR", help="output folder (default: <data root>/synthetic, where the "
                   "data root is $MAST3R_BENCH_DATA or ./data)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--size", choices=SIZES, default="default",
                   help="'small': a few tiny scenes (tests, CI); 'default': the embedded suite")
    p.add_argument("--only", type=_benchmarks, metavar="B1,B2", help=f"subset of {','.join(BENCHMARKS)}")
    p.add_argument("--reuse", action="store_true",
                   help="keep benchmark folders whose MANIFEST already matches seed, size and version")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel processes (default: the CPUs available, at most 6)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser().absolute() if args.out else synthetic_root()
    workers = args.workers or min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                  else (os.cpu_count() or 1), 6)
    fn = ensure_suite if args.reuse else write_suite
    try:
        result = fn(out, seed=args.seed, size=args.size, benchmarks=args.only, workers=workers)
    except (FileExistsError, ValueError) as e:
        log.error("%s", e)
        print(f"error: {e}")
        return 2
    rows = []
    for bench, m in result["benchmarks"].items():
        files = m.get("files", {})
        rows.append([bench, str(out / bench), m.get("summary", {}).get("images", "?"), len(files),
                     f"{sum(f['bytes'] for f in files.values()) / 1e6:.1f}",
                     "reused" if m.get("reused") else f"{m.get('seconds', 0):.1f}"])
    print(tabulate(rows, headers=["benchmark", "--data root", "images", "files", "MB", "seconds"]))
    print(f"seed {args.seed}, size {args.size}; index: {out / 'MANIFEST.json'}")
    return 0
