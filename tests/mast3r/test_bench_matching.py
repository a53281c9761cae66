"""CPU timings (pytest-benchmark): FRM at subsample 8 vs dense mutual NN on 512x384 maps.

Skipped unless benchmarks are enabled::

    pytest tests/mast3r/test_bench_matching.py --benchmark-enable \\
        --benchmark-json=results/perf/frm_vs_dense_cpu.json

The descriptor maps are smooth unit-norm 24-D fields (random Fourier features); view 1 samples
view 0's field at an affine warp plus noise, so FRM converges as on real MASt3R descriptors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mast3r.matching import dense_reciprocal_nn, fast_reciprocal_nn

H, W, D = 384, 512, 24
WARP = np.array([[0.95, 0.08, 12.0], [-0.06, 1.02, -7.0]])  # view-1 pixel -> view-0 pixel (affine)

pytestmark = [pytest.mark.bench, pytest.mark.filterwarnings("ignore:Benchmark fixture was not used")]


def _field(xy: np.ndarray, freqs: np.ndarray, phases: np.ndarray) -> np.ndarray:
    f = np.cos(xy @ freqs.T + phases)
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def make_maps() -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, D) float32 view-0 and view-1 descriptor maps (CPU tensors)."""
    rng = np.random.default_rng(0)
    freqs = rng.normal(scale=1 / 25, size=(D, 2))
    phases = rng.uniform(0, 2 * np.pi, D)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    xy = np.stack([xs, ys], -1)
    d0 = _field(xy, freqs, phases)
    d1 = _field(xy @ WARP[:, :2].T + WARP[:, 2], freqs, phases) + rng.normal(scale=0.02, size=(H, W, D))
    d1 /= np.linalg.norm(d1, axis=-1, keepdims=True)
    return torch.from_numpy(d0.astype(np.float32)), torch.from_numpy(d1.astype(np.float32))


@pytest.fixture(scope="module")
def maps() -> tuple[torch.Tensor, torch.Tensor]:
    return make_maps()


@pytest.fixture(autouse=True)
def _only_when_enabled(benchmark):
    if benchmark.disabled:
        pytest.skip("benchmarks are disabled (run with --benchmark-enable)")


def _on(maps, device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return tuple(m.to(device) for m in maps)


@pytest.mark.parametrize("device,backend", [("cpu", "torch"), ("cpu", "faiss"), ("cuda", "torch")])
def test_frm_subsample8(benchmark, maps, device, backend):
    benchmark.group = f"frm_vs_dense_512x384_{device}"
    args = _on(maps, device)
    xy0, xy1, stats = benchmark.pedantic(
        fast_reciprocal_nn, args=args, kwargs=dict(subsample=8, backend=backend, return_stats=True),
        rounds=5 if device == "cpu" else 50, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(matches=len(xy0), iterations=stats.num_iterations,
                                query_sizes=list(stats.query_sizes), threads=torch.get_num_threads())
    pred0 = xy1 @ WARP[:, :2].T + WARP[:, 2]  # view-1 pixel p shows view-0 pixel A p + t
    benchmark.extra_info["within_2px"] = float(np.mean(np.linalg.norm(pred0 - xy0, axis=1) < 2))
    assert len(xy0) > 1000


@pytest.mark.parametrize("device,backend,block_size", [("cpu", "torch", 2**12), ("cpu", "faiss", None),
                                                       ("cuda", "torch", 2**12), ("cuda", "torch", 2**14)])
def test_dense_mutual_nn(benchmark, maps, device, backend, block_size):
    benchmark.group = f"frm_vs_dense_512x384_{device}"
    args = _on(maps, device)
    xy0, xy1 = benchmark.pedantic(dense_reciprocal_nn, args=args,
                                  kwargs=dict(backend=backend, block_size=block_size),
                                  rounds=2 if device == "cpu" else 10, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(matches=len(xy0), threads=torch.get_num_threads())
    pred0 = xy1 @ WARP[:, :2].T + WARP[:, 2]
    benchmark.extra_info["within_2px"] = float(np.mean(np.linalg.norm(pred0 - xy0, axis=1) < 2))
    assert len(xy0) > 10000
