"""``mast3r-bench data check BENCH --root DIR``: JSON counts, exit 2 with "error: path:line: ..."."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.cli import main as cli_main
from benchmarks.commands import data
from benchmarks.commands.data import BENCHES


def main(argv: list[str]) -> int:
    """The `data` command alone (the full CLI imports every command, torch included: slow)."""
    parser = argparse.ArgumentParser(prog="mast3r-bench")
    data.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _mapfree(root: Path) -> Path:
    sdir = root / "val" / "s00460"
    intr, poses = [], []
    for frame in ("seq0/frame_00000.jpg", "seq1/frame_00000.jpg", "seq1/frame_00003.jpg"):
        (sdir / frame).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 6)).save(sdir / frame)
        intr.append(f"{frame} 9.0 9.0 4.0 3.0 8 6")
        poses.append(f"{frame} 1 0 0 0 0 0 0")
    (sdir / "intrinsics.txt").write_text("\n".join(intr) + "\n")
    (sdir / "poses.txt").write_text("\n".join(poses) + "\n")
    return sdir


def test_check_prints_json_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _mapfree(tmp_path)
    assert main(["data", "check", "mapfree", "--root", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "mapfree"
    assert (out["scenes"], out["views"], out["queries"], out["evaluated_queries"]) == (1, 3, 2, 1)


def test_malformed_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sdir = _mapfree(tmp_path)
    (sdir / "poses.txt").write_text("seq0/frame_00000.jpg 1 0 0 0 0 0 0\nseq1/frame_00000.jpg 1 0 0 0 0 0\n")
    assert main(["data", "check", "mapfree", "--root", str(tmp_path)]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.startswith("error: ") and f"{sdir / 'poses.txt'}:2: expected 8 fields" in cap.err


def test_wrong_image_size_and_no_images_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sdir = _mapfree(tmp_path)
    Image.new("RGB", (6, 8)).save(sdir / "seq1/frame_00003.jpg")
    assert main(["data", "check", "mapfree", "--root", str(tmp_path)]) == 2
    assert "intrinsics.txt:3: image" in capsys.readouterr().err
    assert main(["data", "check", "mapfree", "--root", str(tmp_path), "--no-images"]) == 0


def test_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", "dtu", "--root", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope'}: dataset root not found"


@pytest.mark.parametrize("bench", BENCHES)
def test_every_bench_dispatches_and_rejects_an_empty_root(bench: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", bench, "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path}") and "Traceback" not in err


def test_dtu_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sdir = tmp_path / "scan1"
    (sdir / "cams").mkdir(parents=True)
    (sdir / "images").mkdir()
    cam = ("extrinsic\n1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n\nintrinsic\n20 0 8\n0 20 6\n0 0 1\n\n425.0 2.5\n")
    for v in range(2):
        (sdir / "cams" / f"{v:08d}_cam.txt").write_text(cam)
        Image.new("RGB", (16, 12)).save(sdir / "images" / f"{v:08d}.jpg")
    (sdir / "pair.txt").write_text("2\n0\n1 1 10.0\n1\n1 0 10.0\n")
    assert main(["data", "check", "dtu", "--root", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["scans"], out["views"], out["pairs"]) == (1, 2, 2)
    assert main(["data", "check", "mapfree", "--root", str(tmp_path), "--gt-root", "x"]) == 2


def test_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _mapfree(tmp_path)
    assert cli_main(["data", "check", "mapfree", "--root", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["scenes"] == 1
