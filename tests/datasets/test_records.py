"""Helpers of datasets.records: DatasetFormatError, quaternions, poses, Camera, load_image."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from datasets.records import (
    Camera,
    DatasetFormatError,
    R_to_quat_wxyz,
    View,
    camera_centre,
    invert_pose,
    load_image,
    pose_matrix,
    quat_wxyz_to_R,
)


def test_error_message_and_pickle(tmp_path: Path) -> None:
    e = DatasetFormatError(tmp_path / "poses.txt", 7, "expected 8 fields")
    assert str(e) == f"{tmp_path / 'poses.txt'}:7: expected 8 fields" and isinstance(e, ValueError)
    e2 = pickle.loads(pickle.dumps(e))
    assert (str(e2), e2.line, e2.path) == (str(e), 7, tmp_path / "poses.txt")
    assert str(DatasetFormatError("a.json", None, "bad")) == "a.json: bad"


def test_quaternion_wxyz_against_scipy() -> None:
    q = np.array([0.9531880055, -0.2281508163, 0.1981964220, 0.0098999699])
    expected = Rotation.from_quat([*q[1:], q[0]]).as_matrix()  # scipy: xyzw
    np.testing.assert_allclose(quat_wxyz_to_R(q), expected, atol=1e-12)
    np.testing.assert_allclose(quat_wxyz_to_R(3 * q), expected, atol=1e-12)  # normalised
    np.testing.assert_allclose(quat_wxyz_to_R(-q), expected, atol=1e-12)  # sign-agnostic
    np.testing.assert_allclose(R_to_quat_wxyz(expected), q / np.linalg.norm(q), atol=1e-9)
    assert R_to_quat_wxyz(quat_wxyz_to_R([-0.5, 0.5, 0.5, 0.5]))[0] > 0


@pytest.mark.parametrize(("q", "pattern"), [([0, 0, 0, 0], "zero-norm"), ([1, np.nan, 0, 0], "non-finite"),
                                            ([1, 0, 0], "4 components")])
def test_quaternion_errors(q: list[float], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        quat_wxyz_to_R(q)
    with pytest.raises(DatasetFormatError, match=rf"^f\.txt:3: .*{pattern}"):
        quat_wxyz_to_R(q, path="f.txt", line=3)


def test_pose_helpers() -> None:
    R = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix()
    T = pose_matrix(R, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(invert_pose(T) @ T, np.eye(4), atol=1e-12)
    c = camera_centre(T)
    np.testing.assert_allclose(R @ c + [1, 2, 3], 0, atol=1e-12)


def test_camera_colmap_centres() -> None:
    cam = Camera("SIMPLE_RADIAL", 1417, 1063, (1469.2, 708.5, 531.5, -0.0353))
    np.testing.assert_allclose(cam.K, [[1469.2, 0, 708.0], [0, 1469.2, 531.0], [0, 0, 1]])
    assert cam.distortion == (-0.0353,)
    pin = Camera("PINHOLE", 10, 8, (5.0, 6.0, 4.0, 3.0), colmap_centres=False)
    np.testing.assert_allclose(pin.K, [[5, 0, 4], [0, 6, 3], [0, 0, 1]])
    assert pin.to_meta()["params"] == [5.0, 6.0, 4.0, 3.0]


def test_load_image_checks_size(tmp_path: Path) -> None:
    p = tmp_path / "a.png"
    Image.new("RGB", (8, 6), (1, 2, 3)).save(p)
    im = load_image(View("a", p, 8, 6))
    assert im.size == (8, 6) and im.getpixel((0, 0)) == (1, 2, 3)
    with pytest.raises(DatasetFormatError, match=r"a\.png: image is 8x6 \(WxH\), the dataset says 6x8"):
        load_image(View("a", p, 6, 8))
    with pytest.raises(DatasetFormatError, match="not found"):
        load_image(View("b", tmp_path / "b.png", 8, 6))
