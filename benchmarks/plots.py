"""Figures: match visualisations, accuracy / precision curves of runs, the FRM subsample trade-off.

Everything draws on a ``matplotlib.figure.Figure`` (no pyplot state) and writes a PNG; the backend is
chosen by the caller (``mast3r-bench plot`` selects Agg). Inputs are what the harness already stores:
:class:`benchmarks.types.Correspondences` for a pair, run directories (``records.jsonl``,
``config.json``) for the curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.store import RecordStore, RunDir, read_json
from benchmarks.types import Correspondences

__all__ = ["plot_matches", "error_values", "cumulative_curve", "precision_recall_curve", "plot_curves",
           "frm_points", "plot_frm", "run_labels", "CURVE_THRESHOLDS", "curve_auc", "curve_thresholds",
           "curve_legends", "record_metrics", "run_bench"]

CURVE_THRESHOLDS: dict[tuple[str, str], tuple[str, tuple[float, ...]]] = {
    ("mapfree", "vcre_px"): ("px", (90.0,)),            # VCRE precision / AUC threshold
    ("mapfree", "trans_err_m"): ("m", (0.25,)),         # pose: 25 cm ...
    ("mapfree", "rot_err_deg"): ("deg", (5.0,)),        # ... and 5 deg
    ("aachen", "pos_err_m"): ("m", (0.25, 0.5, 5.0)),
    ("aachen", "rot_err_deg"): ("deg", (2.0, 5.0, 10.0)),
    ("inloc", "pos_err_m"): ("m", (0.25, 0.5, 1.0)),
    ("inloc", "rot_err_deg"): ("deg", (10.0,)),
    ("co3dv2", "rot_err_deg"): ("deg", (15.0, 30.0)),   # RRA@15; mAA up to 30 deg
    ("co3dv2", "trans_err_deg"): ("deg", (15.0, 30.0)),
    ("re10k", "rot_err_deg"): ("deg", (15.0, 30.0)),
    ("re10k", "trans_err_deg"): ("deg", (15.0, 30.0)),
    ("dtu", "accuracy_mm"): ("mm", (20.0,)),            # DTUeval's max_dist
    ("dtu", "completeness_mm"): ("mm", (20.0,)),
    ("dtu", "overall_mm"): ("mm", (20.0,)),
    ("smoke", "corner_err_px"): ("px", (1.0, 3.0, 10.0)),
}
"""Per (benchmark, record metric): unit and the benchmark's own thresholds; the curves run from 0 to
the largest, marked with dashed lines; the AUC in the legend is over that range."""


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _image(path: str | Path) -> np.ndarray:
    import PIL.Image
    import PIL.ImageOps

    with PIL.Image.open(path) as im:
        return np.asarray(PIL.ImageOps.exif_transpose(im).convert("RGB"))


def plot_matches(img0: str | Path, img1: str | Path, corrs: Correspondences, out: str | Path, *,
                 max_lines: int = 200, title: str | None = None) -> Path:
    """Both images side by side (same height) with up to ``max_lines`` matches (evenly spaced in
    score order, coloured by score: viridis, low to high, with a colour bar) drawn between ``pts0``
    and ``pts1`` (ORIGINAL pixels, centres at integers). Returns the PNG path."""
    a, b = _image(img0), _image(img1)
    h = max(a.shape[0], b.shape[0])
    canvas = np.full((h, a.shape[1] + b.shape[1], 3), 255, np.uint8)
    canvas[:a.shape[0], :a.shape[1]] = a
    canvas[:b.shape[0], a.shape[1]:] = b
    fig_w = min(16.0, max(7.0, canvas.shape[1] / 100 + 1))  # small images are drawn larger
    fig = _figure(fig_w, min(9.0, fig_w * h / canvas.shape[1] + 0.8))
    ax = fig.add_subplot()
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    n = len(corrs)
    if n:
        order = np.argsort(corrs.scores, kind="stable")
        pick = order[np.unique(np.linspace(0, n - 1, min(n, max_lines)).round().astype(int))]
        lo, hi = float(corrs.scores.min()), float(corrs.scores.max())
        colors = _cmap()((corrs.scores[pick] - lo) / (hi - lo) if hi > lo else np.ones(len(pick)))
        x0, y0 = corrs.pts0[pick, 0], corrs.pts0[pick, 1]
        x1, y1 = corrs.pts1[pick, 0] + a.shape[1], corrs.pts1[pick, 1]
        for k in range(len(pick)):
            ax.plot([x0[k], x1[k]], [y0[k], y1[k]], color=colors[k], linewidth=0.8, alpha=0.8)
        ax.scatter(np.r_[x0, x1], np.r_[y0, y1], s=4, c=np.r_[colors, colors], linewidths=0)
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        bar = ScalarMappable(Normalize(lo, hi if hi > lo else lo + 1e-9), _cmap())
        fig.colorbar(bar, ax=ax, fraction=0.025, pad=0.01, label="match score (matcher's confidence)")
    ax.set_title(title or f"{n} matches ({min(n, max_lines)} drawn)")
    return _save(fig, out)


def _cmap() -> Any:
    from matplotlib import colormaps

    return colormaps["viridis"]


def _save(fig: Any, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight")
    return out


def run_labels(runs: Sequence[RunDir]) -> list[str]:
    """Labels telling the runs apart (matcher and the settings that differ between them)."""
    from benchmarks.paper_runs import distinct_labels

    return distinct_labels([read_json(r.config_path) if r.config_path.is_file() else {} for r in runs])


def _records(run: RunDir) -> list[Any]:
    if not run.records_path.is_file():
        raise FileNotFoundError(f"{run.path}: no records.jsonl (not a run directory?)")
    return list(RecordStore(run.records_path).load().values())


def error_values(records: Sequence[Any], metric: str) -> np.ndarray:
    """All values of a per-sample error ``metric`` (lists, e.g. per-pair errors, are expanded);
    ``None`` (failure) becomes ``+inf`` so that it passes no threshold. (K,) float64."""
    out: list[float] = []
    for r in records:
        v = r.metrics.get(metric)
        for x in v if isinstance(v, list) else [v]:
            out.append(math.inf if x is None else float(x))
    return np.asarray(out, np.float64)


def curve_auc(errors: np.ndarray, top: float) -> float:
    """Exact area under :func:`cumulative_curve` over [0, top], divided by ``top``: the mean of
    ``(top - e) / top`` over errors below ``top`` (0 for the others and for failures): 1.0 for
    errors of 0."""
    e = np.asarray(errors, np.float64)
    if not len(e):
        return 0.0
    return float(np.clip((top - e) / top, 0.0, 1.0)[np.isfinite(e)].sum() / len(e))


def cumulative_curve(errors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of ``errors`` strictly below each threshold (failures count in the denominator)."""
    errors = np.asarray(errors, np.float64)
    if not len(errors):
        return np.zeros(len(thresholds))
    return (errors[None, :] < np.asarray(thresholds, np.float64)[:, None]).mean(axis=1)


