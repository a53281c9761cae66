"""`mast3r-bench score mapfree|aachen|inloc|dtu` reproduce hand-computed values."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main

MAPFREE_KEYS = {"avg_median_trans_err_m", "avg_median_rot_err_deg", "avg_median_vcre_px", "precision_pose",
                "auc_pose", "precision_vcre", "auc_vcre", "estimated_fraction"}
Z = [1.8 + 0.3 * k for k in range(7)]
XS = [-0.9 + 0.3 * k for k in range(7)]
YS = [-0.45, -0.15, 0.15, 0.45]


def run(argv: list[str], capsys) -> tuple[int, dict]:
    rc = main(argv)
    out = capsys.readouterr().out
    return rc, (json.loads(out) if rc == 0 else {})


def write_scene(root: Path, scene: str, seq1_frames: range) -> None:
    folder = root / "mapfree" / "val" / scene
    folder.mkdir(parents=True)
    names = ["seq0/frame_00000.jpg"] + [f"seq1/frame_{k:05d}.jpg" for k in seq1_frames]
    (folder / "intrinsics.txt").write_text("".join(f"{n} 100 100 5000 5000 10000 10000\n" for n in names))
    (folder / "poses.txt").write_text("".join(f"{n} 1.0 0.0 0.0 0.0 0.0 0.0 0.0\n" for n in names))


@pytest.fixture
def mapfree_root(tmp_path: Path) -> Path:
    write_scene(tmp_path, "s00460", range(10))  # keys 0..9, evaluated: 0 and 5
    write_scene(tmp_path, "s00461", range(5))   # keys 0..4, evaluated: 0
    write_scene(tmp_path, "s00462", range(6))   # 7 lines but 6 keys (seq0/seq1 frame 0 collide)
    return tmp_path


def write_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def test_score_mapfree_hand_worked(mapfree_root, tmp_path, capsys):
    sub = write_zip(tmp_path / "sub.zip", {
        "pose_s00460.txt": ("# a comment line\n"
                            "seq1/frame_00003.jpg nan 0 0 0 0 0 0 1\n"
                            "seq1/frame_00000.jpg 1 0 0 0 -0.1 0 0 10\n"     # centre x + 0.1
                            "seq1/frame_00005.jpg 1 0 0 0 -0.3 0 0 5\n"),    # centre x + 0.3
        "pose_s00461.txt": "seq1/frame_00000.jpg 1 0 0 0 0 0 -0.25 7\n",    # centre z + 0.25
        "extra/pose_s00462.txt": "seq1/frame_00000.jpg 1 0 0 0 0 0 0 1\n",  # not at the root: missing
        "pose_s99999.txt": "seq1/frame_00000.jpg 1 0 0 0 0 0 0 1\n",        # unknown scene: warning
    })
    out_json = tmp_path / "out" / "m.json"
    rc, got = run(["score", "mapfree", "--data", str(mapfree_root), "--split", "val",
                   "--submission", str(sub), "--json", str(out_json)], capsys)
    assert rc == 0 and set(got) == MAPFREE_KEYS
    assert json.loads(out_json.read_text()) == got

    # Lateral shift d: every point moves f d / z px. Depth shift 0.25: f |1/(z-.25) - 1/z| sqrt(x^2+y^2).
    s = sum(1 / z for z in Z)
    v_a0, v_a5 = 100 * 0.1 * s / 7, 100 * 0.3 * s / 7
    v_b = sum(100 * abs(1 / (z - 0.25) - 1 / z) * math.hypot(x, y) for x in XS for y in YS for z in Z) / 196
    total = 3 + 6  # 3 estimates; s00462 missing: its 6 keys before subsampling
    assert got["avg_median_trans_err_m"] == pytest.approx((0.2 + 0.25) / 2, abs=1e-12)
    assert got["avg_median_rot_err_deg"] == 0.0
    assert got["avg_median_vcre_px"] == pytest.approx(((v_a0 + v_a5) / 2 + v_b) / 2, rel=1e-12)
    assert got["precision_pose"] == pytest.approx(1 / total)   # 0.25 m is not < 0.25 m
    assert got["precision_vcre"] == pytest.approx(3 / total)
    assert got["estimated_fraction"] == pytest.approx(3 / total)
    # confidences 10 (ok), 7 (t = 0.25: not ok), 5 (not ok); recall steps of 1/9 (float32).
    assert got["auc_pose"] == pytest.approx((1 + 1 / 2 + 1 / 3) / total, abs=1e-7)
    assert got["auc_vcre"] == pytest.approx(3 / total, abs=1e-7)

    # ROOT may also be the mapfree folder itself.
    rc, again = run(["score", "mapfree", "--data", str(mapfree_root / "mapfree"), "--submission", str(sub)],
                    capsys)
    assert rc == 0 and again == got


def test_score_mapfree_without_estimates_fails_cleanly(mapfree_root, tmp_path, capsys):
    sub = write_zip(tmp_path / "empty.zip", {"pose_s00460.txt": "seq1/frame_00001.jpg 1 0 0 0 0 0 0 1\n"})
    assert main(["score", "mapfree", "--data", str(mapfree_root), "--submission", str(sub)]) == 1
    assert capsys.readouterr().out == ""
    assert main(["score", "mapfree", "--data", str(tmp_path / "nowhere"), "--submission", str(sub)]) == 1


AACHEN_GT = """# name qw qx qy qz tx ty tz
query/day/milestone/a.jpg 1 0 0 0 0 0 0
query/day/nexus4/b.jpg 1 0 0 0 0 0 0
query/night/nexus5x/c.jpg 1 0 0 0 0 0 0
query/night/nexus5x/d.jpg 1 0 0 0 0 0 0
"""


def test_score_aachen_inclusive_and_strict(tmp_path, capsys):
    gt = tmp_path / "gt.txt"
    gt.write_text(AACHEN_GT)
    c2, s2 = math.cos(math.radians(2)), math.sin(math.radians(2))
    pred = tmp_path / "Aachen_eval_test.txt"
    pred.write_text("a.jpg 1 0 0 0 0 0 0\n"
                    "b.jpg 1 0 0 0 0 0 -0.25\n"              # exactly 0.25 m
                    f"c.jpg {c2} 0 0 {s2} -0.1 0 0\n"         # 0.1 m, 4 deg
                    "unknown.jpg 1 0 0 0 0 0 0\n")            # d.jpg missing: failure
    rc, got = run(["score", "aachen", "--gt", str(gt), "--pred", str(pred)], capsys)
    assert rc == 0
    assert got == {"day": [[0.25, 2.0, 100.0], [0.5, 5.0, 100.0], [5.0, 10.0, 100.0]],
                   "night": [[0.25, 2.0, 0.0], [0.5, 5.0, 50.0], [5.0, 10.0, 50.0]],
                   "all": [[0.25, 2.0, 50.0], [0.5, 5.0, 75.0], [5.0, 10.0, 75.0]]}
    rc, strict = run(["score", "aachen", "--gt", str(gt), "--pred", str(pred), "--strict",
                      "--json", str(tmp_path / "s.json")], capsys)
    assert rc == 0 and strict["day"] == [[0.25, 2.0, 50.0], [0.5, 5.0, 100.0], [5.0, 10.0, 100.0]]
    assert strict["all"] == [[0.25, 2.0, 25.0], [0.5, 5.0, 75.0], [5.0, 10.0, 75.0]]
    assert json.loads((tmp_path / "s.json").read_text()) == strict


def test_score_inloc_building_sources(tmp_path, capsys):
    gt = tmp_path / "gt.txt"
    gt.write_text("query/iphone7/IMG_0001.JPG 1 0 0 0 0 0 0 DUC1\n"       # 9th column
                  "query/iphone7/IMG_0002.JPG 1 0 0 0 0 0 0\n"            # from --building-map
                  "query/iphone7/DUC1_IMG_0003.JPG 1 0 0 0 0 0 0\n"       # from the name
                  "query/iphone7/IMG_0004.JPG 1 0 0 0 0 0 0\n")           # no building: 'all' only
    bmap = tmp_path / "buildings.txt"
    bmap.write_text("IMG_0002.JPG DUC2\n")
    pred = tmp_path / "pred.txt"
    pred.write_text("IMG_0001.JPG 1 0 0 0 0 0 0\nIMG_0002.JPG 1 0 0 0 0 0 -0.6\n"
                    "DUC1_IMG_0003.JPG 1 0 0 0 0 0.3 0\nIMG_0004.JPG 1 0 0 0 0 0 0\n")
    rc, got = run(["score", "inloc", "--gt", str(gt), "--pred", str(pred), "--building-map", str(bmap)],
                  capsys)
    assert rc == 0
    assert got == {"DUC1": [[0.25, 10.0, 50.0], [0.5, 10.0, 100.0], [1.0, 10.0, 100.0]],
                   "DUC2": [[0.25, 10.0, 0.0], [0.5, 10.0, 0.0], [1.0, 10.0, 100.0]],
                   "all": [[0.25, 10.0, 50.0], [0.5, 10.0, 75.0], [1.0, 10.0, 100.0]]}
    rc, no_map = run(["score", "inloc", "--gt", str(gt), "--pred", str(pred)], capsys)
    assert rc == 0 and list(no_map) == ["DUC1", "all"]


def write_ascii_ply(path: Path, points: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"ply\nformat ascii 1.0\nelement vertex {len(points)}\nproperty float x\nproperty float y\n" \
             "property float z\nend_header\n"
    path.write_text(header + "".join(f"{x} {y} {z}\n" for x, y, z in points))
    return path


def test_score_dtu_hand_worked(tmp_path, capsys):
    pytest.importorskip("datasets.dtu")
    scipy_io = pytest.importorskip("scipy.io")
    xs, ys = np.meshgrid(np.arange(11.0), np.arange(11.0), indexing="ij")
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    stl = np.concatenate([np.c_[grid, np.full(121, 5.0)], np.c_[np.arange(5.0), np.full(5, 20.0),
                                                                 np.full(5, -3.0)]])
    data = np.concatenate([np.c_[grid, np.full(121, 5.5)], [[5.0, 5.0, 30.0]]])
    obs = np.ones((41, 41, 41), dtype=bool)
    obs[10, 10, 6] = False
    gt_root = tmp_path / "SampleSet" / "MVS Data"
    write_ascii_ply(gt_root / "Points" / "stl" / "stl024_total.ply", stl)
    (gt_root / "ObsMask").mkdir(parents=True)
    scipy_io.savemat(gt_root / "ObsMask" / "ObsMask24_10.mat",
                     {"ObsMask": obs, "BB": np.array([[0.0, 0, 0], [40, 40, 40]]), "Res": np.array([[1.0]])})
    scipy_io.savemat(gt_root / "ObsMask" / "Plane24.mat", {"P": np.array([[0.0], [0.0], [1.0], [-4.0]])})
    ply = write_ascii_ply(tmp_path / "rec.ply", data)
    rc, got = run(["score", "dtu", "--gt-root", str(gt_root), "--scan", "24", "--ply", str(ply),
                   "--no-shuffle"], capsys)
    assert rc == 0
    assert got["accuracy_mm"] == pytest.approx(0.5, abs=1e-12)
    assert got["completeness_mm"] == pytest.approx(0.5, abs=1e-12)
    assert got["overall_mm"] == pytest.approx(0.5, abs=1e-12)
    assert {k: v for k, v in got.items() if k.startswith("n_")} == {
        "n_points": 122, "n_downsampled": 122, "n_in_bounds": 122, "n_in_obs": 121,
        "n_accuracy_used": 120, "n_stl": 126, "n_stl_above": 121, "n_completeness_used": 121}
    rc, shuffled = run(["score", "dtu", "--gt-root", str(tmp_path), "--scan", "24", "--ply", str(ply)],
                       capsys)
    assert rc == 0 and shuffled == got  # spacing 1 mm: nothing to thin, order does not matter


def test_score_mapfree_refuses_an_oversized_member_cli(mapfree_root, tmp_path):
    # issue 15 item 7: a small zip with a huge member is refused before it is decompressed
    import subprocess
    import sys

    from benchmarks.metrics.submission import MAX_MEMBER_BYTES

    sub = tmp_path / "bomb.zip"
    with zipfile.ZipFile(sub, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pose_s00460.txt", b"\n" * (MAX_MEMBER_BYTES + 1))
    assert sub.stat().st_size < 200_000
    cmd = [sys.executable, "-m", "benchmarks", "score", "mapfree", "--data", str(mapfree_root),
           "--submission", str(sub)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stdout == ""
    assert (f"{sub}:pose_s00460.txt: {MAX_MEMBER_BYTES + 1} bytes uncompressed, over the cap of "
            f"{MAX_MEMBER_BYTES} bytes for one member") in proc.stderr
    assert "Traceback" not in proc.stderr
