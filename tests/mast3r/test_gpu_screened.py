"""The fp16 screen's error bound and tables (CPU; the kernels themselves run in tests/mast3r/test_gpu.py)."""

from __future__ import annotations

import pytest
import torch

from mast3r.matching.gpu_screened import ScreenConfig, _pow2_scale, _Tables, score_error_bound


def _fp16_scores(q: torch.Tensor, db: torch.Tensor) -> torch.Tensor:
    """What the tensor cores compute: fp16-rounded inputs, products exact, float64 sum here."""
    return q.half().double() @ db.half().double().T


def test_bound_covers_fp16_error_and_is_tight():
    gen = torch.Generator().manual_seed(0)
    for scale in (1.0, 1e-3):  # 1e-3: many elements in the fp16 subnormal range
        q = torch.randn(300, 24, generator=gen)
        db = torch.randn(2000, 24, generator=gen)
        q, db = q / q.norm(dim=1, keepdim=True) * scale, db / db.norm(dim=1, keepdim=True)
        q, db = _pow2_scale(q), _pow2_scale(db)
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
    y = _pow2_scale(x)
    ratio = y / x
    assert torch.all(ratio == ratio[0, 0]) and float(torch.log2(ratio[0, 0])).is_integer()
    assert 0.5 < float(y.abs().max()) <= 1.0
    assert torch.equal(_pow2_scale(torch.zeros(2, 3)), torch.zeros(2, 3))


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
