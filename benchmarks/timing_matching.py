"""Matching benchmarks behind ``mast3r-bench time frm|dense``: FRM and dense mutual NN on smooth
(H, W, 24) descriptor maps, every GPU variant checked against the CPU reference / float64.

Each returns a list of JSON-friendly rows (times in ms, see :mod:`benchmarks.timing`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from benchmarks.timing import smooth_descriptor_pair, time_fn
from mast3r.matching import dense_reciprocal_nn, fast_reciprocal_nn, grid_seeds, merge_correspondences

__all__ = ["FRM_SWEEP", "DENSE_SWEEP", "SCREEN_SWEEP", "bench_frm", "bench_dense"]

FRM_SWEEP = (
    ("ieee", (128, 64, 8)),
    ("ieee", (64, 64, 4)),
    ("ieee", (32, 64, 4)),
    ("ieee", (64, 32, 4)),
    ("tf32x3", (32, 64, 4)),
    ("screened", (64, 64, 4)),
    ("screened", (64, 128, 4)),
    ("screened", (64, 32, 4)),
)
"""(precision, (BQ, BN, num_warps)) configurations timed by ``bench_frm`` (screened: BN only)."""
DENSE_SWEEP = (("ieee", (64, 64, 4)),)
"""Exhaustive (precision, (BQ, BN, num_warps)) configurations timed by ``bench_dense``."""
SCREEN_SWEEP = (
    (64, 64, 4, 3, 4096, 8),
    (64, 64, 4, 3, 2048, 8),
    (64, 64, 4, 3, 1024, 8),
    (64, 64, 4, 4, 4096, 8),
    (64, 64, 4, 3, 4096, 16),
    (64, 64, 4, 3, 2048, 16),
    (64, 64, 4, 3, 4096, 4),
    (64, 128, 4, 3, 4096, 8),
)
"""Screened dense shapes (``ScreenConfig`` fields: bm, bn, warps, stages, split_cols, row_group: the
joint screen keeps column maxima per group of row_group * bm rows) timed too."""


def bench_frm(
    shape: tuple[int, int],
    device: torch.device,
    *,
    subsample: int = 8,
    warmup: int = 5,
    repeats: int = 30,
    seed: int = 0,
    baseline_repeats: int = 10,
) -> list[dict[str, Any]]:
    """FRM on smooth (H, W, 24) maps: CPU reference once, then GPU backends; identity vs the CPU."""
    d0, d1 = smooth_descriptor_pair(shape, 24, seed)
    t0 = time.perf_counter()
    ref = fast_reciprocal_nn(d0, d1, subsample, return_stats=True)
    rows: list[dict[str, Any]] = [
        {
            "variant": "cpu torch (reference)",
            "stats": {"median_ms": (time.perf_counter() - t0) * 1e3},
            "matches": len(ref[0]),
            "query_sizes": list(ref[2].query_sizes),
            "identical": True,
        }
    ]
    if device.type != "cuda":
        return rows
    g0, g1 = d0.to(device), d1.to(device)
    seeds = torch.from_numpy(grid_seeds(shape, subsample)).to(device)

    from mast3r.matching.gpu.frm import DeviceFRM

    f0, f1 = g0.reshape(-1, 24), g1.reshape(-1, 24)

    def engine_call(engine: DeviceFRM) -> Callable[[], tuple[np.ndarray, ...]]:
        def run() -> tuple[np.ndarray, ...]:  # the API's result: converged seeds, merged, on the host
            res = engine(f0, f1)
            keep = res.active == 0
            return merge_correspondences(
                res.xy0[keep].cpu().numpy(), res.xy1[keep].cpu().numpy(), shape, shape
            )

        return run

    variants: list[tuple[str, Callable[[], Any], int]] = [
        (
            "gpu torch (host sync per step)",
            lambda: fast_reciprocal_nn(g0, g1, subsample, backend="torch"),
            baseline_repeats,
        ),
        (
            "gpu triton, fast_reciprocal_nn (auto: screened, eager)",
            lambda: fast_reciprocal_nn(g0, g1, subsample),
            repeats,
        ),
    ]
    for precision, block in FRM_SWEEP:
        engine = DeviceFRM(len(f0), len(f1), 24, seeds, 10, precision=precision, block=block)
        variants.append((f"gpu triton {precision} eager {block}", engine_call(engine), repeats))
        graphed = DeviceFRM(len(f0), len(f1), 24, seeds, 10, precision=precision, block=block).capture()
        variants.append((f"gpu triton {precision} graph {block}", engine_call(graphed), repeats))
    for name, fn, reps in variants:
        out = fn()
        same = bool(np.array_equal(out[0], ref[0]) and np.array_equal(out[1], ref[1]))
        stats = time_fn(fn, device, warmup=min(warmup, reps), repeats=reps)
        rows.append({"variant": name, "stats": stats.to_dict(), "matches": len(out[0]), "identical": same})
    return rows


def bench_dense(
    shape: tuple[int, int],
    device: torch.device,
    *,
    warmup: int = 3,
    repeats: int = 30,
    seed: int = 0,
    baseline_repeats: int = 5,
    sweep_repeats: int = 10,
    check_rows: int = 4096,
) -> list[dict[str, Any]]:
    """Dense mutual NN over all pixels on smooth maps; agreement vs float64 on ``check_rows`` rows."""
    from mast3r.matching.gpu.dense import dense_mutual_nn_device

    d0, d1 = smooth_descriptor_pair(shape, 24, seed)
    f0, f1 = d0.reshape(-1, 24), d1.reshape(-1, 24)
    rows_idx = torch.randperm(len(f0), generator=torch.Generator().manual_seed(seed))[:check_rows]
    exact = (f0[rows_idx].double() @ f1.double().T).argmax(dim=1)
    out: list[dict[str, Any]] = []
    g0, g1 = d0.to(device), d1.to(device)
    variants: list[tuple[str, Callable[[], Any], int]] = [
        ("gpu torch blockwise fp32", lambda: dense_reciprocal_nn(g0, g1, backend="torch"), baseline_repeats),
        ("gpu triton (auto: fp16 screen + fp64 re-check)", lambda: dense_reciprocal_nn(g0, g1), repeats),
    ]
    if device.type == "cuda":
        gf0, gf1 = g0.reshape(-1, 24), g1.reshape(-1, 24)
        from mast3r.matching.gpu.screen import ScreenConfig

        fn: Callable[[], Any]
        for precision, block in DENSE_SWEEP:
            fn = partial(
                dense_mutual_nn_device, gf0, gf1, method="exhaustive", precision=precision, block=block
            )
            variants.append((f"gpu triton exhaustive {precision} {block} (nn only)", fn, sweep_repeats))
        for cfg in SCREEN_SWEEP:
            fn = partial(dense_mutual_nn_device, gf0, gf1, screen=ScreenConfig(*cfg))
            variants.append((f"gpu triton screened fp16 {cfg} (nn only)", fn, sweep_repeats))
    base = None
    for name, fn, reps in variants:
        res = fn()
        stats = time_fn(fn, device, warmup=min(warmup, reps), repeats=reps)
        row: dict[str, Any] = {"variant": name, "stats": stats.to_dict()}
        if name.endswith("(nn only)"):
            nn01 = res[0].cpu()
            row["nn_equal_fp64_on_sample"] = float((nn01[rows_idx] == exact).double().mean())
        else:
            row["matches"] = len(res[0])
            key = {tuple(r) for r in np.concatenate(res, axis=1).tolist()}
            base = base if base is not None else key
            row["same_as_torch"] = key == base
        out.append(row)
    from mast3r.matching.nn import mutual_nearest_neighbours

    nn01, _ = mutual_nearest_neighbours(g0.reshape(-1, 24), g1.reshape(-1, 24))
    out[1]["nn_equal_fp64_on_sample"] = float((nn01.cpu()[rows_idx] == exact).double().mean())
    if device.type == "cuda":
        from mast3r.matching.gpu.screen import screened_nn

        _, st = screened_nn(g0.reshape(-1, 24), g1.reshape(-1, 24), return_stats=True)
        out[1]["screen"] = {"candidates": st.candidates, "units_scanned": st.units_scanned, "units": st.units}
    return out
