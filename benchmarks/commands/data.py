"""``mast3r-bench data check BENCH --root DIR``: validate a benchmark download and print its counts.

Prints a JSON summary (scenes/sequences/categories, queries, database images, views, pairs, 3D
points) to stdout and exits 0. A malformed or missing file prints ``error: path:line: problem`` on
stderr and exits 2; so does a missing root. ``--deep`` also decodes every image and reads every
PLY/npz/npy/MAT file in full (:mod:`benchmarks.commands._data_deep`): each unreadable file prints
``error: path: reason``, the summary gains ``"deep": {"files": N, "unreadable": M}`` and the exit is 2
if any. A benchmark with nothing for ``run`` to evaluate (no queries, empty set lists, RE10K clips
without frames, ...) logs a warning and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from benchmarks.commands._data_deep import deep_check, deep_roots, empty_reason
from datasets.records import DatasetFormatError

__all__ = ["BENCHES", "handler", "register", "run_check"]

log = logging.getLogger(__name__)

BENCHES = ("mapfree", "aachen", "inloc", "co3dv2", "re10k", "dtu")
"""Bench ids accepted by ``data check``; each maps to ``datasets.<id>.check``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="dataset utilities (validate a download)", description=__doc__)
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    c = sub.add_parser("check", help="validate a benchmark root and print a JSON summary of counts",
                       description="Validate every annotation/list file of a benchmark download, that "
                       "referenced files exist and (unless --no-images) that image sizes match what the "
                       "files state; print counts as JSON. Exit 0: fine; 1: no samples (a warning says "
                       "why); 2: a malformed, missing or (--deep) unreadable file.")
    c.add_argument("bench", choices=BENCHES, metavar="BENCH", help=f"one of: {', '.join(BENCHES)}")
    c.add_argument("--root", required=True, metavar="DIR", help="dataset root (the layout of the download)")
    c.add_argument("--no-images", dest="images", action="store_false",
                   help="skip reading image headers (sizes are then not checked)")
    c.add_argument("--deep", action="store_true",
                   help="also decode every image and read every PLY/npz/npy/MAT file in full; report "
                   "each unreadable file by path (exit 2 if any)")
    c.add_argument("--gt-root", metavar="DIR", help="dtu only: folder of the evaluation GT "
                   "(default: found under --root, e.g. SampleSet/MVS Data)")
    c.set_defaults(func=handler)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def run_check(bench: str, root: str | Path, images: bool = True, gt_root: str | Path | None = None
              ) -> dict[str, Any]:
    """Call ``datasets.<bench>.check``; raises ``DatasetFormatError`` for a bad root or file."""
    if bench not in BENCHES:
        raise ValueError(f"unknown bench {bench!r}; expected one of {BENCHES}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(root, None, "dataset root not found" if not root.exists() else
                                 "dataset root is not a directory")
    module = importlib.import_module(f"datasets.{bench}")
    kwargs: dict[str, Any] = {"images": images}
    if bench == "dtu" and gt_root is not None:
        kwargs["gt_root"] = gt_root
    return module.check(root, **kwargs)


def handler(args: argparse.Namespace) -> int:
    if args.gt_root is not None and args.bench != "dtu":
        print("error: --gt-root applies to dtu only", file=sys.stderr)
        return 2
    try:
        summary = run_check(args.bench, args.root, images=args.images, gt_root=args.gt_root)
    except DatasetFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unreadable file or folder (permissions, I/O error)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    unreadable: tuple[tuple[Path, str], ...] = ()
    if args.deep:
        deep = deep_check(deep_roots([summary.get("root", args.root), summary.get("frames_root"),
                                      summary.get("gt_root")]))
        unreadable = deep.unreadable
        summary["deep"] = {"files": deep.files, "unreadable": len(unreadable)}
        for path, reason in unreadable:
            print(f"error: {path}: {reason}", file=sys.stderr)
    print(json.dumps(summary, indent=2, sort_keys=False))
    if unreadable:
        print(f"error: {len(unreadable)} of {summary['deep']['files']} files could not be read",
              file=sys.stderr)
        return 2
    empty = empty_reason(args.bench, summary)
    if empty is not None:
        log.warning("%s %s: %s", args.bench, summary.get("root", args.root), empty)
        return 1
    return 0
