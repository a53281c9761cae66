"""``mast3r-bench plot train RUN_DIR``: training curves (loss terms, learning rate, validation metrics).

Reads ``log.csv`` and ``val.csv`` written by :func:`mast3r.train.loop.train`; one PNG with three
panels: total loss and its terms (log scale), learning rate, and the validation metrics (FRM
precision and descriptor NN accuracy as shares, FRM matches per pair on a second axis).
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["plot_training", "read_csv_rows"]

_TERMS = ("conf_loss_1", "conf_loss2", "Regr3D_pts3d_1", "Regr3D_pts3d_2", "MatchingLoss",
          "matching_conf_loss")


def read_csv_rows(path: Path) -> list[dict[str, float]]:
    """Rows of a training CSV as floats (empty cells -> NaN); [] when the file is absent."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                for row in csv.DictReader(fh)]


def plot_training(run_dir: str | Path, out: str | Path, title: str | None = None) -> Path:
    """Write the training figure of ``run_dir`` to ``out`` (PNG); raises FileNotFoundError without a log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir, out = Path(run_dir), Path(out)
    rows = read_csv_rows(run_dir / "log.csv")
    if not rows:
        raise FileNotFoundError(f"{run_dir / 'log.csv'}: no training log (not a `mast3r-bench train` --out?)")
    val = read_csv_rows(run_dir / "val.csv")
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    ax.plot(steps, [r["loss"] for r in rows], color="black", lw=2, label="loss (total)")
    for key in _TERMS:
        if key in rows[0]:
            ax.plot(steps, [r[key] for r in rows], lw=1, label=key)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("step")
    ax.set_title("training loss and terms")
    ax.legend(fontsize=7)
    axes[1].plot(steps, [r["lr"] for r in rows], color="tab:blue")
    axes[1].set_xlabel("step")
    axes[1].set_title("learning rate")
    ax = axes[2]
    if val:
        vs = [r["step"] for r in val]
        ax.plot(vs, [r["frm_precision"] for r in val], "o-", label="FRM-8 precision (2 px)")
        ax.plot(vs, [r["desc_nn_acc"] for r in val], "s-", label="descriptor NN accuracy (2 px)")
        ax.set_ylim(0, 1)
        ax.set_ylabel("share")
        ax2 = ax.twinx()
        ax2.plot(vs, [r["frm_matches_per_pair"] for r in val], "^--", color="tab:green",
                 label="FRM-8 matches/pair")
        ax2.set_ylabel("matches per pair")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="lower right")
    ax.set_xlabel("step")
    ax.set_title("validation (held-out synthetic pairs)")
    fig.suptitle(title or f"training: {run_dir.name}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
