"""The ``mast3r-bench`` command line.

Each subcommand lives in its own module under ``benchmarks/commands/`` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func=handler`` (a callable
``handler(args) -> int`` returning the exit code). This module is the only place that configures
logging; precision flags are set by the commands that run models, never at import.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from benchmarks import commands

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mast3r-bench",
        description="MASt3R reimplementation and benchmark harness (run `mast3r-bench run` for the "
        "synthetic suite).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        # `mast3r-bench` alone runs the main job, like `mast3r-bench run`.
        args = parser.parse_args([*(sys.argv[1:] if argv is None else argv), "run"])
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
