"""``mast3r-bench run [BENCH] [--matcher NAME] [options] [KEY=VALUE ...]``: run, resume or extend a run.

With no BENCH it runs the main job (:func:`default_job`). Overrides ``KEY=VALUE`` set config fields:
``matcher.<key>``, ``adapter.<key>``, ``estimator.<key>``, or a bare key that exactly one of the
three configs has. Options and overrides may come in any order.

Several GPUs or nodes: launch it with torchrun, e.g. ``torchrun --nproc_per_node=4 -m benchmarks run
BENCH --matcher NAME``. Under torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) the run is distributed automatically: each rank owns ``cuda:LOCAL_RANK`` (NCCL) or runs
on the CPU (gloo), and the result is the single-process run's (see :mod:`benchmarks.distributed`).
``--distributed`` makes a missing torchrun environment an error instead of a single-process run.

Exit codes: 0 every sample scored; 1 nothing to run (an empty benchmark, ``--limit 0``); 2 an error
(bad option or config, broken matcher setup such as an unreadable checkpoint, records of other data
in the run directory, a disk that refuses writes): one line on stderr, nothing recorded or records
kept as they were; 3 some samples have unreadable data (``data_error`` records, listed with their
files; a re-run retries them); 130 interrupted (Ctrl-C): the records written are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from benchmarks import distributed
from benchmarks.capabilities import Available, title
from benchmarks.config import ConfigError, parse_assignments
from benchmarks.distributed import DistEnv, DistributedError, PeerFailedError
from benchmarks.pipeline import Execution
from benchmarks.registry import ADAPTERS, MATCHERS, UnknownNameError
from benchmarks.run_errors import (
    EmptyBenchmarkError,
    ResourceError,
    RunInterrupted,
    SetupError,
    describe_os_error,
)
from benchmarks.run_setup import check_device
from benchmarks.runner import RunResult, run_benchmark
from benchmarks.store import RunLockedError, results_root

__all__ = ["register", "handler", "default_job", "DEFAULT_MATCHERS", "OPTIONAL_MATCHERS"]
log = logging.getLogger(__name__)

DEFAULT_MATCHERS = ("oracle", "random", "sift")
OPTIONAL_MATCHERS = ("disk+lightglue", "aliked+lightglue", "xfeat", "loftr", "mast3r", "dust3r")


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matcher", action="append", metavar="NAME",
                   help="matcher to run (repeat for several); required with BENCH")
    p.add_argument("--data", metavar="ROOT", help="data root (default: $MAST3R_BENCH_DATA, else ./data)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="only the first N samples (a prefix: a later larger limit continues the run)")
    p.add_argument("--device", default="auto", metavar="D",
                   help="torch device for the matcher (default: cuda if available, else cpu)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="base seed of the solvers (part of the run's identity)")
    p.add_argument("--force", action="store_true", help="delete the run's records and start it over")
    p.add_argument("--retry-failed", action="store_true",
                   help="recompute the samples whose method failed too (data errors are always retried)")
    p.add_argument("--results", metavar="DIR",
                   help="results root (default: $MAST3R_BENCH_RESULTS, else ./results)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar")
    p.add_argument("--suite-size", choices=("small", "default"), default="default",
                   help="main job only: size of the synthetic suite (default: %(default)s)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="solve + evaluate samples in N threads while the next ones are matched (default 0: "
                        "serial); same results, recorded in manifest.json, not part of the run's identity")
    p.add_argument("--distributed", action="store_true",
                   help="require a torchrun launch (under torchrun a run is distributed anyway)")
    p.add_argument("--dist-timeout", type=float, default=distributed.DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help="torch.distributed collective timeout: how long a finished rank may wait for the "
                        "others (default: %(default)s)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="run a benchmark with a matcher (resumable); no BENCH: the main job",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"benchmarks: {', '.join(ADAPTERS.names())}\nmatchers: {', '.join(MATCHERS.names())}\n"
               "example: mast3r-bench run mapfree --matcher sift --data data/synthetic --limit 4 "
               "estimator.essential_max_error_px=1\n"
               "N GPUs:  torchrun --nproc_per_node=N -m benchmarks run BENCH --matcher NAME",
    )
    _add_options(p)
    # Everything after the first positional is re-parsed in `handler`, so that options may follow
    # BENCH and KEY=VALUE in any order (argparse alone cannot mix optional and `*` positionals).
    p.add_argument("rest", nargs=argparse.REMAINDER, metavar="[BENCH] [KEY=VALUE ...]",
                   help="benchmark name, then config overrides")
    p.set_defaults(func=handler, _parser=p)


def _parse_rest(args: argparse.Namespace) -> tuple[str | None, dict[str, str]]:
    inner = argparse.ArgumentParser(prog=args._parser.prog, add_help=False)
    _add_options(inner)
    inner.add_argument("-h", "--help", action="store_true")
    inner.add_argument("positionals", nargs="*")
    ns = inner.parse_intermixed_args(args.rest, namespace=args)
    if ns.help:
        args._parser.print_help()
        raise SystemExit(0)
    positionals = list(ns.positionals)
    bench = positionals.pop(0) if positionals and "=" not in positionals[0] else None
    return bench, parse_assignments(positionals)


def _is_main(args: argparse.Namespace) -> bool:
    """Whether this process prints results: always, except on torchrun ranks other than 0."""
    comm = getattr(args, "_comm", None)
    return comm is None or comm.rank == 0


def _run_all(args: argparse.Namespace, bench: str, matchers: Sequence[str],
             overrides: Mapping[str, str]) -> list[RunResult]:
    results = []
    for matcher in matchers:
        result = run_benchmark(
            bench, matcher, overrides=overrides, data_root=args.data, results_root=args.results,
            limit=args.limit, device=args.device, seed=args.seed, force=args.force, progress=args.progress,
            comm=getattr(args, "_comm", None), retry_failed=args.retry_failed,
            execution=Execution(workers=args.workers),
        )
        state = "finished" if result.done >= result.expected else "incomplete"
        bad = f", {len(result.data_errors)} data errors" if result.data_errors else ""
        if _is_main(args):
            print(f"{bench}/{matcher}: {result.done}/{result.expected} samples ({result.computed} computed "
                  f"now, {result.failures} failures{bad}, {state}) -> {result.run_dir.path}")
        results.append(result)
    args._data_errors.extend((bench, r) for r in results if r.data_errors)
    return results


def _report_data_errors(args: argparse.Namespace, shown: int = 20) -> int:
    """Exit code 3 and the list of bad files when some run has data-error records, else 0."""
    runs = getattr(args, "_data_errors", [])
    if not runs:
        return 0
    if _is_main(args):
        n = sum(len(r.data_errors) for _, r in runs)
        print(f"mast3r-bench run: {n} samples have unreadable data (not scored; fix the files and re-run "
              "the same command to retry them):", file=sys.stderr)
        for bench, r in runs:
            for key, error in r.data_errors[:shown]:
                print(f"  {bench}/{r.spec.matcher} {key}: {error}", file=sys.stderr)
            if len(r.data_errors) > shown:
                print(f"  ... and {len(r.data_errors) - shown} more (summary.json in {r.run_dir.path})",
                      file=sys.stderr)
    return 3


def _check_options(args: argparse.Namespace) -> None:
    """Options that are wrong whatever runs (ValueError naming the option)."""
    if args.limit is not None and args.limit < 0:
        raise ConfigError(f"--limit must be a number of samples >= 1, got {args.limit}")
    if args.workers < 0:
        raise ConfigError(f"--workers must be a number of threads >= 0, got {args.workers}")
    check_device(args.device)
    root = results_root(args.results)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--results {root} is a file, not a folder")


def _print_table(args: argparse.Namespace, results: Sequence[RunResult], bench: str) -> None:
    if not _is_main(args):
        return
    from benchmarks import tables

    frame = tables.collect(results_root(args.results), run_dirs=[r.run_dir for r in results])
    caption = title(ADAPTERS.get(bench), bench)
    print()
    print(tables.render(tables.bench_table(frame, bench), "md", caption=caption), end="")


def _available(name: str) -> bool:
    """Whether matcher ``name`` can run here (weights present, checkpoint configured, ...)."""
    try:
        cls = MATCHERS.get(name)
        return bool(cls.available()[0]) if isinstance(cls, Available) else True
    except Exception:  # an unavailable optional dependency is not an error of the main job
        log.debug("matcher %s unavailable", name, exc_info=True)
        return False


def _default_optional(name: str, args: argparse.Namespace) -> bool:
    """Optional matchers join the main job when available; the learned 2D baselines only on a GPU
    (on 2 CPU cores each adds tens of minutes; run them explicitly with ``--matcher``)."""
    if name not in ("mast3r", "dust3r"):
        from benchmarks.run_setup import default_device

        device = args.device if args.device not in (None, "auto") else default_device(MATCHERS.get(name))
        if not str(device).startswith("cuda"):
            return False
    return _available(name)


def default_job(args: argparse.Namespace, overrides: Mapping[str, str]) -> int:
    """The main job of ``mast3r-bench`` / ``mast3r-bench run`` without BENCH: the synthetic suite.

    Renders (or reuses) the embedded synthetic suite in ``<data root>/synthetic`` (``--suite-size``),
    then runs every synthetic benchmark with ``--matcher`` or, by default, the reference rows
    ``oracle`` (ceiling) and ``random`` (floor), ``sift``, ``mast3r``/``dust3r`` once a checkpoint is
    set (``$MAST3R_BENCH_CHECKPOINT``, ``$MAST3R_BENCH_DUST3R_CHECKPOINT``) and, on a GPU, the learned
    baselines whose weights are installed; one table per benchmark.
    """
    from datasets.paths import synthetic_root
    from datasets.synthetic.suite import BENCHMARKS, ensure_suite

    root = synthetic_root(args.data)
    main = _is_main(args)
    if main:
        print(f"Synthetic suite (embedded default: rendered scenes in the six benchmark layouts, exact "
              f"ground truth, no downloads): {root} [size {args.suite_size}]")
    comm = getattr(args, "_comm", None)
    if main:
        ensure_suite(root, seed=0, size=args.suite_size)
    if comm is not None and comm.distributed:
        comm.all_gather(None)  # the suite exists before any rank reads it
    optional = [m for m in OPTIONAL_MATCHERS if _default_optional(m, args)]
    matchers = args.matcher or [*DEFAULT_MATCHERS, *optional]
    if main:
        print(f"matchers: {', '.join(matchers)}")
    args.data = str(root)
    for bench in BENCHMARKS:
        if bench not in ADAPTERS:
            continue
        results = _run_all(args, bench, matchers, overrides)
        _print_table(args, results, bench)
    return _report_data_errors(args)


@contextlib.contextmanager
def _session(args: argparse.Namespace, env: DistEnv | None) -> Iterator[Any]:
    """This rank's process group for the whole command (None: a single process)."""
    if env is None:
        yield None
        return
    with distributed.process_group(env, args.device, args.dist_timeout) as comm:
        yield comm


