"""Regression criteria on hand-worked inputs and against a naive per-sample, boolean-indexed reference."""

from __future__ import annotations

import math

import pytest
import torch

from mast3r.train import (
    ConfLoss,
    Regr3D,
    Regr3D_ScaleInv,
    Regr3D_ScaleShiftInv,
    Regr3D_ShiftInv,
    build_criterion,
)
from mast3r.train.losses_regr import L21

DT = torch.float64


def pose(tx=0.0, ty=0.0, tz=0.0, B=1):
    T = torch.eye(4, dtype=DT).repeat(B, 1, 1)
    T[:, :3, 3] = torch.tensor([tx, ty, tz], dtype=DT)
    return T


def views(g1, g2, p1, p2, v1=None, v2=None, sky1=None, sky2=None, metric=False, conf1=None, conf2=None,
          pose1=None, pose2=None):
    """(B,H,W,3) point lists -> official dicts (identity poses unless given)."""
    g1, g2, p1, p2 = (torch.as_tensor(x, dtype=DT) for x in (g1, g2, p1, p2))
    B, H, W = g1.shape[:3]
    ones = torch.ones(B, H, W, dtype=torch.bool)
    zeros = torch.zeros(B, H, W, dtype=torch.bool)
    metric = torch.as_tensor(metric, dtype=torch.bool).reshape(-1).expand(B)
    pose1 = pose(B=B) if pose1 is None else pose1
    pose2 = pose(B=B) if pose2 is None else pose2
    gt1 = dict(pts3d=g1, camera_pose=pose1, valid_mask=ones if v1 is None else v1,
               sky_mask=zeros if sky1 is None else sky1, is_metric_scale=metric)
    gt2 = dict(pts3d=g2, camera_pose=pose2, valid_mask=ones if v2 is None else v2,
               sky_mask=zeros if sky2 is None else sky2, is_metric_scale=metric)
    c1 = torch.ones(B, H, W, dtype=DT) if conf1 is None else torch.as_tensor(conf1, dtype=DT)
    c2 = torch.ones(B, H, W, dtype=DT) if conf2 is None else torch.as_tensor(conf2, dtype=DT)
    pred1 = dict(pts3d=p1.clone().requires_grad_(), conf=c1.clone().requires_grad_())
    pred2 = dict(pts3d_in_other_view=p2.clone().requires_grad_(), conf=c2.clone().requires_grad_())
    return gt1, gt2, pred1, pred2


def test_conf_loss_avg_dis_with_sky_by_hand():
    # view 1: two valid points at z=1, 3; view 2: one valid at z=2 and one invalid sky pixel
    g1, g2 = [[[[0, 0, 1], [0, 0, 3]]]], [[[[0, 0, 2], [0, 0, 0]]]]
    p1, p2 = [[[[0, 0, 2], [0, 0, 6]]]], [[[[0, 0, 4], [9, 9, 9]]]]  # exactly 2x the GT: normalised, no error
    v2 = torch.tensor([[[True, False]]])
    sky2 = torch.tensor([[[True, True]]])  # the valid pixel is not sky (sky = sky_mask & ~valid)
    conf1, conf2 = [[[1.0, 2.0]]], [[[3.0, 4.0]]]
    gt1, gt2, pred1, pred2 = views(g1, g2, p1, p2, v2=v2, sky2=sky2, conf1=conf1, conf2=conf2)
    loss, det = ConfLoss(Regr3D(L21, norm_mode="avg_dis"), alpha=0.5)(gt1, gt2, pred1, pred2)
    c1 = (-0.5 * math.log(1) - 0.5 * math.log(2)) / 2
    c2 = (0 * 3 - 0.5 * math.log(3) + 2 * 4 - 0.5 * math.log(4)) / 2
    assert loss.item() == pytest.approx(c1 + c2, rel=1e-12)
    assert det == pytest.approx({"conf_loss_1": c1, "conf_loss2": c2, "Regr3D_pts3d_1": 0.0,
                                 "Regr3D_pts3d_2": 1.0})
    loss.backward()
    assert pred2["conf"].grad[0, 0].tolist() == pytest.approx([(0 - 0.5 / 3) / 2, (2 - 0.5 / 4) / 2])
    assert not pred2["pts3d_in_other_view"].grad[0, 0, 1].any()  # the sky pixel's prediction is unused
    # sky_loss_value=0 (DUSt3R's Regr3D): the sky pixel leaves the mask
    loss0, det0 = ConfLoss(Regr3D(L21, sky_loss_value=0), alpha=0.5)(*views(g1, g2, p1, p2, v2=v2, sky2=sky2,
                                                                           conf2=[[[3.0, 4.0]]]))
    assert det0["conf_loss2"] == pytest.approx(-0.5 * math.log(3))


