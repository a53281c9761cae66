"""Implementation of ``mast3r-bench time`` (options in :mod:`benchmarks.commands.time`)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import Any

import torch

from benchmarks.timing import environment, parse_size, smooth_image_pairs, time_fn
from benchmarks.timing_matching import bench_dense, bench_frm
from benchmarks.timing_report import (
    c2f_table,
    dense_table,
    forward_table,
    frm_table,
    profile_table,
    render_markdown,
)
from benchmarks.timing_suite import ForwardBench, ForwardVariant, engine_forward
from mast3r.config import ConfigError, ModelConfig
from mast3r.matching import fast_reciprocal_nn


def _config(text: str) -> ModelConfig:
    return ModelConfig.from_args_string(text) if "(" in text else ModelConfig.preset(text)


class _Report:
    """Accumulates results; rewrites the JSON after every entry (a killed run keeps what it had)."""

    def __init__(
        self, args: argparse.Namespace, device: torch.device, config: ModelConfig, shape: tuple[int, int]
    ):
        self.path = args.json
        self.data: dict[str, Any] = {
            "command": "mast3r-bench time " + " ".join(shlex.quote(a) for a in args.argv),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "env": environment(device),
            "model": config.name,
            "size": f"{shape[1]}x{shape[0]}",
            "forward": [],
            "frm": [],
            "dense": [],
            "c2f": [],
            "profile": [],
        }

    def add(self, key: str, value: Any) -> None:
        if isinstance(value, list):
            self.data[key].extend(value)
        else:
            self.data[key].append(value)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=1, default=str))


def _forward_plan(args: argparse.Namespace) -> list[tuple[ForwardVariant, list[int]]]:
    if args.target == "forward":
        v = ForwardVariant(
            args.dtype,
            fast=args.fast,
            head_fp32=args.head_fp32,
            compile=args.compile,
            cuda_graph=args.cuda_graph,
            mlp_fp32=args.mlp_fp32,
            compile_mode=args.compile_mode,
            gelu=args.gelu,
        )
        return [(v, [args.batch])]
    V = ForwardVariant
    plan = [
        (V("fp32"), [1, 8]),
        (V("tf32"), [1, 8]),
        (V("bf16"), [1, 8]),
        (V("fp16"), [1, 8]),
        (V("bf16", fast=True), [1, 8]),
        (V("fp16", fast=True), [1, 8]),
        (V("fp16", fast=True, mlp_fp32=True), [8]),
        (V("bf16", fast=True, head_fp32=True), [8]),
        (V("fp16", fast=True, cuda_graph=True), [1, 8]),
    ]
    if not args.no_compile:
        plan += [
            (V("bf16", fast=True, compile="blocks", cuda_graph=True), [8, 1]),
            (V("fp16", fast=True, compile="blocks", cuda_graph=True), [8, 1]),
            (V("fp16", fast=True, compile="blocks+heads", cuda_graph=True), [8, 1]),
            (V("fp16", fast=True, mlp_fp32=True, compile="blocks+heads", cuda_graph=True), [8]),
        ]
    return plan


def _c2f(bench: ForwardBench, args: argparse.Namespace, report: _Report, variant: ForwardVariant) -> None:
    batch = args.batch if args.target == "c2f" else 16
    entry = bench.run(variant, batch, check=False)
    entry["tiles_per_s"] = 1e3 * batch / entry["stats"]["median_ms"]
    entry["variant"] = f"network: {entry['variant']}"
    report.add("c2f", entry)
    out = None
    with torch.inference_mode():
        model = bench._model_for(variant)[0]
        img0, img1 = (x[:batch] for x in bench.images)
        out = engine_forward(model, img0, img1)

    def match_all() -> None:
        for i in range(batch):
            fast_reciprocal_nn(out.view0.desc[i], out.view1.desc[i], args.subsample)

    stats = time_fn(match_all, bench.device, warmup=2, repeats=max(5, args.repeats // 3))
    report.add(
        "c2f",
        {
            "variant": "FRM on every tile",
            "batch": batch,
            "stats": stats.to_dict(),
            "tiles_per_s": 1e3 * batch / stats.median_ms,
        },
    )


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not hasattr(args, "argv"):
        args.argv = sys.argv[2:] if len(sys.argv) > 2 else [args.target]
    try:
        shape = parse_size(args.size)
        config = _config(args.model)
        if args.batch < 1 or args.repeats < 1:
            raise ValueError("--batch and --repeats must be >= 1")
        _forward_plan(args)  # validates the variant options early
    except (ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = _Report(args, device, config, shape)
    report.data["flops_per_pair"] = None
    if args.target in ("forward", "c2f", "suite"):
        batches = 16 if args.target == "suite" else args.batch
        images = smooth_image_pairs(batches, shape, args.seed, device)
        bench = ForwardBench(
            config,
            images,
            seed=args.seed,
            warmup=args.warmup,
            repeats=args.repeats,
            reference=args.check or args.target == "suite",
        )
        report.data["flops_per_pair"] = bench.flops
        if args.target in ("forward", "suite"):
            for variant, batch_list in _forward_plan(args):
                for b in batch_list:
                    try:
                        entry = bench.run(variant, b, check=args.check or args.target == "suite")
                    except Exception as exc:  # a failing variant (e.g. compile) must not lose the others
                        entry = {"variant": variant.name, "batch": b, "error": f"{type(exc).__name__}: {exc}"}
                    report.add("forward", entry)
                    print(forward_table([entry]).splitlines()[-1], flush=True)
        if args.profile and device.type == "cuda":
            variant = (
                _forward_plan(args)[0][0]
                if args.target == "forward"
                else ForwardVariant("fp16", fast=True, compile="none" if args.no_compile else "blocks+heads")
            )
            report.add("profile", bench.profile(variant, args.batch if args.target == "forward" else 8))
        if args.target in ("c2f", "suite"):
            dt = args.dtype if args.dtype in ("bf16", "fp16") else "fp16"
            cuda = device.type == "cuda"
            comp = "blocks+heads" if cuda and args.target == "suite" and not args.no_compile else args.compile
            _c2f(
                bench, args, report, ForwardVariant(dt, fast=cuda or args.fast, compile=comp, cuda_graph=cuda)
            )
        del bench
    if args.target in ("frm", "suite"):
        report.add(
            "frm",
            bench_frm(
                shape,
                device,
                subsample=args.subsample,
                warmup=args.warmup,
                repeats=args.repeats,
                seed=args.seed,
            ),
        )
    if args.target in ("dense", "suite"):
        report.add("dense", bench_dense(shape, device, repeats=args.repeats, seed=args.seed))
    d = report.data
    print(f"\n{d['env'].get('device_name')} | torch {d['env']['torch']} | {d['size']} | {d['model']}")
    for key, table in (
        ("forward", forward_table),
        ("frm", frm_table),
        ("dense", dense_table),
        ("c2f", c2f_table),
    ):
        if d[key]:
            print(table(d[key]) + "\n")
    for prof in d["profile"]:
        print(
            f"profile {prof['variant']} batch {prof['batch']}: "
            + ", ".join(f"{k} {v:.2f} ms" for k, v in prof["categories"].items())
        )
        print(profile_table(prof["kernels"]) + "\n")
    if args.md is not None:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(render_markdown(d))
    return 0


