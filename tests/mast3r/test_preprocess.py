"""Preprocessing against the official outputs, and the network <-> original pixel mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mast3r.preprocess import ImageLoadError, load_image, preprocess_pil, stack_images

REF_CASES = ["A512", "B512", "C512", "A224", "B224", "C224", "D224", "A128", "B128", "C128", "D128", "C128sq"]


@pytest.fixture(scope="module")
def preprocess_ref(refvec_dir: Path) -> dict[str, np.ndarray]:
    return dict(np.load(refvec_dir / "preprocess.npz"))


@pytest.mark.parametrize("key", REF_CASES)
def test_matches_official_load_images_exactly(key, preprocess_ref, refvec_images):
    letter, rest = key[0], key[1:]
    square_ok = rest.endswith("sq")
    prep = load_image(refvec_images[letter], int(rest.removesuffix("sq")), square_ok=square_ok)
    np.testing.assert_array_equal(prep.uint8, preprocess_ref[f"{key}_uint8"])
    assert prep.true_shape == tuple(int(v) for v in preprocess_ref[f"{key}_true_shape"][0])
    assert prep.img.shape == (1, 3, *prep.true_shape)


def test_normalised_tensor_is_bit_exact(preprocess_ref, refvec_images):
    prep = load_image(refvec_images["A"], 512)
    assert prep.img.dtype.is_floating_point and prep.img.dtype.itemsize == 4
    np.testing.assert_array_equal(prep.img.numpy(), preprocess_ref["A512_img"])


@pytest.mark.parametrize(
    ("size_wh", "expected_hw"),
    [
        ((640, 480), (384, 512)),
        ((360, 480), (512, 384)),
        ((700, 700), (384, 512)),
        ((1000, 688), (352, 512)),
        ((1000, 660), (336, 512)),
        ((660, 1000), (512, 336)),
    ],
)
def test_spec_size_examples(size_wh, expected_hw):
    prep = preprocess_pil(PIL.Image.new("RGB", size_wh, (10, 20, 30)), 512)
    assert prep.true_shape == expected_hw
    assert prep.orig_size == size_wh


def test_hand_worked_mapping():
    # 700x700 -> 512x512 (scale 700/512), then 4:3 crop: rows 64..447 kept
    prep = preprocess_pil(PIL.Image.new("RGB", (700, 700)), 512)
    assert prep.crop_box == (0, 64, 512, 448) and prep.resized_size == (512, 512)
    s = 700 / 512
    got = prep.net_to_orig(np.array([[0.0, 0.0], [511.0, 383.0]]))
    np.testing.assert_allclose(got, [[0.5 * s - 0.5, 64.5 * s - 0.5], [511.5 * s - 0.5, 447.5 * s - 0.5]])
    # image-wide edges map to edges: network edge -0.5 -> original edge -0.5 along x
    np.testing.assert_allclose(prep.net_to_orig(np.array([[-0.5, -0.5]]))[0, 0], -0.5)
    np.testing.assert_allclose(prep.net_to_orig(np.array([[511.5, 0.0]]))[0, 0], 699.5)


@settings(max_examples=25, deadline=None)
@given(w=st.integers(60, 900), h=st.integers(60, 900), size=st.sampled_from([128, 224, 512]))
def test_property_mapping_round_trip_and_matrices(w, h, size):
    assume(max(w, h) < 4 * min(w, h))  # else the crop is empty at size 128 (refused, tested below)
    prep = preprocess_pil(PIL.Image.new("RGB", (w, h)), size)
    xy = np.array([[0.0, 0.0], [3.25, 7.5], [w - 1.0, h - 1.0]])
    np.testing.assert_allclose(prep.net_to_orig(prep.orig_to_net(xy)), xy, atol=1e-9)
    homog = np.c_[xy, np.ones(3)]
    np.testing.assert_allclose((prep.net_from_orig @ homog.T).T[:, :2], prep.orig_to_net(xy), atol=1e-9)
    np.testing.assert_allclose(prep.orig_from_net @ prep.net_from_orig, np.eye(3), atol=1e-12)


@pytest.mark.parametrize(("orig", "size"), [((1024, 768), 512), ((333, 250), 512), ((1000, 700), 224)])
def test_mapping_follows_image_content(orig, size):
    """A smooth blob at a known original position appears where orig_to_net says (pixel centres at ints)."""
    w, h = orig
    cx, cy = 0.43 * w + 0.3, 0.57 * h - 0.2
    yy, xx = np.mgrid[0:h, 0:w]
    sigma = 0.02 * max(w, h)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    u8 = np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    prep = preprocess_pil(PIL.Image.fromarray(u8), size)
    net = prep.uint8[..., 0].astype(np.float64)
    ny, nx = np.mgrid[0 : net.shape[0], 0 : net.shape[1]]
    centroid = np.array([(net * nx).sum(), (net * ny).sum()]) / net.sum()
    expected = prep.orig_to_net(np.array([[cx, cy]]))[0]
    # a half-pixel convention error would be |0.5 - 0.5 * scale| >= 0.1 px here
    np.testing.assert_allclose(centroid, expected, atol=0.03)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:20] = 255  # bright top half as stored
    img = PIL.Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    prep = load_image(path, 64)
    assert prep.orig_size == (40, 60)  # displayed (W, H)
    assert prep.true_shape == (64, 32)  # long side 64 (portrait), width 42.67 -> 43 -> cropped to 32
    assert prep.uint8[:, -10:].mean() > 200 and prep.uint8[:, :10].mean() < 50  # top half -> right half


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_other_modes_become_rgb(mode):
    img = PIL.Image.new(mode, (64, 48))
    prep = preprocess_pil(img, 64)
    assert prep.uint8.shape == (48, 64, 3) and prep.uint8.dtype == np.uint8


def test_not_an_image_is_one_clear_error(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image\n")
    with pytest.raises(ImageLoadError, match="notes.png: not an image") as info:
        load_image(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(ImageLoadError, match="no such image file"):
        load_image(tmp_path / "missing.png")


def test_truncated_image_is_one_clear_error(tmp_path, refvec_images):
    data = refvec_images["A"].read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cut.png: unreadable image") as info:
        load_image(cut)
    assert "\n" not in str(info.value)


def test_tiny_image_is_refused():
    with pytest.raises(ImageLoadError, match="too small"):
        preprocess_pil(PIL.Image.new("RGB", (20, 3)), 64)


def test_stack_refuses_mixed_sizes(refvec_images):
    a = load_image(refvec_images["A"], 128)
    c = load_image(refvec_images["C"], 128)
    b = load_image(refvec_images["B"], 128)
    assert stack_images([a, c]).shape == (2, 3, 96, 128)
    with pytest.raises(ValueError, match=r"different sizes.*src_B.*128x96"):
        stack_images([a, b])
