"""Map-free reader on hand-written, format-exact samples (spec section 1)."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from datasets.mapfree import (
    MapFreeDataset,
    check,
    depth_path,
    read_depth_png,
    read_intrinsics,
    read_poses,
)
from datasets.records import DatasetFormatError

# Lines copied from the spec's examples.
Q1 = "0.9531880055 -0.2281508163 0.1981964220 0.0098999699"
T1 = "0.3525282761 -0.2506982129 3.4108204362"
SEQ1_FRAMES = [0, 1, 2, 4, 5, 7, 8, 9, 10, 12, 13]  # frame numbers skip, as in the release


@functools.cache
def _jpg_bytes(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 20, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _jpg(path: Path, w: int = 540, h: int = 720) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jpg_bytes(w, h))


def _write_scene(sdir: Path, test: bool = False) -> None:
    intr = ["seq0/frame_00000.jpg 589.609104 589.609104 268.541955 359.399933 540 720"]
    poses = ["seq0/frame_00000.jpg 1.0 0.0 0.0 0.0 0.0 0.0 0.0"]
    _jpg(sdir / "seq0/frame_00000.jpg")
    for n in SEQ1_FRAMES:
        frame = f"seq1/frame_{n:05d}.jpg"
        intr.append(f"{frame} 590.084785 590.084785 270.315211 359.635953 540 720")
        poses.append(f"{frame} {'0 0 0 0 0 0 0' if test else Q1 + ' ' + T1}")
        _jpg(sdir / frame)
    if test:
        poses[0] = "seq0/frame_00000.jpg 0 0 0 0 0 0 0"
    (sdir / "intrinsics.txt").write_text("\n".join(intr) + "\n")
    (sdir / "poses.txt").write_text("\n".join(poses) + "\n")


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    _write_scene(tmp_path / "val" / "s00460")
    _write_scene(tmp_path / "test" / "s00525", test=True)
    (tmp_path / "val" / "not_a_scene").mkdir()
    return tmp_path


def test_scene_poses_and_intrinsics(root: Path) -> None:
    ds = MapFreeDataset(root, "val")
    assert ds.scenes() == ["s00460"]
    sc = ds.scene("s00460")
    assert sc.has_gt
    # keyed by full frame path: seq0/frame_00000 and seq1/frame_00000 do not collide
    assert "seq0/frame_00000.jpg" in sc.poses and "seq1/frame_00000.jpg" in sc.poses
    np.testing.assert_array_equal(sc.reference.cam_from_world, np.eye(4))
    q = [float(x) for x in Q1.split()]
    R_expected = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()  # scipy is xyzw
    v = sc.view("seq1/frame_00000.jpg")
    np.testing.assert_allclose(v.cam_from_world[:3, :3], R_expected, atol=1e-12)
    np.testing.assert_allclose(v.cam_from_world[:3, 3], [float(x) for x in T1.split()])
    assert v.cam_from_world.dtype == np.float64
    np.testing.assert_allclose(sc.reference.K, [[589.609104, 0, 268.541955], [0, 589.609104, 359.399933],
                                                [0, 0, 1]])
    assert (v.width, v.height) == (540, 720)
    assert v.name == "s00460/seq1/frame_00000.jpg"
    assert v.meta == {"scene": "s00460", "frame": "seq1/frame_00000.jpg", "seq": 1, "frame_number": 0}
    assert v.image_path == root / "val/s00460/seq1/frame_00000.jpg"
    assert len(sc.queries) == len(SEQ1_FRAMES) and sc.reference not in sc.queries


def test_query_frames_every_fifth_by_position(root: Path) -> None:
    ds = MapFreeDataset(root, "val")
    frames = [v.meta["frame_number"] for v in ds.query_frames("s00460")]
    assert frames == [0, 7, 13]  # positions 0, 5, 10, not frame numbers 0, 5, 10
    assert [v.meta["frame_number"] for v in ds.query_frames("s00460", stride=1)] == SEQ1_FRAMES


def test_test_split_placeholder_poses(root: Path) -> None:
    sc = MapFreeDataset(root, "test").scene("s00525")
    assert not sc.has_gt
    assert all(v.cam_from_world is None for v in sc.views)
    assert sc.reference.K is not None  # intrinsics are given for test too


def test_depth_png_millimetres(tmp_path: Path, root: Path) -> None:
    sdir = root / "val" / "s00460"
    p = depth_path(sdir, "seq1/frame_00007.jpg", "dptnyu")
    assert p == sdir / "seq1/frame_00007.dptnyu.png"
    depth_mm = np.array([[0, 1000], [2500, 65535]], dtype=np.uint16)
    Image.fromarray(depth_mm).save(p)
    np.testing.assert_allclose(read_depth_png(p), [[0.0, 1.0], [2.5, 65.535]], rtol=1e-7)
    assert read_depth_png(p).dtype == np.float32
    with pytest.raises(DatasetFormatError, match="depth map"):  # variant requested but absent
        MapFreeDataset(root, "val", depth="dptnyu").scene("s00460")


def test_check_counts(root: Path) -> None:
    summary = check(root)
    assert summary["scenes"] == 2 and summary["views"] == 2 * (1 + len(SEQ1_FRAMES))
    assert summary["queries"] == 2 * len(SEQ1_FRAMES) and summary["evaluated_queries"] == 6
    assert summary["splits"]["test"]["with_gt"] == 0 and summary["splits"]["val"]["with_gt"] == 1


def _replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (f"seq1/frame_00001.jpg {Q1} 0.1 0.2", r"poses\.txt:3: expected 8 fields"),
        (f"seq1/frame_00001.jpg nan 0 0 0 {T1}", r"poses\.txt:3: pose value is not finite"),
        (f"seq1/frame_00001.jpg 0 0 0 0 {T1}", r"poses\.txt:3: zero-norm quaternion"),
        (f"seq1/frame_00001.jpg 1 0 0 x {T1}", r"poses\.txt:3: cannot parse pose value 'x'"),
        (f"frame_00001.jpg {Q1} {T1}", r"poses\.txt:3: frame path 'frame_00001.jpg'"),
    ],
)
def test_bad_pose_lines(root: Path, line: str, pattern: str) -> None:
    _replace_line(root / "val/s00460/poses.txt", 3, line)
    with pytest.raises(DatasetFormatError, match=pattern):
        MapFreeDataset(root, "val").scene("s00460")


def test_read_functions_report_lines(tmp_path: Path) -> None:
    p = tmp_path / "intrinsics.txt"
    p.write_text("# comment\nseq0/frame_00000.jpg 500 500 270 360 540 720\nseq1/frame_00000.jpg 500 500\n")
    with pytest.raises(DatasetFormatError) as err:
        read_intrinsics(p)
    assert err.value.line == 3 and err.value.path == p and str(err.value).startswith(f"{p}:3: ")
    p.write_text("seq0/frame_00000.jpg 500 500 270 360 540.5 720\n")
    with pytest.raises(DatasetFormatError, match=":1: image size"):
        read_intrinsics(p)
    q = tmp_path / "poses.txt"
    q.write_text("seq1/frame_00000.jpg 0 0 0 0 0 0 0\n")
    assert read_poses(q, allow_placeholder=True) == {"seq1/frame_00000.jpg": None}


def test_missing_image_names_list_line(root: Path) -> None:
    (root / "val/s00460/seq1/frame_00004.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"intrinsics\.txt:5: missing image .*frame_00004\.jpg"):
        MapFreeDataset(root, "val").scene("s00460")


def test_pose_and_intrinsics_frames_must_agree(root: Path) -> None:
    p = root / "val/s00460/poses.txt"
    p.write_text("\n".join(p.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DatasetFormatError, match="frames without a pose line"):
        MapFreeDataset(root, "val").scene("s00460")


def test_wrong_image_size(root: Path) -> None:
    _jpg(root / "val/s00460/seq1/frame_00002.jpg", 720, 540)
    MapFreeDataset(root, "val").scene("s00460")  # listing does not open images
    with pytest.raises(DatasetFormatError, match=r"intrinsics\.txt:4: image .* is 720x540"):
        check(root)
