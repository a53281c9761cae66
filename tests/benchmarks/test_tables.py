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
    assert list(table.columns) == ["n", "acc_pct", "by_cat/a", "by_cat/b"]  # nested flattened, lists dropped
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
