"""``benchmarks.paper`` / ``mast3r-bench table paper``: published numbers as the spec marks them,
ours beside them, empty cells without runs, FRM and bucket tables, three formats."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks import paper
from benchmarks.cli import main
from benchmarks.paper import DAGGER
from benchmarks.store import to_jsonable
from benchmarks.types import Record


def fake_run(results: Path, bench: str, matcher: str, slug: str, metrics: dict, *, matcher_config=None,
             records=(), adapter_config=None, estimator_config=None) -> Path:
    """A finished run directory as the runner writes it (config, summary, records)."""
    key = f"{abs(hash((bench, matcher, slug))):016x}"[:8]
    path = results / "runs" / bench / matcher / f"{slug}-{key}"
    path.mkdir(parents=True)
    config = {"key": key, "slug": slug, "adapter": bench, "adapter_version": "1", "matcher": matcher,
              "matcher_config": matcher_config or {}, "adapter_config": adapter_config or {},
              "estimator_config": estimator_config or {}, "weights": None, "seed": 0}
    (path / "config.json").write_text(json.dumps(config))
    summary = {"bench": bench, "matcher": matcher, "slug": slug, "key": key, "num_records": len(records),
               "num_failures": 0, "metrics": metrics}
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "records.jsonl").write_text("".join(json.dumps(to_jsonable(r)) + "\n" for r in records))
    return path


SPEC = next((p / "shared" / "spec" / "published_numbers.md" for p in Path(__file__).resolve().parents[2:4]
             if (p / "shared" / "spec" / "published_numbers.md").is_file()), Path("missing"))


def test_published_csv_is_the_spec():
    """Values as spec/published_numbers.md verified them (arXiv v1 tables), each citing its table."""
    rows = paper.load_published()
    by = {(r["benchmark"], r["method"], r["metric"]): r for r in rows}

    def check(bench, method, metric, value, table):
        row = by[(bench, method, metric)]
        assert row["value"] == pytest.approx(value) and row["verified"], (bench, method, metric)
        assert row["citation"].endswith(table) or f"{table} " in row["citation"], row["citation"]

    check("mapfree", "MASt3R (auto)", "vcre_auc", 0.933, "Table 2")
    check("mapfree", "MASt3R (auto)", "pose_auc", 0.740, "Table 2")
    check("mapfree", "LoFTR (KBR)", "vcre_precision_pct", 34.3, "Table 2")  # not the intro's rounded 34
    check("mapfree", "MASt3R (direct regr.)", "vcre_auc", 0.941, "Table 2")
    check("co3dv2", "MASt3R (pairwise)", "maa30_pct", 81.8, "Table 3 left")
    check("co3dv2", "DUSt3R (pairwise)", "rra15_pct", 94.3, "Table 3 left")
    check("re10k", "DUSt3R-GA", "maa30_pct", 67.7, "Table 3 left")
    check("dtu", "MASt3R", "overall_mm", 0.374, "Table 3 right")
    check("dtu", "DUSt3R", "acc_mm", 2.677, "Table 3 right")
    check("aachen", "MASt3R top20", "day_0.25m_2deg_pct", 83.4, "Table 4")
    check("inloc", "MASt3R top1", "duc2_0.5m_10deg_pct", 55.7, "Table 4")  # the old CSV had 61.8
    check("inloc", "MASt3R top1", "duc2_1m_10deg_pct", 62.6, "Table 4")  # 68.7
    check("inloc", "MASt3R top20", "duc1_1m_10deg_pct", 90.4, "Table 4")  # 86.4
    assert ("aachen", "DKM", "day_0.25m_2deg_pct") not in by  # an empty cell in the paper
    assert all(r["verified"] and "arXiv:2406.09756v1" in r["citation"] for r in rows)
    assert not any("recalled" in r["citation"] or "roadmap" in r["citation"] for r in rows)
    assert len(rows) == len(by) == 249
    specs = {(b, m.id) for t in paper.PAPER_TABLES.values() for b, ms in t.metrics.items() for m in ms}
    assert {(r["benchmark"], r["metric"]) for r in rows} <= specs


@pytest.mark.skipif(not SPEC.is_file(), reason="shared/spec not checked out beside the worktree")
def test_published_csv_agrees_with_the_spec_file():
    """Every numeric cell of the spec's Table 2, 3 and 4 sections is a CSV value (same value)."""
    import re

    text = SPEC.read_text()
    values = {(r["benchmark"], r["metric"], r["value"]) for r in paper.load_published()}
    n = 0
    for title in ("### T2:", "### T3 left", "### T3 right", "### T4:"):
        section = text.split(title, 1)[1].split("\n### ", 1)[0]
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) < 6 or not re.fullmatch(r"[0-9.]+", cells[3]):
                continue
            bench = "mapfree" if cells[0].startswith("mapfree") else cells[0]
            assert (bench, cells[2], float(cells[3])) in values, line
            n += 1
    assert n == 249


