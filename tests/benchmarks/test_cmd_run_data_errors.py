"""Issue 15 item 4: bad data is a ``data_error`` record (not a method failure), counted apart in the
summary and the table; the run exits 3 naming the files; a re-run retries those samples
(``--retry-failed``: failures too); an image over the pixel budget is refused from its header."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.cli import main
from benchmarks.store import RecordStore
from datasets.synthetic.suite import write_benchmark

ROOT = Path(__file__).resolve().parents[2]
QUERY = "s00460/seq1/frame_00000.jpg"


@pytest.fixture
def mapfree(tmp_path) -> Path:
    write_benchmark(tmp_path / "data", "mapfree", seed=0, size="small")
    return tmp_path / "data" / "mapfree" / "val" / "s00460"


def run_dir(tmp_path: Path, bench: str = "mapfree", matcher: str = "sift") -> Path:
    (run,) = (tmp_path / "results" / "runs" / bench / matcher).iterdir()
    return run


def run_main(tmp_path: Path, bench: str = "mapfree", matcher: str = "sift", *extra: str) -> int:
    return main(["run", bench, "--matcher", matcher, "--data", str(tmp_path / "data"), "--results",
                 str(tmp_path / "results"), "--no-progress", *extra])


def records(tmp_path: Path, **kw) -> dict:
    return RecordStore(run_dir(tmp_path, **kw) / "records.jsonl").load()


def test_truncated_jpeg_exits_3_then_a_rerun_retries_it_cli(tmp_path, mapfree):
    image = mapfree / "seq1" / "frame_00000.jpg"
    good = image.read_bytes()
    image.write_bytes(good[: len(good) // 2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "benchmarks", "run", "mapfree", "--matcher", "sift", "--data", "data",
           "--results", "results", "--no-progress"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "2/2 samples (2 computed now, 1 failures, 1 data errors, finished)" in out.stdout
    assert "1 samples have unreadable data" in out.stderr and "Traceback" not in out.stderr
    assert f"{QUERY}: {image.resolve()}: cannot read image" in out.stderr
    summary = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert summary["num_data_errors"] == 1 and summary["num_failures"] == 1  # the other sample's
    assert summary["data_errors"][0]["key"] == QUERY
    assert "| data_errors |" in out.stdout.replace("   data_errors", " data_errors")  # a table column
    # the file repaired, the same command retries the sample
    image.write_bytes(good)
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2/2 samples (1 computed now, 1 failures, finished)" in again.stdout
    summary = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert summary["num_data_errors"] == 0 and summary["num_records"] == 2
    assert "data_errors" not in again.stdout


def _reason(tmp_path: Path, key: str = QUERY, **kw) -> str:
    return records(tmp_path, **kw)[key].prediction["failure_reason"]


def test_zero_byte_jpeg(tmp_path, mapfree, capsys):
    (mapfree / "seq1" / "frame_00000.jpg").write_bytes(b"")
    assert run_main(tmp_path) == 3
    assert _reason(tmp_path).startswith("data_error: ") and "empty (0-byte) file" in _reason(tmp_path)
    assert "frame_00000.jpg" in capsys.readouterr().err


def test_image_size_differs_from_the_intrinsics(tmp_path, mapfree):
    path = mapfree / "seq1" / "frame_00000.jpg"
    with Image.open(path) as im:
        im.resize((im.width // 2, im.height // 2)).save(path)
    assert run_main(tmp_path) == 3
    assert "the size its intrinsics refer to" in _reason(tmp_path)


def test_unreadable_depth_png(tmp_path, mapfree):
    (mapfree / "seq1" / "frame_00000.dptkitti.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert run_main(tmp_path) == 3
    reason = _reason(tmp_path)
    assert reason.startswith("data_error: ") and "frame_00000.dptkitti.png" in reason


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header says ``width x height`` (RGB) with no pixel data: decoding it would fail."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_an_image_over_the_pixel_budget_is_refused_before_decoding(tmp_path, monkeypatch):
    assert run_main(tmp_path, "smoke", "oracle", "--limit", "1") == 0  # generates the smoke images
    (image,) = [p for p in (tmp_path / "data" / "smoke").rglob("pair_001_1.png")]
    _png_header_only(image, 12000, 9000)
    assert run_main(tmp_path, "smoke", "oracle", "--limit", "2") == 3
    reason = _reason(tmp_path, "pair_001", bench="smoke", matcher="oracle")
    assert "is 12000x9000 = 108.0 Mpx, over the pixel budget of 64 Mpx" in reason
    # the budget is configurable
    monkeypatch.setenv("MAST3R_BENCH_MAX_IMAGE_MPX", "0.001")
    assert run_main(tmp_path, "smoke", "oracle", "--limit", "1", "--force") == 3
    reason = _reason(tmp_path, "pair_000", bench="smoke", matcher="oracle")
    assert "over the pixel budget of 0.001 Mpx" in reason


def test_unreadable_inloc_mat(tmp_path, capsys):
    write_benchmark(tmp_path / "data", "inloc", seed=0, size="small")
    for mat in (tmp_path / "data" / "inloc").rglob("*.mat"):
        mat.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    assert run_main(tmp_path, "inloc", "oracle") == 3
    recs = records(tmp_path, bench="inloc", matcher="oracle")
    assert recs and all(r.prediction["failure_reason"].startswith("data_error: ") for r in recs.values())
    assert ".mat" in next(iter(recs.values())).prediction["failure_reason"]
    summary = json.loads((run_dir(tmp_path, "inloc", "oracle") / "summary.json").read_text())
    assert summary["num_failures"] == 0 and summary["num_data_errors"] == len(recs)
    assert ".mat: cannot read MAT file" in capsys.readouterr().err


def test_retry_failed_recomputes_method_failures(tmp_path, capsys):
    assert run_main(tmp_path, "smoke", "random", "--limit", "2") == 0
    assert run_main(tmp_path, "smoke", "random", "--limit", "2") == 0
    assert run_main(tmp_path, "smoke", "random", "--limit", "2", "--retry-failed") == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("smoke/random:")]
    assert [x.split("(")[1].split(",")[0] for x in lines] == ["2 computed now", "0 computed now",
                                                              "2 computed now"]
    assert len(records(tmp_path, bench="smoke", matcher="random")) == 2
