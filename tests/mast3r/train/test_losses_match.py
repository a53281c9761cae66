"""Matching criteria on hand-worked inputs and against a naive exp/sum (official-formula) reference."""

from __future__ import annotations

import math

import pytest
import torch

from mast3r.train import APLoss, ConfMatchingLoss, InfoNCE, MatchingLoss, build_criterion
from mast3r.train.losses_match import gather_pixels


def naive_infonce(d1, d2, T, mode, eps=1e-8):
    """The official formulas with explicit exp and sums (B,N,D), (B,M,D) -> (B,N)."""
    P = torch.exp(d1 @ d2.transpose(-1, -2) / T)
    n = d1.shape[1]
    pos = P.diagonal(dim1=-2, dim2=-1)
    if mode == "all":
        return -torch.log((pos / P.sum(dim=(-1, -2))[:, None]).clip(eps))
    row, col = P.sum(dim=-1), P.sum(dim=-2)[:, :n]
    if mode == "proper":
        return -(torch.log((pos / col).clip(eps)) + torch.log((pos / row).clip(eps)))
    return -torch.log((pos**2 / row / col).clip(eps))


def make_views(B=2, H=4, W=5, N=6, D=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    corres = []
    for _ in range(2):  # distinct pixels per view
        idx = torch.stack([torch.randperm(H * W, generator=g)[:N] for _ in range(B)])
        corres.append(torch.stack([idx % W, idx // W], dim=-1))
    valid = torch.rand(B, N, generator=g) > 0.3
    valid[:, 0] = True
    valid[:, 1] = False
    gt1 = dict(corres=corres[0], valid_corres=valid)
    gt2 = dict(corres=corres[1], valid_corres=valid.clone())
    preds = []
    for key in ("pts3d", "pts3d_in_other_view"):
        desc = torch.nn.functional.normalize(torch.randn(B, H, W, D, generator=g, dtype=dtype), dim=-1)
        preds.append({key: torch.randn(B, H, W, 3, generator=g, dtype=dtype).requires_grad_(),
                      "desc": desc.requires_grad_(),
                      "conf": (1 + torch.rand(B, H, W, generator=g, dtype=dtype)).requires_grad_(),
                      "desc_conf": (1 + torch.rand(B, H, W, generator=g, dtype=dtype)).requires_grad_()})
    return gt1, gt2, preds[0], preds[1]


@pytest.mark.parametrize("mode", ["proper", "dual", "all"])
@pytest.mark.parametrize("T", [0.05, 1.0])
def test_infonce_modes_match_the_official_formulas(mode, T):
    gt1, gt2, pred1, pred2 = make_views(dtype=torch.float64)
    crit = MatchingLoss(InfoNCE(mode=mode, temperature=T))
    loss, det = crit(gt1, gt2, pred1, pred2)
    assert loss.dtype == torch.float32  # the official fp
    d1 = gather_pixels(pred1["desc"], gt1["corres"])
    d2 = gather_pixels(pred2["desc"], gt2["corres"])
    want = naive_infonce(d1, d2, T, mode)[gt1["valid_corres"]].mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert det == {"MatchingLoss": pytest.approx(loss.item())}
    got_g = torch.autograd.grad(loss, [pred1["desc"], pred2["desc"]])
    want_g = torch.autograd.grad(want, [pred1["desc"], pred2["desc"]])
    for a, b in zip(got_g, want_g):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


def test_infonce_by_hand_and_eps_cap():
    # N=2, D=1: desc1 = [1, -1], desc2 = [1, 1], T=1 -> sims [[1, 1], [-1, -1]]
    d1 = torch.tensor([[[1.0], [-1.0]]])
    d2 = torch.tensor([[[1.0], [1.0]]])
    e = math.e
    proper = InfoNCE(mode="proper", temperature=1.0).per_query(d1, d2)
    col0, col1 = e + 1 / e, e + 1 / e
    row0, row1 = 2 * e, 2 / e
    want = [-math.log(e / col0) - math.log(e / row0), -math.log((1 / e) / col1) - math.log((1 / e) / row1)]
    assert proper[0].tolist() == pytest.approx(want, rel=1e-6)
    all_ = InfoNCE(mode="all", temperature=1.0).per_query(d1, d2)
    total = 2 * e + 2 / e
    assert all_[0].tolist() == pytest.approx([-math.log(e / total), -math.log(1 / e / total)], rel=1e-6)
    # a positive far below the others: the ratio is clipped at eps (loss capped at -log eps, no gradient)
    q = torch.tensor([[[1.0], [-1.0]]], requires_grad=True)
    capped = InfoNCE(mode="dual", temperature=0.01, eps=1e-3).per_query(q, d2)
    assert capped[0, 1].item() == pytest.approx(-math.log(1e-3))
    capped[0, 1].backward()
    assert not q.grad.any()


def test_negatives_padding_appends_the_first_free_pixels_of_view_two():
    B, H, W, N, P = 2, 4, 5, 6, 3
    gt1, gt2, pred1, pred2 = make_views(B, H, W, N, dtype=torch.float64)
    crit = MatchingLoss(InfoNCE(mode="all", temperature=0.1), negatives_padding=P)
    loss, _ = crit(gt1, gt2, pred1, pred2)
    d1 = gather_pixels(pred1["desc"], gt1["corres"])
    d2 = [gather_pixels(pred2["desc"], gt2["corres"])]
    negs = []
    for b in range(B):  # raster order, skipping every pixel of gt2's correspondences (valid or not)
        used = {(int(x), int(y)) for x, y in gt2["corres"][b]}
        free = [(y, x) for y in range(H) for x in range(W) if (x, y) not in used][:P]
        negs.append(torch.stack([pred2["desc"][b, y, x] for y, x in free]))
    d2 = torch.cat([d2[0], torch.stack(negs)], dim=1)
    want = naive_infonce(d1, d2, 0.1, "all")[gt1["valid_corres"]].mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(ValueError, match="fewer than negatives_padding"):
        MatchingLoss(InfoNCE(mode="all"), negatives_padding=H * W)(gt1, gt2, pred1, pred2)


def block_reference(gt1, gt2, pred1, pred2, perm, bs, T):
    d1 = torch.take_along_dim(gather_pixels(pred1["desc"], gt1["corres"]), perm[..., None], dim=1)
    d2 = torch.take_along_dim(gather_pixels(pred2["desc"], gt2["corres"]), perm[..., None], dim=1)
    valid = torch.take_along_dim(gt1["valid_corres"], perm, dim=1)
    B, N, D = d1.shape
    losses = naive_infonce(d1.reshape(-1, bs, D), d2.reshape(-1, bs, D), T, "proper")
    return losses[valid.reshape(-1, bs)].mean()


def test_blocks_shuffle_per_sample_reproducibly():
    B, N, bs = 2, 8, 4
    gt1, gt2, pred1, pred2 = make_views(B, 4, 5, N, dtype=torch.float64)
    spec = "MatchingLoss(InfoNCE(mode='proper', temperature=0.2), blocksize=4)"
    crits = [build_criterion(spec, generator=torch.Generator().manual_seed(s)) for s in (5, 5, 6)]
    losses = [c(gt1, gt2, pred1, pred2)[0].item() for c in crits]
    assert losses[0] == losses[1]
    # the permutation is the documented one: float64 uniform keys argsorted per sample
    perm = torch.rand(B, N, generator=torch.Generator().manual_seed(5), dtype=torch.float64).argsort(dim=1)
    assert losses[0] == pytest.approx(block_reference(gt1, gt2, pred1, pred2, perm, bs, 0.2).item(), rel=1e-5)
    assert (perm[0] != perm[1]).any()  # per-sample shuffles
    # the global torch seed drives it without a generator
    crit = build_criterion(spec)
    torch.manual_seed(11)
    a = crit(gt1, gt2, pred1, pred2)[0].item()
    torch.manual_seed(11)
    assert crit(gt1, gt2, pred1, pred2)[0].item() == a
    # a block as large as N: no shuffle, the plain loss
    full = build_criterion(spec.replace("blocksize=4", "blocksize=8"))(gt1, gt2, pred1, pred2)[0].item()
    ident = torch.arange(N).expand(B, N)
    assert full == pytest.approx(block_reference(gt1, gt2, pred1, pred2, ident, N, 0.2).item(), rel=1e-5)
    assert len({round(x, 6) for x in (losses[0], losses[2], full)}) == 3


def test_block_errors():
    gt1, gt2, pred1, pred2 = make_views(N=6)
    with pytest.raises(ValueError, match="multiple of blocksize"):
        MatchingLoss(InfoNCE(), blocksize=4)(gt1, gt2, pred1, pred2)
    with pytest.raises(ValueError, match="cannot be combined with blocks"):
        MatchingLoss(InfoNCE(mode="all"), blocksize=3, negatives_padding=2)(gt1, gt2, pred1, pred2)


def test_aploss_by_hand():
    # sims row 0: [0.9 (pos), 0.95, 0.1] -> rank 1 -> AP 1/2; row 1: [0.2, 0.5 (pos), 0.1] -> 1;
    # row 2: [0.3, 0.8, 0.4 (pos)] -> rank 1 -> 1/2 (row 2 invalid)
    sims = torch.tensor([[0.9, 0.95, 0.1], [0.2, 0.5, 0.1], [0.3, 0.8, 0.4]])
    ap = APLoss().per_query(sims[None], torch.eye(3)[None])
    assert ap[0].tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert not ap.requires_grad
    H, W = 1, 3
    pred1 = {"desc": sims.reshape(1, H, W, 3).requires_grad_()}
    pred2 = {"desc": torch.eye(3).reshape(1, H, W, 3)}
    corres = torch.tensor([[[0, 0], [1, 0], [2, 0]]])
    gt1 = dict(corres=corres, valid_corres=torch.tensor([[True, True, False]]))
    gt2 = dict(corres=corres, valid_corres=gt1["valid_corres"])
    mean_ap, det = MatchingLoss(APLoss(nq="torch"))(gt1, gt2, pred1, pred2)
    assert mean_ap.item() == pytest.approx(0.75) and det["MatchingLoss"] == pytest.approx(0.75)
    crit = build_criterion("-1.*MatchingLoss(APLoss(nq='torch', reduction='1-mean'))")
    loss, _ = crit(gt1, gt2, pred1, pred2)
    assert loss.item() == pytest.approx(-0.25)


@pytest.mark.parametrize("confmode", ["prod", "mean"])
@pytest.mark.parametrize("quantile", [False, 0.25])
def test_conf_matching_loss_by_reference(confmode, quantile):
    gt1, gt2, pred1, pred2 = make_views(dtype=torch.float64)
    inner = MatchingLoss(InfoNCE(mode="proper", temperature=0.1))
    crit = ConfMatchingLoss(inner, alpha=2.0, confmode=confmode, neg_conf_loss_quantile=quantile)
    loss, det = crit(gt1, gt2, pred1, pred2)
    valid = gt1["valid_corres"]
    d1 = gather_pixels(pred1["desc"], gt1["corres"])
    d2 = gather_pixels(pred2["desc"], gt2["corres"])
    per = naive_infonce(d1, d2, 0.1, "proper").float().double()[valid]
    c1 = gather_pixels(pred1["desc_conf"], gt1["corres"])
    c2 = gather_pixels(pred2["desc_conf"], gt2["corres"])
    c = (c1 * c2 if confmode == "prod" else (c1 + c2) / 2)[valid]
    want = (per * c - 2.0 * c.log()).mean()
    if quantile:
        v = torch.quantile(per, quantile).detach()
        cn = torch.cat([c1[~valid], c2[~valid]])
        want = want + (v * cn - 2.0 * cn.log()).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert list(det) == ["matching_conf_loss", "Conf1_std", "Conf2_std", "MatchingLoss"]
    assert det["MatchingLoss"] == pytest.approx(per.mean().item(), rel=1e-5)
    assert det["Conf1_std"] == pytest.approx(c1.std().item(), rel=1e-9)
    grads = torch.autograd.grad(loss, [pred1["desc_conf"], pred2["desc_conf"], pred1["desc"]])
    wgrads = torch.autograd.grad(want, [pred1["desc_conf"], pred2["desc_conf"], pred1["desc"]])
    for a, b in zip(grads, wgrads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


def test_use_pts3d_matches_points_with_euclidean_similarity():
    gt1, gt2, pred1, pred2 = make_views(dtype=torch.float64)
    crit = ConfMatchingLoss(MatchingLoss(InfoNCE(mode="proper", temperature=0.5), use_pts3d=True), alpha=1.0)
    loss, _ = crit(gt1, gt2, pred1, pred2)
    p1 = gather_pixels(pred1["pts3d"], gt1["corres"])
    p2 = gather_pixels(pred2["pts3d_in_other_view"], gt2["corres"])
    sim = 1 / (1 + (p1[:, :, None] - p2[:, None]).norm(dim=-1))
    P = torch.exp(sim / 0.5)
    pos = P.diagonal(dim1=-2, dim2=-1)
    per = -(torch.log(pos / P.sum(-2)) + torch.log(pos / P.sum(-1)))
    valid = gt1["valid_corres"]
    c = (gather_pixels(pred1["conf"], gt1["corres"]) * gather_pixels(pred2["conf"], gt2["corres"]))[valid]
    want = (per[valid] * c - c.log()).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)


def test_bf16_autocast_on_cpu_keeps_float32_similarities():
    gt1, gt2, pred1, pred2 = make_views()
    crit = MatchingLoss(InfoNCE(mode="proper", temperature=0.05))
    ref, _ = crit(gt1, gt2, pred1, pred2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = crit(gt1, gt2, pred1, pred2)
    assert got.dtype == torch.float32 and got.item() == ref.item()


def test_aploss_with_padding_fp16_and_row_blocks(monkeypatch):
    """The official test criterion's matching term: AP over N positives + P padded distractors, in fp16."""
    gt1, gt2, pred1, pred2 = make_views(B=2, H=4, W=5, N=6)
    crit = build_criterion("-1.*MatchingLoss(APLoss(nq='torch', fp=torch.float16), negatives_padding=5)")
    whole, _ = crit(gt1, gt2, pred1, pred2)
    monkeypatch.setattr("mast3r.train.losses_match.AP_BLOCK_ELEMS", 1)  # one query row per block
    rows, det = crit(gt1, gt2, pred1, pred2)
    assert rows.item() == whole.item()
    # reference: ranks among the 6 + 5 candidates of view 2, fp16 scores
    inner = crit.terms[0][1]
    d1 = gather_pixels(pred1["desc"], gt1["corres"]).half()
    negs = inner._negatives(pred2["desc"], gt2["corres"])
    d2 = torch.cat([gather_pixels(pred2["desc"], gt2["corres"]), negs], dim=1).half()
    scores = d1 @ d2.transpose(-1, -2)
    pos = scores.diagonal(dim1=-2, dim2=-1)
    ap = 1 / (1 + (scores > pos[..., None]).sum(-1).float())
    assert whole.item() == pytest.approx(-ap[gt1["valid_corres"]].mean().item(), rel=1e-6)
    assert det["MatchingLoss"] == pytest.approx(-whole.item(), rel=1e-6)


def test_standalone_withconf_reports_the_confidence_spread():
    gt1, gt2, pred1, pred2 = make_views()
    _, det = MatchingLoss(InfoNCE(), withconf=True)(gt1, gt2, pred1, pred2)
    c1 = gather_pixels(pred1["desc_conf"], gt1["corres"])
    assert list(det) == ["Conf1_std", "Conf2_std", "MatchingLoss"]
    assert det["Conf1_std"] == pytest.approx(c1.std().item(), rel=1e-6)
