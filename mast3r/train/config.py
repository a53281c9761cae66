"""Training configuration: one TOML file per trained model (``results/train/<name>/config.toml``).

Every field has a default; unknown keys are errors (with "did you mean"). The model is given as its
constructor string (the one the checkpoint stores as ``args.model``), the objective as an official
``--train_criterion`` string (:func:`mast3r.train.build_criterion`).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from mast3r.train import MAST3R_CRITERION

__all__ = ["DataConfig", "OptimConfig", "RunConfig", "TrainConfig", "TrainConfigError", "load_train_config"]

RELEASED_CRITERION = MAST3R_CRITERION
"""The released MASt3R training objective (spec section 8)."""


class TrainConfigError(ValueError):
    """A training config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class DataConfig:
    """Where training pairs come from.

    Attributes:
        source: ``"synthetic"`` (GPU-rendered random scenes) or ``"co3dv2"`` (a CO3Dv2 download).
        root: dataset root for real sources.
        options: keyword options of the source's own config (e.g. ``n_corres``, ``resolutions``).
        workers: CPU processes preparing the next batches (speed only; the pairs are the same).
    """

    source: str = "synthetic"
    root: str = ""
    workers: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``min_lr`` (per optimizer step).

    ``batch_size`` is the global batch (pairs per step, summed over ranks).
    """

    batch_size: int = 16
    steps: int = 1000
    lr: float = 1e-4
    min_lr: float = 1e-6
    warmup_steps: int = 100
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float = 1.0


@dataclass(frozen=True)
class RunConfig:
    """How the loop runs and reports (none of it changes what one step computes, except ``amp``).

    Attributes:
        amp: ``"bf16"`` (autocast, heads included) or ``"fp32"``.
        log_every: steps between CSV log rows.
        val_every: steps between validations (0: only at the end).
        val_pairs: held-out pairs per validation.
        ckpt_every: steps between checkpoints (the last step is always saved).
        compile: ``torch.compile`` the model (CUDA only).
    """

    amp: str = "bf16"
    log_every: int = 20
    val_every: int = 500
    val_pairs: int = 16
    ckpt_every: int = 250
    compile: bool = False


@dataclass(frozen=True)
class TrainConfig:
    name: str = "mast3r_train"
    model: str = ""
    criterion: str = RELEASED_CRITERION
    seed: int = 0
    init: str = ""
    fresh_heads: tuple[str, ...] = ()
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        o, r = self.optim, self.run
        checks = [
            (bool(self.model), "model: a constructor string is required"),
            (o.batch_size >= 1 and o.steps >= 1, "optim.batch_size and optim.steps must be >= 1"),
            (0 <= o.warmup_steps <= o.steps, "optim.warmup_steps must be in [0, steps]"),
            (math.isfinite(o.lr) and o.lr > 0 and 0 <= o.min_lr <= o.lr,
             "optim: need 0 <= min_lr <= lr, lr > 0"),
            (o.weight_decay >= 0 and all(0 <= b < 1 for b in o.betas),
             "optim: weight_decay >= 0, betas in [0,1)"),
            (o.clip_grad >= 0, "optim.clip_grad must be >= 0 (0: off)"),
            (r.amp in ("bf16", "fp32"), f"run.amp must be 'bf16' or 'fp32', got {r.amp!r}"),
            (min(r.log_every, r.ckpt_every) >= 1 and r.val_every >= 0 and r.val_pairs >= 1,
             "run: log_every, ckpt_every, val_pairs >= 1 and val_every >= 0"),
            (self.data.source in ("synthetic", "co3dv2"),
             f"data.source {self.data.source!r} not in synthetic, co3dv2"),
        ]
        for ok, msg in checks:
            if not ok:
                raise TrainConfigError(msg)

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        hints = [k + (f" (did you mean {c[0]!r}?)" if (c := difflib.get_close_matches(k, names, n=1)) else "")
                 for k in unknown]
        raise TrainConfigError(f"{where}: unknown key(s) {', '.join(hints)}")
    out = {}
    for key, value in values.items():
        if key in ("data", "optim", "run") and cls is TrainConfig:
            sub = {"data": DataConfig, "optim": OptimConfig, "run": RunConfig}[key]
            if not isinstance(value, dict):
                raise TrainConfigError(f"{where}: [{key}] must be a table")
            out[key] = _build(sub, value, f"{where} [{key}]")
        elif isinstance(value, list) and key != "options":
            out[key] = tuple(value)
        else:
            out[key] = value
    return cls(**out)


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a TOML training config; errors name the file."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TrainConfigError(f"{path}: no such training config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TrainConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return _build(TrainConfig, values, str(path))
    except TrainConfigError as exc:
        msg = str(exc)
        raise TrainConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except TypeError as exc:
        raise TrainConfigError(f"{path}: {exc}") from None
