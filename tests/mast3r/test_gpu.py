"""GPU-only checks (opt-in ``gpu`` marker; run through the device tool): the Triton matching path
equals the CPU reference, the fast bf16 forward agrees with the float32 path, graphs replay exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.timing import smooth_descriptor_pair, smooth_image_pairs
from benchmarks.timing_suite import accuracy
from mast3r.fast import CudaGraphForward, FastOptions, make_fast
from mast3r.matching import dense_reciprocal_nn, fast_reciprocal_nn, grid_seeds
from mast3r.matching.gpu.dense import screened_mutual_nn
from mast3r.matching.gpu.frm import DeviceFRM, frm_device
from mast3r.matching.gpu.kernels import nn_search
from mast3r.matching.gpu.screen import ScreenConfig, screened_nn
from mast3r.model import Mast3r

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("shape", [(384, 512), (97, 131)])
def test_frm_gpu_equals_cpu_on_smooth_maps(shape):
    d0, d1 = smooth_descriptor_pair(shape, 24, seed=3)
    cpu = fast_reciprocal_nn(d0, d1, 8, return_stats=True)
    gpu = fast_reciprocal_nn(d0.cuda(), d1.cuda(), 8, return_stats=True)
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_array_equal(gpu[1], cpu[1])
    assert gpu[2] == cpu[2]  # same iteration trace, iterations, seeds, matches
    assert len(cpu[0]) > 100


@pytest.mark.parametrize("precision", ["screened", "ieee"])
def test_frm_device_loop_never_synchronises(precision):
    d0, d1 = smooth_descriptor_pair((384, 512), 24, seed=4)
    f0, f1 = d0.cuda().reshape(-1, 24), d1.cuda().reshape(-1, 24)
    seeds = torch.from_numpy(grid_seeds((384, 512), 8)).cuda()
    engine = DeviceFRM(len(f0), len(f1), 24, seeds, 10, precision=precision)
    engine(f0, f1)  # compile the kernels first
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        res = engine(f0, f1)
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    sizes, niter = res.trace()  # the one host read, after the loop
    assert sizes[0] == len(seeds) and 1 <= niter <= 10


@pytest.mark.parametrize("precision", ["ieee", "tf32x3"])
def test_nn_search_equals_float64_argmax_and_breaks_ties_low(precision):
    gen = torch.Generator().manual_seed(0)
    db = torch.randn(5000, 24, generator=gen)
    db = db / db.norm(dim=1, keepdim=True)
    q = torch.randn(700, 24, generator=gen)
    exact = (q.double() @ db.double().T).argmax(1)
    got = nn_search(q.cuda(), db.cuda(), precision=precision).cpu()
    assert (got == exact).float().mean() == 1.0
    # small integers: every dot product is exact, so ties are real ties; the lowest index must win
    dbi = torch.randint(-2, 3, (9000, 24), generator=gen).float()
    qi = torch.randint(-2, 3, (300, 24), generator=gen).float()
    scores = qi.double() @ dbi.double().T
    assert (scores == scores.max(1, keepdim=True).values).sum(1).gt(1).any()
    for block in [(64, 64, 4), (32, 128, 4)]:
        got = nn_search(qi.cuda(), dbi.cuda(), block=block).cpu()
        assert torch.equal(got, scores.argmax(1))  # torch.argmax: first maximal index


def test_device_frm_graph_replay_equals_eager():
    d0, d1 = smooth_descriptor_pair((192, 256), 24, seed=6)
    f0, f1 = d0.cuda().reshape(-1, 24), d1.cuda().reshape(-1, 24)
    seeds = torch.from_numpy(grid_seeds((192, 256), 8)).cuda()
    eager = frm_device(f0, f1, seeds, 10)
    eager = [t.clone() for t in (eager.xy0, eager.xy1, eager.active, eager.counts)]
    engine = DeviceFRM(len(f0), len(f1), 24, seeds, 10).capture()
    for _ in range(2):  # replays reset their state
        res = engine(f0, f1)
        for a, b in zip(eager, (res.xy0, res.xy1, res.active, res.counts)):
            assert torch.equal(a, b)


def test_dense_gpu_equals_torch_path():
    d0, d1 = smooth_descriptor_pair((96, 128), 24, seed=5)
    cpu = dense_reciprocal_nn(d0, d1)
    gpu = dense_reciprocal_nn(d0.cuda(), d1.cuda())
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_array_equal(gpu[1], cpu[1])


@pytest.fixture(scope="module")
def gpu_model(small_model):
    model = Mast3r.from_config(small_model.config, device="cuda")
    model.load_state_dict(small_model.state_dict())
    return model


def test_fast_bf16_forward_agrees_with_float32(gpu_model):
    img0, img1 = smooth_image_pairs(2, (384, 512), seed=1, device="cuda")
    fast = make_fast(gpu_model, FastOptions())
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        ref = gpu_model(img0, img1)
        out = fast(img0, img1)
    assert gpu_model.backbone_dtype == torch.float32  # the original is untouched
    for view in (out.view0, out.view1):
        for name, t in view.items():
            assert t.dtype == torch.float32 and torch.isfinite(t).all(), name
    for pair in range(2):
        acc = accuracy(ref, out, pair)
        print(pair, acc)
        assert acc["pts3d_rel"] < 0.02
        assert acc["desc_cos_median"] > 0.999
        assert acc["frm_same"] > 0.9


def test_cuda_graph_replays_the_eager_forward(gpu_model):
    img0, img1 = smooth_image_pairs(2, (256, 320), seed=2, device="cuda")
    fast = make_fast(gpu_model)
    with torch.inference_mode():
        eager = fast(img0, img1)
        graphed = CudaGraphForward(fast, img0, img1)
        out = graphed(img0.flip(0), img1.flip(0))  # new inputs go through the static buffers
        again = fast(img0.flip(0), img1.flip(0))
    torch.testing.assert_close(out.view1.pts3d, again.view1.pts3d, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out.view1.pts3d, eager.view1.pts3d)
    with pytest.raises(ValueError, match="captured for"):
        graphed(img0[:1], img1[:1])


@pytest.mark.parametrize(
    "cfg", [ScreenConfig(), ScreenConfig(128, 128, 8, 2, 1024), ScreenConfig(16, 32, 4, 1, 32)]
)
def test_screened_nn_equals_float64_argmax(cfg):
    gen = torch.Generator().manual_seed(1)
    d0, d1 = smooth_descriptor_pair((96, 128), 24, seed=7)
    f0, f1 = d0.reshape(-1, 24), d1.reshape(-1, 24)
    exact = (f0.double() @ f1.double().T).argmax(1)
    got, stats = screened_nn(f0.cuda(), f1.cuda(), config=cfg, return_stats=True)
    assert torch.equal(got.cpu(), exact)
    assert len(f0) <= stats.candidates < 16 * len(f0) and stats.units_scanned < stats.units
    # odd sizes, large and tiny magnitudes (power-of-two rescaling into fp16 range)
    q, db = torch.randn(333, 24, generator=gen) * 1e5, torch.randn(1001, 24, generator=gen) * 1e-6
    exact = (q.double() @ db.double().T).argmax(1)
    assert torch.equal(screened_nn(q.cuda(), db.cuda(), config=cfg).cpu(), exact)
    # exact ties: the lowest index wins; all-zero queries tie everywhere (exhaustive fallback)
    dbi = torch.randint(-2, 3, (5000, 24), generator=gen).float()
    qi = torch.randint(-2, 3, (200, 24), generator=gen).float()
    qi[:3] = 0
    scores = qi.double() @ dbi.double().T
    assert torch.equal(screened_nn(qi.cuda(), dbi.cuda(), config=cfg).cpu(), scores.argmax(1))


def _fp64_argmax(q: torch.Tensor, db: torch.Tensor, block: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """(best index, best score) in float64 on the GPU, blockwise (first index on ties)."""
    idx, val = [], []
    for i in range(0, len(q), block):
        v, j = (q[i : i + block].double() @ db.double().T).max(dim=1)
        idx.append(j)
        val.append(v)
    return torch.cat(idx), torch.cat(val)


def test_screened_dense_on_full_size_maps_is_the_float64_argmax():
    d0, d1 = smooth_descriptor_pair((384, 512), 24, seed=3)
    f0, f1 = d0.cuda().reshape(-1, 24), d1.cuda().reshape(-1, 24)
    from mast3r.matching.gpu.dense import dense_mutual_nn_device

    screened = dense_mutual_nn_device(f0, f1)
    exhaustive = dense_mutual_nn_device(f0, f1, method="exhaustive")
    for got, fp32, (q, db) in zip(screened, exhaustive, ((f0, f1), (f1, f0))):
        best, best_score = _fp64_argmax(q, db)
        assert torch.equal(got, best)
        # the float32 kernel differs only where two candidates are within float32 rounding
        diff = (fp32 != best).nonzero()[:, 0]
        print(f"float32 exhaustive != float64 on {len(diff)} of {len(q)} rows")
        other = (q[diff].double() * db[fp32[diff]].double()).sum(1)
        assert len(diff) < 1e-3 * len(q) and ((best_score[diff] - other) < 1e-6).all()


@pytest.mark.parametrize(
    "cfg",
    [
        ScreenConfig(),
        ScreenConfig(16, 32, 4, 1, 96, 4),  # many splits and row groups on small inputs
        ScreenConfig(32, 16, 4, 2, 48, 1),
        ScreenConfig(128, 64, 8, 3, 1024, 2),
    ],
)
def test_screened_mutual_nn_is_the_float64_argmax_both_ways(cfg):
    gen = torch.Generator().manual_seed(2)

    def check(f0: torch.Tensor, f1: torch.Tensor) -> tuple:
        (nn01, nn10), stats = screened_mutual_nn(f0.cuda(), f1.cuda(), config=cfg, return_stats=True)
        assert nn01.dtype == nn10.dtype == torch.int64
        assert nn01.shape == (len(f0),) and nn10.shape == (len(f1),)
        assert torch.equal(nn01, _fp64_argmax(f0.cuda(), f1.cuda())[0])
        assert torch.equal(nn10, _fp64_argmax(f1.cuda(), f0.cuda())[0])
        return stats

    d0, d1 = smooth_descriptor_pair((96, 128), 24, seed=7)
    s01, s10 = check(d0.reshape(-1, 24), d1[:, :101].reshape(-1, 24))  # N0 != N1, odd
    assert s01.units_scanned < s01.units and s10.units_scanned < s10.units
    assert len(d0.reshape(-1, 24)) <= s01.candidates < 16 * len(d0.reshape(-1, 24))
    # odd sizes, large and tiny magnitudes (power-of-two rescaling of each side into fp16 range)
    check(torch.randn(333, 24, generator=gen) * 1e5, torch.randn(1001, 24, generator=gen) * 1e-6)
    check(torch.randn(1001, 24, generator=gen) * 1e-30, torch.randn(333, 24, generator=gen) * 1e30)
    # exact ties (small integers, duplicated rows): the lowest index wins; all-zero rows tie everywhere
    qi = torch.randint(-2, 3, (700, 24), generator=gen).float()
    dbi = torch.randint(-2, 3, (3001, 24), generator=gen).float()
    qi[:3], dbi[5], dbi[100:140] = 0, 0, dbi[7]
    scores = qi.double() @ dbi.double().T
    assert (scores == scores.max(1, keepdim=True).values).sum(1).gt(1).any()
    check(qi, dbi)
    # smaller than one block, either side or both; other dimension
    for n0, n1 in [(1, 1), (3, 200), (200, 3), (5, 7)]:
        check(torch.randn(n0, 24, generator=gen), torch.randn(n1, 24, generator=gen))
    check(torch.randn(77, 7, generator=gen), torch.randn(91, 7, generator=gen))
    # everything ties (all-zero f0): the exhaustive fallback, still the lowest index
    s01, s10 = check(torch.zeros(1500, 24), torch.randn(2000, 24, generator=gen))
    assert s01.candidates == 1500 * 2000 and s10.candidates == 2000 * 1500


@pytest.mark.parametrize("shape", [(384, 512), (97, 131)])
def test_screened_frm_equals_cpu_and_replays(shape):
    d0, d1 = smooth_descriptor_pair(shape, 24, seed=3)
    cpu = fast_reciprocal_nn(d0, d1, 8, return_stats=True)
    f0, f1 = d0.cuda().reshape(-1, 24), d1.cuda().reshape(-1, 24)
    seeds = torch.from_numpy(grid_seeds(shape, 8)).cuda()
    ieee = frm_device(f0, f1, seeds, 10, precision="ieee")
    ieee = [t.clone() for t in (ieee.xy0, ieee.xy1, ieee.active, ieee.counts)]
    engine = DeviceFRM(len(f0), len(f1), 24, seeds, 10, precision="screened").capture()
    for _ in range(2):
        res = engine(f0, f1)
        assert int(res.overflow.item()) == 0
        for a, b in zip(ieee, (res.xy0, res.xy1, res.active, res.counts)):
            assert torch.equal(a, b)
    assert res.trace()[0] == list(cpu[2].query_sizes)


def test_screened_frm_falls_back_when_everything_ties():
    f1 = torch.randn(4000, 24, device="cuda")
    f0 = torch.zeros(3000, 24, device="cuda")
    seeds = torch.arange(0, 3000, 7, device="cuda")
    engine = DeviceFRM(len(f0), len(f1), 24, seeds, 10, precision="screened")
    assert int(engine(f0, f1).overflow.item()) == 1
    res = frm_device(f0, f1, seeds, 10, precision="screened")
    ref = frm_device(f0, f1, seeds, 10, precision="ieee")
    assert torch.equal(res.xy1, ref.xy1) and torch.equal(res.xy0, ref.xy0)
