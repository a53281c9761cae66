"""Shared fixtures of the adapter tests: the synthetic suite (size ``small``), rendered once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.synthetic.suite import ensure_suite


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``<bench>/`` for every synthetic benchmark (seed 0, size ``small``), each usable
    as that benchmark's data folder. Read-only for tests: copy a benchmark folder before editing it."""
    root = tmp_path_factory.mktemp("synthetic")
    ensure_suite(root, seed=0, size="small")
    return root