def test_metric_prefix_divides_the_prediction_by_the_gt_factor():
    g = [[[[0, 0, 1], [0, 0, 3]]]]
    p = [[[[0, 0, 2], [0, 0, 6]]]]  # twice the GT metric scale
    crit = Regr3D(L21, norm_mode="?avg_dis", sky_loss_value=0)
    loss_rel, _ = crit(*views(g, g, p, p, metric=False))
    loss_met, det = crit(*views(g, g, p, p, metric=True))
    assert loss_rel.item() == pytest.approx(0.0, abs=1e-12)
    # GT factor 2: normalised GT z = 0.5, 1.5; prediction / 2 = 1, 3 -> errors 0.5, 1.5 (mean 1) per view
    assert loss_met.item() == pytest.approx(2.0) and det["Regr3D_pts3d_1"] == pytest.approx(1.0)
    # max_metric_scale: a metric sample with points beyond it is treated as non-metric
    loss_cap, _ = Regr3D(L21, norm_mode="?avg_dis", sky_loss_value=0, max_metric_scale=2.5)(
        *views(g, g, p, p, metric=True))
    assert loss_cap.item() == pytest.approx(0.0, abs=1e-12)
    loss_in, _ = Regr3D(L21, norm_mode="?avg_dis", sky_loss_value=0, max_metric_scale=3.5)(
        *views(g, g, p, p, metric=True))
    assert loss_in.item() == pytest.approx(2.0)
    # with loss_in_log='before' the range check sees the log-warped GT (max log1p(3) = 1.39 < 2.5): metric
    loss_log, _ = Regr3D(L21, norm_mode="?avg_dis", sky_loss_value=0, max_metric_scale=2.5,
                         loss_in_log="before")(*views(g, g, p, p, metric=True))
    assert loss_log.item() > 1
    # gt_scale: GT left raw; metric predictions left raw too -> errors 1, 3
    loss_gs, _ = Regr3D(L21, norm_mode="?avg_dis", sky_loss_value=0, gt_scale=True)(
        *views(g, g, p, p, metric=True))
    assert loss_gs.item() == pytest.approx(4.0)


def test_gt_is_expressed_in_camera_one():
    # camera 1 sits at x=+1 (cam-to-world translation): world (1,0,2) is (0,0,2) in camera 1
    g = [[[[1, 0, 2]]]]
    p = [[[[0, 0, 2]]]]
    crit = Regr3D(L21, norm_mode=None, sky_loss_value=0)
    loss, _ = crit(*views(g, g, p, p, pose1=pose(1.0), pose2=pose(5.0)))
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    loss, _ = crit(*views(g, g, p, p))
    assert loss.item() == pytest.approx(2.0)


