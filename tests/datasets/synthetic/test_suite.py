"""The suite builder: manifests and checksums, byte-identical reruns, reuse, refusal to overwrite."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from datasets.synthetic import gt_matches
from datasets.synthetic.geometry import relative_pose, viewpoint_angle_deg, viewpoint_bucket
from datasets.synthetic.gt import epipolar_distance
from datasets.synthetic.sidecar import Sidecar
from datasets.synthetic.suite import BENCHMARKS, ensure_suite, manifest_matches, read_manifest, write_suite


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    return out, write_suite(out, seed=3, size="small", benchmarks=["re10k", "dtu"])


def test_manifest_lists_every_file_with_its_checksum(suite):
    out, result = suite
    assert set(result["benchmarks"]) == {"re10k", "dtu"}
    index = json.loads((out / "MANIFEST.json").read_text())
    assert set(index["benchmarks"]) == {"re10k", "dtu"}
    for bench in ("re10k", "dtu"):
        m = read_manifest(out / bench)
        assert (m["benchmark"], m["seed"], m["size"]) == (bench, 3, "small")
        files = (p for p in (out / bench).rglob("*") if p.is_file())
        on_disk = sorted(p.relative_to(out / bench).as_posix() for p in files)
        assert sorted(m["files"]) == [p for p in on_disk if p != "MANIFEST.json"]
        for rel, info in m["files"].items():
            data = (out / bench / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["bytes"]
        digest = hashlib.sha256((out / bench / "MANIFEST.json").read_bytes()).hexdigest()
        assert index["benchmarks"][bench]["manifest_sha256"] == digest
        assert manifest_matches(out / bench, 3, "small")
        assert not manifest_matches(out / bench, 4, "small")


def test_rerun_is_byte_identical_and_independent_of_parallelism(suite, tmp_path):
    out, _ = suite
    again = write_suite(tmp_path, seed=3, size="small", benchmarks=["dtu", "re10k"], workers=2)
    for bench in ("re10k", "dtu"):
        first = (out / bench / "MANIFEST.json").read_bytes()
        assert (tmp_path / bench / "MANIFEST.json").read_bytes() == first
        assert again["benchmarks"][bench]["files"] == read_manifest(out / bench)["files"]
    other = write_suite(tmp_path / "seed4", seed=4, size="small", benchmarks=["re10k"])
    assert other["benchmarks"]["re10k"]["files"] != read_manifest(out / "re10k")["files"]


def test_ensure_suite_reuses_matching_folders_and_refuses_foreign_ones(suite, tmp_path):
    out, _ = suite
    before = (out / "dtu" / "MANIFEST.json").stat().st_mtime_ns
    res = ensure_suite(out, seed=3, size="small", benchmarks=["dtu"])
    assert res["benchmarks"]["dtu"]["reused"] is True
    assert (out / "dtu" / "MANIFEST.json").stat().st_mtime_ns == before
    (tmp_path / "dtu").mkdir()
    (tmp_path / "dtu" / "precious.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="refusing"):
        write_suite(tmp_path, seed=0, size="small", benchmarks=["dtu"])
    assert (tmp_path / "dtu" / "precious.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="unknown"):
        write_suite(tmp_path, benchmarks=["nope"])
    with pytest.raises(ValueError, match="size"):
        write_suite(tmp_path, size="huge")
    assert BENCHMARKS == ("mapfree", "aachen", "inloc", "co3dv2", "re10k", "dtu")


def test_pairs_record_viewpoint_buckets_consistent_with_poses(suite):
    out, _ = suite
    for bench in ("re10k", "dtu"):
        side = Sidecar(out / bench)
        assert side.pairs
        for p in side.pairs:
            v0, v1 = side.views[p["view0"]], side.views[p["view1"]]
            angle = viewpoint_angle_deg(v0.cam_from_world, v1.cam_from_world)
            assert p["angle_deg"] == pytest.approx(angle, abs=1e-6)
            assert p["bucket"] == viewpoint_bucket(angle)
            assert 0.0 <= p["covisible"] <= 1.0
        # exact correspondences of a recorded pair obey the epipolar constraint of the GT poses
        p = max(side.pairs, key=lambda q: q["covisible"])
        pts0, pts1 = side.correspondences(out / bench / p["view0"], p["view1"])
        t0, t1 = side.truth(p["view0"]), side.truth(p["view1"])
        assert len(pts0) > 50
        T = relative_pose(t0.cam_from_world, t1.cam_from_world)
        assert epipolar_distance(pts0, pts1, t0.K, t1.K, T).max() < 1e-3
        assert np.isfinite(pts1).all()
        via_api = gt_matches(out / bench / p["view0"], out / bench / p["view1"], stride=2)
        np.testing.assert_array_equal(via_api[0], pts0[np.all(pts0 % 2 == 0, axis=1)])


@pytest.mark.slow
def test_default_suite_covers_every_viewpoint_bucket(tmp_path):
    result = write_suite(tmp_path, seed=0, size="default", workers=2)
    for bench, m in result["benchmarks"].items():
        buckets = m["summary"]["sidecar"]["pairs_per_bucket"]
        assert set(buckets) == {"0-30", "30-60", "60-90", "90-180"}, bench
