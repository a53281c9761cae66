"""``mast3r-bench match`` end to end on the small official-container checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import mast3r.weights
from benchmarks.cli import main
from mast3r.matching import border_filter, fast_reciprocal_nn
from mast3r.model import PairOutput, ViewOutput


def _image(refvec_dir: Path, letter: str) -> Path:
    return next((refvec_dir / "images").glob(f"src_{letter}_*.png"))


def _run(tmp_path: Path, refvec_dir: Path, ckpt: Path, name: str, *extra: str) -> np.lib.npyio.NpzFile:
    out = tmp_path / f"{name}.npz"
    argv = ["match", "--checkpoint", str(ckpt), str(_image(refvec_dir, "D")), str(_image(refvec_dir, "B")),
            "--out", str(out), "--size", "128", "--device", "cpu", *extra]
    assert main(argv) == 0
    return np.load(out)


def _pairs(npz) -> set[tuple[int, ...]]:
    return set(map(tuple, np.hstack([npz["xy0"], npz["xy1"]]).tolist()))


def test_match_frm_dense_and_original_pixels(tmp_path, refvec_dir, small_checkpoint):
    """Pair D, B at size 128 is refvec p3: FRM on our descriptors ~ the official FRM set."""
    frm = _run(tmp_path, refvec_dir, small_checkpoint, "frm")  # default: border 3
    ref = np.load(refvec_dir / "frm_small.npz")
    keep = border_filter(ref["p3_s8_xy1"], ref["p3_s8_xy2"], (80, 128), (128, 96), 3)
    want = set(map(tuple, np.hstack([ref["p3_s8_xy1"], ref["p3_s8_xy2"]])[keep].tolist()))
    got = _pairs(frm)
    assert len(got & want) / len(got | want) >= 0.95  # refvec README: end-to-end Jaccard
    assert frm["xy0"].dtype == np.int32 and frm["pts0"].dtype == np.float64
    assert frm["conf"].dtype == np.float32
    assert frm["true_shape0"].tolist() == [80, 128] and frm["true_shape1"].tolist() == [128, 96]
    assert frm["query_sizes"][0] == 160
    # D is 1000x688 -> 128x88 resized, cropped to 80 rows (4 off the top): x' = (x+0.5)*1000/128-0.5
    sx, sy = 1000 / 128, 688 / 88
    np.testing.assert_allclose(frm["pts0"][:, 0], (frm["xy0"][:, 0] + 0.5) * sx - 0.5)
    np.testing.assert_allclose(frm["pts0"][:, 1], (frm["xy0"][:, 1] + 4 + 0.5) * sy - 0.5)
    assert np.all(frm["conf"] > 0) and len(frm["conf"]) == len(frm["xy0"])
    xy0, xy1 = frm["xy0"], frm["xy1"]
    assert xy0.min() >= 3 and xy0[:, 0].max() < 128 - 3 and xy0[:, 1].max() < 80 - 3
    assert xy1.min() >= 3 and xy1[:, 0].max() < 96 - 3 and xy1[:, 1].max() < 128 - 3

    dense = _run(tmp_path, refvec_dir, small_checkpoint, "dense", "--dense", "--border", "0")
    assert got <= _pairs(dense) and "query_sizes" not in dense.files


@pytest.mark.slow
def test_match_coarse_to_fine_maps_into_original_images(tmp_path, refvec_dir, small_checkpoint):
    res = _run(tmp_path, refvec_dir, small_checkpoint, "c2f", "--coarse-to-fine", "--c2f-window", "256",
               "--c2f-max-size", "640", "--subsample", "4")
    n = len(res["conf"])
    assert res["pts0"].shape == (n, 2) and res["xy0"].shape == (n, 2) and res["pair_index"].shape == (n,)
    if n == 0:
        pytest.skip("random-weight model gave no window with enough coarse matches")
    scale0, _ = res["c2f_scale"]
    assert scale0 == pytest.approx(1000 / 640)
    assert np.all(res["pts0"] > -0.5) and np.all(res["pts0"] < [1000 - 0.5, 688 - 0.5])
    assert np.all(res["pts1"] > -0.5) and np.all(res["pts1"] < [360 - 0.5, 480 - 0.5])
    # working-image pixels of view 0 = window origin + crop network pixel (crops are not resized)
    w0 = res["windows0"][res["pair_index"]]
    np.testing.assert_allclose((res["pts0"] + 0.5) / scale0 - 0.5, res["xy0"] + w0[:, :2], atol=1e-9)


def test_match_errors_are_one_line_exit_2(tmp_path, refvec_dir, small_checkpoint, capsys):
    argv = ["match", "--checkpoint", str(small_checkpoint), str(tmp_path / "missing.png"),
            str(_image(refvec_dir, "B")), "--out", str(tmp_path / "x.npz"), "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "missing.png" in err and err.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()


def test_frm_on_reference_descriptors_reproduces_reference(refvec_dir):
    """Guards the Jaccard test above: with the stored descriptors the sets are identical."""
    f = np.load(refvec_dir / "forward_p3.npz")
    ref = np.load(refvec_dir / "frm_small.npz")
    xy0, xy1 = fast_reciprocal_nn(f["pred1_desc"][0], f["pred2_desc"][0], 8)
    np.testing.assert_array_equal(xy0, ref["p3_s8_xy1"])
    np.testing.assert_array_equal(xy1, ref["p3_s8_xy2"])


class PatchModel:
    """Stand-in network: descriptors are a fixed random projection of 5x5 RGB patches, so two
    images that are integer shifts of each other get identical descriptors at corresponding pixels."""

    def __init__(self) -> None:
        self.proj = torch.randn(75, 24, generator=torch.Generator().manual_seed(0))

    def _view(self, img: torch.Tensor) -> ViewOutput:
        b, _, h, w = img.shape
        patches = torch.nn.functional.unfold(torch.nn.functional.pad(img, (2, 2, 2, 2), mode="reflect"), 5)
        desc = torch.nn.functional.normalize(patches.transpose(1, 2) @ self.proj, dim=-1).reshape(b, h, w, 24)
        ones = torch.ones(b, h, w)
        return ViewOutput(torch.zeros(b, h, w, 3), ones, desc, ones * 2)

    def __call__(self, img0: torch.Tensor, img1: torch.Tensor, autocast_dtype=None) -> PairOutput:
        return PairOutput(self._view(img0), self._view(img1))

    # the engine's forward: encode once, then decoders/heads (here: the same patch projection)
    def encode_pair(self, img0: torch.Tensor, img1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return img0, img1

    def forward_encoded(self, enc0: torch.Tensor, enc1: torch.Tensor, autocast_dtype=None) -> PairOutput:
        return self(enc0, enc1, autocast_dtype)


def test_match_coarse_to_fine_glue_with_shifted_images(tmp_path, monkeypatch):
    """Image 1 = image 0 rolled by (64, 40) px. Coarse at half resolution and fine on crops of the
    half-size working images (--c2f-max-size): original-pixel matches must show the shift."""
    rng = np.random.default_rng(0)
    img0 = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    img1 = np.roll(img0, (40, 64), axis=(0, 1))
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for path, img in zip(paths, (img0, img1)):
        PIL.Image.fromarray(img).save(path)
    monkeypatch.setattr(mast3r.weights, "load_model", lambda *a, **k: PatchModel())  # the engine's loader
    base = ["match", "--checkpoint", str(tmp_path / "unused.pth"), *map(str, paths), "--size", "200",
            "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "coarse.npz")]) == 0
    coarse = np.load(tmp_path / "coarse.npz")
    shift = coarse["pts1"] - coarse["pts0"]
    assert np.mean(np.all(shift == [64, 40], axis=1)) > 0.8 and len(shift) > 100
    argv = [*base, "--out", str(tmp_path / "c2f.npz"), "--coarse-to-fine", "--c2f-window", "96",
            "--c2f-max-size", "200", "--c2f-batch", "4"]
    assert main(argv) == 0
    res = np.load(tmp_path / "c2f.npz")
    assert res["c2f_scale"].tolist() == [2.0, 2.0] and len(res["windows0"]) >= 2
    shift = res["pts1"] - res["pts0"]
    good = np.all(shift == [64, 40], axis=1)
    assert good.mean() > 0.8 and good.sum() > len(coarse["conf"])  # finer: more matches
    assert np.all(res["conf"] == 2)
    w0 = res["windows0"][res["pair_index"]]
    np.testing.assert_allclose((res["pts0"] + 0.5) / 2 - 0.5, res["xy0"] + w0[:, :2])


def test_match_prints_a_one_line_summary(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        PIL.Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(tmp_path / name)
    out = tmp_path / "m.npz"
    assert main(["match", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--matcher", "random",
                 "--opt", "num_matches=12", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{len(np.load(out)['conf'])} matches -> {out}"


def test_legacy_defaults_are_the_parsers_and_map_onto_the_engine():
    """The legacy flags' defaults live once (LegacyOptions); the parser and --matcher's check use them."""
    import argparse

    from benchmarks.commands import match as match_cli
    from benchmarks.pair_match import engine_options

    sub = argparse.ArgumentParser().add_subparsers()
    match_cli.register(sub)
    args = sub.choices["match"].parse_args(["a.png", "b.png", "--out", "m.npz"])
    opts = match_cli.LegacyOptions.from_args(args)
    assert opts == match_cli.LegacyOptions() and opts.changed_flags() == []
    argv = ["a.png", "b.png", "--out", "m.npz", "--c2f-window", "256", "--dense"]
    args = sub.choices["match"].parse_args(argv)
    assert match_cli.LegacyOptions.from_args(args).changed_flags() == ["--c2f-window", "--dense"]
    precision, frm, c2f = engine_options(match_cli.LegacyOptions(amp="bf16", subsample=4, coarse_to_fine=True,
                                                                  c2f_window=256, c2f_batch=4))
    assert precision == "bf16" and (frm.subsample, frm.border, frm.dense) == (4, 3, False)
    assert c2f is not None and (c2f.window_size, c2f.max_batch) == (256, 4)
    assert engine_options(match_cli.LegacyOptions())[2] is None
