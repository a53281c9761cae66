"""CO3Dv2 adapter on the synthetic suite: PoseDiffusion selection, oracle/random/sift runs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.adapters.co3dv2 import Co3dv2Adapter, Co3dv2Config
from benchmarks.runner import run_benchmark
from benchmarks.store import RecordStore
from datasets.co3dv2 import Co3dDataset
from datasets.co3dv2_relpose import build_relpose_annotations

KEYS = ("rra15_category_mean_pct", "rta15_category_mean_pct", "maa30_category_mean_pct")


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
    return synthetic_root / "co3dv2"


def test_samples_follow_posediffusion(root):
    adapter = Co3dv2Adapter(root)
    samples = list(adapter.samples())
    ann = build_relpose_annotations(Co3dDataset(root), "apple", "test")
    assert [s.key for s in samples] == [f"apple/{seq}" for seq in ann]
    s = samples[0]
    frames = ann[s.meta["sequence"]]
    assert len(s.views) == 10 and len(adapter.pairs(s)) == 45 and adapter.pairs(s)[:2] == [(0, 1), (0, 2)]
    assert s.meta["frames"] == sorted(s.meta["frames"])  # reordered by file path
    ids = np.random.RandomState(0).choice(len(frames), 10, replace=False)
    assert sorted(s.meta["frame_indices"]) == sorted(ids.tolist())
    assert s.meta["frames"] == sorted(frames[i].filepath for i in ids)
    assert s.meta["min_frames"] == 10  # synthetic suite: sequences are shorter than PoseDiffusion's 50
    assert len(s.meta["pair_viewpoint_bucket"]) == 45
    assert set(s.meta["pair_viewpoint_bucket"]) <= {"0-30", "30-60", "60-90", "90-180"}
    assert all(v.K is not None and v.cam_from_world is not None for v in s.views)
    assert Co3dv2Adapter(root / "co3dv2").root == root  # --data naming the co3dv2 folder itself


def test_filters(root, tmp_path):
    assert list(Co3dv2Adapter(root, Co3dv2Config(min_frames=50)).samples()) == []  # the real threshold
    assert list(Co3dv2Adapter(root, Co3dv2Config(max_translation_sum=-1e9)).samples()) == []
    assert list(Co3dv2Adapter(root, Co3dv2Config(min_quality=1.0)).samples()) == []
    assert list(Co3dv2Adapter(root, Co3dv2Config(num_frames=11)).samples()) == []
    assert len(list(Co3dv2Adapter(root, Co3dv2Config(num_frames=4)).samples())[0].views) == 4
    # PoseDiffusion's preprocessed annotation files give the same samples as the rebuild
    ann = build_relpose_annotations(Co3dDataset(root), "apple", "test")
    data = {seq: [{"filepath": f.filepath, "R": f.R.tolist(), "T": f.T.tolist(),
                   "focal_length": f.focal_length.tolist(), "principal_point": f.principal_point.tolist(),
                   "bbox": f.bbox.tolist()} for f in frames] for seq, frames in ann.items()}
    with gzip.open(tmp_path / "apple_test.jgz", "wt") as fh:
        json.dump(data, fh)
    from_files = list(Co3dv2Adapter(root, Co3dv2Config(annotations=str(tmp_path))).samples())
    rebuilt = list(Co3dv2Adapter(root).samples())
    assert [s.meta["frames"] for s in from_files] == [s.meta["frames"] for s in rebuilt]
    np.testing.assert_allclose(from_files[0].views[3].cam_from_world, rebuilt[0].views[3].cam_from_world)


@pytest.mark.parametrize("solver", ["auto", "essential"])
def test_oracle_is_perfect(root, synthetic_root, tmp_path, solver):
    result = run_benchmark("co3dv2", "oracle", data_root=synthetic_root, results_root=tmp_path,
                           overrides={"estimator.solver": solver}, progress=False)
    m = result.summary["metrics"]
    assert [m[k] for k in KEYS] == [100.0, 100.0, 100.0]
    assert m["failed_pair_pct"] == 0.0 and m["num_pairs"] == 45 and m["num_categories"] == 1
    (record,) = RecordStore(result.run_dir.records_path).load().values()
    pairs = record.prediction["values"]["pairs"]
    assert {p["solver"] for p in pairs} == {"pnp" if solver == "auto" else "essential"}
    assert {p["intrinsics"] for p in pairs} == {"gt"}  # no matcher focal: the GT fallback is recorded
    assert max(record.metrics["rot_err_deg"]) < 0.5  # PyTorch3D's eps: 0.405 deg at zero error


def test_random_is_near_zero(synthetic_root, tmp_path):
    m = run_benchmark("co3dv2", "random", data_root=synthetic_root, results_root=tmp_path,
                      overrides={"estimator.ransac_max_trials": "300", "matcher.num_matches": "128"},
                      progress=False).summary["metrics"]
    assert m["rra15_category_mean_pct"] < 15 and m["maa30_category_mean_pct"] < 10


def test_sift_gives_plausible_finite_numbers(synthetic_root, tmp_path, one_torch_thread):
    m = run_benchmark("co3dv2", "sift", data_root=synthetic_root, results_root=tmp_path,
                      overrides={"adapter.num_frames": "3", "adapter.aggregation": "pooled"},
                      progress=False).summary["metrics"]
    assert m["num_pairs"] == 3
    for key in ("rra15_pooled_pct", "rta15_pooled_pct", "maa30_pooled_pct", "failed_pair_pct"):
        assert 0.0 <= m[key] <= 100.0


def test_dataset_checksum_lists_annotations_only(root, tmp_path):
    """Without the suite's MANIFEST the fingerprint covers annotation files, not ~1.5M images."""
    copy = tmp_path / "co3dv2"
    for path in root.glob("*/*.jgz"):
        (copy / path.parent.name).mkdir(parents=True, exist_ok=True)
        (copy / path.parent.name / path.name).write_bytes(path.read_bytes())
    first = Co3dv2Adapter(copy).dataset_checksum()
    assert first is not None and first.startswith("listing:")
    (copy / "apple" / "not_an_annotation.jpg").write_bytes(b"x")
    assert Co3dv2Adapter(copy).dataset_checksum() == first
    (copy / "apple" / "frame_annotations.jgz").write_bytes(b"changed")
    assert Co3dv2Adapter(copy).dataset_checksum() != first
    assert Co3dv2Adapter(root).dataset_checksum().startswith("manifest:")