@pytest.mark.parametrize("mode, factor", [
    ("avg_log1p", (math.log1p(1) + math.log1p(3)) / 2),
    ("median_dis", 1.0),  # lower median of {1, 3}
    ("sqrt_dis", ((1 + math.sqrt(3)) / 2) ** 2),
])
def test_other_norm_modes_by_hand(mode, factor):
    g = [[[[0, 0, 1], [0, 0, 3]]]]
    p = [[[[0, 0, 0], [0, 0, 0]]]]
    loss, det = Regr3D(L21, norm_mode=mode, gt_scale=False, sky_loss_value=0)(*views(g, g, p, p))
    # prediction at the origin: factor clipped at 1e-8, error = |normalised GT| averaged
    assert det["Regr3D_pts3d_1"] == pytest.approx((1 + 3) / 2 / factor, rel=1e-7)  # avg: / (nnz + 1e-8)


def test_warp_log1p_by_hand():
    g = [[[[0, 0, math.e - 1]]]]
    p = [[[[0, 0, 0]]]]
    _, det = Regr3D(L21, norm_mode="avg_warp-log1p", sky_loss_value=0)(*views(g, g, p, p))
    assert det["Regr3D_pts3d_1"] == pytest.approx(1.0)  # warped to norm 1, factor 1


@pytest.mark.parametrize("log_mode, want", [(True, 1.0), ("before", math.e**2 - 1 - 1)])
def test_loss_in_log(log_mode, want):
    g = [[[[0, 0, math.e - 1]]]]
    p = [[[[0, 0, math.e**2 - 1]]]]
    _, det = Regr3D(L21, norm_mode=None, sky_loss_value=0, loss_in_log=log_mode)(*views(g, g, p, p))
    # True: |log1p-warped pred - log1p-warped GT| = |2 - 1|; 'before': only the GT is warped (to norm 1)
    assert det["Regr3D_pts3d_1"] == pytest.approx(want)


def test_shift_scale_invariances():
    g1 = torch.tensor([[[[0.1, 0, 1], [0, 0.3, 2], [0.5, 0, 4]]]], dtype=DT)
    g2 = torch.tensor([[[[0, 0.2, 3], [0.2, 0, 5], [0, 0, 6]]]], dtype=DT)
    shift = torch.tensor([0, 0, 7.0], dtype=DT)
    cases = [(Regr3D_ShiftInv, g1 + shift, g2 + shift), (Regr3D_ScaleInv, 3 * g1, 3 * g2),
             (Regr3D_ScaleShiftInv, 3 * g1 + shift, 3 * g2 + shift)]
    for cls, p1, p2 in cases:
        loss, det = cls(L21, norm_mode=None, sky_loss_value=0)(*views(g1, g2, p1, p2))
        assert loss.item() == pytest.approx(0.0, abs=1e-9), cls.__name__
        assert f"{cls.__name__}_pts3d_1" in det
        # plain Regr3D sees the difference
        assert Regr3D(L21, norm_mode=None, sky_loss_value=0)(*views(g1, g2, p1, p2))[0].item() > 1
    # ShiftInv by hand: medians (lower) of z: GT {1,2,4,3,5,6} -> 3; pred all zero -> 0
    zero = torch.zeros_like(g1)
    _, det = Regr3D_ShiftInv(L21, norm_mode=None, sky_loss_value=0)(*views(g1, g2, zero, zero))
    want = sum(math.dist(p, (0, 0, 0)) for p in (g1 - torch.tensor([0, 0, 3.0], dtype=DT))[0, 0].tolist()) / 3
    assert det["Regr3D_ShiftInv_pts3d_1"] == pytest.approx(want)


def _joint(pts, v):
    return torch.cat([pts[0][v[0]], pts[1][v[1]]])


def _factor(pts, v, norm_mode):
    d = _joint(pts, v).norm(dim=-1)
    if norm_mode.split("_")[0] == "avg":
        return (d.sum() / (len(d) + 1e-8)).clip(min=1e-8)  # the official nnz + 1e-8
    return d.median().detach().clip(min=1e-8)


def _med_z(pts, v):
    return _joint(pts, v)[:, 2].median().detach()