def handler(args: argparse.Namespace) -> int:
    env = None
    quiet = False  # errors every rank meets alike are printed by rank 0 alone
    try:
        env = DistEnv.from_environ()
        quiet = env is not None and env.rank != 0
        bench, overrides = _parse_rest(args)
        args._data_errors = []
        _check_options(args)
        if args.limit == 0:
            log.warning("--limit 0: nothing to run")
            return 1
        if args.distributed and env is None:
            DistEnv.from_environ(required=True)  # raises, naming what is missing
        if bench is not None:
            if not args.matcher:
                known = ", ".join(MATCHERS.names())
                raise ConfigError(f"choose a matcher with --matcher NAME (known: {known})")
            ADAPTERS.target(bench)  # unknown names fail before anything runs
            for m in args.matcher:
                MATCHERS.target(m)
        with _session(args, env) as comm:
            quiet, args._comm = False, comm
            if bench is None:
                return default_job(args, overrides)
            results = _run_all(args, bench, args.matcher, overrides)
            _print_table(args, results, bench)
            return _report_data_errors(args)
    except PeerFailedError:  # rank 0 has reported it
        log.debug("run failed on rank 0", exc_info=True)
        return 2
    except EmptyBenchmarkError as e:
        if not quiet:
            log.warning("%s", e)
        return 1
    except KeyboardInterrupt as e:
        kept = f": {e.records} records kept" if isinstance(e, RunInterrupted) else ""
        print(f"\ninterrupted{kept}; re-run the same command to resume", file=sys.stderr)
        return 130
    except (ConfigError, UnknownNameError, RunLockedError, ValueError, FileNotFoundError,
            DistributedError, SetupError, ResourceError, OSError) as e:
        log.debug("run failed", exc_info=True)
        if not quiet:
            where = f" [rank {env.rank}]" if env is not None and env.rank else ""
            resource = isinstance(e, OSError) and not isinstance(e, FileNotFoundError)
            msg = describe_os_error(e) if resource else e  # type: ignore[arg-type]
            kept = getattr(e, "records", None)
            tail = f" ({kept} records kept; re-run the same command to resume)" if kept else ""
            print(f"mast3r-bench run{where}: error: {msg}{tail}", file=sys.stderr)
        return 2