def test_published_csv_errors_name_the_line(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text(",".join(paper.PUBLISHED_COLUMNS) + "\nmapfree,mapfree,X,vcre_auc,0.5,,c,true,\n"
                   "mapfree,mapfree,X,pose_auc,abc,,c,true,\n")
    with pytest.raises(ValueError, match=r"p.csv:3: value 'abc'"):
        paper.load_published(bad)
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"p.csv:1: expected columns"):
        paper.load_published(bad)


def test_metric_spec_units_and_fallbacks():
    spec = paper.MetricSpec("vcre_precision_pct", "VCRE Prec.", "%",
                            (("precision_vcre_pct", 1.0), ("precision_vcre", 100.0)))
    assert spec.value({"precision_vcre": 0.25}) == 25.0
    assert spec.value({"precision_vcre_pct": 30.0, "precision_vcre": 0.25}) == 30.0
    assert spec.value({"vcre_precision_pct": 7.0}) == 7.0  # the paper id itself, last
    assert spec.value({"precision_vcre": None}) is None
    assert spec.value({"precision_vcre": float("nan")}) is None


def test_paper_tables_ours_beside_published(tmp_path):
    results = tmp_path / "results"
    fake_run(results, "co3dv2", "mast3r", "default", {"rra15_category_mean_pct": 90.0,
             "rta15_category_mean_pct": 80.0, "maa30_category_mean_pct": 70.0},
             matcher_config={"frm": {"subsample": 8, "dense": False}, "c2f": False},
             records=[Record("s", {}, {"success": True}, {"num_matches": [100, 300]},
                             {"matcher.match": 0.4, "matcher.forward": 2.0})])
    fake_run(results, "co3dv2", "mast3r", "matcher.frm.subsample=4", {"rra15_category_mean_pct": 91.0},
             matcher_config={"frm": {"subsample": 4, "dense": False}, "c2f": False})
    fake_run(results, "mapfree", "sift", "default", {"auc_vcre": 0.5, "precision_vcre": 0.25})
    texts = paper.write_paper_tables(results, tmp_path / "tables", paper.load_published())
    assert {"mapfree", "relpose", "visloc", "dtu", "frm"} <= set(texts) and "buckets" not in texts

    md = texts["relpose"]["md"]
    lines = md.splitlines()
    paper_row = next(line for line in lines if line.startswith("| MASt3R (pairwise) "))
    assert [c.strip() for c in paper_row.strip("|").split("|")][:4] == ["MASt3R (pairwise)", "94.6", "91.9",
                                                                       "81.8"]
    ours = next(line for line in lines if line.startswith("| mast3r [frm.subsample=8] (ours, data: unknown)"))
    assert [c.strip() for c in ours.strip("|").split("|")][1:4] == ["90", "80", "70"]  # never on a paper row
    assert any(line.startswith("| mast3r [frm.subsample=4] (ours, data: unknown)") for line in lines)
    assert "Table 3 left" in md and DAGGER not in md  # every value verified
    assert max(len(line) for line in md.splitlines()) <= 120
    sift = next(line for line in texts["mapfree"]["md"].splitlines() if line.startswith("| sift (ours"))
    assert [c.strip() for c in sift.strip("|").split("|")][1:4] == ["", "25", "0.5"]  # paper order, %
    assert "\\toprule" in texts["mapfree"]["latex"] and "VCRE \\% " in texts["mapfree"]["latex"]
    csv_lines = texts["dtu"]["csv"].splitlines()
    assert csv_lines[0] == "table,row,benchmark,metric,source,value,unit,verified,citation"
    assert len(csv_lines) == 1 + 13 * 3
    assert "dtu,MASt3R,dtu,overall_mm,paper,0.374,mm,true," in texts["dtu"]["csv"]
    for tid, by_format in texts.items():
        assert max(len(line) for line in by_format["md"].splitlines()) <= 120, tid

    frm = texts["frm"]["md"]
    assert "co3dv2: mast3r [frm.subsample=4] (ours" in frm and "co3dv2: mast3r [frm.subsample=8] (ours" in frm
    row8 = next(line for line in frm.splitlines() if "subsample=8" in line)
    assert [c.strip() for c in row8.strip("|").split("|")][1:6] == ["8", "off", "90", "200", "0.2"]
    assert "| matches |" in frm and "fwd s" in frm
    assert (tmp_path / "tables" / "paper-frm.tex").is_file()
    assert (tmp_path / "tables" / "paper-dtu.csv").is_file()


