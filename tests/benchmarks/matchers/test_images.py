"""Image loading, resizing and the pixel-centre mapping shared by the kornia matchers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.matchers._images import (
    load_image,
    prepare_image,
    prepare_view,
    resized_to_original,
    target_size,
    view_from_path,
)
from benchmarks.types import View


@pytest.mark.parametrize(
    ("size", "resize_max", "multiple", "expected"),
    [
        ((741, 500), None, 1, (741, 500)),
        ((741, 500), 1024, 1, (741, 500)),  # never upscales
        ((741, 500), 512, 1, (512, 345)),  # 500 * 512 / 741 = 345.5 -> 345 (banker's rounding)
        ((500, 741), 512, 1, (345, 512)),
        ((741, 500), None, 32, (736, 480)),
        ((741, 500), 512, 8, (512, 344)),
        ((20, 10), None, 32, (32, 32)),  # at least one multiple
    ],
)
def test_target_size(size, resize_max, multiple, expected):
    assert target_size(*size, resize_max, multiple) == expected


def test_target_size_rejects_bad_values():
    with pytest.raises(ValueError, match="resize_max"):
        target_size(10, 10, 0)
    with pytest.raises(ValueError, match="positive"):
        target_size(0, 10, None)


def test_resized_to_original_hand_values():
    # 400 -> 200 pixels: resized pixel 0 covers original pixels 0 and 1, centre 0.5
    pts = np.array([[0.0, 0.0], [99.5, 10.0], [-0.5, -0.5]])
    out = resized_to_original(pts, (200, 100), (400, 300))
    np.testing.assert_allclose(out, [[0.5, 1.0], [199.5, 31.0], [-0.5, -0.5]], atol=1e-6)
    assert out.dtype == np.float32


def test_mapping_matches_the_resampler():
    """A ramp image whose value is its own x (pixel centres at integers) keeps that property
    through prepare_image: resized pixel x1 holds x0 = (x1 + 0.5) * W0 / W1 - 0.5."""
    w0, h0 = 300, 40
    ramp = np.tile(np.arange(w0, dtype=np.float32), (h0, 1)) / w0
    prep = prepare_image(ramp, resize_max=200, device="cpu")
    assert prep.size == (200, 27)
    w1 = prep.size[0]
    values = prep.tensor[0, 0, prep.size[1] // 2].numpy() * w0
    x1 = np.arange(w1)
    expected = prep.to_original(np.stack([x1, np.zeros(w1)], 1))[:, 0]
    inner = slice(3, w1 - 3)  # the border clamps the ramp
    # antialiased bilinear weights on a 1.5x grid wobble by ~0.03 px around the exact mapping
    np.testing.assert_allclose(values[inner], expected[inner], atol=0.05)
    # the naive x0 = x1 * W0 / W1 is off by 0.25 px here
    assert np.abs(values[inner] - x1[inner] * w0 / w1).min() > 0.2


def test_same_size_is_not_resampled():
    img = np.random.default_rng(0).random((30, 50, 3), dtype=np.float32)
    prep = prepare_image(img, resize_max=None, multiple=1)
    assert prep.size == prep.size_original == (50, 30)
    np.testing.assert_array_equal(prep.tensor[0].permute(1, 2, 0).numpy(), img)
    np.testing.assert_array_equal(prep.to_original(np.array([[3.0, 4.0]])), [[3.0, 4.0]])


def test_load_image_applies_exif_orientation(tmp_path: Path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif.tobytes(), quality=95)
    gray = load_image(path, gray=True)
    assert gray.shape == (40, 20)  # stored 40 x 20, displayed 20 x 40
    assert gray[:10].mean() > 0.9 and gray[-10:].mean() < 0.1  # the white left band is now on top
    rgb = load_image(path, gray=False)
    assert rgb.shape == (40, 20, 3) and rgb.dtype == np.float32
    view = view_from_path(path)
    assert (view.name, view.width, view.height) == ("rot.jpg", 20, 40)
    assert view.image_path == path.resolve() and view.K is None
    prep = prepare_view(view, gray=True, resize_max=None)  # the View agrees with the decoded image
    assert prep.size == (20, 40)


def test_bad_files_name_the_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png", gray=True)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        load_image(bad, gray=True)
    with pytest.raises(ValueError, match="bad.png"):
        view_from_path(bad)
    with pytest.raises(FileNotFoundError, match="nope.png"):
        view_from_path(tmp_path / "nope.png")


def test_prepare_view_checks_the_view_size(tmp_path: Path):
    path = tmp_path / "img.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"img.png: image is 12x10 pixels but view 'v' says 10x12"):
        prepare_view(View("v", path, 10, 12), gray=True, resize_max=None)
    prep = prepare_view(View("v", path, 12, 10), gray=True, resize_max=None)
    assert tuple(prep.tensor.shape) == (1, 1, 10, 12)