def _scale(pts, v):
    allp = _joint(pts, v).detach()
    return (allp - allp.median(dim=0).values).norm(dim=-1).median()


def naive_regr3d(gt1, gt2, pred1, pred2, norm_mode, metric_prefix, gt_scale, sky_value, shift, scale):
    """Per-sample, boolean-indexed reference of the documented semantics (float64, autograd)."""
    B = gt1["pts3d"].shape[0]
    l1s, l2s, m1s, m2s = [], [], [], []
    for b in range(B):
        inv = torch.linalg.inv(gt1["camera_pose"][b])
        g = [x["pts3d"][b] @ inv[:3, :3].T + inv[:3, 3] for x in (gt1, gt2)]
        p = [pred1["pts3d"][b], pred2["pts3d_in_other_view"][b]]
        v = [gt1["valid_mask"][b], gt2["valid_mask"][b]]
        gf = _factor(g, v, norm_mode)
        is_metric = metric_prefix and bool(gt1["is_metric_scale"][b])
        pf = (1.0 if gt_scale else gf) if is_metric else _factor(p, v, norm_mode)
        p = [x / pf for x in p]
        if not gt_scale:
            g = [x / gf for x in g]
        if shift:
            sg, sp = _med_z(g, v), _med_z(p, v)
            e = torch.tensor([0, 0, 1.0], dtype=DT)
            g, p = [x - sg * e for x in g], [x - sp * e for x in p]
        if scale:
            gs, ps = _scale(g, v), _scale(p, v).clip(1e-3, 1e3)
            if gt_scale:  # the prediction takes the GT's scale
                p = [x * (gs / ps) for x in p]
            else:
                g, p = [x / gs for x in g], [x / ps for x in p]
        for i, (ls, ms) in enumerate(((l1s, m1s), (l2s, m2s))):
            sky = (gt1, gt2)[i]["sky_mask"][b] & ~v[i]
            m = v[i] | sky if sky_value > 0 else v[i]
            err = (p[i][m] - g[i][m]).norm(dim=-1)
            ls.append(torch.where(sky[m], torch.tensor(sky_value, dtype=DT), err))
            ms.append(m)
    return l1s, l2s, m1s, m2s


