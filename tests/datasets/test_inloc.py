"""InLoc reader on hand-written samples: cutouts + XYZcut .mat, both alignment file styles (after-GICP
matrix), query intrinsics, hloc pairs (spec section 3)."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from datasets.inloc import (
    QUERY_FOCAL_PX,
    InLocDataset,
    check,
    parse_cutout_name,
    read_all_transformations,
    read_trans_file,
)
from datasets.records import DatasetFormatError

BEFORE = [[1, 0, 0, 5], [0, 1, 0, 6], [0, 0, 1, 7], [0, 0, 0, 1]]
AFTER = [[0, -1, 0, 10.5], [1, 0, 0, -2.25], [0, 0, 1, 0.125], [0, 0, 0, 1]]


def _rows(m: list[list[float]]) -> str:
    return "".join(" ".join(f"{v:.6f}" for v in row) + " \n" for row in m)


TRANS = f"Before general icp:\n{_rows(BEFORE)}\nAfter general icp:\n{_rows(AFTER)}"


@functools.cache
def _jpg_bytes(w: int, h: int, orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    im = Image.new("RGB", (w, h), (40, 50, 60))
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    im.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _jpg(path: Path, w: int, h: int, orientation: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jpg_bytes(w, h, orientation))


CUT1 = "database/cutouts/DUC1/024/DUC_cutout_024_30_0.jpg"
CUT2 = "database/cutouts/DUC2/005/DUC_cutout_005_330_-30.jpg"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    _jpg(tmp_path / "query/iphone7/IMG_0731.JPG", 4032, 3024)
    _jpg(tmp_path / "query/iphone7/IMG_0894.JPG", 756, 1008, orientation=6)  # stored portrait, shown 1008x756
    for name in (CUT1, CUT2):
        _jpg(tmp_path / name, 16, 12)
        xyz = np.arange(12 * 16 * 3, dtype=np.float64).reshape(12, 16, 3) / 10
        xyz[0, 0] = np.nan  # hole
        rgb = np.zeros((12, 16, 3), np.uint8)
        scipy.io.savemat(str(tmp_path / (name + ".mat")), {"XYZcut": xyz, "RGBcut": rgb})
    t1 = tmp_path / "database/alignments/DUC1/transformations/DUC_trans_024.txt"
    t1.parent.mkdir(parents=True)
    t1.write_text(TRANS)
    (tmp_path / "database/alignments/DUC2").mkdir(parents=True)
    (tmp_path / "database/alignments/DUC2/all_transformations.txt").write_text(
        f"004\n\nBefore general icp:\n{_rows(AFTER)}\nAfter general icp:\n{_rows(BEFORE)}\n"
        f"005\n\n{TRANS}\n")
    (tmp_path / "pairs/inloc").mkdir(parents=True)
    (tmp_path / "pairs/inloc/pairs-query-netvlad40-temporal.txt").write_text(
        f"query/iphone7/IMG_0731.JPG {CUT1}\nquery/iphone7/IMG_0731.JPG {CUT2}\n"
        f"query/iphone7/IMG_0894.JPG {CUT2}\n")
    return tmp_path


def test_trans_file_after_gicp_is_lines_7_to_10(root: Path) -> None:
    path = root / "database/alignments/DUC1/transformations/DUC_trans_024.txt"
    al = read_trans_file(path)
    hloc_rows = np.array([np.fromstring(line, sep=" ") for line in path.read_text().splitlines()[7:11]])
    np.testing.assert_array_equal(al.after, hloc_rows)
    np.testing.assert_array_equal(al.after, AFTER)
    np.testing.assert_array_equal(al.before, BEFORE)


def test_all_transformations(root: Path) -> None:
    al = read_all_transformations(root / "database/alignments/DUC2/all_transformations.txt")
    assert sorted(al) == ["004", "005"]
    np.testing.assert_array_equal(al["005"].after, AFTER)
    np.testing.assert_array_equal(al["004"].after, BEFORE)
    ds = InLocDataset(root)
    np.testing.assert_array_equal(ds.scan_transform("DUC2", "005"), AFTER)
    np.testing.assert_array_equal(ds.scan_transform("DUC1", "024"), AFTER)


def test_queries_intrinsics(root: Path) -> None:
    qs = InLocDataset(root).queries()
    assert [q.name for q in qs] == ["query/iphone7/IMG_0731.JPG", "query/iphone7/IMG_0894.JPG"]
    assert QUERY_FOCAL_PX == 3136.0
    np.testing.assert_allclose(qs[0].K, [[3136, 0, 2015.5], [0, 3136, 1511.5], [0, 0, 1]])
    assert qs[0].meta["camera"]["params"] == [3136.0, 2016.0, 1512.0]  # hloc: cx = W/2 (COLMAP)
    assert (qs[1].width, qs[1].height) == (1008, 756)  # EXIF orientation applied
    # f scaled by 1008/4032
    np.testing.assert_allclose(qs[1].K, [[784, 0, 503.5], [0, 784, 377.5], [0, 0, 1]])
    assert qs[0].cam_from_world is None and qs[0].meta["basename"] == "IMG_0731.JPG"


def test_cutouts_and_xyz(root: Path) -> None:
    ds = InLocDataset(root, cutout_size=(16, 12))
    cuts = ds.cutouts()
    assert [c.name for c in cuts] == [CUT1, CUT2]
    assert cuts[1].meta == {"building": "DUC2", "scan": "005", "yaw": 330, "pitch": -30}
    assert parse_cutout_name(CUT1) == ("024", 30, 0)
    xyz = ds.cutout_xyz(CUT1)
    assert xyz.shape == (12, 16, 3) and np.isnan(xyz[0, 0]).all()
    np.testing.assert_allclose(xyz[2, 3], np.array([2 * 48 + 9, 2 * 48 + 10, 2 * 48 + 11]) / 10)
    world = ds.cutout_xyz_world(cuts[0])
    P = np.array(AFTER)
    np.testing.assert_allclose(world[2, 3], (P @ np.append(xyz[2, 3], 1.0))[:3])
    assert np.isnan(world[0, 0]).all()
    with pytest.raises(DatasetFormatError, match=r"mat: XYZcut has shape \(12, 16, 3\), expected \(1200"):
        InLocDataset(root, cutout_size=(1600, 1200)).cutout_xyz(CUT1)  # the real release size
    assert InLocDataset(root).cutout_size == (16, 12)  # default: read from the first cutout


def test_pairs(root: Path) -> None:
    ds = InLocDataset(root)
    pairs = ds.pairs(root / "pairs/inloc/pairs-query-netvlad40-temporal.txt", topk=1)
    assert pairs == {"query/iphone7/IMG_0731.JPG": [(CUT1, 1.0)], "query/iphone7/IMG_0894.JPG": [(CUT2, 1.0)]}


def test_check(root: Path) -> None:
    for name in (CUT1, CUT2):
        _jpg(root / name, 1600, 1200)
    s = check(root)
    assert (s["queries"], s["database_images"], s["scans"], s["pairs"]) == (2, 2, 2, 3)
    assert s["database_images_DUC1"] == 1
    (root / (CUT2 + ".mat")).unlink()
    with pytest.raises(DatasetFormatError, match=r"DUC_cutout_005_330_-30\.jpg: missing XYZcut file"):
        check(root)


def test_check_wrong_cutout_size(root: Path) -> None:
    with pytest.raises(DatasetFormatError, match=r"is 16x12 \(WxH\), expected 1600x1200"):
        check(root, cutout_size=(1600, 1200))


def test_bad_alignment_files(tmp_path: Path, root: Path) -> None:
    p = tmp_path / "DUC_trans_001.txt"
    p.write_text(TRANS.replace("0.125000", "0.125000 9"))
    with pytest.raises(DatasetFormatError, match=r"DUC_trans_001\.txt:10: expected a matrix row of 4"):
        read_trans_file(p)
    p.write_text(TRANS.replace("10.500000", "nan"))
    with pytest.raises(DatasetFormatError, match=r":8: matrix entry is not finite"):
        read_trans_file(p)
    p.write_text("Before general icp:\n" + _rows(BEFORE))
    with pytest.raises(DatasetFormatError, match="found 0"):
        read_trans_file(p)
    (root / "database/alignments/DUC1/transformations/DUC_trans_024.txt").unlink()
    with pytest.raises(DatasetFormatError, match="no alignment for scan '024' of DUC1"):
        InLocDataset(root).scan_transform("DUC1", "024")


def test_missing_pair_image(root: Path) -> None:
    p = root / "pairs/inloc/pairs-query-netvlad40-temporal.txt"
    p.write_text("query/iphone7/IMG_0731.JPG database/cutouts/DUC1/024/DUC_cutout_024_0_0.jpg\n")
    with pytest.raises(DatasetFormatError, match=r"temporal\.txt:1: missing image"):
        InLocDataset(root).pairs(p)
