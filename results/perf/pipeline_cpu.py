"""Serial vs pipelined ``run`` throughput (pairs/s) on the synthetic suite, CPU.

    PYTHONPATH=$PWD python results/perf/pipeline_cpu.py [--workers 2] [--size small] \
        [--runs mapfree:sift aachen:oracle ...] [--out results/perf/pipeline_cpu.json]

For each ``bench:matcher``: a warm-up run (imports, first-call costs), then ``cold`` (fresh results
roots: the matcher runs) and ``warm`` (``--force`` on the same roots: correspondences from the
cache, so only solve + evaluate remain), each serial (``workers 0``) and pipelined (``--workers N``).
Throughput is the manifest's ``throughput.pairs_per_s``; the records of both paths are checked equal
(timings aside). Timings depend on the machine's load: say how many cores were free.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchmarks.pipeline import Execution
from benchmarks.runner import run_benchmark
from benchmarks.store import RecordStore
from datasets.synthetic.suite import ensure_suite

DEFAULT_RUNS = ("mapfree:sift", "re10k:sift", "aachen:sift", "dtu:oracle", "inloc:oracle", "co3dv2:oracle")


def _rate(result) -> float:
    return float(json.loads(result.run_dir.manifest_path.read_text())["throughput"]["pairs_per_s"])


def _content(result) -> list:
    records = RecordStore(result.run_dir.records_path).load().values()
    return [(r.key, r.metrics, r.meta.get("seed")) for r in records]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", default="small", choices=("small", "default"))
    p.add_argument("--runs", nargs="*", default=list(DEFAULT_RUNS), metavar="BENCH:MATCHER")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pipeline_cpu_"))
    data = tmp / "data"
    ensure_suite(data, seed=0, size=args.size, benchmarks=sorted({r.split(":")[0] for r in args.runs}))
    rows = []
    for spec in args.runs:
        bench, matcher = spec.split(":")
        common = dict(data_root=data, progress=False, limit=args.limit)
        run_benchmark(bench, matcher, results_root=tmp / "warmup", **common)
        row = {"bench": bench, "matcher": matcher, "cpus": len(os.sched_getaffinity(0))}
        for phase, force in (("cold", False), ("warm", True)):
            serial = run_benchmark(bench, matcher, results_root=tmp / "serial", force=force, **common)
            piped = run_benchmark(bench, matcher, results_root=tmp / "piped", force=force,
                                  execution=Execution(workers=args.workers), **common)
            if _content(serial) != _content(piped):
                raise SystemExit(f"{spec} ({phase}): pipelined records differ from the serial ones")
            row.update({f"{phase}_pairs": json.loads(serial.run_dir.manifest_path.read_text())[
                "throughput"]["pairs"], f"{phase}_serial": _rate(serial), f"{phase}_piped": _rate(piped)})
        rows.append(row)
        print(f"{spec:16s} cold {row['cold_serial']:7.2f} -> {row['cold_piped']:7.2f} pairs/s   "
              f"warm {row['warm_serial']:7.2f} -> {row['warm_piped']:7.2f} pairs/s "
              f"({row['cold_pairs']} pairs, --workers {args.workers})", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"workers": args.workers, "size": args.size, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
