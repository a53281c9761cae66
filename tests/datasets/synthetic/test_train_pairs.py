"""Training-pair sampler: API shapes, determinism, split invariance, GT consistency, viewpoint range and
disjointness from the benchmark suite's seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasets.synthetic.geometry import VIEWPOINT_BUCKETS, invert_pose, viewpoint_bucket
from datasets.synthetic.suite import BENCHMARKS
from datasets.synthetic.train_pairs import (
    TRAIN_NAMESPACE,
    PairSampler,
    PairSamplerConfig,
    _init_worker,
    _worker_arrays,
    bank_rng,
    pair_arrays,
    pair_rng,
    step_rng,
)

N = 128
KEYS = {"img", "true_shape", "pts3d", "depthmap", "camera_pose", "camera_intrinsics", "valid_mask",
        "sky_mask", "is_metric_scale", "corres", "valid_corres", "viewpoint_deg", "n_reciprocal", "pair_id"}


@pytest.fixture(scope="module")
def sampler(bank):
    cfg = PairSamplerConfig(resolutions=((48, 64), (32, 64)), portrait_prob=0.3, n_corres=N, nneg=0.5)
    return PairSampler(cfg, seed=7, bank=bank)


@pytest.fixture(scope="module")
def batch(sampler):
    return sampler.batch(3, 0, 6)


def test_shapes_and_dtypes(sampler, batch):
    h, w = sampler.resolution(3)
    for v in batch:
        assert set(v) == KEYS
        assert v["img"].shape == (6, 3, h, w) and v["img"].dtype == torch.float32
        assert v["pts3d"].shape == (6, h, w, 3) and v["pts3d"].dtype == torch.float32
        assert v["depthmap"].shape == (6, h, w)
        assert v["camera_pose"].shape == (6, 4, 4) and v["camera_intrinsics"].shape == (6, 3, 3)
        assert v["valid_mask"].dtype == torch.bool and v["sky_mask"].dtype == torch.bool
        assert torch.equal(v["sky_mask"], ~v["valid_mask"])
        assert v["is_metric_scale"].dtype == torch.bool and bool(v["is_metric_scale"].all())
        assert v["corres"].shape == (6, N, 2) and v["corres"].dtype == torch.int64
        assert v["valid_corres"].shape == (6, N) and v["valid_corres"].dtype == torch.bool
        assert v["true_shape"].tolist() == [[h, w]] * 6 and v["true_shape"].dtype == torch.int64
        assert v["viewpoint_deg"].shape == (6,) and v["viewpoint_deg"].dtype == torch.float32
        x, y = v["corres"][..., 0], v["corres"][..., 1]
        assert int(x.min()) >= 0 and int(x.max()) < w and int(y.min()) >= 0 and int(y.max()) < h
        # [-1, 1] and 8-bit quantised, as ((u8 / 255) - 0.5) / 0.5
        u8 = (v["img"] * 0.5 + 0.5) * 255
        assert float(v["img"].min()) >= -1 and float(v["img"].max()) <= 1
        assert float((u8 - u8.round()).abs().max()) < 1e-3
    assert torch.equal(batch[0]["valid_corres"], batch[1]["valid_corres"])
    assert batch[0]["pair_id"].tolist() == [[3, i] for i in range(6)]


def test_deterministic_and_split_invariant(sampler, batch):
    again = sampler.batch(3, 0, 6)
    halves = [sampler.batch(3, 0, 2), sampler.batch(3, 2, 5), sampler.batch(3, 5, 6)]
    for k in range(2):
        for key, val in batch[k].items():
            assert torch.equal(val, again[k][key]), key
            joined = torch.cat([h[k][key] for h in halves])
            if val.dtype.is_floating_point:
                torch.testing.assert_close(joined, val, atol=1e-4, rtol=1e-5)
            elif key in ("corres", "valid_corres", "n_reciprocal"):  # a rounding flip at most
                assert (joined == val).float().mean() > 0.98, key
            else:
                assert torch.equal(joined, val), key
    other = sampler.batch(4, 0, 2)
    assert not torch.equal(other[0]["camera_pose"], batch[0]["camera_pose"][:2])


def test_positive_correspondences_reproject(batch):
    v1, v2 = batch
    for b in range(6):
        ok = v1["valid_corres"][b]
        c1, c2 = v1["corres"][b][ok], v2["corres"][b][ok]
        assert len(c1) > 0
        X = v1["pts3d"][b][c1[:, 1], c1[:, 0]].double()
        assert bool(v1["valid_mask"][b][c1[:, 1], c1[:, 0]].all())
        assert bool(v2["valid_mask"][b][c2[:, 1], c2[:, 0]].all())
        P2 = torch.linalg.inv(v2["camera_pose"][b].double())
        cam = X @ P2[:3, :3].T + P2[:3, 3]
        pix = (cam @ v2["camera_intrinsics"][b].double().T)
        pix = pix[:, :2] / pix[:, 2:3]
        assert bool((cam[:, 2] > 0).all())
        assert float((pix - c2.double()).abs().max()) <= 0.5 + 1e-3
        # and back: view 2's point at the partner pixel lands on the view-1 pixel
        X2 = v2["pts3d"][b][c2[:, 1], c2[:, 0]].double()
        P1 = torch.linalg.inv(v1["camera_pose"][b].double())
        cam1 = X2 @ P1[:3, :3].T + P1[:3, 3]
        pix1 = cam1 @ v1["camera_intrinsics"][b].double().T
        assert float((pix1[:, :2] / pix1[:, 2:3] - c1.double()).abs().max()) <= 0.5 + 1e-3


def test_fraction_of_positives(batch):
    v1, _ = batch
    per_pair = v1["valid_corres"].float().mean(1)
    assert float(per_pair.max()) <= 0.5
    full = v1["n_reciprocal"] >= N // 2
    assert bool(full.any())
    assert torch.equal(per_pair[full], torch.full_like(per_pair[full], 0.5))
    # short pairs: every reciprocal pixel is used
    short = ~full
    assert torch.equal(v1["valid_corres"][short].sum(1), v1["n_reciprocal"][short])


def test_pose_intrinsics_and_depth_agree(batch):
    for v in batch:
        for b in range(6):
            P = invert_pose(v["camera_pose"][b].double().numpy())
            valid = v["valid_mask"][b].numpy()
            pts = v["pts3d"][b].double().numpy()[valid]
            z = (pts @ P[:3, :3].T + P[:3, 3])[:, 2]
            np.testing.assert_allclose(z, v["depthmap"][b].numpy()[valid], rtol=1e-4)


def test_viewpoint_distribution_covers_0_to_180(sampler):
    angles = np.array([pair_arrays(7, 0, i, 48, 64, sampler.config, sampler.bank)[-1] for i in range(300)])
    assert angles.min() < 15 and angles.max() > 165
    counts = {label: 0 for label, _, _ in VIEWPOINT_BUCKETS}
    for a in angles:
        counts[viewpoint_bucket(a)] += 1
    # roughly uniform in 0-180: every benchmark bucket well populated, about half above 90 degrees
    assert min(counts.values()) >= 30, counts
    assert 0.3 < counts["90-180"] / len(angles) < 0.7, counts


def test_resolutions_and_portrait(sampler):
    shapes = {sampler.resolution(s) for s in range(60)}
    assert shapes <= {(48, 64), (32, 64), (64, 48), (64, 32)}
    assert any(h > w for h, w in shapes) and any(h < w for h, w in shapes)
    with pytest.raises(ValueError, match="multiple of 16"):
        PairSamplerConfig(resolutions=((50, 64),))


def test_worker_path_gives_the_same_pairs(sampler):
    _init_worker(7, sampler.config, sampler.bank)
    a = _worker_arrays((2, 5, 48, 64))
    b = pair_arrays(7, 2, 5, 48, 64, sampler.config, sampler.bank)
    for x, y in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)


def _state(rng: np.random.Generator) -> int:
    return int(rng.bit_generator.state["state"]["state"])


def test_suite_seeds_are_never_used_for_training():
    """Every suite generator (``default_rng([seed, index])`` for its benchmarks and ``[seed, 1000]`` for its
    texture bank) differs from every training generator; training seed sequences all carry the training
    namespace as first spawn-key word, which suite seed sequences never have."""
    suite = {_state(np.random.default_rng([s, i])) for s in range(8)
             for i in [*range(len(BENCHMARKS)), 1000]}
    train = set()
    for s in range(8):
        train.add(_state(bank_rng(s)))
        for step in range(10):
            train.add(_state(step_rng(s, step)))
            for i in range(10):
                rng = pair_rng(s, step, i)
                assert rng.bit_generator.seed_seq.spawn_key[0] == TRAIN_NAMESPACE
                train.add(_state(rng))
    assert len(train) == 8 * (1 + 10 + 100)
    assert not suite & train
    assert np.random.default_rng([0, 0]).bit_generator.seed_seq.spawn_key == ()


def test_worker_processes_give_the_same_batches(sampler):
    pooled = PairSampler(sampler.config, seed=7, bank=sampler.bank, workers=1)
    try:
        assert pooled.workers == 1
        for step in (3, 4):  # the second is served from the prefetch
            a, b = pooled.batch(step, 1, 3), sampler.batch(step, 1, 3)
            for k in range(2):
                for key in ("camera_pose", "camera_intrinsics", "pts3d", "img"):
                    torch.testing.assert_close(a[k][key], b[k][key])
                assert torch.equal(a[k]["corres"], b[k]["corres"])
    finally:
        pooled.close()
