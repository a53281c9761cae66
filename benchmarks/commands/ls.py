"""``mast3r-bench ls [runs|adapters|matchers]``: what is registered, what is usable, what has run."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from benchmarks.capabilities import Available
from benchmarks.registry import ADAPTERS, MATCHERS, Registry
from benchmarks.store import list_runs, results_root

__all__ = ["register", "handler", "availability", "run_rows"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ls", help="list runs, adapters and matchers (with availability)",
                              description=__doc__)
    p.add_argument("what", nargs="?", choices=["all", "runs", "adapters", "matchers"], default="all")
    p.add_argument("--results", metavar="DIR",
                   help="results root (default: $MAST3R_BENCH_RESULTS, else ./results)")
    p.set_defaults(func=handler)


def availability(registry: Registry, name: str) -> tuple[bool, str]:
    """``(usable, reason)``: the class must import, and its optional ``available()`` classmethod
    (e.g. "weights not downloaded") must agree."""
    try:
        cls = registry.get(name)
    except ImportError as e:
        return False, f"not importable: {e}"
    except Exception as e:  # noqa: BLE001 - a broken module must not break `ls`
        return False, f"import failed: {type(e).__name__}: {e}"
    if not isinstance(cls, Available):
        return True, ""
    try:
        ok, reason = cls.available()
    except Exception as e:  # noqa: BLE001
        return False, f"available() failed: {type(e).__name__}: {e}"
    return bool(ok), str(reason)


def run_rows(root) -> list[list[str]]:
    """``[bench, matcher, run, done/expected, status]`` per run directory under ``root``."""
    rows = []
    for run in list_runs(root):
        manifest = run.read_manifest()
        expected = manifest.get("counts", {}).get("expected", "?")
        status = manifest.get("status", "new")
        done = run.count_records()
        if status == "running":
            status = "incomplete"  # running now, or killed: `mast3r-bench run` again resumes it
        bench, matcher = run.path.parent.parent.name, run.path.parent.name
        rows.append([bench, matcher, run.path.name, f"{done}/{expected}", status])
    return rows


def handler(args: argparse.Namespace) -> int:
    what = args.what
    for title, registry in (("adapters", ADAPTERS), ("matchers", MATCHERS)):
        if what in ("all", title):
            rows = []
            for name in registry.names():
                ok, reason = availability(registry, name)
                rows.append([name, "yes" if ok else "no", reason])
            print(f"{title}:")
            print(tabulate(rows, headers=["name", "available", "note"], tablefmt="simple"))
            print()
    if what in ("all", "runs"):
        root = results_root(args.results)
        rows = run_rows(root)
        print(f"runs under {root / 'runs'}:")
        print(tabulate(rows, headers=["bench", "matcher", "run", "done", "status"], tablefmt="simple")
              if rows else "(none)")
    return 0
