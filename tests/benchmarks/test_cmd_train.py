"""``mast3r-bench train`` through the CLI (subprocess): synthetic and CO3Dv2 pairs, no overwrite without
--resume, time-limit chunks (exit 4) then --resume, bad configs in one line, ``plot train``."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mast3r.train.checkpoint import init_from, load_training_checkpoint

ROOT = Path(__file__).resolve().parents[2]

TINY_MODEL = (
    "AsymmetricMASt3R(pos_embed='RoPE100', img_size=(64, 64), head_type='catmlp+dpt', "
    "output_mode='pts3d+desc24', depth_mode=('exp', -inf, inf), conf_mode=('exp', 1, inf), "
    "enc_embed_dim=32, enc_depth=1, enc_num_heads=2, dec_embed_dim=32, dec_depth=2, dec_num_heads=2, "
    "two_confs=True, desc_conf_mode=('exp', 0, inf), dpt_layer_dims=(8, 8, 8, 8), dpt_feature_dim=8, "
    "dpt_last_dim=8, local_feat_hidden_factor=0.5)"
)


def write_config(path: Path, *, steps: int = 3, data: str = "") -> Path:
    data = data or ('[data]\nsource = "synthetic"\n[data.options]\nresolutions = [[48, 64]]\n'
                    'n_corres = 64\nn_noise = 1\nn_rect = 1\n')
    path.write_text(f'name = "tiny"\nmodel = "{TINY_MODEL}"\nseed = 1\n{data}'
                    f'[optim]\nbatch_size = 2\nsteps = {steps}\nwarmup_steps = 1\n'
                    '[run]\namp = "fp32"\nlog_every = 1\nval_every = 2\nval_pairs = 2\nckpt_every = 1\n')
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "benchmarks", "train", *args, "--no-progress", "--device", "cpu"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def steps_logged(run: Path) -> list[int]:
    with open(run / "log.csv", newline="") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh)]


def test_train_synthetic_then_refuse_overwrite_then_plot(tmp_path):
    cfg = write_config(tmp_path / "tiny.toml")
    out = tmp_path / "run"
    res = cli(str(cfg), "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "steps 0 -> 3" in res.stdout and "finished" in res.stdout
    assert steps_logged(out) == [1, 2, 3]
    assert (out / "model.safetensors").is_file() and (out / "val.csv").is_file()
    again = cli(str(cfg), "--out", str(out))
    assert again.returncode == 2 and again.stdout.strip().startswith("error:") and "--resume" in again.stdout
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    plot = subprocess.run([sys.executable, "-m", "benchmarks", "plot", "train", str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert plot.returncode == 0, plot.stderr
    assert (out / "curves.png").stat().st_size > 10_000


def test_time_limit_exits_4_and_resume_finishes(tmp_path):
    cfg = write_config(tmp_path / "tiny.toml", steps=2)
    out = tmp_path / "run"
    first = cli(str(cfg), "--out", str(out), "--time-limit", "0.00001")
    assert first.returncode == 4, first.stdout + first.stderr
    assert "--resume" in first.stdout
    second = cli(str(cfg), "--out", str(out), "--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    assert load_training_checkpoint(out / "checkpoint-last.pth")["step"] == 2


@pytest.mark.parametrize(("text", "match"), [
    ('name = "x"\n', "model: a constructor string is required"),
    (f'model = "{TINY_MODEL}"\n[optim]\nbatchsize = 2\n', "did you mean 'batch_size'"),
    (f'model = "{TINY_MODEL}"\ncriterion = "Regr3D(L21) + __import__(\'os\')"\n', "error:"),
    (f'model = "{TINY_MODEL}"\n[data]\nsource = "co3dv2"\n', "needs root"),
    ("model = [unclosed", "not valid TOML"),
])
def test_bad_configs_fail_in_one_line(tmp_path, text, match):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    res = cli(str(cfg), "--out", str(tmp_path / "run"))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and match in res.stdout, res.stdout + res.stderr
    assert not (tmp_path / "run" / "checkpoint-last.pth").exists()


def test_train_on_a_co3dv2_download(tmp_path):
    from datasets.synthetic.suite import write_suite

    write_suite(tmp_path / "syn", size="small", benchmarks=["co3dv2"], workers=1)
    root = tmp_path / "syn" / "co3dv2"
    data = (f'[data]\nsource = "co3dv2"\nroot = "{root}"\n[data.options]\nresolutions = [[48, 64]]\n'
            'n_corres = 64\nexclude_test = false\n')
    cfg = write_config(tmp_path / "co3d.toml", steps=2, data=data)
    res = cli(str(cfg), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert steps_logged(tmp_path / "run") == [1, 2]


def test_init_from_an_official_checkpoint_with_a_fresh_descriptor_head(small_checkpoint):
    from mast3r.model import Mast3r
    from mast3r.weights import read_checkpoint

    state, model_string = read_checkpoint(small_checkpoint)
    from mast3r.config import ModelConfig

    model = Mast3r(ModelConfig.from_args_string(model_string))
    fresh = ("downstream_head1.head_local_features", "downstream_head2.head_local_features")
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(fresh)}
    report = init_from(model, small_checkpoint, fresh)
    own = model.state_dict()
    assert before and all(k in report["skipped"] for k in before)
    assert all((own[k] == before[k]).all() for k in before)  # left at their initial values
    loaded = [k for k in report["loaded"] if k.startswith("enc_blocks.0.")]
    assert loaded and all((own[k] == state[k]).all() for k in loaded)
