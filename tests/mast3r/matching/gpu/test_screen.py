"""The fp16 screen's error bound and tables (CPU; the kernels themselves run in tests/mast3r/test_gpu.py)."""

from __future__ import annotations

import pytest
import torch

from mast3r.matching.gpu.dense import _JointTables
from mast3r.matching.gpu.screen import ScreenConfig, _Tables
from mast3r.matching.gpu.tables import margins, pow2_scale, score_error_bound


def _fp16_scores(q: torch.Tensor, db: torch.Tensor) -> torch.Tensor:
    """What the tensor cores compute: fp16-rounded inputs, products exact, float64 sum here."""
    return q.half().double() @ db.half().double().T


def test_bound_covers_fp16_error_and_is_tight():
    gen = torch.Generator().manual_seed(0)
    for scale in (1.0, 1e-3):  # 1e-3: many elements in the fp16 subnormal range
        q = torch.randn(300, 24, generator=gen)
        db = torch.randn(2000, 24, generator=gen)
        q, db = q / q.norm(dim=1, keepdim=True) * scale, db / db.norm(dim=1, keepdim=True)
        q, db = pow2_scale(q), pow2_scale(db)
        err = (_fp16_scores(q, db) - q.double() @ db.double().T).abs()
        bound = score_error_bound(q.norm(dim=1), float(db.norm(dim=1).max()), 24).double()
        assert (err <= bound[:, None]).all()
        assert err.max() > 0.1 * bound.max()  # not vacuous: within 10x of what actually happens


def test_bound_grows_with_norms_and_dimension():
    n = torch.tensor([0.5, 1.0, 2.0])
    b = score_error_bound(n, 1.0, 24)
    assert (b[1:] > b[:-1]).all()
    assert (score_error_bound(n, 1.0, 64) > b).all()
    assert float(score_error_bound(torch.zeros(1), 0.0, 24)) > 0  # zero rows still get a margin


def test_pow2_scale_is_exact_and_in_fp16_range():
    x = torch.tensor([[3.0e5, -1.0], [2.0, 0.5]])
    y = pow2_scale(x)
    ratio = y / x
    assert torch.all(ratio == ratio[0, 0]) and float(torch.log2(ratio[0, 0])).is_integer()
    assert 0.5 < float(y.abs().max()) <= 1.0
    assert torch.equal(pow2_scale(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_tables_pad_with_the_last_column_and_zero_dims():
    q, db = torch.randn(5, 24), torch.randn(300, 24)
    t = _Tables(q, db, ScreenConfig(16, 64, 4, 1, 100))
    assert t.per == 128 and t.n_split == 3 and t.nb_pad == 384 and t.dp == 32
    assert t.a.dtype == torch.float16 and t.a.shape == (5, 32) and not t.a[:, 24:].any()
    assert torch.equal(t.bt[:, 300:], t.bt[:, 299:300].expand(32, 84))
    assert not t.bt[24:].any()
    assert (t.margin > 0).all() and t.margin.shape == (5,)


def test_screen_config_rejects_bad_shapes():
    with pytest.raises(ValueError, match="power of two"):
        ScreenConfig(bm=96)
    with pytest.raises(ValueError):
        ScreenConfig(bn=64, split_cols=32)


def test_screen_config_row_group():
    assert ScreenConfig().row_group == 8
    assert ScreenConfig(128, 64, 4, 3, 1024).row_group == 8  # the five positional fields still work
    assert ScreenConfig(64, 64, 4, 3, 4096, 1).row_group == 1
    for bad in (0, 3, 64):
        with pytest.raises(ValueError, match="row_group"):
            ScreenConfig(row_group=bad)


def test_joint_tables_pad_with_copies_and_share_the_scaled_space():
    f0, f1 = torch.randn(100, 24), torch.randn(300, 24) * 1e3
    t = _JointTables(f0, f1, ScreenConfig(16, 64, 4, 1, 100, 2))
    assert t.group == 32 and t.n_group == 4 and t.per == 128 and t.n_split == 3 and t.dp == 32
    assert t.a0.dtype == torch.float16 and t.a0.shape == (128, 32) and not t.a0[:, 24:].any()
    assert torch.equal(t.a0[100:], t.a0[99:100].expand(28, 32))  # padded rows repeat the last one
    assert t.bt1.shape == (32, 384) and torch.equal(t.bt1[:, 300:], t.bt1[:, 299:300].expand(32, 84))
    t.second_side()
    assert torch.equal(t.bt0, t.a0.T) and torch.equal(t.a1, t.bt1[:, :300].T)
    # each side scaled by its own power of two; margins as for the two single directions
    assert torch.equal(t.margin0, margins(t.s0, t.s1, 24)) and t.margin0.shape == (100,)
    assert torch.equal(t.margin1, margins(t.s1, t.s0, 24)) and t.margin1.shape == (300,)