@dataclass(frozen=True)
class _Cfg:
    x: int = 0


class _PairBucketAdapter:
    """Stands in for a PoseDiffusion-style adapter: per-pair rotation errors, RRA@15 over pairs."""

    Config = _Cfg
    EstimatorConfig = _Cfg

    def __init__(self, root, config, estimator) -> None:
        self.root = root

    def summarize(self, records):
        errs = [e for r in records for e in r.metrics["rot_err_deg"]]
        assert all(len(r.metrics["rot_err_deg"]) == r.metrics["num_pairs"] for r in records)
        return {"rra15_pooled_pct": 100.0 * sum(e < 15 for e in errs) / len(errs)}


def test_bucket_split(tmp_path, monkeypatch):
    from benchmarks.registry import ADAPTERS

    real_get = ADAPTERS.get
    monkeypatch.setattr(ADAPTERS, "get",
                        lambda name: _PairBucketAdapter if name == "co3dv2" else real_get(name))
    recs = [Record("a", {"rot_err_deg": [5.0, 20.0, 3.0], "num_pairs": 3}, {"success": True},
                   {"pair_viewpoint_bucket": ["0-30", "30-60", "30-60"]}),
            Record("b", {"rot_err_deg": [40.0], "num_pairs": 1}, {"success": True},
                   {"pair_viewpoint_bucket": ["0-30"]})]
    fake_run(tmp_path / "results", "co3dv2", "sift", "default", {"rra15_pooled_pct": 50.0}, records=recs)
    cells = paper.bucket_cells(paper.collect_runs(tmp_path / "results"), tmp_path / "data")
    got = {c.row.rsplit(", ", 1)[-1]: c.value for c in cells if c.metric == "rra15_pct"}
    assert got == {"0-30": 50.0, "30-60": 50.0}  # one row per (run, bucket)
    text = paper.render_cells(cells, "md")
    assert "RRA@15 (%)" in text and "co3dv2: sift (ours, data: unknown), 0-30" in text