def precision_recall_curve(confidence: np.ndarray, accepted: np.ndarray, failures: int = 0
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Map-free style curve: estimates sorted by confidence (descending); at rank k, precision =
    accepted among the top k / k and recall = k / (estimates + failures). Returns (recall, precision)."""
    conf = np.asarray(confidence, np.float64)
    ok = np.asarray(accepted, bool)[np.argsort(-conf, kind="stable")]
    k = np.arange(1, len(ok) + 1)
    return k / max(len(ok) + failures, 1), np.cumsum(ok) / k


def run_bench(run: RunDir) -> str:
    """The benchmark of a run: its summary's ``bench``, else ``config.json``'s ``adapter``, else the
    folder name two levels up (``runs/<bench>/<matcher>/<slug>``)."""
    summary = run.read_summary() or {}
    if summary.get("bench"):
        return str(summary["bench"])
    cfg = read_json(run.config_path) if run.config_path.is_file() else {}
    return str(cfg.get("adapter") or run.path.parent.parent.name)


def record_metrics(records: Sequence[Any]) -> list[str]:
    """Names of the numeric per-sample metrics (numbers or lists of numbers) in ``records``."""
    names: dict[str, None] = {}
    for r in records:
        for k, v in r.metrics.items():
            vals = v if isinstance(v, list) else [v]
            if any(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
                names[k] = None
    return sorted(names)


def curve_thresholds(bench: str, metric: str, max_value: float | None = None) -> tuple[str, list[float]]:
    """Unit and thresholds of a cumulative curve: the benchmark's own (:data:`CURVE_THRESHOLDS`);
    ``max_value`` replaces the range (kept: the thresholds below it). ValueError when neither is
    known."""
    unit, marks = CURVE_THRESHOLDS.get((bench, metric), ("", ()))
    if max_value is not None:
        if not max_value > 0:
            raise ValueError(f"--max must be > 0, got {max_value:g}")
        return unit, [m for m in marks if m < max_value] + [float(max_value)]
    if not marks:
        raise ValueError(f"no threshold known for {metric!r} on {bench!r}: give --max (the largest "
                         "threshold)")
    return unit, list(marks)


def curve_legends(data: Sequence[tuple[str, Sequence[Any]]], metric: str, top: float,
                  unit: str = "") -> list[str]:
    """Legend of each ``(label, records)``: ``"<label> (AUC@<top> <unit>: <auc>)"``
    (:func:`curve_auc`)."""
    suffix = f" {unit}" if unit else ""
    return [f"{label} (AUC@{top:g}{suffix}: {curve_auc(error_values(rs, metric), top):.3f})"
            for label, rs in data]


def plot_curves(runs: Sequence[RunDir], metric: str, out: str | Path, *, kind: str = "cumulative",
                max_value: float | None = None, threshold: float | None = None,
                title: str | None = None) -> Path:
    """One curve per run. ``cumulative``: fraction of samples (pairs for per-pair lists) with
    ``metric`` below t, t in [0, T], T the benchmark's largest threshold (:func:`curve_thresholds`;
    ``max_value`` overrides it); the area under it divided by T is the AUC / mAA of that range, the
    benchmark's thresholds are dashed lines. ``pr``: precision vs recall by prediction confidence, a
    sample being correct when ``metric < threshold`` (failures cap the recall, as in Map-free's
    AUC). Title: ``title``, else the benchmark and metric. ValueError for a metric no record has
    (listing those it has)."""
    if kind not in ("cumulative", "pr"):
        raise ValueError(f"kind must be 'cumulative' or 'pr', got {kind!r}")
    data = [(label, _records(r)) for label, r in zip(run_labels(runs), runs)]
    known = sorted({m for _, rs in data for m in record_metrics(rs)})
    if metric not in known:
        raise ValueError(f"unknown metric {metric!r} (the records have: {', '.join(known) or 'none'})")
    benches = sorted({run_bench(r) for r in runs})
    fig = _figure(7, 4.5)
    ax = fig.add_subplot()
    if kind == "cumulative":
        unit, marks = curve_thresholds(benches[0], metric, max_value)
        top = marks[-1]
        t = np.linspace(0, top, 500)
        suffix = f" {unit}" if unit else ""
        for (_, rs), legend in zip(data, curve_legends(data, metric, top, unit)):
            ax.plot(t, 100 * cumulative_curve(error_values(rs, metric), t), label=legend)
        for m in marks:
            ax.axvline(m, color="0.5", linestyle="--", linewidth=0.8)
        ax.set_xlim(0, top)
        ax.set_ylim(0, 105)
        ax.set_xlabel(f"threshold on {metric}" + (f" ({unit})" if unit else "")
                      + f"; dashed: {', '.join(f'{m:g}' for m in marks)}")
        ax.set_ylabel("% below threshold")
        heading = f"{' / '.join(benches)}: cumulative {metric}, AUC up to {top:g}{suffix}"
    else:
        if threshold is None:
            raise ValueError("kind 'pr' needs threshold= (a sample is correct when metric < threshold)")
        heading = f"{' / '.join(benches)}: precision vs recall ({metric} < {threshold:g})"
        for label, rs in data:
            done = [r for r in rs if r.prediction.get("success")]
            err = error_values(done, metric)
            if len(err) != len(done):
                raise ValueError(f"{metric} holds per-pair lists: pr curves need a per-sample metric")
            conf = np.array([float(r.prediction.get("confidence", 0.0)) for r in done])
            recall, precision = precision_recall_curve(conf, err < threshold, len(rs) - len(done))
            ax.step(recall, precision, where="post", label=label)
        ax.set_xlabel("recall")
        ax.set_ylabel(f"precision ({metric} < {threshold:g})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
    ax.set_title(title or heading, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out)


def frm_points(runs: Sequence[RunDir], metric: str) -> list[dict[str, Any]]:
    """Per run: ``subsample`` (0 = dense NN), ``c2f``, the summary ``metric`` and per-pair speed
    (:func:`benchmarks.sweep.pair_stats`), sorted by (c2f, subsample)."""
    from benchmarks.paper_runs import flatten
    from benchmarks.sweep import pair_stats

    points = []
    for run, label in zip(runs, run_labels(runs)):
        cfg = read_json(run.config_path)
        mc = cfg.get("matcher_config", {})
        frm = mc.get("frm", {})
        summary = run.read_summary() or {}
        value = flatten(summary.get("metrics", {})).get(metric)
        points.append({"run": label, "subsample": 0 if frm.get("dense") else frm.get("subsample"),
                       "c2f": bool(mc.get("c2f")), "metric": value, **pair_stats(_records(run))})
    return sorted(points, key=lambda p: (p["c2f"], p["subsample"] if p["subsample"] is not None else -1))


_FRM_COLORS = {False: ("tab:blue", "tab:orange"), True: ("tab:green", "tab:red")}  # c2f -> (metric, time)


def plot_frm(runs: Sequence[RunDir], metric: str, out: str | Path, *, title: str | None = None) -> Path:
    """The FRM trade-off: ``metric`` (left axis, solid, circles) and matching time per pair (right
    axis, dashed, squares) against the FRM subsample (``dense`` = exhaustive NN at the left), one
    line pair per coarse-to-fine setting, each series its own colour; both axes start at 0 for
    non-negative data. ValueError for a summary metric no run has (listing those they have)."""
    points = frm_points(runs, metric)
    if not points:
        raise ValueError("no runs to plot")
    if all(p["metric"] is None for p in points):
        from benchmarks.paper_runs import flatten

        have = sorted({k for r in runs
                       for k, v in flatten((r.read_summary() or {}).get("metrics", {})).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)})
        raise ValueError(f"unknown metric {metric!r} (the summaries have: {', '.join(have) or 'none'})")
    fig = _figure(7, 4.5)
    ax = fig.add_subplot()
    ax2 = ax.twinx()
    subs = sorted({p["subsample"] for p in points if p["subsample"] is not None})
    xpos = {s: i for i, s in enumerate(subs)}
    for c2f in sorted({p["c2f"] for p in points}):
        pts = [p for p in points if p["c2f"] == c2f and p["subsample"] is not None]
        x = [xpos[p["subsample"]] for p in pts]
        tag = "c2f" if c2f else "no c2f"
        c_metric, c_time = _FRM_COLORS[bool(c2f)]
        ax.plot(x, [np.nan if p["metric"] is None else p["metric"] for p in pts], "o-", color=c_metric,
                label=f"{metric} ({tag})")
        ax2.plot(x, [np.nan if p["match s/pair"] is None else p["match s/pair"] for p in pts], "s--",
                 color=c_time, label=f"match s/pair ({tag})")
    ax.set_xticks(range(len(subs)), ["dense" if s == 0 else str(s) for s in subs])
    ax.set_xlabel("FRM subsample (pixels between seeds)")
    ax.set_ylabel(metric)
    ax2.set_ylabel("matching time per pair (s)")
    values = [p["metric"] for p in points if p["metric"] is not None]
    if values and min(values) >= 0:
        ax.set_ylim(bottom=0, top=max(values) * 1.1 if max(values) > 0 else 1.0)
    times = [p["match s/pair"] for p in points if p["match s/pair"] is not None]
    ax2.set_ylim(bottom=0, top=max(times) * 1.1 if times and max(times) > 0 else 1.0)
    benches = sorted({run_bench(r) for r in runs})
    ax.set_title(title or f"{' / '.join(benches)}: FRM subsample vs {metric} and matching time", fontsize=10)
    ax.grid(alpha=0.3)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="upper center",
              bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return _save(fig, out)
