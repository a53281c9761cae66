"""Aachen Day-Night v1.1 reader on hand-written samples: query lists, a COLMAP binary model written
byte by byte, NVM, hloc and kapture pairs (spec section 2)."""

from __future__ import annotations

import functools
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from datasets.aachen import (
    AachenDataset,
    check,
    group_pairs,
    read_camera_list,
    read_hloc_pairs,
    read_kapture_pairs,
    read_nvm,
)
from datasets.records import DatasetFormatError, camera_centre

DAY = "query/day/milestone/2010-10-30_17-47-25_73.jpg SIMPLE_RADIAL 1417 1063 1469.2 708.5 531.5 -0.0353\n"
NIGHT = "query/night/nexus5x/IMG_20161227_172439.jpg SIMPLE_RADIAL 1600 1200 1469.2 800 600 -0.0353\n"
Q_DB1 = (0.9, 0.1, 0.2, 0.3)  # not unit: COLMAP normalises, so must we
T_DB1 = (1.0, 2.0, 3.0)


@functools.cache
def _jpg_bytes(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (90, 90, 90)).save(buf, format="JPEG")
    return buf.getvalue()


def _jpg(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jpg_bytes(w, h))


def write_colmap_bin(d: Path, images: list[tuple[int, tuple, tuple, str, list]], points: dict) -> None:
    """COLMAP binary model, format as in COLMAP's src/colmap/scene/reconstruction_io.cc."""
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<iiQQ", 1, 2, 160, 120))  # camera 1, SIMPLE_RADIAL (id 2), 160x120
        f.write(struct.pack("<4d", 146.9, 80.0, 60.0, -0.0353))
    with open(d / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(images)))
        for image_id, q, t, name, pts2d in images:
            f.write(struct.pack("<i4d3di", image_id, *q, *t, 1))
            f.write(name.encode() + b"\x00")
            f.write(struct.pack("<Q", len(pts2d)))
            for x, y, pid in pts2d:
                f.write(struct.pack("<ddq", x, y, pid))
    with open(d / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(points)))
        for pid, (xyz, track) in points.items():
            f.write(struct.pack("<Q3d3Bd", pid, *xyz, 200, 100, 50, 0.5))
            f.write(struct.pack("<Q", len(track)))
            for image_id, idx in track:
                f.write(struct.pack("<ii", image_id, idx))


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    iu = tmp_path / "images_upright"
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries/day_time_queries_with_intrinsics.txt").write_text(DAY)
    (tmp_path / "queries/night_time_queries_with_intrinsics.txt").write_text("# night\n\n" + NIGHT)
    _jpg(iu / "query/day/milestone/2010-10-30_17-47-25_73.jpg", 1417, 1063)
    _jpg(iu / "query/night/nexus5x/IMG_20161227_172439.jpg", 1600, 1200)
    for n in (1, 2):
        _jpg(iu / f"db/{n}.jpg", 160, 120)
    images = [
        (1, Q_DB1, T_DB1, "db/1.jpg", [(10.5, 20.5, 7), (30.5, 40.5, -1), (50.0, 60.0, 9)]),
        (2, (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0), "db/2.jpg", [(5.5, 5.5, 7)]),
    ]
    points = {7: ((1.0, 2.0, 3.0), [(1, 0), (2, 0)]), 9: ((-1.0, 0.5, 4.0), [(1, 2)])}
    write_colmap_bin(tmp_path / "3D-models/aachen_v_1_1", images, points)
    (tmp_path / "pairs/aachen_v1.1").mkdir(parents=True)
    (tmp_path / "pairs/aachen_v1.1/pairs-query-netvlad50.txt").write_text(
        "query/day/milestone/2010-10-30_17-47-25_73.jpg db/1.jpg\n"
        "query/day/milestone/2010-10-30_17-47-25_73.jpg db/2.jpg\n"
        "query/night/nexus5x/IMG_20161227_172439.jpg db/2.jpg\n")
    return tmp_path


def test_query_lists(root: Path) -> None:
    ds = AachenDataset(root)
    qs = ds.queries()
    assert [q.meta["condition"] for q in qs] == ["day", "night"]
    day = qs[0]
    assert day.name == "query/day/milestone/2010-10-30_17-47-25_73.jpg"
    assert (day.width, day.height) == (1417, 1063)
    # COLMAP principal point (centre = W/2) -> OpenCV (centre = (W-1)/2)
    np.testing.assert_allclose(day.K, [[1469.2, 0, 708.0], [0, 1469.2, 531.0], [0, 0, 1]])
    assert day.meta["camera"]["params"] == [1469.2, 708.5, 531.5, -0.0353]
    assert day.meta["device"] == "milestone" and day.meta["basename"] == "2010-10-30_17-47-25_73.jpg"
    assert day.cam_from_world is None
    assert [q.name for q in ds.queries("night")] == ["query/night/nexus5x/IMG_20161227_172439.jpg"]


