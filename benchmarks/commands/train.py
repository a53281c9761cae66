"""``mast3r-bench train CONFIG [--init CKPT] [--out DIR] [--resume]``: train MASt3R (``mast3r.train``).

CONFIG is a TOML file (``results/train/<name>/config.toml`` holds one per trained model). Training
pairs come from ``data.source``: ``synthetic`` renders fresh random scenes on the training device
(``datasets.synthetic.train_pairs``; never the benchmark suite's scenes), ``co3dv2`` reads a CO3Dv2
download with depth (``datasets.co3dv2_train``). Held-out validation pairs come from a fixed seed.

Under torchrun (``torchrun --nproc_per_node=N --no-python mast3r-bench train CONFIG``) each process
trains its slice of the global batch with DistributedDataParallel, as ``run`` does without a flag.
``--resume`` continues the checkpoint in ``--out`` at its exact step; ``--time-limit`` stops cleanly
(checkpoint written) after that many minutes, for schedules longer than one sitting.

Exit codes: 0 schedule finished, 4 stopped by --time-limit (resume to continue), 2 setup error.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["register", "handler", "VAL_SEED", "make_sources"]

log = logging.getLogger(__name__)

VAL_SEED = 2_000_000_011
"""Seed of the held-out validation pairs (a training config may not use it)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train MASt3R (paper objective, synthetic or CO3Dv2 pairs)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path, metavar="CONFIG", help="training config (TOML)")
    p.add_argument("--init", metavar="CKPT", help="initialise from this checkpoint (official MASt3R/DUSt3R "
                   "or ours); overrides the config's init")
    p.add_argument("--out", type=Path, metavar="DIR", help="run folder (default: <results>/train/<name>)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--device", default="auto", help="torch device (default: cuda if available)")
    p.add_argument("--time-limit", type=float, metavar="MIN", help="stop (checkpointed) after MIN minutes")
    p.add_argument("--results", metavar="DIR",
                   help="results root (default: $MAST3R_BENCH_RESULTS or ./results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)


def make_sources(cfg, device: str, seed: int):  # noqa: ANN001, ANN201 (datasets types, imported lazily)
    """(training source, validation source) for ``cfg.data`` on ``device``."""
    data = cfg.data
    if data.source == "synthetic":
        from datasets.synthetic.train_pairs import PairSampler, PairSamplerConfig

        scfg = _source_config(PairSamplerConfig, data.options)
        return (PairSampler(scfg, seed=seed, device=device, workers=data.workers),
                PairSampler(scfg, seed=VAL_SEED, device=device))
    import dataclasses

    from datasets.co3dv2_train import Co3dPairConfig, Co3dPairSource
    from mast3r.train.config import TrainConfigError

    if not data.root:
        raise TrainConfigError("[data] source 'co3dv2' needs root = the CO3Dv2 download folder")
    ccfg = _source_config(Co3dPairConfig, data.options)
    train_src = Co3dPairSource(data.root, ccfg, seed=seed, device=device)
    # held-out pairs: the set list's val split when one is named, else other pairs of the training frames
    val_cfg = dataclasses.replace(ccfg, split="val") if ccfg.set_list else ccfg
    try:
        val_src = Co3dPairSource(data.root, val_cfg, seed=VAL_SEED, device=device)
    except ValueError as exc:  # DatasetFormatError too: no sequence in that split
        log.warning("no CO3Dv2 validation split (%s): validating on other pairs of the training frames", exc)
        val_src = Co3dPairSource(data.root, ccfg, seed=VAL_SEED, device=device)
    return train_src, val_src


def _source_config(cls, options: dict):  # noqa: ANN001, ANN202
    import dataclasses

    from mast3r.train.config import TrainConfigError

    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TrainConfigError(f"[data.options]: unknown key(s) {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(names))})")
    values = {k: (tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v)
              for k, v in options.items()}
    return cls(**values)


def _device(name: str, local_rank: int | None) -> str:
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine")
        if local_rank is not None and name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise ValueError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    return name


def handler(args: argparse.Namespace) -> int:
    from benchmarks.distributed import DistEnv, DistributedError, process_group
    from benchmarks.store import results_root
    from datasets.records import DatasetFormatError
    from mast3r.config_parse import ConfigError
    from mast3r.train.config import TrainConfigError, load_train_config
    from mast3r.train.loop import train
    from mast3r.weights import CheckpointError

    try:
        cfg = load_train_config(args.config)
        if cfg.seed == VAL_SEED:
            raise TrainConfigError(f"{args.config}: seed {VAL_SEED} is reserved for validation pairs")
        from mast3r.config import ModelConfig
        from mast3r.train import build_criterion

        ModelConfig.from_args_string(cfg.model)  # set-up errors before anything runs
        criterion = build_criterion(cfg.criterion)
        env = DistEnv.from_environ()
        device = _device(args.device, env.local_rank if env else None)
        out = args.out or results_root(args.results) / "train" / cfg.name
        if (out / "checkpoint-last.pth").exists() and not args.resume:
            raise FileExistsError(f"{out / 'checkpoint-last.pth'} exists: pass --resume to continue it, "
                                  "or another --out")
    except (TrainConfigError, ConfigError, ValueError, FileExistsError, DistributedError) as exc:
        print(f"error: {exc}")
        return 2
    limit = args.time_limit * 60 if args.time_limit else None
    try:
        if env is None:
            train_src, val_src = make_sources(cfg, device, cfg.seed)
            result = train(cfg, source=train_src, val_source=val_src, out_dir=out, device=device,
                           init=args.init, resume=args.resume, time_limit_s=limit, criterion=criterion,
                           progress=not args.no_progress)
        else:
            with process_group(env, device):
                train_src, val_src = make_sources(cfg, device, cfg.seed)
                result = train(cfg, source=train_src, val_source=val_src, out_dir=out, device=device,
                               init=args.init, resume=args.resume, rank=env.rank, world_size=env.world_size,
                               time_limit_s=limit, criterion=criterion, progress=not args.no_progress)
    except (TrainConfigError, ConfigError, CheckpointError, FileExistsError, DatasetFormatError) as exc:
        print(f"error: {exc}")
        return 2
    except OSError as exc:  # a full or read-only disk: the last checkpoint stays
        print(f"error: {exc}; the last checkpoint in {out} is kept")
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the last checkpoint in {out} is kept; re-run with --resume to continue")
        return 130
    state = "finished" if result.finished else "stopped (time limit): re-run with --resume to continue"
    print(f"train {cfg.name}: steps {result.start_step} -> {result.end_step}, "
          f"{result.pairs_per_s:.1f} pairs/s, {state}; {out}")
    return 0 if result.finished else 4
