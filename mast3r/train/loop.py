"""The training loop: AdamW, warm-up + cosine, bf16 autocast, clipping, DDP, resumable checkpoints.

Determinism and resume: the batch of step ``k`` is a pure function of the data source's seed and
``k`` (``source.batch(k, start, stop)``), torch's RNG is re-seeded from ``(seed, k)`` before each step
(the matching loss shuffles), and the checkpoint holds model, optimizer and step. So ``--resume`` after a
SIGKILL continues at the exact step, and on the CPU ends with the same weights as an uninterrupted run.
Under torchrun each rank takes its slice of the global batch; DDP averages the gradients.

Files in ``out_dir``: ``checkpoint-last.pth`` (official container + optimizer), ``log.csv`` (one row every
``log_every`` steps), ``val.csv`` (validations), ``summary.json`` (throughput, final metrics, one entry
per call) and ``model.safetensors`` (fp16 weights of the last step, with the constructor string).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from mast3r.config import ModelConfig
from mast3r.model import Mast3r
from mast3r.train.checkpoint import init_from, load_training_checkpoint, save_training_checkpoint
from mast3r.train.config import TrainConfig
from mast3r.train.criterion_base import preds_from_pair
from mast3r.train.optim import learning_rate, make_optimizer
from mast3r.train.validate import validation_metrics

__all__ = ["PairSource", "TrainResult", "train", "export_weights", "CHECKPOINT_NAME"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint-last.pth"


class PairSource(Protocol):
    """Training pairs: ``batch(step, start, stop) -> (view1, view2)`` dicts of tensors for the global
    pair indices [start, stop) of step ``step`` (``mast3r.train`` dict keys; ``img`` (B,3,H,W) in [-1, 1])."""

    def batch(self, step: int, start: int, stop: int) -> tuple[dict, dict]: ...


@dataclass
class TrainResult:
    """What a call of :func:`train` did: steps ``start_step`` -> ``end_step``, whether the schedule
    finished, throughput and the last validation."""

    start_step: int
    end_step: int
    finished: bool
    pairs_per_s: float
    train_flop_per_pair: float | None
    last_val: dict[str, Any] = field(default_factory=dict)


def export_weights(model: Mast3r, path: str | Path, dtype: torch.dtype = torch.float16) -> None:
    """Weights as safetensors in ``dtype`` with the constructor string (``load_model`` reads it)."""
    from mast3r.weights import save_safetensors

    save_safetensors(model, path, dtype=dtype)


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7919 + 12345) % (2**63 - 1)


class _CsvLog:
    """Append-only CSV whose header is fixed by its first row; on resume, rows past ``keep_until`` go."""

    def __init__(self, path: Path, keep_until: int | None) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists() and keep_until is not None:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            self.fields = list(rows[0].keys()) if rows else None
            rows = [r for r in rows if int(r["step"]) <= keep_until]
            if self.fields:
                with open(path, "w", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=self.fields)
                    w.writeheader()
                    w.writerows(rows)
        elif path.exists():
            path.unlink()

    def write(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def _train_flop_per_pair(model: nn.Module, criterion: Callable, batch: tuple[dict, dict],
                         amp: torch.dtype | None) -> float | None:
    """FLOPs of one forward + backward per pair (torch's FLOP counter; matrix products and convs)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # pragma: no cover
        return None
    v1, v2 = batch
    n = int(v1["img"].shape[0])
    with FlopCounterMode(display=False) as counter:
        out = model(v1["img"], v2["img"], autocast_dtype=amp, autocast_heads=True)
        loss, _ = criterion(v1, v2, *preds_from_pair(out))
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / n


UNUSED_PARAMETERS = ("mask_token", "refinenet4.resConfUnit1.")
"""Parameters no forward reads (the pre-training mask token; DPT's coarsest fusion block has no skip
input): frozen for training, so DDP needs no unused-parameter search and AdamW does not decay them."""


def _freeze_unused(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        if name == UNUSED_PARAMETERS[0] or UNUSED_PARAMETERS[1] in name:
            p.requires_grad_(False)


def _ddp(model: nn.Module, device: torch.device, world_size: int) -> nn.Module:
    if world_size <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _all_mean(value: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size > 1:
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value)
        value /= world_size
    return value


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def train(cfg: TrainConfig, *, source: PairSource, val_source: PairSource | None, out_dir: str | Path,
          device: str | torch.device = "cpu", init: str | None = None, resume: bool = False,
          rank: int = 0, world_size: int = 1, time_limit_s: float | None = None,
          criterion: Callable | None = None, progress: bool = True) -> TrainResult:
    """Run (or continue) the schedule of ``cfg`` until its last step or ``time_limit_s``.

    Args:
        source / val_source: training pairs and held-out pairs (``val_source.batch(0, 0, val_pairs)``).
        out_dir: run folder (checkpoint, logs). Without ``resume`` an existing checkpoint there is an
            error (nothing is overwritten).
        init: checkpoint to initialise from (overrides ``cfg.init``); ignored when resuming.
        rank / world_size: this process's place under torchrun (the process group must exist).
        time_limit_s: stop after this many seconds (checkpoint written): a chunk of a longer schedule.
    """
    device = torch.device(device)
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue it, or another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    mconf = ModelConfig.from_args_string(cfg.model)
    model_string = mconf.to_args_string()
    torch.manual_seed(cfg.seed)
    model = Mast3r(mconf).to(device).train()
    _freeze_unused(model)
    optimizer = make_optimizer(model, cfg.optim, device)
    start = 0
    if resume and ckpt_path.exists():
        payload = load_training_checkpoint(ckpt_path)
        if payload["args"].model != model_string:
            raise ValueError(f"{ckpt_path}: its model {payload['args'].model!r} is not the config's "
                             f"{model_string!r}")
        model.load_state_dict(payload["model"])
        if "optimizer" in payload:
            optimizer.load_state_dict(payload["optimizer"])
        start = int(payload["step"])
        log.info("resuming %s at step %d", ckpt_path, start)
    elif init or cfg.init:
        init_from(model, init or cfg.init, tuple(cfg.fresh_heads))
    if criterion is None:
        from mast3r.train import build_criterion

        criterion = build_criterion(cfg.criterion)
    crit = criterion
    amp = torch.bfloat16 if cfg.run.amp == "bf16" else None
    net = _ddp(model, device, world_size)
    if cfg.run.compile and device.type == "cuda":
        net = torch.compile(net)

    keep = start if resume else None
    train_log = _CsvLog(out_dir / "log.csv", keep) if rank == 0 else None
    val_log = _CsvLog(out_dir / "val.csv", keep) if rank == 0 else None
    global_b = cfg.optim.batch_size
    lo, hi = rank * global_b // world_size, (rank + 1) * global_b // world_size
    val_batch = val_source.batch(0, 0, cfg.run.val_pairs) if (val_source is not None and rank == 0) else None
    flop = None
    if val_batch is not None and val_source is not None and start < cfg.optim.steps:
        flop = _train_flop_per_pair(model, crit, val_source.batch(0, 0, 1), amp)

    def validate(step: int) -> dict[str, Any]:
        if val_batch is None:
            return {}
        model.eval()
        with torch.no_grad():
            out = model(val_batch[0]["img"], val_batch[1]["img"], autocast_dtype=amp, autocast_heads=True)
            p1, p2 = preds_from_pair(out)
            vloss, _ = crit(*val_batch, p1, p2)
            metrics = {"step": step, "val_loss": float(vloss), **validation_metrics(*val_batch, p1, p2)}
        model.train()
        assert val_log is not None
        val_log.write(metrics)
        log.info("val step %d: %s", step,
                 {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})
        return metrics

    def checkpoint(step: int) -> None:
        if rank == 0:
            save_training_checkpoint(ckpt_path, model, step=step, model_string=model_string,
                                     optimizer=optimizer, train_criterion=cfg.criterion, seed=cfg.seed,
                                     config_name=cfg.name)
        _barrier(world_size)

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.optim.steps, initial=start, desc=f"train {cfg.name}", unit="step",
                   dynamic_ncols=True)
    last_val: dict[str, Any] = {}
    loss_sum = torch.zeros((), device=device)
    details_sum: dict[str, float] = {}
    n_logged, t_log, pairs_done, t_loop = 0, time.perf_counter(), 0, time.perf_counter()
    step = start
    stopped_early = False
    while step < cfg.optim.steps:
        if time_limit_s is not None and time.perf_counter() - t_start > time_limit_s:
            stopped_early = True
            break
        lr = learning_rate(step, cfg.optim)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(_step_seed(cfg.seed, step))
        v1, v2 = source.batch(step, lo, hi)
        out = net(v1["img"], v2["img"], autocast_dtype=amp, autocast_heads=True)
        loss, details = crit(v1, v2, *preds_from_pair(out))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step}: non-finite loss {float(loss)} (details {details})")
        loss.backward()
        if cfg.optim.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_sum += loss.detach()
        for k, v in details.items():  # tensors stay on the device (no sync per step)
            v = v.detach() if isinstance(v, torch.Tensor) else v
            details_sum[k] = details_sum.get(k, 0.0) + v
        n_logged += 1
        pairs_done += global_b
        if step % cfg.run.log_every == 0 or step == cfg.optim.steps:
            mean_loss = float(_all_mean(loss_sum / n_logged, world_size))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            now = time.perf_counter()
            rate = n_logged * global_b / max(now - t_log, 1e-9)
            if train_log is not None:
                row = {"step": step, "lr": lr, "loss": mean_loss, "pairs_per_s": rate,
                       "elapsed_s": now - t_start, **{k: float(v) / n_logged for k, v in details_sum.items()}}
                train_log.write(row)
            if bar is not None:
                bar.set_postfix(loss=f"{mean_loss:.4f}", pairs_s=f"{rate:.0f}")
            loss_sum.zero_()
            details_sum, n_logged, t_log = {}, 0, now
        if bar is not None:
            bar.update(1)
        if cfg.run.val_every and step % cfg.run.val_every == 0 and step < cfg.optim.steps:
            last_val = validate(step)
        if step % cfg.run.ckpt_every == 0 and step < cfg.optim.steps:
            checkpoint(step)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t_loop
    checkpoint(step)
    finished = step >= cfg.optim.steps and not stopped_early
    if rank == 0 and step > start:
        last_val = validate(step)
    if rank == 0 and step > start:  # the weights of this call's last step (fp16): what a chunk brings back
        export_weights(model, out_dir / "model.safetensors")
    rate = pairs_done / elapsed if elapsed > 0 else 0.0
    result = TrainResult(start, step, finished, rate, flop, last_val)
    if rank == 0:
        summary = {"config": cfg.name, "start_step": start, "end_step": step, "finished": finished,
                   "pairs_per_s": rate, "train_flop_per_pair": flop,
                   "train_tflops": (flop * rate / 1e12) if flop else None, "world_size": world_size,
                   "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                   "last_val": last_val, "seconds": time.perf_counter() - t_start}
        _append_summary(out_dir / "summary.json", summary)
    return result


def _append_summary(path: Path, entry: dict[str, Any]) -> None:
    """``summary.json`` holds one entry per call (chunk) of :func:`train`."""
    entries: list = []
    if path.exists():
        with contextlib.suppress(ValueError):
            entries = json.loads(path.read_text())
    entries.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in entry.items()})
    path.write_text(json.dumps(entries, indent=1))
