"""Run keys, cache keys, pair keys, seeds and dataset checksums."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.hashing import RunSpec, dataset_checksum, derive_seed, file_sha256, pair_key, sha256_json
from benchmarks.types import View

SPEC = RunSpec(
    bench="smoke", adapter_version="1", adapter_config={"num_pairs": 8, "size": [4, 3]},
    estimator_config={"max_error_px": 3.0}, matcher="oracle", matcher_config={"noise_px": 0.0},
    weights=None, seed=0,
)


def test_run_key_is_sha256_of_the_canonical_json():
    text = ('{"adapter":"smoke","adapter_config":{"num_pairs":8,"size":[4,3]},"adapter_version":"1",'
            '"estimator_config":{"max_error_px":3.0},"matcher":"oracle","matcher_config":{"noise_px":0.0},'
            '"seed":0,"weights":null}')
    assert SPEC.key == hashlib.sha256(text.encode()).hexdigest()


def test_key_order_does_not_matter():
    shuffled = replace(SPEC, adapter_config={"size": [4, 3], "num_pairs": 8})
    assert shuffled.key == SPEC.key
    assert sha256_json({"a": 1, "b": {"x": 1, "y": 2}}) == sha256_json({"b": {"y": 2, "x": 1}, "a": 1})


@pytest.mark.parametrize("change", [
    {"bench": "smoke2"}, {"adapter_version": "2"}, {"adapter_config": {"num_pairs": 9, "size": [4, 3]}},
    {"adapter_config": {"num_pairs": 8, "size": [3, 4]}}, {"estimator_config": {"max_error_px": 3.5}},
    {"estimator_config": {"max_error_px": 3}},  # 3 vs 3.0 is a change
    {"matcher": "random"}, {"matcher_config": {"noise_px": 1e-9}}, {"weights": "ab" * 32}, {"seed": 1},
])
def test_any_value_change_changes_the_run_key(change):
    assert replace(SPEC, **change).key != SPEC.key


def test_matcher_key_ignores_adapter_and_estimator_settings():
    assert replace(SPEC, estimator_config={"max_error_px": 1.0}).matcher_key == SPEC.matcher_key
    assert replace(SPEC, adapter_config={}, bench="x", seed=4).matcher_key == SPEC.matcher_key
    assert replace(SPEC, matcher_config={"noise_px": 1.0}).matcher_key != SPEC.matcher_key
    assert replace(SPEC, weights="0" * 64).matcher_key != SPEC.matcher_key


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.floats(allow_nan=False), st.text()),
                       min_size=1, max_size=6), st.data())
def test_hash_is_order_independent_and_value_sensitive(d, data):
    assert sha256_json(dict(reversed(list(d.items())))) == sha256_json(d)
    key = data.draw(st.sampled_from(sorted(d)))
    changed = dict(d, **{key: [d[key]]})  # wrapping any value is a change
    assert sha256_json(changed) != sha256_json(d)


def _view(root: Path, rel: str, size: int, name: str | None = None) -> View:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return View(name or rel, path, 4, 3)


def test_pair_key_uses_names_relative_paths_and_sizes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    k_a = pair_key(_view(a, "s/0.png", 10), _view(a, "s/1.png", 20), a)
    k_b = pair_key(_view(b, "s/0.png", 10), _view(b, "s/1.png", 20), b)
    assert k_a == k_b  # a moved/copied data root keeps its cache
    assert pair_key(_view(a, "s/1.png", 20), _view(a, "s/0.png", 10), a) != k_a  # ordered pair
    assert pair_key(_view(a, "s/0.png", 11), _view(a, "s/1.png", 20), a) != k_a  # regenerated image
    assert pair_key(_view(a, "s/0.png", 11, "other"), _view(a, "s/1.png", 20), a) != \
        pair_key(_view(a, "s/0.png", 11), _view(a, "s/1.png", 20), a)


def test_derive_seed_is_pinned_and_spread():
    # Pinned: changing the derivation would silently change every stored result.
    digest = hashlib.sha256(b"0\npair_000").digest()
    assert derive_seed(0, "pair_000") == int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
    seeds = {derive_seed(s, k) for s in range(3) for k in ("a", "b", "c")}
    assert len(seeds) == 9 and all(0 <= s < 2**31 for s in seeds)


def test_file_and_dataset_checksums(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"abc")
    assert file_sha256(tmp_path / "f.bin") == hashlib.sha256(b"abc").hexdigest()
    assert dataset_checksum(tmp_path / "missing") is None
    root = tmp_path / "ds"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "x.png").write_bytes(b"12345")
    expected = hashlib.sha256(b"sub/x.png\t5\n").hexdigest()
    assert dataset_checksum(root) == "listing:" + expected
    (root / "y.txt").write_bytes(b"")
    assert dataset_checksum(root) != "listing:" + expected
    (root / "MANIFEST.json").write_text('{"v": 1}')
    assert dataset_checksum(root) == "manifest:" + hashlib.sha256(b'{"v": 1}').hexdigest()
