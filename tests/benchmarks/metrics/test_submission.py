"""Submission writers/readers: Map-free zip and visuallocalization.net upload files."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest

from benchmarks.metrics import mapfree as mf
from benchmarks.metrics.submission import (
    MAX_MEMBER_BYTES,
    MAX_TOTAL_BYTES,
    SubmissionFormatError,
    list_zip_members,
    read_mapfree_submission,
    read_name_map,
    read_visloc_gt,
    read_visloc_results,
    read_zip_members,
    write_mapfree_submission,
    write_visloc_results,
)


def rigid(axis, deg, t):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    th = math.radians(deg)
    T = np.eye(4)
    T[:3, :3] = np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * K @ K
    T[:3, 3] = t
    return T


POSES = {
    "s00461": [("seq1/frame_00000.jpg", rigid([0, 1, 0], 12, [0.1, -0.2, 1.5]), 512.5),
               ("seq1/frame_00005.jpg", None, 3.0),
               ("seq1/frame_00010.jpg", rigid([1, 1, 0], 179.5, [2, 0, -1]), 0.0)],
    "s00460": [("seq1/frame_00000.jpg", np.eye(4), 7.0)],
}


def test_mapfree_zip_layout_and_determinism(tmp_path):
    a = write_mapfree_submission(tmp_path / "a.zip", POSES)
    b = write_mapfree_submission(tmp_path / "b.zip", dict(reversed(list(POSES.items()))))
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert zf.namelist() == ["pose_s00460.txt", "pose_s00461.txt"]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        lines = zf.read("pose_s00461.txt").decode().splitlines()
    assert len(lines) == 2 and lines[0].startswith("seq1/frame_00000.jpg ") and len(lines[0].split(" ")) == 9
    assert lines[0].split(" ")[-1] == "512.5"


def test_mapfree_round_trip_and_official_parse(tmp_path):
    path = write_mapfree_submission(tmp_path / "sub.zip", POSES)
    back = read_mapfree_submission(path)
    assert sorted(back) == ["s00460", "s00461"]
    names = [n for n, _, _ in back["s00461"]]
    assert names == ["seq1/frame_00000.jpg", "seq1/frame_00010.jpg"]  # the failed frame has no line
    for (_, T_in, c_in), (_, T_out, c_out) in zip([POSES["s00461"][0], POSES["s00461"][2]], back["s00461"]):
        np.testing.assert_allclose(T_out, T_in, atol=1e-14)
        assert c_out == c_in
    with zipfile.ZipFile(path) as zf:
        parsed = mf.load_poses(zf.read("pose_s00461.txt").decode(), load_confidence=True)
    assert list(parsed) == [0, 10]
    T = POSES["s00461"][2][1]
    np.testing.assert_allclose(parsed[10].centre, -T[:3, :3].T @ T[:3, 3], atol=1e-14)


@pytest.mark.parametrize("entry, match", [
    (("seq1/frame_x.jpg", np.eye(4), 1.0), "int"),
    (("seq1/frame 00001.jpg", np.eye(4), 1.0), "spaces"),
    (("seq1/frame_00001.jpg", np.eye(4), -1.0), "confidence"),
    (("seq1/frame_00001.jpg", np.eye(4), float("nan")), "confidence"),
    (("seq1/frame_00001.jpg", np.full((4, 4), np.nan), 1.0), "NaN"),
    (("seq1/frame_00001.jpg", np.diag([1.0, 1.0, -1.0, 1.0]), 1.0), "rotation"),
])
def test_mapfree_writer_rejects_bad_input(tmp_path, entry, match):
    with pytest.raises(ValueError, match=match):
        write_mapfree_submission(tmp_path / "x.zip", {"s1": [entry]})


def test_mapfree_writer_rejects_frame_key_collision(tmp_path):
    rows = [("seq0/frame_00000.jpg", np.eye(4), 1.0), ("seq1/frame_00000.jpg", np.eye(4), 1.0)]
    with pytest.raises(ValueError, match="same frame key 0"):
        write_mapfree_submission(tmp_path / "x.zip", {"s1": rows})


def test_mapfree_reader_is_strict(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pose_s1.txt", "seq1/frame_00000.jpg 1 0 0 0 0 0 0 1\nseq1/frame_00005.jpg 1 0 0\n")
        zf.writestr("notes/readme.txt", "ignored")
    with pytest.raises(SubmissionFormatError, match="pose_s1.txt:2"):
        read_mapfree_submission(path)
    not_zip = tmp_path / "not.zip"
    not_zip.write_text("x")
    with pytest.raises(SubmissionFormatError, match="not a zip"):
        read_mapfree_submission(not_zip)


def test_visloc_writer_basenames_identity_for_failures(tmp_path):
    T = rigid([0, 0, 1], 90, [1.0, 2.0, 3.0])
    path = write_visloc_results(tmp_path / "Aachen_eval_x.txt",
                                [("query/night/nexus5x/IMG_1.jpg", T), ("query/day/milestone/b.jpg", None)])
    lines = path.read_text().splitlines()
    s = math.sqrt(0.5)
    first = lines[0].split(" ")
    assert first[0] == "IMG_1.jpg"
    np.testing.assert_allclose([float(v) for v in first[1:]], [s, 0, 0, s, 1, 2, 3], atol=1e-15)
    assert lines[1] == "b.jpg 1.0 0.0 0.0 0.0 0.0 0.0 0.0"
    back = read_visloc_results(path)
    np.testing.assert_allclose(back["IMG_1.jpg"], T, atol=1e-15)
    np.testing.assert_array_equal(back["b.jpg"], np.eye(4))
    with pytest.raises(ValueError, match="same basename"):
        write_visloc_results(tmp_path / "d.txt", [("a/x.jpg", None), ("b/x.jpg", None)])


def test_visloc_readers(tmp_path):
    pred = tmp_path / "pred.txt"
    pred.write_text("# comment\n\nx.jpg 1 0 0 0 1 2 3\ny.jpg nan 0 0 0 0 0 0\nz.jpg 0 0 0 0 1 1 1\n")
    out = read_visloc_results(pred)
    assert list(out) == ["x.jpg", "y.jpg", "z.jpg"]
    assert np.isnan(out["y.jpg"]).all() and np.isnan(out["z.jpg"]).all()
    pred.write_text("x.jpg 1 0 0 0 1 2 3\nx.jpg 1 0 0 0 1 2 3\n")
    with pytest.raises(SubmissionFormatError, match="pred.txt:2"):
        read_visloc_results(pred)
    pred.write_text("x.jpg 1 0 0 0 1 2\n")
    with pytest.raises(SubmissionFormatError, match="pred.txt:1: expected"):
        read_visloc_results(pred)

    gt = tmp_path / "gt.txt"
    gt.write_text("query/day/a.jpg 1 0 0 0 0 0 0\nquery/iphone7/IMG_1.JPG 1 0 0 0 0 0 0 DUC2\n")
    rows = read_visloc_gt(gt)
    assert [(n, c) for n, _, c in rows] == [("query/day/a.jpg", None), ("query/iphone7/IMG_1.JPG", "DUC2")]
    gt.write_text("a.jpg 0 0 0 0 0 0 0\n")
    with pytest.raises(SubmissionFormatError, match="gt.txt:1"):
        read_visloc_gt(gt)
    mp = tmp_path / "map.txt"
    mp.write_text("IMG_1.JPG DUC1\nIMG_2.JPG DUC2\n")
    assert read_name_map(mp) == {"IMG_1.JPG": "DUC1", "IMG_2.JPG": "DUC2"}


def _deflated(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_caps_are_what_a_map_free_submission_can_need():
    # 100,000 five-digit frame keys x 512 bytes per pose line; the total holds several full members
    assert MAX_MEMBER_BYTES == 100_000 * 512
    assert 5 * MAX_MEMBER_BYTES < MAX_TOTAL_BYTES == 256 * 2**20
    line = "seq1/frame_00005.jpg " + " ".join([repr(-2.2250738585072014e-308)] * 8) + "\n"
    assert len(line) < 512


def test_zip_member_over_the_cap_is_refused_before_reading(tmp_path):
    path = _deflated(tmp_path / "big.zip", {"pose_s1.txt": b"\n" * 1001, "pose_s2.txt": b"ok\n"})
    with pytest.raises(SubmissionFormatError,
                       match=r"big.zip:pose_s1.txt: 1001 bytes uncompressed, over the cap of 1000 bytes"):
        read_zip_members(path, max_member_bytes=1000)
    # members not asked for are not read (nor counted)
    assert read_zip_members(path, ["pose_s2.txt"], max_member_bytes=1000) == {"pose_s2.txt": b"ok\n"}
    assert list_zip_members(path) == ["pose_s1.txt", "pose_s2.txt"]


def test_zip_total_over_the_cap_is_refused(tmp_path):
    path = _deflated(tmp_path / "many.zip", {f"pose_s{i}.txt": b"x" * 400 for i in range(3)})
    with pytest.raises(SubmissionFormatError, match=r"many.zip: members hold 1200 bytes uncompressed, over "
                       "the cap of 1000 bytes for one submission"):
        read_zip_members(path, max_member_bytes=500, max_total_bytes=1000)
    assert len(read_zip_members(path, max_member_bytes=500, max_total_bytes=1200)) == 3


def test_zip_member_that_lies_about_its_size(tmp_path):
    path = _deflated(tmp_path / "lie.zip", {"pose_s1.txt": b"a" * 5000})
    data = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = data.index(sig)
        assert int.from_bytes(data[at + offset:at + offset + 4], "little") == 5000
        data[at + offset:at + offset + 4] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(SubmissionFormatError, match=r"lie.zip:pose_s1.txt: corrupt or unsupported member"):
        read_zip_members(path)


def test_zip_reading_stops_at_the_cap_whatever_the_declared_size(tmp_path):
    from benchmarks.metrics.submission import _read_member

    path = _deflated(tmp_path / "s.zip", {"pose_s1.txt": b"b" * 5000})
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[0]
        assert _read_member(zf, info, 5000, "here") == b"b" * 5000
        with pytest.raises(SubmissionFormatError,
                           match="here: holds more than 4096 bytes uncompressed although it declares 5000"):
            _read_member(zf, info, 4096, "here")