def test_colmap_model_poses_and_points(root: Path) -> None:
    ds = AachenDataset(root)
    assert ds.model.image_names() == ["db/1.jpg", "db/2.jpg"]
    v = ds.db_view("db/1.jpg")
    q = np.array(Q_DB1) / np.linalg.norm(Q_DB1)
    R = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()
    np.testing.assert_allclose(v.cam_from_world[:3, :3], R, atol=1e-12)
    np.testing.assert_allclose(v.cam_from_world[:3, 3], T_DB1)
    np.testing.assert_allclose(v.K, [[146.9, 0, 79.5], [0, 146.9, 59.5], [0, 0, 1]])
    assert (v.width, v.height) == (160, 120) and v.image_path == root / "images_upright/db/1.jpg"
    pts = ds.db_points("db/1.jpg")
    np.testing.assert_allclose(pts.xy, [[10.0, 20.0], [49.5, 59.5]])  # -0.5: OpenCV centres
    np.testing.assert_array_equal(pts.point3d_ids, [7, 9])
    np.testing.assert_allclose(pts.xyz, [[1, 2, 3], [-1, 0.5, 4]])
    assert ds.model.num_points3d() == 2


def test_pairs_hloc_and_kapture(root: Path, tmp_path: Path) -> None:
    ds = AachenDataset(root)
    hloc = root / "pairs/aachen_v1.1/pairs-query-netvlad50.txt"
    assert read_hloc_pairs(hloc)[0] == ("query/day/milestone/2010-10-30_17-47-25_73.jpg", "db/1.jpg")
    grouped = ds.pairs(hloc)
    assert grouped["query/day/milestone/2010-10-30_17-47-25_73.jpg"] == [("db/1.jpg", 1.0), ("db/2.jpg", 1.0)]
    kap = root / "pairsfile/query/fire_top50.txt"
    kap.parent.mkdir(parents=True)
    kap.write_text("# kapture format: 1.1\n# query_image, map_image, score\n"
                   "query/day/milestone/2010-10-30_17-47-25_73.jpg, db/1.jpg, 0.25\n"
                   "query/day/milestone/2010-10-30_17-47-25_73.jpg, db/2.jpg, 0.75\n")
    assert read_kapture_pairs(kap)[1] == ("query/day/milestone/2010-10-30_17-47-25_73.jpg", "db/2.jpg", 0.75)
    top1 = ds.pairs(kap, topk=1)
    assert top1 == {"query/day/milestone/2010-10-30_17-47-25_73.jpg": [("db/2.jpg", 0.75)]}
    # ties keep file order (stable sort), like kapture
    assert group_pairs([("q", "a", 0.5), ("q", "b", 0.5), ("q", "c", 0.9)]) == {
        "q": [("c", 0.9), ("a", 0.5), ("b", 0.5)]}