def random_views(B=3, H=4, W=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    def r(*s):
        return torch.randn(*s, generator=g, dtype=DT)
    poses = torch.linalg.matrix_exp(torch.nn.functional.pad(r(B, 3, 3) - r(B, 3, 3).mT, (0, 1, 0, 1)))
    poses[:, :3, 3] = r(B, 3)
    out = views(r(B, H, W, 3) * 2 + 3, r(B, H, W, 3) * 2 + 3, r(B, H, W, 3) + 3, r(B, H, W, 3) + 3,
                v1=torch.rand(B, H, W, generator=g) > 0.3, v2=torch.rand(B, H, W, generator=g) > 0.3,
                sky1=torch.rand(B, H, W, generator=g) > 0.6, sky2=torch.rand(B, H, W, generator=g) > 0.6,
                conf1=1 + r(B, H, W).exp(), conf2=1 + r(B, H, W).exp(), pose1=poses,
                pose2=torch.eye(4, dtype=DT).repeat(B, 1, 1))
    out[0]["is_metric_scale"] = out[1]["is_metric_scale"] = torch.tensor([True, False, True][:B])
    # pixels neither valid nor sky may hold anything: NaN GT there (the naive reference indexes first)
    used = out[0]["valid_mask"] | out[0]["sky_mask"]
    out[0]["pts3d"] = torch.where(used[..., None], out[0]["pts3d"], torch.nan)
    return out


def test_garbage_at_unused_pixels_is_harmless():
    """NaN GT and inf predictions at invalid pixels (sky included): finite loss, zero gradient there."""
    gt1, gt2, pred1, pred2 = random_views()
    crit = ConfLoss(Regr3D(L21, norm_mode="?avg_dis"), alpha=0.2)
    ref, _ = crit(gt1, gt2, pred1, pred2)
    inv1 = ~gt1["valid_mask"]
    gt1["pts3d"] = torch.where(inv1[..., None], torch.nan, gt1["pts3d"])
    p1 = torch.where(inv1[..., None], torch.inf, pred1["pts3d"].detach()).requires_grad_()
    loss, _ = crit(gt1, gt2, dict(pred1, pts3d=p1), pred2)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    loss.backward()
    assert torch.isfinite(p1.grad).all() and not p1.grad[inv1].any()


@pytest.mark.parametrize("cls, shift, scale", [(Regr3D, False, False), (Regr3D_ShiftInv, True, False),
                                               (Regr3D_ScaleInv, False, True),
                                               (Regr3D_ScaleShiftInv, True, True)])
@pytest.mark.parametrize("norm_mode", ["?avg_dis", "avg_dis", "?median_dis"])
@pytest.mark.parametrize("gt_scale", [False, True])
def test_conf_loss_matches_naive_reference(cls, shift, scale, norm_mode, gt_scale):
    gt1, gt2, pred1, pred2 = random_views()
    alpha = 0.3
    crit = ConfLoss(cls(L21, norm_mode=norm_mode, gt_scale=gt_scale, sky_loss_value=2.5), alpha=alpha)
    loss, det = crit(gt1, gt2, pred1, pred2)
    grads = torch.autograd.grad(loss, [pred1["pts3d"], pred1["conf"], pred2["pts3d_in_other_view"],
                                       pred2["conf"]])
    l1s, l2s, m1s, m2s = naive_regr3d(gt1, gt2, pred1, pred2, norm_mode.lstrip("?"), norm_mode[0] == "?",
                                      gt_scale, 2.5, shift, scale)
    terms = []
    for ls, ms, conf in ((l1s, m1s, pred1["conf"]), (l2s, m2s, pred2["conf"])):
        l = torch.cat(ls)
        c = torch.cat([conf[b][m] for b, m in enumerate(ms)])
        terms.append((l * c - alpha * c.log()).mean())
    want = terms[0] + terms[1]
    want_grads = torch.autograd.grad(want, [pred1["pts3d"], pred1["conf"], pred2["pts3d_in_other_view"],
                                            pred2["conf"]])
    assert loss.item() == pytest.approx(want.item(), rel=1e-12)
    assert det["conf_loss_1"] == pytest.approx(terms[0].item(), rel=1e-12)
    assert det[f"{cls.__name__}_pts3d_2"] == pytest.approx(torch.cat(l2s).mean().item(), rel=1e-12)
    for got, ref in zip(grads, want_grads):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-12)


def test_standalone_regr3d_needs_sky_off_and_reduces_by_mean():
    gt1, gt2, pred1, pred2 = random_views()
    with pytest.raises(ValueError, match="sky_loss_value > 0 needs ConfLoss"):
        build_criterion("Regr3D(L21)")(gt1, gt2, pred1, pred2)
    loss, det = build_criterion("Regr3D(L21, norm_mode='?avg_dis', sky_loss_value=0)")(gt1, gt2, pred1, pred2)
    assert loss.item() == pytest.approx(det["Regr3D_pts3d_1"] + det["Regr3D_pts3d_2"], rel=1e-12)


def test_empty_masks_give_zero_not_nan():
    gt1, gt2, pred1, pred2 = random_views()
    for gt in (gt1, gt2):
        gt["valid_mask"] = torch.zeros_like(gt["valid_mask"])
        gt["sky_mask"] = torch.zeros_like(gt["sky_mask"])
    loss, det = ConfLoss(Regr3D(L21, norm_mode="?avg_dis"), alpha=0.2)(gt1, gt2, pred1, pred2)
    assert loss.item() == 0.0 and det["conf_loss_1"] == 0.0
    loss.backward()
    assert not pred1["pts3d"].grad.any() and not pred1["conf"].grad.any()
