"""The engine's model source: embedded default (pinned SHA-256 checked), size rule, memoised hash."""

from __future__ import annotations

import hashlib
import os

import pytest

import mast3r.assets
from mast3r.assets import EmbeddedModel
from mast3r.engine import source
from mast3r.weights import CheckpointError


def _embed(monkeypatch, tmp_path, digest: str) -> str:
    path = tmp_path / "embedded.safetensors"
    path.write_bytes(b"weights")
    monkeypatch.setattr(mast3r.assets, "DEFAULT_MODEL", EmbeddedModel("test", str(path), digest, 320))
    return str(path)


def test_empty_checkpoint_is_the_embedded_default_with_its_digest_checked(monkeypatch, tmp_path):
    path = _embed(monkeypatch, tmp_path, hashlib.sha256(b"weights").hexdigest())
    assert source.resolve_checkpoint("") == path
    assert source.resolve_checkpoint("/some/official.pth") == "/some/official.pth"
    assert source.embedded_default_missing() is None


def test_a_damaged_embedded_default_is_refused(monkeypatch, tmp_path):
    _embed(monkeypatch, tmp_path, "0" * 64)
    with pytest.raises(CheckpointError, match="not the pinned"):
        source.resolve_checkpoint("")


def test_a_missing_embedded_default_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(mast3r.assets, "DEFAULT_MODEL", EmbeddedModel("x", str(tmp_path / "gone"), "ab", 320))
    assert "MAST3R_BENCH_CHECKPOINT" in source.embedded_default_missing()
    with pytest.raises(FileNotFoundError, match="missing from this install"):
        source.resolve_checkpoint("")


def test_size_zero_is_the_models_own(monkeypatch, tmp_path):
    _embed(monkeypatch, tmp_path, "")
    assert source.resolve_size(0, "") == 320
    assert source.resolve_size(0, "official.pth") == source.OFFICIAL_SIZE == 512
    assert source.resolve_size(224, "") == 224


def test_file_sha256_is_memoised_until_the_file_changes(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    assert source.file_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    f.write_bytes(b"abcd")
    os.utime(f, ns=(1, 1))
    assert source.file_sha256(f) == hashlib.sha256(b"abcd").hexdigest()
