"""Validation metrics on held-out pairs: pointmap error, descriptor NN accuracy, FRM matches and precision.

All metrics use the GT of the pair dicts (``mast3r.train`` conventions: ``pts3d`` world frame,
``camera_pose`` cam-to-world, ``camera_intrinsics``, ``valid_mask``) and the predictions of
:func:`mast3r.train.preds_from_pair`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mast3r.matching import fast_reciprocal_nn

__all__ = ["frm_precision", "pointmap_error", "validation_metrics"]


def _to_cam(pts_world: torch.Tensor, cam_to_world: torch.Tensor) -> torch.Tensor:
    """(B,H,W,3) world points -> the camera frame of ``cam_to_world`` (B,4,4)."""
    w2c = torch.linalg.inv(cam_to_world.double()).to(pts_world.dtype)
    return torch.einsum("bij,bhwj->bhwi", w2c[:, :3, :3], pts_world) + w2c[:, None, None, :3, 3]


def pointmap_error(gt1: dict, gt2: dict, pred1: dict, pred2: dict) -> dict[str, float]:
    """Median Euclidean error (metres) of both predicted pointmaps against GT in camera 1's frame,
    and the median relative error ``|pred - gt| / |gt|``, over valid pixels of both views."""
    errs, rels = [], []
    for gt, pts in ((gt1, pred1["pts3d"]), (gt2, pred2["pts3d_in_other_view"])):
        ref = _to_cam(gt["pts3d"].float(), gt1["camera_pose"].float())
        mask = gt["valid_mask"]
        d = (pts.float() - ref).norm(dim=-1)[mask]
        errs.append(d)
        rels.append(d / ref.norm(dim=-1)[mask].clamp_min(1e-6))
    err, rel = torch.cat(errs), torch.cat(rels)
    if err.numel() == 0:
        return {"pts3d_err_m": float("nan"), "pts3d_rel_err": float("nan")}
    return {"pts3d_err_m": float(err.median()), "pts3d_rel_err": float(rel.median())}


def _project(pts_world: torch.Tensor, cam_to_world: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(N,3) world points -> (N,2) pixels of a camera (pixel centres at integers); behind: inf."""
    w2c = torch.linalg.inv(cam_to_world.double())
    cam = pts_world.double() @ w2c[:3, :3].T + w2c[:3, 3]
    uvw = cam @ K.double().T
    z = uvw[:, 2:3]
    uv = uvw[:, :2] / z.clamp_min(1e-9)
    uv[z[:, 0] <= 1e-9] = float("inf")
    return uv


def frm_precision(gt1: dict, gt2: dict, desc1: torch.Tensor, desc2: torch.Tensor, b: int, *,
                  subsample: int = 8, tol_px: float = 2.0) -> tuple[int, int]:
    """FRM (``subsample``) on pair ``b``: (number of matches, matches within ``tol_px`` of the GT
    reprojection of view 1's GT point into view 2; a match at a pixel without GT counts as wrong)."""
    xy1, xy2 = fast_reciprocal_nn(desc1[b].float(), desc2[b].float(), subsample=subsample, backend="torch")
    xy1, xy2 = np.asarray(xy1), np.asarray(xy2)
    if len(xy1) == 0:
        return 0, 0
    dev = desc1.device
    x, y = torch.as_tensor(xy1[:, 0], device=dev).long(), torch.as_tensor(xy1[:, 1], device=dev).long()
    valid = gt1["valid_mask"][b, y, x]
    uv = _project(gt1["pts3d"][b, y, x], gt2["camera_pose"][b], gt2["camera_intrinsics"][b])
    err = (uv - torch.as_tensor(xy2, device=dev).double()).norm(dim=-1)
    good = valid & (err <= tol_px)
    return len(xy1), int(good.sum())


def _nn_accuracy(gt1: dict, gt2: dict, desc1: torch.Tensor, desc2: torch.Tensor, tol_px: float) -> float:
    """Share of positive GT correspondences whose view-1 descriptor's nearest neighbour among ALL
    view-2 pixels lies within ``tol_px`` of the GT match."""
    hits, total = 0, 0
    for b in range(desc1.shape[0]):
        ok = gt1["valid_corres"][b]
        if not bool(ok.any()):
            continue
        c1, c2 = gt1["corres"][b][ok].long(), gt2["corres"][b][ok].long()
        q = desc1[b, c1[:, 1], c1[:, 0]].float()
        db = desc2[b].reshape(-1, desc2.shape[-1]).float()
        nn = (q @ db.T).argmax(dim=1)
        w = desc2.shape[2]
        got = torch.stack((nn % w, nn // w), dim=1)
        hits += int(((got - c2).float().norm(dim=1) <= tol_px).sum())
        total += int(ok.sum())
    return hits / total if total else float("nan")


@torch.no_grad()
def validation_metrics(gt1: dict, gt2: dict, pred1: dict, pred2: dict, *, subsample: int = 8,
                       tol_px: float = 2.0) -> dict[str, Any]:
    """Metrics of one validation batch (see the module docstring); floats, JSON-ready."""
    out: dict[str, Any] = pointmap_error(gt1, gt2, pred1, pred2)
    out["desc_nn_acc"] = _nn_accuracy(gt1, gt2, pred1["desc"], pred2["desc"], tol_px)
    n_all, good_all = 0, 0
    for b in range(pred1["desc"].shape[0]):
        n, good = frm_precision(gt1, gt2, pred1["desc"], pred2["desc"], b, subsample=subsample, tol_px=tol_px)
        n_all, good_all = n_all + n, good_all + good
    pairs = pred1["desc"].shape[0]
    out["frm_matches_per_pair"] = n_all / pairs
    out["frm_precision"] = good_all / n_all if n_all else 0.0
    return out
