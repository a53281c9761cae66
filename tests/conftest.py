"""Shared fixtures: the reference vectors in ../shared/refvec and their skip policy.

``MAST3R_BENCH_REFVEC`` points at the reference-vector folder (default: ``../shared/refvec`` from
the project root). Where it is absent (a user's clone) tests that need it are skipped with a clear
reason, unless ``MAST3R_BENCH_REQUIRE_REFVEC=1`` (set by ``.ci/run``), which turns the skip into a
failure because CI always has it.
"""

from __future__ import annotations

import lzma
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _refvec_dir() -> Path:
    return Path(os.environ.get("MAST3R_BENCH_REFVEC", ROOT.parent / "shared" / "refvec")).resolve()


@pytest.fixture(scope="session")
def refvec_dir() -> Path:
    """The reference-vector folder (read-only)."""
    path = _refvec_dir()
    if not (path / "README.md").is_file():
        msg = f"reference vectors not found at {path} (set MAST3R_BENCH_REFVEC)"
        if os.environ.get("MAST3R_BENCH_REQUIRE_REFVEC") == "1":
            pytest.fail(msg + "; MAST3R_BENCH_REQUIRE_REFVEC=1 makes this a failure", pytrace=False)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def small_checkpoint(refvec_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small official-container MASt3R checkpoint, decompressed once per session into a temp dir."""
    out = tmp_path_factory.mktemp("ckpt") / "mast3r_small.pth"
    with lzma.open(refvec_dir / "mast3r_small_ckpt.pth.xz", "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, length=1 << 24)
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests run only with MAST3R_BENCH_SLOW=1; ``gpu`` tests only where CUDA exists."""
    run_slow = os.environ.get("MAST3R_BENCH_SLOW") == "1"
    has_cuda = None
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: set MAST3R_BENCH_SLOW=1 to run"))
        if "gpu" in item.keywords:
            if has_cuda is None:
                import torch

                has_cuda = torch.cuda.is_available()
            if not has_cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device (run through the device tool)"))
