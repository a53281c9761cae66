"""Error classification of a run (benchmarks.run_errors)."""

from __future__ import annotations

import errno

import pytest
from PIL import Image

from benchmarks.run_errors import (
    SetupError,
    check_sample_files,
    is_data_error,
    is_resource_error,
    max_image_pixels,
    record_status,
    setup_matcher,
)
from benchmarks.types import Sample, View
from datasets.records import DatasetFormatError


def test_data_errors_are_recognised_also_when_wrapped():
    assert is_data_error(DatasetFormatError("x.png", None, "bad"))
    assert is_data_error(FileNotFoundError(2, "No such file", "x.png"))
    try:
        try:
            raise DatasetFormatError("d.mat", None, "cannot read MAT file")
        except DatasetFormatError as e:
            raise RuntimeError("solver") from e
    except RuntimeError as wrapped:
        assert is_data_error(wrapped)
    assert not is_data_error(RuntimeError("boom")) and not is_data_error(ValueError("x"))
    try:
        try:
            raise FileNotFoundError(2, "no cached weights", "w.pt")
        except FileNotFoundError:
            raise RuntimeError("download failed")  # noqa: B904 - the case tested: an implicit context
    except RuntimeError as during:
        assert not is_data_error(during)
    assert is_resource_error(OSError(errno.ENOSPC, "full"))
    assert not is_resource_error(OSError(errno.ENOENT, "x"))


def test_record_status():
    assert record_status({"success": True}) == "ok"
    assert record_status({"success": False, "failure_reason": "too_few_matches"}) == "failure"
    assert record_status({"success": False, "failure_reason": "data_error: a.jpg: empty"}) == "data_error"


def test_check_sample_files(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "ok.png")
    view = View("v", tmp_path / "ok.png", 8, 6)
    check_sample_files(Sample("s", (view,)), budget=48)
    with pytest.raises(DatasetFormatError, match="over the pixel budget"):
        check_sample_files(Sample("s", (view,)), budget=47)
    with pytest.raises(DatasetFormatError, match=r"is 8x6 \(WxH\), the dataset says 6x8"):
        check_sample_files(Sample("s", (View("v", tmp_path / "ok.png", 6, 8),)), budget=100)
    check_sample_files(Sample("s", (View("v", tmp_path / "missing.png", 8, 6),)), budget=100)  # reader's job
    (tmp_path / "depth.png").write_bytes(b"")
    with pytest.raises(DatasetFormatError, match=r"depth map of view 'v' is an empty \(0-byte\) file"):
        view = View("v", tmp_path / "ok.png", 8, 6, depth_path=tmp_path / "depth.png")
        check_sample_files(Sample("s", (view,)), budget=100)


def test_pixel_budget_env(monkeypatch):
    monkeypatch.delenv("MAST3R_BENCH_MAX_IMAGE_MPX", raising=False)
    assert max_image_pixels() == 64_000_000
    monkeypatch.setenv("MAST3R_BENCH_MAX_IMAGE_MPX", "2.5")
    assert max_image_pixels() == 2_500_000
    for bad in ("x", "0", "-1"):
        monkeypatch.setenv("MAST3R_BENCH_MAX_IMAGE_MPX", bad)
        with pytest.raises(SetupError, match="MAST3R_BENCH_MAX_IMAGE_MPX"):
            max_image_pixels()


def test_setup_matcher_wraps_the_first_line():
    class Broken:
        def setup(self):
            raise RuntimeError("bad key model.head\nmore")

    with pytest.raises(SetupError, match=r"^matcher 'm' cannot be set up: RuntimeError: bad key model.head$"):
        setup_matcher(Broken(), "m")
    setup_matcher(object(), "plain")  # no setup(): nothing to do
