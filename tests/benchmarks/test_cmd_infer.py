"""``mast3r-bench infer`` end to end on the small official-container checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main

KEYS = {
    "pts3d0": "pred1_pts3d",
    "conf0": "pred1_conf",
    "desc0": "pred1_desc",
    "desc_conf0": "pred1_desc_conf",
    "pts3d1": "pred2_pts3d_in_other_view",
    "conf1": "pred2_conf",
    "desc1": "pred2_desc",
    "desc_conf1": "pred2_desc_conf",
}


def _image(refvec_dir: Path, letter: str) -> Path:
    return next((refvec_dir / "images").glob(f"src_{letter}_*.png"))


def test_infer_writes_official_outputs(tmp_path: Path, refvec_dir: Path, small_checkpoint: Path):
    """The refvec p2 pair is A and C at size 128: the CLI must reproduce the official outputs."""
    out = tmp_path / "sub" / "p2.npz"
    argv = [
        "infer",
        "--checkpoint",
        str(small_checkpoint),
        str(_image(refvec_dir, "A")),
        str(_image(refvec_dir, "C")),
        "--out",
        str(out),
        "--size",
        "128",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    got = np.load(out)
    ref = np.load(refvec_dir / "forward_p2.npz")
    assert set(KEYS) | {"true_shape0", "true_shape1"} <= set(got.files)
    for key, ref_key in KEYS.items():
        want = ref[ref_key][0]  # batch dimension removed in our file
        assert got[key].shape == want.shape and got[key].dtype == np.float32, key
        atol = 1e-5 if key.startswith("desc") and "conf" not in key else 1e-4
        rtol = 0 if atol == 1e-5 else 1e-4
        np.testing.assert_allclose(got[key], want, atol=atol, rtol=rtol, err_msg=key)
    assert got["true_shape0"].tolist() == [96, 128] and got["true_shape1"].tolist() == [96, 128]
    assert got["orig_size1"].tolist() == [700, 700]
    # orig_from_net maps the network image's centre pixel into the original image
    centre = got["orig_from_net1"] @ np.array([63.5, 47.5, 1.0])
    np.testing.assert_allclose(centre[:2], [349.5, 349.5])
    assert not list(out.parent.glob("*.tmp.npz"))  # written atomically


@pytest.mark.parametrize("what", ["image", "checkpoint"])
def test_infer_bad_input_is_one_line(tmp_path: Path, refvec_dir: Path, capsys, what):
    junk = tmp_path / "junk.png"
    junk.write_text("not an image, not a checkpoint")
    good = _image(refvec_dir, "A")
    ckpt = junk if what == "checkpoint" else tmp_path / "never-read.pth"
    img = good if what == "checkpoint" else junk
    out = tmp_path / "out.npz"
    rc = main(
        [
            "infer",
            "--checkpoint",
            str(ckpt),
            str(img),
            str(good),
            "--out",
            str(out),
            "--size",
            "64",
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "junk.png" in err and err.startswith("mast3r-bench infer: error:")


def test_infer_summary_line_names_shapes_and_path(tmp_path: Path):
    from benchmarks.commands.infer import summary_line

    arrays = {"pts3d0": np.zeros((96, 128, 3)), "conf0": np.zeros((96, 128)),
              "pts3d1": np.zeros((80, 128, 3)), "conf1": np.zeros((80, 128)),
              "true_shape0": np.array([96, 128]), "true_shape1": np.array([80, 128])}
    line = summary_line(arrays, tmp_path / "o.npz")
    assert line == f"pointmaps 96x128 + 80x128 (conf, pts3d, true_shape) -> {tmp_path / 'o.npz'}"
