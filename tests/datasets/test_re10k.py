"""RealEstate10K reader on hand-written camera files (spec section 5): URL line, 19 columns,
normalised intrinsics scaled by the actual frame size, frames/<split>/<seq>/<timestamp>.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from datasets.re10k import Re10kDataset, check, read_camera_file, read_sequence_list
from datasets.records import DatasetFormatError

SEQ = "000c3ab189999a83"
R0 = Rotation.from_euler("zyx", [10, -5, 3], degrees=True).as_matrix()
T0 = np.array([0.1, -0.25, 1.5])


def _line(ts: int, R: np.ndarray, t: np.ndarray) -> str:
    P = np.hstack([R, t[:, None]])
    pose = " ".join(f"{x:.9f}" for x in P.ravel())
    return f"{ts} 0.910000 1.610000 0.500000 0.500000 0.000000 0.000000 {pose}"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "test").mkdir()
    lines = ["https://www.youtube.com/watch?v=XXXXXXXXXXX", _line(46211000, R0, T0),
             _line(46244367, np.eye(3), np.zeros(3)), _line(46277733, R0.T, -T0)]
    (tmp_path / "test" / f"{SEQ}.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "test" / "ffff000000000000.txt").write_text(lines[0] + "\n" + lines[1] + "\n")  # no frames
    for ts in (46211000, 46244367, 46277733):
        p = tmp_path / "frames/test" / SEQ / f"{ts}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 36)).save(p)
    return tmp_path


def test_camera_file(root: Path) -> None:
    url, cams = read_camera_file(root / "test" / f"{SEQ}.txt")
    assert url == "https://www.youtube.com/watch?v=XXXXXXXXXXX"
    assert [c.timestamp_us for c in cams] == [46211000, 46244367, 46277733]
    np.testing.assert_allclose(cams[0].cam_from_world[:3, :3], R0, atol=1e-9)
    np.testing.assert_allclose(cams[0].cam_from_world[:3, 3], T0)
    np.testing.assert_allclose(cams[0].intrinsics_norm, [0.91, 1.61, 0.5, 0.5])
    assert cams[1].line == 3


def test_sequence_views_scale_intrinsics(root: Path) -> None:
    ds = Re10kDataset(root, "test")
    assert ds.sequences() == [SEQ, "ffff000000000000"]
    sq = ds.sequence(SEQ)
    v = sq.views[0]
    assert (v.width, v.height) == (64, 36) and v.name == f"{SEQ}/46211000"
    np.testing.assert_allclose(v.K, [[0.91 * 64, 0, 32], [0, 1.61 * 36, 18], [0, 0, 1]])
    np.testing.assert_allclose(sq.views[2].cam_from_world[:3, :3], R0.T, atol=1e-9)
    assert v.image_path == root / "frames/test" / SEQ / "46211000.png"
    # explicit size: no header read (e.g. frames extracted at 640x360)
    np.testing.assert_allclose(ds.sequence(SEQ, frame_size=(640, 360)).views[0].K[0, 0], 582.4)


def test_missing_frames(root: Path) -> None:
    (root / "frames/test" / SEQ / "46244367.png").unlink()
    with pytest.raises(DatasetFormatError, match=rf"{SEQ}\.txt:3: missing frame .*46244367\.png"):
        Re10kDataset(root, "test").sequence(SEQ)
    sq = Re10kDataset(root, "test", missing_frames="skip").sequence(SEQ)
    assert sq.missing == (46244367,) and len(sq.views) == 2
    with pytest.raises(DatasetFormatError, match="no frames extracted"):
        Re10kDataset(root, "test").sequence("ffff000000000000")


def test_check(root: Path) -> None:
    s = check(root)
    assert (s["sequences"], s["sequences_with_frames"], s["cameras"], s["views"]) == (2, 1, 4, 3)
    Image.new("RGB", (36, 64)).save(root / "frames/test" / SEQ / "46277733.png")
    with pytest.raises(DatasetFormatError, match=rf"{SEQ}\.txt:4: image .* is 36x64"):
        check(root)


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("46211000 0.91 1.61 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1", r":2: expected 19 fields"),
        ("46211000.5 0.91 1.61 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0", r":2: cannot parse timestamp"),
        ("46211000 0.91 1.61 0.5 nan 0 0 1 0 0 0 0 1 0 0 0 0 1 0", r":2: camera value is not finite"),
        ("46211000 0.91 1.61 0.5 0.5 0 0 2 0 0 0 0 1 0 0 0 0 1 0", r":2: the 3x3 part of the pose is not"),
    ],
)
def test_bad_lines(tmp_path: Path, line: str, pattern: str) -> None:
    p = tmp_path / "seq.txt"
    p.write_text(f"https://www.youtube.com/watch?v=X\n{line}\n")
    with pytest.raises(DatasetFormatError, match=r"seq\.txt" + pattern):
        read_camera_file(p)
    p.write_text(f"{line}\n")
    with pytest.raises(DatasetFormatError, match=r"seq\.txt:1: expected the video URL"):
        read_camera_file(p)


def test_sequence_list(tmp_path: Path) -> None:
    p = tmp_path / "re10k_test_1800.txt"
    p.write_text("000c3ab189999a83\n000db54a47bd43fe\n\n")
    assert read_sequence_list(p) == ["000c3ab189999a83", "000db54a47bd43fe"]
    p.write_text("a b\n")
    with pytest.raises(DatasetFormatError, match=":1: expected 1 fields"):
        read_sequence_list(p)


def _release_layout(root: Path, dest: Path, frames_inside: bool) -> Path:
    """Move the fixture to the release layout: ``dest/RealEstate10K/test`` and frames inside or beside."""
    release = dest / "RealEstate10K"
    release.mkdir(parents=True)
    (root / "test").rename(release / "test")
    (root / "frames").rename((release if frames_inside else dest) / "frames")
    return release


@pytest.mark.parametrize("frames_inside", [False, True])
def test_release_layout_from_either_folder(root: Path, tmp_path: Path, frames_inside: bool) -> None:
    # issue 15 item 9: the release extracts to RealEstate10K/{train,test}/
    holder = tmp_path / "holder"
    release = _release_layout(root, holder, frames_inside)
    frames = (release if frames_inside else holder) / "frames"
    for given in (holder, release):
        ds = Re10kDataset(given, "test")
        assert ds.root == release and ds.frames_dir == frames / "test"
        assert ds.sequences() == [SEQ, "ffff000000000000"] and ds.has_frames(SEQ)
        assert ds.sequence(SEQ).views[0].image_path == frames / "test" / SEQ / "46211000.png"
        s = check(given)
        assert (s["sequences"], s["sequences_with_frames"], s["views"]) == (2, 1, 3)
        assert s["root"] == str(release) and s["frames_root"] == str(frames)


def test_root_without_camera_files_names_the_release_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="nor a RealEstate10K/ folder holding one"):
        check(tmp_path)
