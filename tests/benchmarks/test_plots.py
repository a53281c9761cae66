"""``benchmarks.plots`` and ``mast3r-bench plot``: curve arithmetic by hand, PNGs that open."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import plots
from benchmarks.cli import main
from benchmarks.store import RunDir, to_jsonable
from benchmarks.types import Correspondences, Record


def _run(results: Path, name: str, subsample: int, errors: list, *, metric_value: float) -> RunDir:
    path = results / "runs" / "smoke" / "mast3r" / f"{name}-0000000{subsample % 10}"
    path.mkdir(parents=True)
    cfg = {"key": name, "slug": name, "matcher": "mast3r", "adapter": "smoke",
           "matcher_config": {"frm": {"subsample": subsample, "dense": False}, "c2f": False},
           "adapter_config": {}, "estimator_config": {}, "seed": 0}
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "summary.json").write_text(json.dumps({"bench": "smoke", "matcher": "mast3r", "slug": name,
                                                   "num_records": len(errors), "num_failures": 0,
                                                   "metrics": {"success_3px_pct": metric_value}}))
    recs = [Record(f"s{i}", {"corner_err_px": e, "pair_err": [e, e]},
                   {"success": e is not None, "confidence": float(10 - i)},
                   {"num_matches": [50 * subsample]}, {"matcher.match": 0.01 * subsample})
            for i, e in enumerate(errors)]
    (path / "records.jsonl").write_text("".join(json.dumps(to_jsonable(r)) + "\n" for r in recs))
    return RunDir(path)


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


def test_curve_arithmetic():
    np.testing.assert_allclose(plots.cumulative_curve(np.array([1.0, 2.0, math.inf, 3.0]),
                                                      np.array([0.0, 1.5, 2.5, 10.0])), [0, 0.25, 0.5, 0.75])
    assert plots.cumulative_curve(np.zeros(0), np.array([1.0])).tolist() == [0.0]
    recall, precision = plots.precision_recall_curve(np.array([0.9, 0.5, 0.7]),
                                                     np.array([True, False, True]), 1)
    np.testing.assert_allclose(recall, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(precision, [1.0, 1.0, 2 / 3])
    recs = [Record("a", {"e": [1.0, None]}, {}), Record("b", {"e": 2.0}, {}), Record("c", {"e": None}, {})]
    np.testing.assert_array_equal(plots.error_values(recs, "e"), [1.0, math.inf, 2.0, math.inf])


def test_plot_matches_png(tmp_path):
    rng = np.random.default_rng(0)
    for name, size in (("a.png", (80, 60)), ("b.png", (50, 70))):
        Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(tmp_path / name)
    corrs = Correspondences(rng.random((30, 2)) * 50, rng.random((30, 2)) * 40, rng.random(30))
    out = plots.plot_matches(tmp_path / "a.png", tmp_path / "b.png", corrs, tmp_path / "m.png", max_lines=10)
    w, h = _png_size(out)
    assert w > h > 50
    empty = plots.plot_matches(tmp_path / "a.png", tmp_path / "b.png", Correspondences.empty(),
                               tmp_path / "e.png")
    assert _png_size(empty)[0] > 50
    # CLI: any matcher, here the weight-free random one
    assert main(["plot", "matches", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--matcher", "random",
                 "--opt", "num_matches=12", "--out", str(tmp_path / "cli.png")]) == 0
    assert _png_size(tmp_path / "cli.png")[0] > 50


def test_plot_curves_and_frm(tmp_path, capsys):
    results = tmp_path / "results"
    r4 = _run(results, "s4", 4, [0.5, 1.0, None, 4.0], metric_value=50.0)
    r8 = _run(results, "s8", 8, [0.2, 3.0, 5.0, None], metric_value=25.0)
    assert plots.run_labels([r4, r8]) == ["mast3r [frm.subsample=4]", "mast3r [frm.subsample=8]"]
    assert _png_size(plots.plot_curves([r4, r8], "corner_err_px", tmp_path / "c.png"))[0] > 100
    assert _png_size(plots.plot_curves([r4, r8], "corner_err_px", tmp_path / "pr.png", kind="pr",
                                       threshold=2.0))[0] > 100
    with pytest.raises(ValueError, match="threshold"):
        plots.plot_curves([r4], "corner_err_px", tmp_path / "x.png", kind="pr")
    with pytest.raises(ValueError, match="per-pair"):
        plots.plot_curves([r4], "pair_err", tmp_path / "x.png", kind="pr", threshold=1.0)
    points = plots.frm_points([r8, r4], "success_3px_pct")
    assert [(p["subsample"], p["metric"], p["matches/pair"]) for p in points] == [(4, 50.0, 200.0),
                                                                                  (8, 25.0, 400.0)]
    assert points[0]["match s/pair"] == pytest.approx(0.04)
    assert _png_size(plots.plot_frm([r4, r8], "success_3px_pct", tmp_path / "f.png"))[0] > 100

    assert main(["plot", "frm", "--bench", "smoke", "--results", str(results), "--metric", "success_3px_pct",
                 "--out", str(tmp_path / "f2.png")]) == 0
    assert main(["plot", "curves", str(r4.path), "--metric", "corner_err_px", "--out",
                 str(tmp_path / "c2.png")]) == 0
    assert main(["plot", "curves", "--metric", "x", "--out", str(tmp_path / "c3.png")]) == 2
    assert "RUN directories or --bench" in capsys.readouterr().err
    assert main(["plot", "frm", "--bench", "mapfree", "--results", str(results), "--metric", "x",
                 "--out", str(tmp_path / "f3.png")]) == 2


def _mapfree_run(results: Path, matcher: str, vcre: list) -> RunDir:
    path = results / "runs" / "mapfree" / matcher / "default-00000000"
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"key": matcher, "matcher": matcher, "adapter": "mapfree"}))
    summary = {"bench": "mapfree", "matcher": matcher, "slug": "default", "num_records": len(vcre),
               "num_failures": 0, "metrics": {}}
    (path / "summary.json").write_text(json.dumps(summary))
    recs = [Record(f"s{i}", {"vcre_px": v}, {"success": v is not None}) for i, v in enumerate(vcre)]
    (path / "records.jsonl").write_text("".join(json.dumps(to_jsonable(r)) + "\n" for r in recs))
    return RunDir(path)


def test_curves_use_the_benchmarks_thresholds(tmp_path):
    assert plots.curve_thresholds("mapfree", "vcre_px") == ("px", [90.0])
    assert plots.curve_thresholds("mapfree", "trans_err_m") == ("m", [0.25])
    assert plots.curve_thresholds("mapfree", "rot_err_deg") == ("deg", [5.0])
    assert plots.curve_thresholds("co3dv2", "rot_err_deg") == ("deg", [15.0, 30.0])
    assert plots.curve_thresholds("aachen", "pos_err_m", max_value=1.0) == ("m", [0.25, 0.5, 1.0])
    with pytest.raises(ValueError, match="--max"):
        plots.curve_thresholds("dtu", "n_points")
    # exact area: zero errors give 1, an error of 45 px half of 90, failures 0; not the largest error
    assert plots.curve_auc(np.array([0.0, 1e-7]), 90.0) == pytest.approx(1.0)
    assert plots.curve_auc(np.array([45.0, 200.0, math.inf]), 90.0) == pytest.approx(0.5 / 3)
    oracle = _mapfree_run(tmp_path, "oracle", [1e-7, 0.0])
    worse = _mapfree_run(tmp_path, "sift", [45.0, 159.0, None])
    data = [("oracle", plots._records(oracle)), ("sift", plots._records(worse))]
    assert plots.curve_legends(data, "vcre_px", 90.0, "px") == ["oracle (AUC@90 px: 1.000)",
                                                                 "sift (AUC@90 px: 0.167)"]
    assert plots.run_bench(oracle) == "mapfree"
    out = plots.plot_curves([oracle, worse], "vcre_px", tmp_path / "c.png")
    assert _png_size(out)[0] > 100


def test_unknown_metric_is_an_error(tmp_path, capsys):
    run = _mapfree_run(tmp_path / "results", "sift", [1.0, 2.0])
    with pytest.raises(ValueError, match=r"unknown metric 'vcre'.*vcre_px"):
        plots.plot_curves([run], "vcre", tmp_path / "x.png")
    assert main(["plot", "curves", str(run.path), "--metric", "vcre", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "unknown metric 'vcre'" in err and "vcre_px" in err
    assert not (tmp_path / "x.png").exists()
    r4 = _run(tmp_path / "r2", "s4", 4, [0.5], metric_value=50.0)
    with pytest.raises(ValueError, match=r"unknown metric 'nope'.*success_3px_pct"):
        plots.plot_frm([r4], "nope", tmp_path / "f.png")
