"""``benchmarks.sweep`` and ``mast3r-bench sweep``: grid parsing, one run per variant, the table,
and one network forward per pair shared by MASt3R variants."""

from __future__ import annotations

import pytest

from benchmarks.cli import main
from benchmarks.config import ConfigError
from benchmarks.matchers.mast3r import make_random_checkpoint
from benchmarks.sweep import SPEED_COLUMNS, expand_grid, pair_stats, parse_grid, run_sweep, sweep_table
from benchmarks.types import Record
from mast3r.engine.network import PairNetwork


def test_parse_and_expand_grid():
    axes = parse_grid(["frm.subsample=1,2,4", "c2f=on,off", "c2f_config.spread_quantiles=0.1,0.9;0.2,0.8"])
    assert axes == [("frm.subsample", ["1", "2", "4"]), ("c2f", ["on", "off"]),
                    ("c2f_config.spread_quantiles", ["0.1,0.9", "0.2,0.8"])]
    points = expand_grid(axes[:2])
    assert len(points) == 6 and points[0] == {"frm.subsample": "1", "c2f": "on"}
    assert points[1] == {"frm.subsample": "1", "c2f": "off"} and points[-1]["frm.subsample"] == "4"
    assert expand_grid([]) == [{}]
    for bad in (["frm.subsample"], ["=1,2"], ["a=1,,2"], ["a=1", "a=2"]):
        with pytest.raises(ConfigError):
            parse_grid(bad)


def test_pair_stats_from_records():
    recs = [Record("a", {}, {}, {"num_matches": [10, 20]}, {"matcher.match": 0.3, "matcher.forward": 1.0}),
            Record("b", {}, {}, {"num_matches": [30]}, {"matcher.match": 0.1, "matcher.c2f": 0.2,
                                                         "matcher.forward": 2.0}),
            Record("c", {}, {"success": False}, {"num_matches": []}, {})]
    stats = pair_stats(recs)
    assert stats == pytest.approx({"matches/pair": 20.0, "match s/pair": 0.2, "forward s/pair": 1.0})
    assert pair_stats([recs[2]]) == dict.fromkeys(SPEED_COLUMNS)


def test_sweep_random_matcher_table(tmp_path):
    variants = run_sweep("smoke", "random", parse_grid(["num_matches=8,16"]),
                         overrides={"adapter.num_pairs": "2"}, data_root=tmp_path / "data",
                         results_root=tmp_path / "results", progress=False)
    assert [v.label for v in variants] == ["num_matches=8", "num_matches=16"]
    assert variants[0].result.run_dir != variants[1].result.run_dir
    assert all(v.result.done == 2 for v in variants)
    table = sweep_table(variants)
    assert list(table.index) == ["num_matches=8", "num_matches=16"]
    assert table["matches/pair"].tolist() == [8.0, 16.0] and table["n"].tolist() == [2, 2]
    assert "success_3px_pct" in table.columns and table["forward s/pair"].isna().all()
    assert list(sweep_table(variants, ["failure_pct"]).columns) == ["n", "failures", "failure_pct",
                                                                    *SPEED_COLUMNS]
    with pytest.raises(ConfigError, match="unknown metric"):
        sweep_table(variants, ["nope"])
    with pytest.raises(ConfigError):  # a bad grid value fails before anything runs
        run_sweep("smoke", "random", [("num_matches", ["8", "x"])], data_root=tmp_path / "d2",
                  results_root=tmp_path / "r2")
    assert not (tmp_path / "r2").exists()


@pytest.fixture()
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 busy cores: OpenMP spinning makes small forwards much slower
    yield
    torch.set_num_threads(before)


def test_sweep_command_mast3r_shares_forwards(tmp_path, monkeypatch, capsys, one_thread):
    ckpt = tmp_path.parent / "mast3r-tiny-seed0.pth"  # shared with other tests of the session if present
    if not ckpt.is_file():
        make_random_checkpoint(ckpt, seed=0, preset="tiny")
    calls = []
    real_run = PairNetwork.run

    def counting(self, img0, img1, need_own, n_pairs=None):
        calls.append(img0.shape[0])
        return real_run(self, img0, img1, need_own, n_pairs)

    monkeypatch.setattr(PairNetwork, "run", counting)
    argv = ["sweep", "smoke", "--matcher", "mast3r", "--grid", "frm.subsample=4,8", "--grid",
            "frm.border=0,3", f"checkpoint={ckpt}", "size=64", "estimate_focals=off", "adapter.num_pairs=2",
            "adapter.width=96", "adapter.height=72", "--results", str(tmp_path / "results"),
            "--data", str(tmp_path / "data"), "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    assert sum(calls) == 2  # 4 variants x 2 pairs, one forward per pair
    assert len(list((tmp_path / "results" / "cache" / "forward").rglob("*.npz"))) == 2
    out = capsys.readouterr().out
    for label in ("frm.subsample=4, frm.border=0", "frm.subsample=8, frm.border=3", "matches/pair"):
        assert label in out
    assert (tmp_path / "results" / "tables" / "sweep-smoke-mast3r.csv").is_file()
    names = [p.name for p in (tmp_path / "results" / "runs" / "smoke" / "mast3r").iterdir()]
    assert len(names) == 4 and all("checkpoint=mast3r-tiny-seed0.pth" in n for n in names), names
    assert not any(str(tmp_path.parent).strip("/").replace("/", "-") in n for n in names)  # no paths
    # rerun: every variant is finished, nothing is computed again
    calls.clear()
    assert main(argv) == 0 and calls == []


def test_sweep_command_errors(tmp_path, capsys):
    base = ["--results", str(tmp_path / "r"), "--data", str(tmp_path / "d")]
    assert main(["sweep", "smoke", "--grid", "num_matches=1,2", *base]) == 2
    assert "--matcher" in capsys.readouterr().err
    assert main(["sweep", "smoke", "--matcher", "random", "--grid", "nope=1,2", *base]) == 2
    assert "unknown config key" in capsys.readouterr().err
    assert main(["sweep", "--matcher", "random", "--grid", "num_matches=1", *base]) == 2


def test_sweep_table_has_one_failures_column(tmp_path):
    from types import SimpleNamespace

    from benchmarks.store import RunDir
    from benchmarks.sweep import Variant

    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    run_dir.records_path.write_text("")
    summary = {"num_records": 4, "num_failures": 1, "metrics": {"num_failures": 1, "auc_vcre": 0.5}}
    variant = Variant({"x": 1}, "x=1", SimpleNamespace(summary=summary, run_dir=run_dir))
    table = sweep_table([variant])
    assert [c for c in table.columns if "fail" in c] == ["failures"] and table["failures"].tolist() == [1]
