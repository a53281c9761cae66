"""``mast3r-bench time forward|frm|dense|c2f|suite``: GPU/CPU timings with median and IQR.

forward: one forward variant of a random-init network (``--dtype``, ``--fast``, ``--compile``,
``--cuda-graph``) at ``--batch`` pairs, with TFLOP/s from the analytic FLOP count and, with
``--check``, agreement with the float32 path on the same inputs. frm / dense: matching on smooth
unit-norm descriptor maps of ``--size``. c2f: batched forward of window crops (tiles/s).
suite: everything above, baselines included, in one process (the ``results/perf`` reports).
Standalone (no other CLI modules imported): ``python -m benchmarks.commands.time suite ...``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# Mirrors of benchmarks.timing.DTYPES and mast3r.fast.COMPILE_CHOICES, kept here so that building the
# CLI does not import torch (tests/benchmarks/test_timing.py checks they agree).
DTYPES = ("fp32", "tf32", "bf16", "fp16")
COMPILE_CHOICES = ("none", "blocks", "blocks+heads", "model")
TARGETS = ("forward", "frm", "dense", "c2f", "suite")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", choices=TARGETS, help="what to time")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument(
        "--batch", type=int, default=1, help="pairs per forward (c2f: tiles per batch, default 16)"
    )
    p.add_argument("--dtype", choices=DTYPES, default="fp32", help="precision (default fp32)")
    p.add_argument("--size", default="512x384", help="network input W x H per view (default 512x384)")
    p.add_argument("--repeats", type=int, default=30, help="timed repeats (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up calls (default 5)")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--md", type=Path, default=None, help="also write a Markdown report here")
    p.add_argument(
        "--model",
        default="mast3r_vitl_512",
        help="preset name or official constructor string (default mast3r_vitl_512)",
    )
    p.add_argument("--seed", type=int, default=0, help="weights / inputs seed")
    p.add_argument("--fast", action="store_true", help="forward through mast3r.fast (bf16/fp16 weights)")
    p.add_argument("--head-fp32", action="store_true", help="fast path: DPT and local MLP in float32")
    p.add_argument("--mlp-fp32", action="store_true", help="fast path: local-feature MLP in float32")
    p.add_argument(
        "--profile", action="store_true", help="forward/suite: add a torch.profiler kernel breakdown"
    )
    p.add_argument(
        "--compile", choices=COMPILE_CHOICES, default="none", help="fast path: torch.compile scope"
    )
    p.add_argument(
        "--compile-mode", default=None, help="fast path: torch.compile mode (e.g. max-autotune-no-cudagraphs)"
    )
    p.add_argument(
        "--gelu", choices=("erf", "tanh-fused"), default="erf",
        help="fast path: transformer MLP GELU (tanh-fused: one cuBLASLt GEMM, tanh approximation)",
    )  # fmt: skip
    p.add_argument("--cuda-graph", action="store_true", help="replay a captured CUDA graph")
    p.add_argument("--check", action="store_true", help="forward: compare with the float32 path")
    p.add_argument("--subsample", type=int, default=8, help="FRM seed grid step (default 8)")
    p.add_argument("--no-compile", action="store_true", help="suite: skip the torch.compile variants")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "time",
        help="time the forward, FRM, dense NN and coarse-to-fine tiles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from benchmarks.run_setup import check_device

    try:
        check_device(args.device)  # one line, not a traceback from deep inside torch
    except ValueError as e:
        print(f"mast3r-bench time: error: {e}", file=sys.stderr)
        return 2
    from benchmarks.timing_cli import run  # torch, the model and Triton load only when timing

    return run(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mast3r-bench time", description=__doc__)
    add_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
