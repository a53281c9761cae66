"""``mast3r-bench data check BENCH --root DIR``: JSON counts, exit 2 with "error: path:line: ..."."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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


# --- issue 15 item 5: --deep and empty benchmarks -------------------------------------------------------


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic suite (size small); copy a benchmark folder before editing it."""
    from datasets.synthetic.suite import ensure_suite

    root = tmp_path_factory.mktemp("suite")
    ensure_suite(root, seed=0, size="small")
    return root


def _copy(suite: Path, bench: str, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(suite / bench, dest / bench))


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", *argv], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("bench", BENCHES)
def test_deep_passes_on_the_synthetic_suite(bench: str, suite: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", bench, "--root", str(suite / bench), "--deep"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deep"]["files"] > 0 and out["deep"]["unreadable"] == 0


def test_deep_reports_every_unreadable_file_cli(suite: Path, tmp_path: Path) -> None:
    root = _copy(suite, "mapfree", tmp_path)
    scene = root / "val" / "s00460"
    jpg = scene / "seq1" / "frame_00005.jpg"
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size * 2 // 3])  # header intact, scan data cut
    (scene / "seq1" / "frame_00003.dptkitti.png").write_bytes(b"")
    depth = scene / "seq1" / "frame_00007.dptnyu.png"
    depth.write_bytes(depth.read_bytes()[:60])
    (scene / "extra.npz").write_bytes(b"PK\x03\x04 not really a zip")
    proc = _cli("data", "check", "mapfree", "--root", str(root))
    assert proc.returncode == 0, proc.stderr  # the header checks pass all of these
    proc = _cli("data", "check", "mapfree", "--root", str(root), "--deep")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors[:-1] == [
        f"error: {scene / 'extra.npz'}: cannot read npz: " + errors[0].split("cannot read npz: ")[1],
        f"error: {scene / 'seq1' / 'frame_00003.dptkitti.png'}: cannot decode image: empty file",
        f"error: {jpg}: cannot decode image: " + errors[2].split("cannot decode image: ")[1],
        f"error: {depth}: cannot decode image: " + errors[3].split("cannot decode image: ")[1],
    ]
    assert "truncated" in errors[2]
    assert errors[-1].startswith("error: 4 of ") and errors[-1].endswith(" files could not be read")
    assert json.loads(proc.stdout)["deep"]["unreadable"] == 4 and "Traceback" not in proc.stderr


def test_deep_reads_point_clouds_and_mat_files_in_full(suite: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(suite, "dtu", tmp_path)
    ply = root / "SampleSet" / "MVS Data" / "Points" / "stl" / "stl001_total.ply"
    ply.write_bytes(ply.read_bytes()[:-13])
    assert main(["data", "check", "dtu", "--root", str(root)]) == 0  # the PLY header is intact
    capsys.readouterr()
    assert main(["data", "check", "dtu", "--root", str(root), "--deep"]) == 2
    assert f"error: {ply}: cannot read PLY: {ply}: file truncated" in capsys.readouterr().err
    root = _copy(suite, "inloc", tmp_path)
    mat = sorted(root.rglob("*.jpg.mat"))[0]  # an XYZcut file: only its presence is checked by default
    mat.write_bytes(mat.read_bytes()[:150])
    assert main(["data", "check", "inloc", "--root", str(root)]) == 0
    capsys.readouterr()
    assert main(["data", "check", "inloc", "--root", str(root), "--deep"]) == 2
    assert f"error: {mat}: cannot read MAT file: " in capsys.readouterr().err


def test_deep_refuses_to_decode_an_image_over_the_pixel_budget(tmp_path: Path) -> None:
    from benchmarks.commands._data_deep import MAX_DECODE_PIXELS, read_fully

    path = tmp_path / "huge.png"
    Image.new("L", (9000, 8000)).save(path)  # 72 Mpx of zeros: a small file
    assert 9000 * 8000 > MAX_DECODE_PIXELS
    assert read_fully(path) == (f"cannot decode image: 9000x8000 image (72000000 pixels) is over the "
                                f"decoding budget of {MAX_DECODE_PIXELS} pixels; not decoded")


def test_re10k_clips_without_frames_are_an_empty_benchmark_cli(suite: Path, tmp_path: Path) -> None:
    import shutil

    root = _copy(suite, "re10k", tmp_path)
    shutil.rmtree(root / "frames")
    proc = _cli("data", "check", "re10k", "--root", str(root))
    assert proc.returncode == 1
    n = json.loads(proc.stdout)["sequences"]
    assert (f"WARNING benchmarks.commands.data: re10k {root}: no samples: no clip has extracted frames "
            f"({n} camera files; frames expected in {root / 'frames'})") in proc.stderr


def test_empty_set_lists_and_query_lists_are_empty_benchmarks(suite: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    root = _copy(suite, "co3dv2", tmp_path)
    for path in root.glob("*/set_lists/*.json"):
        path.write_text(json.dumps({"train": [], "val": [], "test": []}))
    assert main(["data", "check", "co3dv2", "--root", str(root)]) == 1
    assert "no samples: the set lists (set_lists/set_lists_*.json) hold no entries" in caplog.text
    caplog.clear()
    root = _copy(suite, "aachen", tmp_path)
    for path in (root / "queries").glob("*.txt"):
        path.write_text("")
    assert main(["data", "check", "aachen", "--root", str(root)]) == 1
    assert "no samples: the query lists are empty" in caplog.text
