"""RealEstate10K adapter on the synthetic suite: clip selection, oracle (incl. non-covisible pairs),
random and sift runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.adapters.re10k import Re10kAdapter, Re10kConfig
from benchmarks.runner import run_benchmark
from benchmarks.store import RecordStore
from datasets.re10k import Re10kDataset

KEYS = ("rra15_pooled_pct", "rta15_pooled_pct", "maa30_pooled_pct")


@pytest.fixture
def one_torch_thread():
    """SIFT (kornia) on tiny images: one intra-op thread is ~10x faster on a shared, busy CPU."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def root(synthetic_root: Path) -> Path:
    return synthetic_root / "re10k"


def test_samples(root, tmp_path):
    adapter = Re10kAdapter(root)
    samples = list(adapter.samples())
    seqs = Re10kDataset(root, "test").sequences()
    assert [s.key for s in samples] == seqs
    s = samples[0]
    assert len(s.views) == 10 and len(adapter.pairs(s)) == 45
    paths = [str(v.image_path) for v in s.views]
    assert paths == sorted(paths) and s.meta["category"] == "re10k"
    assert len(set(s.meta["pair_viewpoint_bucket"])) >= 2  # the clips pan: several buckets
    assert Re10kAdapter(root / "re10k").root == root
    # an explicit sequence list; unknown / unextracted ids are skipped
    lst = tmp_path / "list.txt"
    lst.write_text(f"{seqs[0]}\nffffffffffffffff\n")
    listed = list(Re10kAdapter(root, Re10kConfig(sequence_list=str(lst))).samples())
    assert [x.key for x in listed] == [seqs[0]]
    assert list(Re10kAdapter(root, Re10kConfig(num_frames=50)).samples()) == []


def test_oracle_is_perfect_including_pairs_without_overlap(root, synthetic_root, tmp_path):
    adapter = Re10kAdapter(root)
    s = next(iter(adapter.samples()))
    virtual = [adapter.gt_correspondences(s, i, j).meta["virtual"] for i, j in adapter.pairs(s)]
    result = run_benchmark("re10k", "oracle", data_root=synthetic_root, results_root=tmp_path, progress=False)
    m = result.summary["metrics"]
    assert [m[k] for k in KEYS] == [100.0, 100.0, 100.0] and m["failed_pair_pct"] == 0.0
    (record,) = RecordStore(result.run_dir.records_path).load().values()
    assert record.metrics["num_failed_pairs"] == 0
    if any(virtual):  # pairs that see nothing in common still get exact (virtual) matches
        k = virtual.index(True)
        c = adapter.gt_correspondences(s, *adapter.pairs(s)[k])
        v1 = s.views[adapter.pairs(s)[k][1]]
        outside = (c.pts1[:, 0] < -0.5) | (c.pts1[:, 0] > v1.width - 0.5) | (c.pts1[:, 1] < -0.5) \
            | (c.pts1[:, 1] > v1.height - 0.5)
        assert outside.any() and record.metrics["rot_err_deg"][k] < 0.5


def test_random_is_near_zero_and_sift_is_finite(synthetic_root, tmp_path, one_torch_thread):
    m = run_benchmark("re10k", "random", data_root=synthetic_root, results_root=tmp_path,
                      overrides={"estimator.ransac_max_trials": "300", "matcher.num_matches": "128"},
                      progress=False).summary["metrics"]
    assert m["rra15_pooled_pct"] < 15 and m["maa30_pooled_pct"] < 10
    s = run_benchmark("re10k", "sift", data_root=synthetic_root, results_root=tmp_path,
                      overrides={"adapter.num_frames": "3"}, progress=False).summary["metrics"]
    assert s["num_pairs"] == 3
    for key in (*KEYS, "failed_pair_pct"):
        assert np.isfinite(s[key]) and 0.0 <= s[key] <= 100.0


def _release_copy(synthetic_root: Path, dest: Path, frames_inside: bool) -> Path:
    """Synthetic clips in the release layout: ``dest/RealEstate10K/test/``, ``frames/`` inside or beside."""
    import shutil

    release = dest / "RealEstate10K"
    shutil.copytree(synthetic_root / "re10k" / "test", release / "test")
    shutil.copytree(synthetic_root / "re10k" / "frames", (release if frames_inside else dest) / "frames")
    return release


@pytest.mark.parametrize("frames_inside", [False, True])
def test_release_layout_gives_the_same_samples(root, synthetic_root, tmp_path, frames_inside):
    # issue 15 item 9: --data at the folder holding RealEstate10K/ or at RealEstate10K/ itself
    holder = tmp_path / "re10k"
    release = _release_copy(synthetic_root, holder, frames_inside)
    expected = [(s.key, [v.name for v in s.views]) for s in Re10kAdapter(root).samples()]
    for given in (holder, holder / "re10k", release, release / "re10k"):
        adapter = Re10kAdapter(given)
        assert adapter.root == release, given
        assert [(s.key, [v.name for v in s.views]) for s in adapter.samples()] == expected
        assert adapter.dataset_checksum() is not None
    # a relative sequence list kept beside the release folder
    (holder / "list.txt").write_text(f"{expected[0][0]}\n")
    listed = Re10kAdapter(holder, Re10kConfig(sequence_list="list.txt")).samples()
    assert [s.key for s in listed] == [expected[0][0]]
    # the fingerprint sees the frame folders wherever they are
    before = Re10kAdapter(holder).dataset_checksum()
    frames = (release if frames_inside else holder) / "frames" / "test"
    next(frames.iterdir()).rename(frames / "renamed")
    assert Re10kAdapter(holder).dataset_checksum() != before


def test_release_layout_through_the_cli(synthetic_root, tmp_path):
    import json
    import subprocess
    import sys

    holder = tmp_path / "data"
    _release_copy(synthetic_root, holder, frames_inside=False)  # data/RealEstate10K/test, data/frames
    cmd = [sys.executable, "-m", "benchmarks", "data", "check", "re10k", "--root", str(holder)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["root"] == str(holder / "RealEstate10K") and summary["views"] > 0
    cmd = [sys.executable, "-m", "benchmarks", "run", "re10k", "--matcher", "random", "--data", str(holder),
           "--results", str(tmp_path / "results"), "--limit", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "1/1 samples" in proc.stdout + proc.stderr
