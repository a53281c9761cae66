"""The block-wise InfoNCE equals plain autograd on the full similarity matrix (values and gradients)."""

from __future__ import annotations

import pytest
import torch

from mast3r.train import InfoNCE
from mast3r.train.infonce_chunked import infonce_dot


@pytest.mark.parametrize("mode, pad", [("proper", 0), ("dual", 0), ("all", 0), ("all", 5)])
@pytest.mark.parametrize("block_elems", [1, 2 * 7 * 3, 1 << 20])  # one row, 3 rows, everything at once
def test_blockwise_equals_dense(mode, pad, block_elems):
    g = torch.Generator().manual_seed(1)
    B, N, D = 2, 7, 4
    d1 = torch.randn(B, N, D, generator=g, dtype=torch.float64, requires_grad=True)
    d2 = torch.randn(B, N + pad, D, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(B, N, generator=g, dtype=torch.float64)
    crit = InfoNCE(mode=mode, temperature=0.3, eps=1e-3)  # eps large enough that some rows are capped
    got = infonce_dot(d1, d2, 0.3, mode, 1e-3, max_block_elems=block_elems)
    want = crit.per_query_dense(d1, d2)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g_got = torch.autograd.grad((got * weights).sum(), [d1, d2])
    g_want = torch.autograd.grad((want * weights).sum(), [d1, d2])
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_capped_rows_have_no_gradient_and_nan_counts_as_minus_inf():
    d1 = torch.tensor([[[1.0], [-1.0]]], dtype=torch.float64, requires_grad=True)
    d2 = torch.tensor([[[1.0], [1.0]]], dtype=torch.float64)
    loss = infonce_dot(d1, d2, 0.01, "dual", 1e-3)
    assert loss[0, 1].item() == pytest.approx(-torch.log(torch.tensor(1e-3)).item())
    loss[0, 1].backward()
    assert not d1.grad.any()
    nan2 = torch.tensor([[[1.0], [float("nan")]]], dtype=torch.float64)
    val = infonce_dot(d1.detach(), nan2, 1.0, "proper", 1e-8)
    want = InfoNCE(mode="proper", temperature=1.0).per_query_dense(d1.detach(), nan2)
    torch.testing.assert_close(val, want, equal_nan=True)  # an all-NaN column: 0/0 officially too


def test_refuses_padding_outside_mode_all():
    with pytest.raises(ValueError, match="mode='all'"):
        infonce_dot(torch.zeros(1, 2, 3), torch.zeros(1, 3, 3), 0.1, "proper", 1e-8)
