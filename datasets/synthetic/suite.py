"""The synthetic suite: every benchmark rendered into its real on-disk layout, one folder each.

``write_suite(out_dir, seed, size)`` writes ``out_dir/<bench>/`` for the registry ids ``mapfree``,
``aachen``, ``inloc``, ``co3dv2``, ``re10k`` and ``dtu``; each folder is usable as that benchmark's
``--data`` root and holds a ``MANIFEST.json`` (generator, version, seed, size, writer config and
summary, SHA-256 and size of every file) next to the ``_synthetic/`` ground-truth sidecar (see
:mod:`datasets.synthetic.sidecar`). ``out_dir/MANIFEST.json`` indexes the benchmark manifests.

Determinism: benchmark ``b`` draws from ``numpy.random.default_rng([seed, index(b)])`` and the
shared texture bank from ``default_rng([seed, 1000])``, so a benchmark's bytes do not depend on
which other benchmarks are written, in which order or in how many processes; manifests hold no
times or absolute paths. Re-running with the same seed, size and software versions is
byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic.io import write_json
from datasets.synthetic.textures import make_texture_bank
from mast3r.fileio import atomic_write_json, sha256_file  # leaf module: no other mast3r import

__all__ = ["BENCHMARKS", "SIZES", "SUITE_VERSION", "GENERATOR", "write_suite", "ensure_suite",
           "write_benchmark", "read_manifest", "manifest_matches"]

log = logging.getLogger(__name__)

BENCHMARKS: tuple[str, ...] = ("mapfree", "aachen", "inloc", "co3dv2", "re10k", "dtu")
SIZES: tuple[str, ...] = ("small", "default")
SUITE_VERSION = "1"
GENERATOR = "mast3r-bench synthetic suite"
MANIFEST = "MANIFEST.json"
_COST = {"mapfree": 5, "re10k": 4, "aachen": 4, "inloc": 4, "co3dv2": 3, "dtu": 4}  # scheduling only


def _check(benchmarks: Iterable[str] | None, size: str) -> list[str]:
    if size not in SIZES:
        raise ValueError(f"unknown suite size {size!r}; expected one of {SIZES}")
    names = list(BENCHMARKS if benchmarks is None else benchmarks)
    unknown = [b for b in names if b not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown synthetic benchmark(s) {unknown}; expected some of {BENCHMARKS}")
    return sorted(set(names), key=BENCHMARKS.index)


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("mast3r-bench")
    except Exception:  # not installed (source checkout)
        return "unknown"


def _file_table(root: Path) -> dict[str, dict[str, Any]]:
    table = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST:
            continue
        data = path.read_bytes()
        table[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return table


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """A folder's ``MANIFEST.json`` written by this generator, or None (absent, unreadable, other)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("generator") == GENERATOR else None


def manifest_matches(folder: Path, seed: int, size: str, check_files: bool = True) -> bool:
    """True when ``folder`` holds this generator's output for ``seed``/``size``/version and (with
    ``check_files``) every listed file exists with its listed size."""
    m = read_manifest(folder)
    if m is None or m.get("version") != SUITE_VERSION or m.get("seed") != seed or m.get("size") != size:
        return False
    if check_files:
        for rel, info in m.get("files", {}).items():
            p = Path(folder) / rel
            if not p.is_file() or p.stat().st_size != info["bytes"]:
                return False
    return True


@lru_cache(maxsize=2)
def _bank(seed: int):
    """The suite's texture bank for ``seed`` (immutable; built once per process)."""
    return make_texture_bank(np.random.default_rng([seed, 1000]))


