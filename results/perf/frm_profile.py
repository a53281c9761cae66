"""Where the screened FRM's time goes (issue 9): kernel times of one graph replay vs the whole call.

Run on the GPU machine: ``python3 results/perf/frm_profile.py`` (prints a table; no files)."""

from __future__ import annotations

import time
from functools import partial

import torch

from benchmarks.timing import smooth_descriptor_pair
from benchmarks.timing_suite import profile_call
from mast3r.matching import grid_seeds
from mast3r.matching.gpu.frm import DeviceFRM


def main() -> None:
    dev = torch.device("cuda")
    d0, d1 = smooth_descriptor_pair((384, 512), 24, seed=0)
    f0, f1 = d0.to(dev).reshape(-1, 24), d1.to(dev).reshape(-1, 24)
    seeds = torch.from_numpy(grid_seeds((384, 512), 8)).to(dev)
    for precision in ("screened", "ieee"):
        engine = DeviceFRM(len(f0), len(f1), 24, seeds, 10, precision=precision).capture()
        for name, fn in (("load + replay", partial(engine, f0, f1)), ("replay only", engine.graph.replay)):
            for _ in range(5):
                fn()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(50):
                fn()
            torch.cuda.synchronize()
            print(f"{precision:9s} {name:14s} {(time.perf_counter() - t0) / 50 * 1e3:7.3f} ms/call")
        prof = profile_call(engine.graph.replay, dev, steps=5, top=12)
        print(f"{precision}: kernel time per replay {prof['categories']['total']:.3f} ms")
        for row in prof["kernels"]:
            print(f"  {row['ms']:7.3f} ms  {row['calls']:5d} calls  {row['name'][:70]}")


if __name__ == "__main__":
    main()
