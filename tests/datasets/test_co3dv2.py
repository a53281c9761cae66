"""CO3Dv2 reader on hand-written annotation files (spec section 4): image.size = (H, W), PyTorch3D
pose convention, NDC intrinsics, float16-in-uint16 depth, set lists, relpose++ annotations."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from datasets.co3dv2 import (
    CATEGORIES,
    SEEN_CATEGORIES,
    UNSEEN_CATEGORIES,
    Co3dDataset,
    check,
    pytorch3d_to_opencv,
    read_depth,
    read_frame_annotations,
    read_set_list,
)
from datasets.co3dv2_relpose import build_relpose_annotations, mask_to_bbox, read_relpose_annotations
from datasets.records import DatasetFormatError

SEQ = "110_13051_23361"
H, W = 60, 40  # image.size is [H, W]
R_P3D = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
T_P3D = [0.3, -0.2, 4.0]


def _frame(number: int, suffix: int, seq: str = SEQ) -> dict:
    base = f"apple/{seq}"
    return {
        "sequence_name": seq, "frame_number": number, "frame_timestamp": number / 30.0,
        "image": {"path": f"{base}/images/frame{suffix:06d}.jpg", "size": [H, W]},
        "depth": {"path": f"{base}/depths/frame{suffix:06d}.jpg.geometric.png", "scale_adjustment": 2.0,
                  "mask_path": f"{base}/depth_masks/frame{suffix:06d}.png"},
        "mask": {"path": f"{base}/masks/frame{suffix:06d}.png", "mass": 37133.0},
        "viewpoint": {"R": R_P3D.tolist(), "T": T_P3D, "focal_length": [1.5, 1.5],
                      "principal_point": [0.1, -0.2], "intrinsics_format": "ndc_isotropic"},
        "meta": {"frame_type": "test_known", "frame_splits": ["multisequence_apple_test"]},
    }


def _jgz(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump(obj, f)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    frames = [_frame(2, 9), _frame(0, 5), _frame(1, 7), _frame(0, 1, seq="2_1_2")]  # number != suffix
    _jgz(tmp_path / "apple/frame_annotations.jgz", frames)
    _jgz(tmp_path / "apple/sequence_annotations.jgz", [
        {"sequence_name": SEQ, "category": "apple", "video": {"path": "x", "length": 3.0},
         "viewpoint_quality_score": 0.9},
        {"sequence_name": "2_1_2", "category": "apple", "viewpoint_quality_score": 0.2}])
    (tmp_path / "apple/set_lists").mkdir(parents=True)
    (tmp_path / "apple/set_lists/set_lists_fewview_dev.json").write_text(json.dumps({
        "train": [["2_1_2", 0, "apple/2_1_2/images/frame000001.jpg"]],
        "test": [[SEQ, 0, f"apple/{SEQ}/images/frame000005.jpg"],
                 [SEQ, 2, f"apple/{SEQ}/images/frame000009.jpg"],
                 ["2_1_2", 0, "apple/2_1_2/images/frame000001.jpg"]]}))
    for f in frames:
        p = tmp_path / f["image"]["path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (W, H)).save(p)
        m = tmp_path / f["mask"]["path"]
        m.parent.mkdir(parents=True, exist_ok=True)
        mask = np.zeros((H, W), np.uint8)
        if f["frame_number"] != 2:
            mask[10:20, 5:8] = 255
        Image.fromarray(mask).save(m)
    return tmp_path


def test_categories_constants() -> None:
    assert len(CATEGORIES) == 51 and len(SEEN_CATEGORIES) == 41 and len(UNSEEN_CATEGORIES) == 10
    assert not set(SEEN_CATEGORIES) & set(UNSEEN_CATEGORIES)
    assert "hydrant" in SEEN_CATEGORIES and "suitcase" in UNSEEN_CATEGORIES


def test_sequence_views(root: Path) -> None:
    ds = Co3dDataset(root)
    assert ds.categories() == ["apple"]
    assert ds.sequence_names("apple") == ["110_13051_23361", "2_1_2"]
    seq = ds.sequence("apple", SEQ)
    assert seq.viewpoint_quality_score == 0.9
    assert [v.meta["frame_number"] for v in seq.views] == [0, 1, 2]
    v = seq.views[0]
    assert v.name == f"apple/{SEQ}/images/frame000005.jpg"  # frame_number 0, file suffix 5
    assert (v.width, v.height) == (W, H)  # image.size is (H, W)
    # ndc_isotropic: s = min(H, W) / 2 = 20; f = 1.5 * 20; pp = (W/2, H/2) - pp_ndc * 20
    np.testing.assert_allclose(v.K, [[30, 0, 18], [0, 30, 34], [0, 0, 1]])
    assert v.depth_path == root / f"apple/{SEQ}/depths/frame000005.jpg.geometric.png"
    assert v.meta["depth_scale_adjustment"] == 2.0


def test_pose_matches_pytorch3d_projection(root: Path) -> None:
    v = Co3dDataset(root).sequence("apple", SEQ).views[0]
    X = np.array([[0.2, -0.4, 0.5], [-1.0, 0.3, 0.1], [0.0, 0.0, 0.0]])
    # PyTorch3D: row-vector camera coords, +X left / +Y up, NDC then screen (isotropic scale s)
    Xc = X @ R_P3D + np.array(T_P3D)
    ndc = 1.5 * Xc[:, :2] / Xc[:, 2:] + np.array([0.1, -0.2])
    uv_p3d = np.array([W / 2, H / 2]) - ndc * min(H, W) / 2
    # OpenCV
    x_cv = X @ v.cam_from_world[:3, :3].T + v.cam_from_world[:3, 3]
    uv_cv = (x_cv @ v.K.T)[:, :2] / x_cv[:, 2:]
    np.testing.assert_allclose(uv_cv, uv_p3d, atol=1e-9)
    assert np.all(x_cv[:, 2] > 0)  # in front of the OpenCV camera
    np.testing.assert_allclose(v.cam_from_world[:3, :3], (R_P3D * [-1, -1, 1]).T)  # spec formula
    np.testing.assert_allclose(v.cam_from_world[:3, 3], [-0.3, 0.2, 4.0])


def test_ndc_norm_image_bounds() -> None:
    _, K = pytorch3d_to_opencv(np.eye(3), np.zeros(3), [2.0, 3.0], [0.5, 0.0], (100, 200),
                               "ndc_norm_image_bounds")
    np.testing.assert_allclose(K, [[200, 0, 50], [0, 150, 50], [0, 0, 1]])


def test_depth_float16_in_uint16(tmp_path: Path) -> None:
    depth = np.array([[0.5, 1.25], [np.inf, 3.0]], dtype=np.float16)
    p = tmp_path / "frame000001.jpg.geometric.png"
    Image.fromarray(depth.view(np.uint16)).save(p)
    np.testing.assert_allclose(read_depth(p, scale_adjustment=2.0), [[1.0, 2.5], [0.0, 6.0]])


def test_set_lists_and_sequence_annotations(root: Path) -> None:
    ds = Co3dDataset(root)
    sl = ds.set_list("apple", "fewview_dev")
    assert [e.frame_number for e in sl["test"]] == [0, 2, 0]
    assert sl["train"][0].image_path == "apple/2_1_2/images/frame000001.jpg"
    assert ds.sequence_annotations("apple")["2_1_2"].viewpoint_quality_score == 0.2


def test_relpose_annotations(root: Path, tmp_path: Path) -> None:
    ds = Co3dDataset(root)
    built = build_relpose_annotations(ds, "apple", "test")
    assert list(built) == [SEQ]  # 2_1_2 has quality 0.2 <= 0.5
    assert [f.filepath for f in built[SEQ]] == [f"apple/{SEQ}/images/frame000005.jpg"]  # frame 2: empty mask
    np.testing.assert_array_equal(built[SEQ][0].bbox, [5, 10, 8, 20])
    path = tmp_path / "apple_test.jgz"
    _jgz(path, {SEQ: [{"filepath": f.filepath, "R": f.R.tolist(), "T": f.T.tolist(),
                       "focal_length": f.focal_length.tolist(), "principal_point": f.principal_point.tolist(),
                       "bbox": f.bbox.tolist()} for f in built[SEQ]]})
    ann = read_relpose_annotations(path)
    v = ann[SEQ][0].to_view(root)  # size from the image header
    ref = ds.sequence("apple", SEQ).views[0]
    np.testing.assert_allclose(v.K, ref.K)
    np.testing.assert_allclose(v.cam_from_world, ref.cam_from_world)
    assert mask_to_bbox(np.zeros((3, 3))) == []


def test_check(root: Path) -> None:
    s = check(root)
    assert (s["categories"], s["sequences"], s["views"], s["set_list_entries"]) == (1, 2, 4, 4)


def test_check_wrong_size_and_missing_image(root: Path) -> None:
    Image.new("RGB", (H, W)).save(root / f"apple/{SEQ}/images/frame000007.jpg")  # transposed
    with pytest.raises(DatasetFormatError, match=r"frame_annotations\.jgz: image .* is 60x40 \(WxH\), "
                       r"expected 40x60"):
        check(root)
    (root / f"apple/{SEQ}/images/frame000007.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"missing image of entry 2 \(sequence '110_13051_23361', "
                       r"frame 1\)"):
        check(root)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda f: f["viewpoint"].pop("R"), r"entry 1 \(sequence '110_13051_23361', frame 0\): missing field "
                                            r"'viewpoint\.R'"),
        (lambda f: f["viewpoint"].update(R=[[1, 0], [0, 1]]), r"'viewpoint\.R' has shape \(2, 2\)"),
        (lambda f: f["viewpoint"].update(T=[0, float("nan"), 1]), r"'viewpoint\.T' has a non-finite"),
        (lambda f: f["image"].update(size=[60.5, 40]), r"image\.size must be two positive integers"),
        (lambda f: f.update(frame_number="0"), r"entry 1: field 'frame_number' has type str"),
        (lambda f: f["viewpoint"].update(intrinsics_format="pixels"), r"unknown intrinsics_format 'pixels'"),
    ],
)
def test_bad_frame_annotations(tmp_path: Path, mutate, pattern: str) -> None:
    frames = [_frame(2, 9), _frame(0, 5)]
    mutate(frames[1])
    p = tmp_path / "frame_annotations.jgz"
    _jgz(p, frames)
    with pytest.raises(DatasetFormatError, match=r"frame_annotations\.jgz: .*" + pattern):
        read_frame_annotations(p)


def test_bad_set_list_and_json(tmp_path: Path) -> None:
    p = tmp_path / "set_lists_fewview_dev.json"
    p.write_text(json.dumps({"test": [["s", 0, "a.jpg"], ["s", "1", "b.jpg"]]}))
    with pytest.raises(DatasetFormatError, match=r"test\[1\]: expected \[sequence, frame_number"):
        read_set_list(p)
    p.write_text('{"test": [\n["s", 0, "a.jpg"],\n]}')
    with pytest.raises(DatasetFormatError, match=r"set_lists_fewview_dev\.json:3: invalid JSON"):
        read_set_list(p)
    p.write_text("{}")
    g = tmp_path / "frame_annotations.jgz"
    g.write_bytes(b"not gzip")
    with pytest.raises(DatasetFormatError, match="not a gzip file"):
        read_frame_annotations(g)
