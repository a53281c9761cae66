"""Pointmap regression criteria: ``L21``, ``Regr3D`` (+ shift/scale-invariant variants) and ``ConfLoss``.

Semantics of the official MASt3R ``Regr3D`` (DUSt3R's is the same with ``sky_loss_value=0``):
GT points (world) of both views are expressed in camera 1 (``inv(gt1['camera_pose'])``); the prediction
is ``pred1['pts3d']`` and ``pred2['pts3d_in_other_view']`` (camera-1 frame). Both pointmaps are normalised
jointly over the valid pixels (``norm_mode`` ``'<avg|median|sqrt>_<dis|log1p|warp-log1p>'``, factor clipped
at 1e-8): GT by its own factor unless ``gt_scale``; the prediction by its own factor, except with the
``'?'`` prefix for samples with ``is_metric_scale``, where it is divided by the GT factor (left raw when
``gt_scale``). The per-pixel loss is the Euclidean distance (after ``log1p``-warping the norms if
``loss_in_log``); sky pixels (``sky_mask & ~valid_mask``) get the constant ``sky_loss_value`` (only inside
``ConfLoss``).

Everything is dense over (B, H, W) with masks (no boolean indexing, hence no device sync); masked-out pixels
are replaced by finite values before use so that they contribute exactly zero, also to gradients.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mast3r.train.criterion_base import Batch, Criterion, Details, masked_mean, upcast

NORM_KINDS = ("avg", "median", "sqrt")
DIS_MODES = ("dis", "log1p", "warp-log1p")


class L21Loss:
    """Euclidean distance between 3D points (the official ``L21``); used as ``Regr3D``'s pixel criterion."""

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.linalg.vector_norm(a - b, dim=-1)

    def __repr__(self) -> str:
        return "L21"


L21 = L21Loss()


def apply_log_to_norm(xyz: Tensor) -> Tensor:
    """Rescale each 3-vector to norm ``log1p(|x|)`` (direction kept; zero stays zero)."""
    d = torch.linalg.vector_norm(xyz, dim=-1, keepdim=True)
    return xyz / d.clip(min=1e-8) * torch.log1p(d)


def transform_points(T: Tensor, pts: Tensor) -> Tensor:
    """(B,4,4) rigid/affine transform applied to (B,H,W,3) points."""
    return torch.einsum("bij,bhwj->bhwi", T[:, :3, :3], pts) + T[:, None, None, :3, 3]


def _split_norm_mode(norm_mode: str) -> tuple[str, str]:
    parts = norm_mode.split("_")
    if len(parts) != 2 or parts[0] not in NORM_KINDS or parts[1] not in DIS_MODES:
        raise ValueError(f"bad norm_mode {norm_mode!r}: expected [?]<{'|'.join(NORM_KINDS)}>_"
                         f"<{'|'.join(DIS_MODES)}> (e.g. 'avg_dis', '?avg_dis')")
    return parts[0], parts[1]