def test_nvm_camera_centre(tmp_path: Path) -> None:
    q = np.array([0.7, 0.1, -0.5, 0.2])
    c = np.array([10.0, -2.0, 3.5])
    p = tmp_path / "aachen_v_1_1.nvm"
    p.write_text("NVM_V3\n\n2\n"
                 f"db/1.jpg 1469.2 {' '.join(map(str, q))} {' '.join(map(str, c))} -0.0353 0\n"
                 "db/2.jpg 1000 1 0 0 0 0 0 0 0 0\n"
                 "2\n1.0 2.0 3.0 255 0 0 2 0 5 10.5 -3.25 1 7 -20 4\n4 5 6 1 2 3 1 1 0 0.5 0.5\n\n0\n")
    model = read_nvm(p, points=True)
    cam = model.cameras[0]
    np.testing.assert_allclose(camera_centre(cam.cam_from_world), c, atol=1e-12)
    qn = q / np.linalg.norm(q)
    np.testing.assert_allclose(cam.cam_from_world[:3, :3],
                               Rotation.from_quat([*qn[1:], qn[0]]).as_matrix(), atol=1e-12)
    assert cam.focal == 1469.2 and cam.radial == -0.0353 and cam.name == "db/1.jpg"
    np.testing.assert_allclose(model.xyz, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(model.observations, [[0, 0, 5], [0, 1, 7], [1, 1, 0]])
    np.testing.assert_allclose(model.observation_xy, [[10.5, -3.25], [-20, 4], [0.5, 0.5]])
    assert len(read_nvm(p).cameras) == 2 and read_nvm(p).xyz is None
    p.write_text("NVM_V3\n1\ndb/1.jpg 1469.2 0 0 0 0 1 2 3 0 0\n")
    with pytest.raises(DatasetFormatError, match=r"\.nvm:3: zero-norm quaternion"):
        read_nvm(p)


def test_check_counts(root: Path) -> None:
    s = check(root)
    assert (s["queries"], s["queries_day"], s["queries_night"]) == (2, 1, 1)
    assert (s["database_images"], s["points3d"], s["pairs"]) == (2, 2, 3)


def test_hloc_image_layout(root: Path) -> None:
    (root / "images").mkdir()
    (root / "images_upright").rename(root / "images" / "images_upright")
    assert AachenDataset(root).queries()[0].image_path.parent.parent.parent.parent.name == "images_upright"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("query/day/a.jpg SIMPLE_RADIAL 1417 1063 1469.2 708.5 531.5\n", r":1: expected 8 fields"),
        ("query/day/a.jpg FANCY 1417 1063 1469.2 708.5 531.5 0\n", r":1: unknown camera model 'FANCY'"),
        (DAY + "query/day/b.jpg SIMPLE_RADIAL 1417 1063 nan 708.5 531.5 0\n", r":2: camera parameter is not"),
        ("query/day/a.jpg SIMPLE_RADIAL 1417.5 1063 1469.2 708.5 531.5 0\n", r":1: cannot parse width"),
    ],
)
def test_bad_camera_lists(tmp_path: Path, text: str, pattern: str) -> None:
    p = tmp_path / "day_time_queries_with_intrinsics.txt"
    p.write_text(text)
    with pytest.raises(DatasetFormatError, match=pattern):
        read_camera_list(p)


def test_missing_and_wrong_size_query_images(root: Path) -> None:
    _jpg(root / "images_upright/query/night/nexus5x/IMG_20161227_172439.jpg", 1200, 1600)
    with pytest.raises(DatasetFormatError, match=r"night_time_queries_with_intrinsics\.txt:3: image .* "
                       r"is 1200x1600"):
        check(root)
    (root / "images_upright/query/night/nexus5x/IMG_20161227_172439.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"night_time_queries_with_intrinsics\.txt:3: missing query"):
        AachenDataset(root).queries()


def test_bad_pairs(root: Path) -> None:
    p = root / "pairs/aachen_v1.1/pairs-query-netvlad50.txt"
    p.write_text("query/day/milestone/2010-10-30_17-47-25_73.jpg db/1.jpg\nq_only\n")
    with pytest.raises(DatasetFormatError, match=r"netvlad50\.txt:2: expected 2 fields"):
        AachenDataset(root).pairs(p)
    p.write_text("query/day/milestone/2010-10-30_17-47-25_73.jpg db/3.jpg\n")
    with pytest.raises(DatasetFormatError, match=r"netvlad50\.txt:1: missing image .*db/3\.jpg"):
        AachenDataset(root).pairs(p)
    p.write_text("q, db/1.jpg, high\n")
    with pytest.raises(DatasetFormatError, match=r":1: cannot parse score 'high'"):
        read_kapture_pairs(p)


def test_colmap_bad_quaternion_and_truncation(root: Path) -> None:
    d = root / "3D-models/aachen_v_1_1"
    write_colmap_bin(d, [(1, (float("nan"), 0, 0, 0), T_DB1, "db/1.jpg", [])], {})
    with pytest.raises(DatasetFormatError, match=r"images\.bin: image 'db/1\.jpg': quaternion has a non-fin"):
        AachenDataset(root).db_views()
    write_colmap_bin(d, [(1, (0, 0, 0, 0), T_DB1, "db/1.jpg", [])], {})
    with pytest.raises(DatasetFormatError, match="zero-norm quaternion"):
        AachenDataset(root).db_view("db/1.jpg")
    write_colmap_bin(d, [(1, Q_DB1, T_DB1, "db/1.jpg", [(1.0, 2.0, -1)] * 3)], {})
    data = (d / "images.bin").read_bytes()
    (d / "images.bin").write_bytes(data[:-10])
    with pytest.raises(DatasetFormatError, match=r"images\.bin: file has \d+ bytes"):
        AachenDataset(root).model.verify()
    (d / "points3D.bin").unlink()
    with pytest.raises(DatasetFormatError, match=r"points3D\.bin: COLMAP model file not found"):
        AachenDataset(root).model.image_names()