def write_benchmark(out_dir: Path, bench: str, seed: int = 0, size: str = "default") -> dict[str, Any]:
    """Render one benchmark into ``out_dir/<bench>`` (replacing an earlier synthetic folder there;
    refusing to touch a folder this generator did not write). Returns its manifest plus
    ``seconds``."""
    _check([bench], size)
    out_dir = Path(out_dir)
    final = out_dir / bench
    if final.exists() and read_manifest(final) is None:
        raise FileExistsError(f"{final} exists and is not a synthetic suite folder (no {MANIFEST} from "
                              f"{GENERATOR!r}); refusing to overwrite it")
    t0 = time.perf_counter()
    module = import_module(f"datasets.synthetic.writers.{bench}")
    cfg = module.PRESETS[size]
    tmp = out_dir / f".{bench}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        bank = _bank(int(seed))
        rng = np.random.default_rng([seed, BENCHMARKS.index(bench)])
        summary = module.write(tmp, rng, bank, cfg)
        manifest = {
            "generator": GENERATOR, "version": SUITE_VERSION, "package_version": _package_version(),
            "benchmark": bench, "seed": seed, "size": size, "config": asdict(cfg), "summary": summary,
            "sidecar": "_synthetic/: exact ground truth the real layout lacks (see _synthetic/README.md)",
            "files": _file_table(tmp),
        }
        write_json(tmp / MANIFEST, manifest)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    manifest["seconds"] = round(time.perf_counter() - t0, 3)
    return manifest


def _index(out_dir: Path) -> dict[str, Any]:
    """Write ``out_dir/MANIFEST.json``: every synthetic benchmark folder present, with its seed,
    size, version and the SHA-256 of its manifest."""
    entries = {}
    for bench in BENCHMARKS:
        m = read_manifest(out_dir / bench)
        if m is None:
            continue
        digest = sha256_file(out_dir / bench / MANIFEST)
        entries[bench] = {"seed": m["seed"], "size": m["size"], "version": m["version"],
                          "files": len(m["files"]), "bytes": sum(f["bytes"] for f in m["files"].values()),
                          "manifest_sha256": digest}
    index = {"generator": GENERATOR, "version": SUITE_VERSION, "benchmarks": entries}
    atomic_write_json(out_dir / MANIFEST, index, indent=1, sort_keys=False, allow_nan=True)  # as write_json
    return index


def _run(args: tuple[str, str, int, str]) -> dict[str, Any]:
    out_dir, bench, seed, size = args
    return write_benchmark(Path(out_dir), bench, seed, size)


def write_suite(out_dir: Path, seed: int = 0, size: str = "default", benchmarks: Sequence[str] | None = None,
                workers: int = 1) -> dict[str, Any]:
    """Render the suite (or ``benchmarks``) into ``out_dir``; returns ``{"index": top manifest,
    "benchmarks": {bench: manifest + seconds}}``. ``workers > 1`` renders benchmarks in parallel
    processes (same bytes)."""
    names = _check(benchmarks, size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out_dir), b, int(seed), size) for b in sorted(names, key=lambda b: -_COST[b])]
    results: dict[str, dict[str, Any]] = {}
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
            for job, res in zip(jobs, pool.map(_run, jobs)):
                results[job[1]] = res
    else:
        for job in jobs:
            results[job[1]] = _run(job)
            log.info("synthetic %s: %.1f s", job[1], results[job[1]]["seconds"])
    return {"index": _index(out_dir), "benchmarks": {b: results[b] for b in names}}


def ensure_suite(out_dir: Path, seed: int = 0, size: str = "default", benchmarks: Sequence[str] | None = None,
                 workers: int = 1) -> dict[str, Any]:
    """Like :func:`write_suite`, but reuses every benchmark folder whose manifest already matches
    ``seed``/``size``/version with all files present; returns the same shape (reused benchmarks have
    ``seconds = 0`` and ``reused = True``)."""
    names = _check(benchmarks, size)
    out_dir = Path(out_dir)
    todo = [b for b in names if not manifest_matches(out_dir / b, seed, size)]
    fresh = write_suite(out_dir, seed, size, todo, workers)["benchmarks"] if todo else {}
    out: dict[str, dict[str, Any]] = {}
    for b in names:
        if b in fresh:
            out[b] = fresh[b]
        else:
            out[b] = {**(read_manifest(out_dir / b) or {}), "seconds": 0.0, "reused": True}
    return {"index": _index(out_dir), "benchmarks": out}