def normalize_pair(p1: Tensor, p2: Tensor, v1: Tensor, v2: Tensor, norm_mode: str
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Joint normalisation of two (B,H,W,3) pointmaps over valid pixels.

    Returns ``(p1', p2', factor)``: ``factor`` (B,1,1,1) clipped at 1e-8, ``p'`` = (warped) points / factor.
    ``p1, p2`` must be finite (zero) at invalid pixels.
    """
    kind, dis_mode = _split_norm_mode(norm_mode)
    B, H1, W1 = p1.shape[:3]
    d1 = torch.linalg.vector_norm(p1, dim=-1).reshape(B, -1)
    d2 = torch.linalg.vector_norm(p2, dim=-1).reshape(B, -1)
    dis = torch.cat((d1, d2), dim=1)
    valid = torch.cat((v1.reshape(B, -1), v2.reshape(B, -1)), dim=1)
    zero = dis.new_zeros(())
    if kind == "avg":
        if dis_mode == "dis":
            used = dis
        else:
            used = torch.log1p(dis)
            if dis_mode == "warp-log1p":
                warp = used / dis.clip(min=1e-8)
                p1 = p1 * warp[:, : H1 * W1].reshape(p1.shape[:3] + (1,))
                p2 = p2 * warp[:, H1 * W1:].reshape(p2.shape[:3] + (1,))
        factor = torch.where(valid, used, zero).sum(dim=1) / (valid.sum(dim=1).to(dis.dtype) + 1e-8)
    elif kind == "median":
        factor = torch.where(valid, dis, torch.nan).nanmedian(dim=1).values.detach()
    else:  # sqrt: squared mean of sqrt distances (sqrt kept away from the invalid zeros)
        root = torch.sqrt(torch.where(valid, dis, dis.new_ones(())))
        factor = torch.where(valid, root, torch.nan).nanmean(dim=1) ** 2
    factor = factor.clip(min=1e-8).reshape(B, 1, 1, 1)
    return p1 / factor, p2 / factor, factor


def _nan_outside(x: Tensor, valid: Tensor) -> Tensor:
    return torch.where(valid, x, torch.nan)


@torch.no_grad()
def joint_median_depth(z1: Tensor, z2: Tensor, v1: Tensor, v2: Tensor) -> Tensor:
    """(B,1,1) lower median of z over the valid pixels of both maps (no gradient, as official)."""
    B = z1.shape[0]
    z = torch.cat((_nan_outside(z1, v1).reshape(B, -1), _nan_outside(z2, v2).reshape(B, -1)), dim=1)
    return z.nanmedian(dim=1).values.reshape(B, 1, 1)


@torch.no_grad()
def joint_center_scale(p1: Tensor, p2: Tensor, v1: Tensor, v2: Tensor) -> Tensor:
    """(B,1,1,1) median distance to the per-coordinate median centre over valid points (no gradient)."""
    B = p1.shape[0]
    pts = torch.cat((_nan_outside(p1, v1[..., None]).reshape(B, -1, 3),
                     _nan_outside(p2, v2[..., None]).reshape(B, -1, 3)), dim=1)
    center = pts.nanmedian(dim=1, keepdim=True).values
    dist = torch.linalg.vector_norm(pts - center, dim=-1)
    return dist.nanmedian(dim=1).values.reshape(B, 1, 1, 1)


class PixelCriterion(Criterion):
    """A criterion with a per-pixel form: ``pixel_losses -> (l1, m1, l2, m2, details)``, each (B,H,W)."""

    def pixel_losses(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor, Details]:
        raise NotImplementedError


class Regr3D(PixelCriterion):
    """Official MASt3R ``Regr3D(criterion, norm_mode='avg_dis', gt_scale=False, opt_fit_gt=False,
    sky_loss_value=2, max_metric_scale=False, loss_in_log=False)`` (``opt_fit_gt`` is unused, as official)."""

    shift_inv = False
    scale_inv = False

    def __init__(self, criterion: L21Loss, norm_mode: str | None = "avg_dis", gt_scale: bool = False,
                 opt_fit_gt: bool = False, sky_loss_value: float = 2, max_metric_scale: float | bool = False,
                 loss_in_log: bool | str = False):
        if not isinstance(criterion, L21Loss):
            raise ValueError(f"{type(self).__name__}: the pixel criterion must be L21, got {criterion!r}")
        if norm_mode is not None and not isinstance(norm_mode, str):
            raise ValueError(f"{type(self).__name__}: norm_mode must be a string, got {norm_mode!r}")
        self.norm_all = not (norm_mode or "").startswith("?")
        self.norm_mode = (norm_mode or "").lstrip("?")
        if self.norm_mode:
            _split_norm_mode(self.norm_mode)
        if loss_in_log not in (False, True, "before"):
            raise ValueError(f"loss_in_log must be True, False or 'before', got {loss_in_log!r}")
        for name, value in (("sky_loss_value", sky_loss_value), ("max_metric_scale", max_metric_scale)):
            if not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
        self.criterion = criterion
        self.gt_scale = bool(gt_scale)
        self.sky_loss_value = float(sky_loss_value)
        self.max_metric_scale = max_metric_scale
        self.loss_in_log = loss_in_log
        kw: dict[str, Any] = {"norm_mode": norm_mode, "gt_scale": gt_scale, "opt_fit_gt": opt_fit_gt,
                              "sky_loss_value": sky_loss_value, "max_metric_scale": max_metric_scale,
                              "loss_in_log": loss_in_log}
        defaults = {"norm_mode": "avg_dis", "gt_scale": False, "opt_fit_gt": False, "sky_loss_value": 2,
                    "max_metric_scale": False, "loss_in_log": False}
        self._pos = (criterion,)
        self._kw = tuple((k, v) for k, v in kw.items()
                         if v != defaults[k] or type(v) is not type(defaults[k]))

    # --- points in camera 1, normalised -------------------------------------------------------------
    def all_points(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch):
        p1 = upcast(pred1["pts3d"])
        p2 = upcast(pred2["pts3d_in_other_view"])
        dtype = torch.promote_types(p1.dtype, p2.dtype)
        p1, p2 = p1.to(dtype), p2.to(dtype)
        dev = p1.device
        v1 = gt1["valid_mask"].to(dev).bool()
        v2 = gt2["valid_mask"].to(dev).bool()
        in_cam1 = torch.linalg.inv_ex(gt1["camera_pose"].to(device=dev, dtype=dtype))[0]
        g1 = transform_points(in_cam1, gt1["pts3d"].to(device=dev, dtype=dtype))
        g2 = transform_points(in_cam1, gt2["pts3d"].to(device=dev, dtype=dtype))
        zero = p1.new_zeros(())
        g1 = torch.where(v1[..., None], g1, zero)
        g2 = torch.where(v2[..., None], g2, zero)
        p1 = torch.where(v1[..., None], p1, zero)
        p2 = torch.where(v2[..., None], p2, zero)

        if self.loss_in_log == "before":  # GT only, before the metric-range check and the normalisation
            g1, g2 = apply_log_to_norm(g1), apply_log_to_norm(g2)
        metric = None
        if not self.norm_all:
            metric = gt1["is_metric_scale"].to(device=p1.device, dtype=torch.bool).reshape(-1)
            if self.max_metric_scale:
                B = v1.shape[0]
                far1 = torch.linalg.vector_norm(g1, dim=-1).reshape(B, -1).amax(dim=1)
                far2 = torch.linalg.vector_norm(g2, dim=-1).reshape(B, -1).amax(dim=1)
                metric = metric & (far1 < self.max_metric_scale) & (far2 < self.max_metric_scale)

        if self.norm_mode:
            q1, q2, _ = normalize_pair(p1, p2, v1, v2, self.norm_mode)
            if not self.gt_scale:
                g1, g2, gt_factor = normalize_pair(g1, g2, v1, v2, self.norm_mode)
            if metric is not None:
                m = metric.reshape(-1, 1, 1, 1)
                r1, r2 = (p1, p2) if self.gt_scale else (p1 / gt_factor, p2 / gt_factor)
                q1, q2 = torch.where(m, r1, q1), torch.where(m, r2, q2)
            p1, p2 = q1, q2
        if self.shift_inv:
            g1, g2 = self._shift(g1, g2, v1, v2)
            p1, p2 = self._shift(p1, p2, v1, v2)
        if self.scale_inv:
            gt_scale = joint_center_scale(g1, g2, v1, v2)
            pr_scale = joint_center_scale(p1, p2, v1, v2).clip(min=1e-3, max=1e3)
            if self.gt_scale:
                p1, p2 = p1 * (gt_scale / pr_scale), p2 * (gt_scale / pr_scale)
            else:
                g1, g2 = g1 / gt_scale, g2 / gt_scale
                p1, p2 = p1 / pr_scale, p2 / pr_scale
        sky1 = gt1["sky_mask"].to(dev).bool() & ~v1 if "sky_mask" in gt1 else torch.zeros_like(v1)
        sky2 = gt2["sky_mask"].to(dev).bool() & ~v2 if "sky_mask" in gt2 else torch.zeros_like(v2)
        return g1, g2, p1, p2, v1, v2, sky1, sky2

    @staticmethod
    def _shift(a1: Tensor, a2: Tensor, v1: Tensor, v2: Tensor) -> tuple[Tensor, Tensor]:
        shift = joint_median_depth(a1[..., 2], a2[..., 2], v1, v2)[..., None]  # (B,1,1,1)
        ez = torch.zeros(3, dtype=a1.dtype, device=a1.device)
        ez[2] = 1
        return a1 - shift * ez, a2 - shift * ez

    def pixel_losses(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor, Details]:
        g1, g2, p1, p2, m1, m2, sky1, sky2 = self.all_points(gt1, gt2, pred1, pred2)
        with_sky = self.sky_loss_value > 0
        if with_sky:
            m1, m2 = m1 | sky1, m2 | sky2
        if self.loss_in_log and self.loss_in_log != "before":
            g1, g2, p1, p2 = (apply_log_to_norm(x) for x in (g1, g2, p1, p2))
        l1 = self.criterion.distance(p1, g1)
        l2 = self.criterion.distance(p2, g2)
        if with_sky:
            sky_value = l1.new_tensor(self.sky_loss_value)
            l1 = torch.where(sky1, sky_value, l1)
            l2 = torch.where(sky2, sky_value, l2)
        name = type(self).__name__
        details: Details = {f"{name}_pts3d_1": masked_mean(l1, m1).detach(),
                            f"{name}_pts3d_2": masked_mean(l2, m2).detach()}
        return l1, m1, l2, m2, details

    def compute(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch) -> tuple[Tensor, Details]:
        if self.sky_loss_value > 0:
            raise ValueError(f"{self!r}: sky_loss_value > 0 needs ConfLoss around it (official assertion); "
                             "pass sky_loss_value=0 to use it alone")
        l1, m1, l2, m2, details = self.pixel_losses(gt1, gt2, pred1, pred2)
        return masked_mean(l1, m1) + masked_mean(l2, m2), details


class Regr3D_ShiftInv(Regr3D):  # noqa: N801 (official name)
    """``Regr3D`` invariant to a depth shift: the joint median z (valid pixels, no gradient) is subtracted
    from GT and prediction after normalisation."""

    shift_inv = True


class Regr3D_ScaleInv(Regr3D):  # noqa: N801
    """``Regr3D`` invariant to scale: GT and prediction divided by their median distance to their median
    centre (prediction's clipped to [1e-3, 1e3]); with ``gt_scale`` the prediction takes the GT's scale."""

    scale_inv = True


class Regr3D_ScaleShiftInv(Regr3D):  # noqa: N801
    """Shift first, then scale (the official MRO order)."""

    shift_inv = True
    scale_inv = True


class ConfLoss(Criterion):
    """Official ``ConfLoss(pixel_loss, alpha=1)``: per view ``mean(l * c - alpha * log c)`` over the pixels
    of the mask (valid, plus sky), the mean taken over the whole batch; the two views summed."""

    def __init__(self, pixel_loss: PixelCriterion, alpha: float = 1):
        if not isinstance(pixel_loss, PixelCriterion):
            raise ValueError(f"ConfLoss wraps one Regr3D-family criterion, got {pixel_loss!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"ConfLoss: alpha must be a number > 0, got {alpha!r}")
        self.pixel_loss = pixel_loss
        self.alpha = alpha
        self._pos = (pixel_loss,)
        self._kw = (("alpha", alpha),) if alpha != 1 else ()

    def compute(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch) -> tuple[Tensor, Details]:
        l1, m1, l2, m2, details = self.pixel_loss.pixel_losses(gt1, gt2, pred1, pred2)
        c1 = self._term(l1, m1, pred1["conf"])
        c2 = self._term(l2, m2, pred2["conf"])
        return c1 + c2, {"conf_loss_1": c1.detach(), "conf_loss2": c2.detach(), **details}

    def _term(self, loss: Tensor, mask: Tensor, conf: Tensor) -> Tensor:
        conf = upcast(conf).to(torch.promote_types(conf.dtype, loss.dtype))
        conf = torch.where(mask, conf, conf.new_ones(()))
        return masked_mean(loss * conf - self.alpha * torch.log(conf), mask)

    def children(self) -> tuple[Criterion, ...]:
        return (self.pixel_loss,)