def test_table_paper_command(tmp_path, capsys):
    assert main(["table", "paper", "--results", str(tmp_path / "r"), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "mapfree,MASt3R (auto),mapfree,vcre_auc,paper,0.933,,true," in out
    assert sorted(p.name for p in (tmp_path / "r" / "tables").iterdir())[:3] == [
        "paper-dtu.csv", "paper-dtu.md", "paper-dtu.tex"]
    bad = tmp_path / "bad.csv"
    bad.write_text("nope\n")
    assert main(["table", "paper", "--results", str(tmp_path / "r"), "--published", str(bad)]) == 2


def test_checkpoint_path_is_not_a_variant(tmp_path, monkeypatch):
    """A run with default settings but an explicit checkpoint is labelled ``mast3r`` (no variant); other
    settings are named in its label; neither sits on a paper row."""
    from benchmarks.config import to_dict
    from benchmarks.matchers.mast3r import Mast3rConfig
    from benchmarks.registry import ADAPTERS

    real_get = ADAPTERS.get
    monkeypatch.setattr(ADAPTERS, "get",
                        lambda name: _PairBucketAdapter if name in ("co3dv2", "re10k") else real_get(name))
    results = tmp_path / "results"
    fake_run(results, "co3dv2", "mast3r", "matcher.checkpoint=-w.pth", {"maa30_category_mean_pct": 12.5},
             matcher_config=to_dict(Mast3rConfig(checkpoint="/w.pth")), adapter_config={"x": 0},
             estimator_config={"x": 0})
    fake_run(results, "re10k", "mast3r", "matcher.size=224", {"maa30_pooled_pct": 7.0},
             matcher_config=to_dict(Mast3rConfig(checkpoint="/w.pth", size=224)), adapter_config={"x": 0},
             estimator_config={"x": 0})
    runs = paper.collect_runs(results)
    assert sorted(map(paper.nondefault_settings, runs)) == [[], ["size=224"]]
    md = paper.render_cells(paper.paper_cells(paper.PAPER_TABLES["relpose"], runs, paper.load_published()))
    mast3r = next(line for line in md.splitlines() if line.startswith("| mast3r (ours, data: unknown)"))
    assert mast3r.rstrip().endswith(" 12.5 |"), md
    assert any(line.startswith("| mast3r [size=224] (ours, data: unknown)") and line.rstrip().endswith(" 7 |")
               for line in md.splitlines()), md


def test_old_and_new_config_json_of_the_same_settings_get_the_same_label():
    """Issue 17 item 2: a config.json written before the RANSAC options were nested and before the
    execution-only fields left the identity compares equal to today's of the same settings."""
    from benchmarks.config import identity_dict, to_dict
    from benchmarks.hashing import RunSpec
    from benchmarks.matchers.mast3r import Mast3rConfig
    from benchmarks.paper_runs import distinct_labels, identity_groups
    from benchmarks.registry import ADAPTERS

    cls = ADAPTERS.get("co3dv2")
    est = to_dict(cls.EstimatorConfig())
    old_est = {k: v for k, v in est.items() if k != "ransac"}
    old_est.update(min_matches=10, min_inliers=10, ransac_confidence=0.9999, ransac_min_trials=100,
                   ransac_max_trials=10000, refine=True)
    old = {"adapter": "co3dv2", "matcher": "mast3r", "seed": 0, "adapter_config": to_dict(cls.Config()),
           "estimator_config": old_est, "matcher_config": to_dict(Mast3rConfig(checkpoint="/w.pth"))}
    new = RunSpec("co3dv2", "1", cls.Config(), cls.EstimatorConfig(), "mast3r",
                  Mast3rConfig(checkpoint="/w.pth", batch_size=8)).as_dict()
    assert identity_groups(old) == identity_groups(new)
    assert identity_groups(new)["estimator_config"] == identity_dict(cls.EstimatorConfig())
    assert distinct_labels([old, new]) == ["mast3r #1", "mast3r #2"]  # nothing tells them apart
    other = {**new, "estimator_config": {**new["estimator_config"], "ransac": {"max_num_trials": 300}}}
    assert distinct_labels([old, other]) == ["mast3r [estimator.ransac.max_num_trials=10000]",
                                             "mast3r [estimator.ransac.max_num_trials=300]"]
