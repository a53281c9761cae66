"""The training loop: schedule, logs, exact resume after SIGKILL, DDP equal to one process (gloo, CPU)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mast3r.train.checkpoint import load_training_checkpoint
from mast3r.train.config import OptimConfig, RunConfig, TrainConfig
from mast3r.train.loop import CHECKPOINT_NAME, train
from mast3r.weights import load_model

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the fakes module next to this test (tests are not a package)
from fakes import TINY_MODEL, FakePairs  # noqa: E402


def simple_criterion(gt1, gt2, pred1, pred2):
    """Mean pointmap L1 + descriptor agreement at the positives: enough to move every head."""
    reg = ((pred1["pts3d"] - gt1["pts3d"]).abs().mean()
           + (pred2["pts3d_in_other_view"] - gt2["pts3d"]).abs().mean())
    b = torch.arange(gt1["corres"].shape[0])[:, None]
    c1, c2 = gt1["corres"], gt2["corres"]
    d1 = pred1["desc"][b, c1[..., 1], c1[..., 0]]
    d2 = pred2["desc"][b, c2[..., 1], c2[..., 0]]
    match = (1 - (d1 * d2).sum(-1)).mean()
    loss = reg + match + 0.01 * (pred1["conf"].mean() + pred2["desc_conf"].mean())
    return loss, {"reg": reg.detach(), "match": match.detach()}


def _cfg(steps: int = 6, batch: int = 4, **run) -> TrainConfig:
    run_kw = dict(amp="fp32", log_every=1, val_every=0, val_pairs=2, ckpt_every=1) | run
    return TrainConfig(name="tiny", model=TINY_MODEL, seed=3,
                       optim=OptimConfig(batch_size=batch, steps=steps, warmup_steps=2, lr=1e-3),
                       run=RunConfig(**run_kw))


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_training_checkpoint(path)["model"]


def test_train_runs_logs_validates_and_exports(tmp_path):
    res = train(_cfg(val_every=3), source=FakePairs(0), val_source=FakePairs(99), out_dir=tmp_path,
                criterion=simple_criterion, progress=False)
    assert (res.start_step, res.end_step, res.finished) == (0, 6, True)
    rows = _rows(tmp_path / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "lr", "reg", "match", "pairs_per_s"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])  # it learns something on a fixed-ish task
    assert float(rows[1]["lr"]) == pytest.approx(1e-3)  # warm-up reaches lr at step 2
    val = _rows(tmp_path / "val.csv")
    assert [int(r["step"]) for r in val] == [3, 6]
    assert {"pts3d_err_m", "desc_nn_acc", "frm_matches_per_pair", "frm_precision"} <= set(val[0])
    model = load_model(tmp_path / "model.safetensors")  # fp16 export, constructor string in metadata
    assert model.config.dpt_feature_dim == 8
    ckpt = load_training_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert ckpt["step"] == 6 and ckpt["epoch"] == 6 and "optimizer" in ckpt
    assert ckpt["args"].model == model.config.to_args_string()


def test_existing_checkpoint_is_never_overwritten_without_resume(tmp_path):
    train(_cfg(steps=2), source=FakePairs(0), val_source=None, out_dir=tmp_path, criterion=simple_criterion,
          progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(_cfg(steps=2), source=FakePairs(0), val_source=None, out_dir=tmp_path,
              criterion=simple_criterion, progress=False)


def test_time_limit_stops_with_a_checkpoint_and_resume_finishes_identically(tmp_path):
    straight = tmp_path / "a"
    train(_cfg(), source=FakePairs(0), val_source=None, out_dir=straight, criterion=simple_criterion,
          progress=False)
    chunked = tmp_path / "b"
    first = train(_cfg(), source=FakePairs(0), val_source=None, out_dir=chunked, criterion=simple_criterion,
                  time_limit_s=0.0, progress=False)
    assert not first.finished and first.end_step == 0
    second = train(_cfg(), source=FakePairs(0), val_source=None, out_dir=chunked, criterion=simple_criterion,
                   resume=True, progress=False)
    assert second.finished
    a, b = _weights(straight / CHECKPOINT_NAME), _weights(chunked / CHECKPOINT_NAME)
    assert all(torch.equal(a[k], b[k]) for k in a)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {here!r})
    from fakes import FakePairs
    from test_loop import _cfg, simple_criterion
    from mast3r.train.loop import train

    class Killer(FakePairs):
        def batch(self, step, start, stop):
            if step == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().batch(step, start, stop)

    train(_cfg(), source=Killer(0), val_source=None, out_dir={out!r}, criterion=simple_criterion,
          progress=False)
""")


def test_resume_after_sigkill_continues_at_the_exact_step_with_identical_weights(tmp_path):
    straight = tmp_path / "straight"
    train(_cfg(), source=FakePairs(0), val_source=None, out_dir=straight, criterion=simple_criterion,
          progress=False)
    killed = tmp_path / "killed"
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(here=str(HERE), kill_at=4, out=str(killed)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_training_checkpoint(killed / CHECKPOINT_NAME)["step"] == 4
    res = train(_cfg(), source=FakePairs(0), val_source=None, out_dir=killed, criterion=simple_criterion,
                resume=True, progress=False)
    assert (res.start_step, res.end_step) == (4, 6)
    assert [int(r["step"]) for r in _rows(killed / "log.csv")] == [1, 2, 3, 4, 5, 6]
    a, b = _weights(straight / CHECKPOINT_NAME), _weights(killed / CHECKPOINT_NAME)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(straight / "log.csv")[-1]["loss"] == _rows(killed / "log.csv")[-1]["loss"]


def _criterion(name: str):
    if name == "released":
        from mast3r.train import MAST3R_CRITERION, build_criterion

        return build_criterion(MAST3R_CRITERION)
    return simple_criterion


def _ddp_worker(rank: int, world: int, init_file: str, out: str, crit: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        train(_cfg(steps=3), source=FakePairs(0), val_source=None, out_dir=out, criterion=_criterion(crit),
              rank=rank, world_size=world, progress=False)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("crit", ["simple", "released"])
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path, crit):
    """Equal per-rank shares of valid pixels and positives (FakePairs): the mean of the ranks' losses is
    the global-batch loss, so the DDP run equals one process (the released criterion included)."""
    one = tmp_path / "one"
    train(_cfg(steps=3), source=FakePairs(0), val_source=None, out_dir=one, criterion=_criterion(crit),
          progress=False)
    two = tmp_path / "two"
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "pg"), str(two), crit), nprocs=2, join=True,
                       start_method="spawn")
    l1 = [float(r["loss"]) for r in _rows(one / "log.csv")]
    l2 = [float(r["loss"]) for r in _rows(two / "log.csv")]
    assert l1 == pytest.approx(l2, rel=1e-5)
    a, b = _weights(one / CHECKPOINT_NAME), _weights(two / CHECKPOINT_NAME)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
