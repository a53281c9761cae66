"""DTU reader on hand-written samples (spec section 6): MVSNet cams / pair.txt, the official
Rectified/Calibration layout (projection decomposition), STL PLY, ObsMask/Plane .mat, DTUeval's 2x
upper margin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy.spatial.transform import Rotation

from datasets.dtu import (
    DTU_TEST_SCANS,
    DtuDataset,
    check,
    decompose_projection,
    read_cam_file,
    read_dtu_gt,
    read_pair_file,
    read_ply_points,
)
from datasets.records import DatasetFormatError

CAM = """extrinsic
0.970263 0.00747983 0.241939 -191.02
-0.0147429 0.999493 0.0282234 3.28832
-0.241605 -0.030951 0.969881 22.5401
0.0 0.0 0.0 1.0

intrinsic
2892.33 0 823.205
0 2883.18 619.071
0 0 1

425.0 2.5
"""
PAIR = "3\n0\n2 1 2346.41 2 2036.53 \n1\n2 0 2346.41 2 1243.89\n2\n2 0 2036.53 1 1243.89\n"


def _write_mvsnet(root: Path, scan: int = 1) -> Path:
    sdir = root / f"scan{scan}"
    (sdir / "cams").mkdir(parents=True)
    (sdir / "images").mkdir()
    for v in range(3):
        (sdir / "cams" / f"{v:08d}_cam.txt").write_text(CAM)
        Image.new("RGB", (16, 12)).save(sdir / "images" / f"{v:08d}.jpg")
    (sdir / "pair.txt").write_text(PAIR)
    return sdir


def _cam(tmp_path: Path, text: str):
    p = tmp_path / "00000000_cam.txt"
    p.write_text(text)
    return read_cam_file(p)


def test_cam_file(tmp_path: Path) -> None:
    cam = _cam(tmp_path, CAM)
    np.testing.assert_allclose(cam.cam_from_world[0], [0.970263, 0.00747983, 0.241939, -191.02])
    np.testing.assert_allclose(cam.K, [[2892.33, 0, 823.205], [0, 2883.18, 619.071], [0, 0, 1]])
    assert (cam.depth_min, cam.depth_interval, cam.depth_num, cam.depth_max) == (425.0, 2.5, None, None)
    cam4 = _cam(tmp_path, CAM.replace("425.0 2.5", "425.0 2.5 192 905.0"))
    assert (cam4.depth_num, cam4.depth_max) == (192, 905.0)


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("-0.0147429 0.999493 0.0282234 3.28832", "-0.0147429 0.999493 3.28832",
         r"_cam\.txt:3: extrinsic row 1"),
        ("0 2883.18 619.071", "0 2883.18 abc", r"_cam\.txt:9: cannot parse intrinsic entry 'abc'"),
        ("intrinsic", "intrinsics", r"_cam\.txt:7: expected 'intrinsic'"),
        ("425.0 2.5", "425.0", r"_cam\.txt:12: expected one line 'DEPTH_MIN"),
        ("0.970263 0.00747983", "1.970263 0.00747983", r"_cam\.txt:2: extrinsic is not a rigid"),
        ("2892.33 0 823.205", "nan 0 823.205", r"_cam\.txt:8: intrinsic entry is not finite"),
    ],
)
def test_bad_cam_files(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    with pytest.raises(DatasetFormatError, match=pattern):
        _cam(tmp_path, CAM.replace(old, new))


def test_pair_file(tmp_path: Path) -> None:
    p = tmp_path / "pair.txt"
    p.write_text(PAIR)
    assert read_pair_file(p) == {0: [(1, 2346.41), (2, 2036.53)], 1: [(0, 2346.41), (2, 1243.89)],
                                 2: [(0, 2036.53), (1, 1243.89)]}
    p.write_text(PAIR.replace("2 0 2346.41 2 1243.89", "2 0 2346.41 2"))
    with pytest.raises(DatasetFormatError, match=r"pair\.txt:5: expected 5 fields"):
        read_pair_file(p)
    p.write_text(PAIR.replace("2 0 2346.41 2 1243.89", "2 0 2346.41 7 1243.89"))
    with pytest.raises(DatasetFormatError, match=r"pair\.txt:5: view id 7 outside \[0, 3\)"):
        read_pair_file(p)


def test_mvsnet_layout(tmp_path: Path) -> None:
    _write_mvsnet(tmp_path, 1)
    _write_mvsnet(tmp_path, 10)
    ds = DtuDataset(tmp_path)
    assert ds.layout == "mvsnet" and ds.scans() == [1, 10]
    sc = ds.scan(1)
    assert [v.name for v in sc.views] == ["scan1/00000000", "scan1/00000001", "scan1/00000002"]
    assert (sc.views[0].width, sc.views[0].height) == (16, 12) and sc.views[0].meta["view"] == 0
    assert sc.pairs[0][0] == (1, 2346.41) and sc.depth_ranges[2] == (425.0, 2.5)
    s = check(tmp_path)
    assert (s["scans"], s["views"], s["pairs"], s["layout"]) == (2, 6, 12, "mvsnet")
    (tmp_path / "scan10/images/00000002.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"00000002_cam\.txt: missing image of this camera"):
        ds.scan(10)


def test_decompose_projection_negative_scale() -> None:
    K = np.array([[2892.33, 0.5, 823.205], [0, 2883.18, 619.071], [0, 0, 1]])
    R = Rotation.from_euler("xyz", [170, -20, 35], degrees=True).as_matrix()
    t = np.array([-191.02, 3.28832, 622.5401])
    for scale in (1.0, -2.5, 1e-3):
        K2, T = decompose_projection(scale * K @ np.hstack([R, t[:, None]]))
        np.testing.assert_allclose(K2, K, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(T[:3, :3], R, atol=1e-12)
        np.testing.assert_allclose(T[:3, 3], t, rtol=1e-10)


def test_official_layout(tmp_path: Path) -> None:
    K = np.array([[2892.33, 0, 823.205], [0, 2883.18, 619.071], [0, 0, 1]])
    (tmp_path / "Calibration/cal18").mkdir(parents=True)
    (tmp_path / "Rectified/scan4").mkdir(parents=True)
    for v in range(1, 50):
        R = Rotation.from_euler("y", v, degrees=True).as_matrix()
        P = -3.0 * K @ np.hstack([R, [[v], [2.0], [600.0]]])
        (tmp_path / f"Calibration/cal18/pos_{v:03d}.txt").write_text(
            "\n".join(" ".join(f"{x:.10g}" for x in row) for row in P) + "\n")
        Image.new("RGB", (16, 12)).save(tmp_path / f"Rectified/scan4/rect_{v:03d}_3_r5000.png")
    ds = DtuDataset(tmp_path)
    assert ds.layout == "official" and ds.scans() == [4]
    sc = ds.scan(4)
    assert len(sc.views) == 49 and sc.views[4].name == "scan4/rect_005_3_r5000"
    assert sc.views[4].meta["view"] == 4
    np.testing.assert_allclose(sc.views[4].K, K, atol=1e-6)
    np.testing.assert_allclose(sc.views[4].cam_from_world[:3, 3], [5, 2, 600], atol=1e-6)
    (tmp_path / "Calibration/cal18/pos_007.txt").write_text("1 2 3 4\n5 6 7 8\n")
    with pytest.raises(DatasetFormatError, match=r"pos_007\.txt: expected 3 rows of 4 numbers"):
        ds.scan(4)


def _write_gt(gt: Path, scan: int, points: np.ndarray, binary: bool = True) -> None:
    (gt / "Points/stl").mkdir(parents=True, exist_ok=True)
    (gt / "ObsMask").mkdir(parents=True, exist_ok=True)
    header = (f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\ncomment stl\n"
              f"element vertex {len(points)}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    path = gt / f"Points/stl/stl{scan:03d}_total.ply"
    if binary:
        rec = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"),
                                           ("b", "u1")])
        rec["x"], rec["y"], rec["z"] = points.T
        path.write_bytes(header.encode() + rec.tobytes())
    else:
        path.write_text(header + "".join(f"{x} {y} {z} 1 2 3\n" for x, y, z in points))
    mask = np.zeros((4, 4, 4), dtype=np.uint8)
    mask[1, 2, 3] = 1
    mask[0, 0, 0] = 1
    scipy.io.savemat(str(gt / f"ObsMask/ObsMask{scan}_10.mat"),
                     {"ObsMask": mask, "BB": np.array([[0.0, 0, 0], [10, 10, 10]]), "Res": np.array([[1.0]])})
    scipy.io.savemat(str(gt / f"ObsMask/Plane{scan}.mat"), {"P": np.array([[0.0], [0], [1], [-5]])})


def test_ground_truth_and_margins(tmp_path: Path) -> None:
    gt = tmp_path / "SampleSet" / "MVS Data"
    pts = np.array([[1.0, 2.0, 3.0], [0.5, 1.5, 2.5], [-60, 0, 0], [-60.25, 0, 0], [129.75, 0, 0],
                    [130, 0, 0]])
    _write_gt(gt, 1, pts)
    g = read_dtu_gt(tmp_path, 1)  # finds SampleSet/MVS Data
    np.testing.assert_allclose(g.stl_points, pts.astype(np.float32))
    assert g.res == 1.0 and g.bb.shape == (2, 3) and g.obs_mask.dtype == bool
    np.testing.assert_array_equal(g.plane, [0, 0, 1, -5])
    # lower margin patch, upper margin 2 * patch (DTUeval)
    np.testing.assert_array_equal(g.in_bounds(pts[2:], patch=60), [True, False, True, False])
    # round half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
    np.testing.assert_array_equal(g.voxel_index(pts[1:2]), [[0, 2, 2]])
    np.testing.assert_array_equal(g.in_obs_mask(pts[:2]), [True, False])
    np.testing.assert_array_equal(g.above_plane([[0, 0, 5.0], [0, 0, 5.5]]), [False, True])
    assert DTU_TEST_SCANS[:3] == (1, 4, 9) and len(DTU_TEST_SCANS) == 22
    s = check(gt)
    assert (s["gt_scans"], s["points3d"], s["scans"]) == (1, 6, 0)


def test_ascii_ply_and_bad_gt(tmp_path: Path) -> None:
    pts = np.array([[1.5, -2.0, 3.25], [4.0, 5.0, 6.0]])
    _write_gt(tmp_path, 9, pts, binary=False)
    np.testing.assert_allclose(read_ply_points(tmp_path / "Points/stl/stl009_total.ply"), pts)
    scipy.io.savemat(str(tmp_path / "ObsMask/ObsMask9_10.mat"), {"ObsMask": np.zeros((2, 2, 2)),
                                                                 "BB": np.zeros((3, 2)), "Res": 1.0})
    with pytest.raises(DatasetFormatError, match=r"ObsMask9_10\.mat: expected ObsMask 3D, BB \(2, 3\)"):
        read_dtu_gt(tmp_path, 9)
    scipy.io.savemat(str(tmp_path / "ObsMask/ObsMask9_10.mat"), {"ObsMask": np.zeros((2, 2, 2))})
    with pytest.raises(DatasetFormatError, match=r"ObsMask9_10\.mat: missing variable\(s\) \['BB', 'Res'\]"):
        read_dtu_gt(tmp_path, 9)
    p = tmp_path / "Points/stl/stl009_total.ply"
    data = p.read_bytes().replace(b"element vertex 2", b"element vertex 3")
    p.write_bytes(data.replace(b"ascii", b"binary_little_endian"))  # body: 36 bytes = 2 records of 15
    with pytest.raises(DatasetFormatError, match=r"stl009_total\.ply: file truncated"):
        read_ply_points(p)
