"""Tables: collecting run summaries, row labels, Markdown/CSV/LaTeX rendering, published numbers."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from benchmarks.store import RunDir, write_json_atomic
from benchmarks.tables import bench_table, collect, render, write_tables


def fake_run(root, bench, matcher, slug, metrics, n=4, failures=0, finished=True):
    run = RunDir(root / "runs" / bench / matcher / f"{slug}-{abs(hash((matcher, slug))) % 10**8:08d}")
    write_json_atomic(run.config_path, {"key": f"{matcher}-{slug}"})
    if finished:
        write_json_atomic(run.summary_path, {"bench": bench, "matcher": matcher, "slug": slug,
                                             "key": f"{matcher}-{slug}", "num_records": n,
                                             "num_failures": failures, "metrics": metrics})
    return run


TABLE = pd.DataFrame({"n": [4, 4], "auc_pct": [81.25, None]},
                     index=pd.Index(["mast3r", "sift"], name="matcher"))


def test_collect_and_bench_table(tmp_path):
    fake_run(tmp_path, "smoke", "sift", "default",
             {"acc_pct": 50.0, "by_cat": {"a": 1.0, "b": 2.0}, "ls": [1]})
    fake_run(tmp_path, "smoke", "mast3r", "default", {"acc_pct": 90.0})
    fake_run(tmp_path, "smoke", "mast3r", "estimator.t=2.0", {"acc_pct": 95.0})
    fake_run(tmp_path, "smoke", "loftr", "default", {}, finished=False)
    fake_run(tmp_path, "other", "sift", "default", {"x": 1.0})
    frame = collect(tmp_path)
    assert len(frame) == 4 and set(frame["bench"]) == {"smoke", "other"}
    assert len(collect(tmp_path, ["other"])) == 1
    table = bench_table(frame, "smoke")
    assert list(table.index) == ["mast3r [default]", "mast3r [estimator.t=2.0]", "sift"]
    # a failures column; nested flattened, lists dropped
    assert list(table.columns) == ["n", "failures", "acc_pct", "by_cat/a", "by_cat/b"]
    assert table.loc["sift", "by_cat/b"] == 2.0 and table.loc["mast3r [default]", "acc_pct"] == 90.0
    assert bench_table(frame, "missing").empty
    assert collect(tmp_path / "nothing").empty


def test_single_non_default_variant_is_labelled(tmp_path):
    fake_run(tmp_path, "smoke", "sift", "matcher.ratio=0.9", {"acc_pct": 1.0})
    assert list(bench_table(collect(tmp_path), "smoke").index) == ["sift [matcher.ratio=0.9]"]


def test_markdown_is_exact():
    assert render(TABLE, "md") == (
        "| matcher   |   n |   auc_pct |\n"
        "|-----------|-----|-----------|\n"
        "| mast3r    |   4 |     81.25 |\n"
        "| sift      |   4 |      -    |\n"  # tabulate aligns on the decimal point
    )
    assert render(TABLE, "md", caption="Toy").startswith("Toy\n\n| matcher")


def test_csv_keeps_full_precision():
    table = pd.DataFrame({"err": [1 / 3]}, index=pd.Index(["a"], name="matcher"))
    back = pd.read_csv(io.StringIO(render(table, "csv")), index_col=0)
    assert back.loc["a", "err"] == 1 / 3
    assert render(TABLE, "csv").splitlines() == ["matcher,n,auc_pct", "mast3r,4,81.25", "sift,4,"]


def test_latex_escapes_and_groups_published_columns():
    published = pd.DataFrame({"auc_pct": [80.0, 70.0], "citation": ["Leroy 2024", "Lowe 2004"]},
                             index=pd.Index(["mast3r", "superglue"], name="matcher"))
    tex = render(TABLE, "latex", published)
    assert "\\toprule\n & \\multicolumn{2}{c}{reproduced} & \\multicolumn{2}{c}{published} \\\\\n" in tex
    assert "auc\\_pct" in tex and "\\bottomrule" in tex
    md = render(TABLE, "md", published)
    header = md.splitlines()[0]
    assert "reproduced/auc_pct" in header and "published/auc_pct" in header and "published/citation" in header
    rows = {line.split("|")[1].strip(): line for line in md.splitlines()[2:]}
    assert set(rows) == {"mast3r", "sift", "superglue"}  # rows of either side
    assert "Leroy 2024" in rows["mast3r"] and "81.25" in rows["mast3r"]
    assert rows["superglue"].count(" - ") == 2  # nothing reproduced for it


def test_unknown_format_and_write_tables(tmp_path):
    with pytest.raises(ValueError, match="unknown table format 'html'"):
        render(TABLE, "html")  # type: ignore[arg-type]
    paths = write_tables(TABLE, tmp_path / "t", "smoke", caption="SMOKE")
    assert [p.name for p in paths] == ["smoke.md", "smoke.csv", "smoke.tex"]
    assert paths[0].read_text() == render(TABLE, "md", caption="SMOKE")


def _manifest(run, dataset_root):
    write_json_atomic(run.manifest_path, {"dataset_root": str(dataset_root)})


MAPFREE = {"auc_pose": 0.25, "auc_vcre": 0.5, "avg_median_rot_err_deg": 1.5, "avg_median_trans_err_m": 0.1,
           "avg_median_vcre_px": 12.0, "estimated_fraction": 1.0, "num_estimates": 4, "num_failures": 1,
           "precision_pose": 0.5, "precision_vcre": 0.75}


def test_default_markdown_has_the_papers_columns_in_order(tmp_path):
    run = fake_run(tmp_path, "mapfree", "sift", "default", MAPFREE, failures=1)
    _manifest(run, tmp_path / "data" / "synthetic" / "mapfree")
    table = bench_table(collect(tmp_path), "mapfree")
    md = render(table, "md")
    header = [c.strip() for c in md.splitlines()[0].strip("|").split("|")]
    assert header == ["matcher", "n", "fail", "VCRE px", "VCRE %", "VCRE AUC", "trans m", "rot °", "pose %",
                      "pose AUC"]
    row = [c.strip() for c in md.splitlines()[2].strip("|").split("|")]
    assert row == ["sift", "4", "1", "12", "75", "0.5", "0.1", "1.5", "50", "0.25"]  # fractions -> %
    assert "Data: synthetic suite" in md and "--wide" in md
    wide = render(table, "md", wide=True)
    assert "avg_median_vcre_px" in wide and "estimated_fraction" in wide
    # CSV and LaTeX keep every column, raw units
    assert render(table, "csv").splitlines()[0].split(",")[:4] == ["matcher", "n", "failures", "auc_pose"]
    assert "estimated\\_fraction" in render(table, "latex")
    picked = render(table, "csv", columns=["VCRE AUC", "precision_vcre"])
    assert picked.splitlines() == ["matcher,VCRE AUC,precision_vcre", "sift,0.5,0.75"]
    with pytest.raises(ValueError, match=r"unknown column 'VCRE AU'.*did you mean 'VCRE AUC'"):
        render(table, "md", columns=["VCRE AU"])


@pytest.mark.parametrize("bench,metrics,first", [
    ("aachen", {f"{c}_recall_{t}_pct": 50.0 for c in ("day", "night", "all")
                for t in ("0.25m_2deg", "0.5m_5deg", "5m_10deg")} | {"failure_pct": 0.0, "num_queries": 3,
                                                                      "all_pos_err_median_m": 0.5},
     ["day 0.25", "day 0.5", "day 5", "night 0.25", "night 0.5", "night 5"]),
    ("inloc", {f"{c}_recall_{t}_pct": 50.0 for c in ("DUC1", "DUC2", "all")
               for t in ("0.25m_10deg", "0.5m_10deg", "1m_10deg")} | {"num_queries_with_gt": 2},
     ["DUC1 0.25", "DUC1 0.5", "DUC1 1", "DUC2 0.25", "DUC2 0.5", "DUC2 1"]),
    ("co3dv2", {"rra15_category_mean_pct": 90.0, "rta15_category_mean_pct": 80.0,
                "maa30_category_mean_pct": 70.0, "num_pairs": 45},
     ["RRA@15 (%)", "RTA@15 (%)", "mAA(30) (%)"]),
    ("re10k", {"rra15_pooled_pct": 90.0, "rta15_pooled_pct": 80.0, "maa30_pooled_pct": 70.0},
     ["RRA@15 (%)", "RTA@15 (%)", "mAA(30) (%)"]),
    ("dtu", {"mean_accuracy_mm": 0.7, "mean_completeness_mm": 1.1, "mean_overall_mm": 0.9, "num_scans": 2,
             "num_unscored_scans": 0}, ["Acc. (mm)", "Comp. (mm)", "Overall (mm)", "unscored"]),
    ("mapfree", MAPFREE, ["VCRE px", "VCRE %", "VCRE AUC", "trans m", "rot °", "pose %", "pose AUC"]),
])
def test_every_benchmark_fits_120_columns(tmp_path, bench, metrics, first):
    for matcher in ("oracle", "random", "sift", "mast3r", "aliked+lightglue"):
        run = fake_run(tmp_path, bench, matcher, "default", metrics)
        _manifest(run, tmp_path / "data" / "synthetic" / bench)
    md = render(bench_table(collect(tmp_path), bench), "md", caption="caption")
    header = [c.strip() for c in md.splitlines()[2].strip("|").split("|")]
    assert header == ["matcher", "n", "fail", *first]
    assert max(len(line) for line in md.splitlines()) <= 120, md
    if bench == "dtu":
        assert "2 mm voxel" in md  # the oracle's floor is explained


def test_rows_name_their_data_when_it_differs(tmp_path):
    a = fake_run(tmp_path, "mapfree", "sift", "default", MAPFREE)
    _manifest(a, tmp_path / "data" / "synthetic" / "mapfree")
    b = RunDir(tmp_path / "runs" / "mapfree" / "sift" / "default-real0000")
    write_json_atomic(b.config_path, {"key": "k2", "adapter_config": {"split": "val"}})
    write_json_atomic(b.summary_path, {"bench": "mapfree", "matcher": "sift", "slug": "default", "key": "k2",
                                       "num_records": 4, "num_failures": 0, "metrics": MAPFREE})
    _manifest(b, tmp_path / "real" / "mapfree")
    table = bench_table(collect(tmp_path), "mapfree")
    assert sorted(table.index) == ["sift (mapfree, val)", "sift (synthetic suite)"]
