"""Training objective of MASt3R/DUSt3R (paper section 3, official ``--train_criterion`` grammar).

``build_criterion(spec)`` parses the official criterion string without ``eval``; the result is called as
``crit(gt1, gt2, pred1, pred2) -> (loss, details)`` with the official dict views:

- gt1/gt2: ``pts3d`` (B,H,W,3) world frame, ``camera_pose`` (B,4,4) camera-to-world, ``valid_mask`` (B,H,W)
  bool, ``is_metric_scale`` (B,) bool (needed by ``'?'`` norm modes), ``sky_mask`` (B,H,W) bool,
  ``corres`` (B,N,2) int (x, y) pixels of that view, ``valid_corres`` (B,N) bool (gt1's is used);
- pred1: ``pts3d`` (camera 1), ``conf``, ``desc`` (B,H,W,D), ``desc_conf``;
  pred2: ``pts3d_in_other_view`` (camera 1), ``conf``, ``desc``, ``desc_conf``.

``loss`` is a 0-d tensor (float32, or float64 for float64 inputs) computed outside autocast; ``details``
holds detached floats under the official names (``conf_loss_1``, ``conf_loss2``, ``Regr3D_pts3d_1``,
``Regr3D_pts3d_2``, ``matching_conf_loss``, ``Conf1_std``, ``Conf2_std``, ``MatchingLoss``, ...).
``preds_from_pair(model_output)`` turns this project's ``PairOutput`` into ``pred1, pred2``.
"""

from mast3r.train.criterion_base import Criterion, WeightedSum, preds_from_pair
from mast3r.train.criterion_parse import KNOWN_CALLS, CriterionSpecError, build_criterion
from mast3r.train.losses_match import APLoss, ConfMatchingLoss, InfoNCE, MatchingLoss
from mast3r.train.losses_regr import (
    L21,
    ConfLoss,
    L21Loss,
    Regr3D,
    Regr3D_ScaleInv,
    Regr3D_ScaleShiftInv,
    Regr3D_ShiftInv,
)

#: the released MASt3R training criterion (metric-scale aware regression + 0.075 x confident InfoNCE)
MAST3R_CRITERION = ("ConfLoss(Regr3D(L21, norm_mode='?avg_dis'), alpha=0.2) + 0.075*ConfMatchingLoss("
                    "MatchingLoss(InfoNCE(mode='proper', temperature=0.05), negatives_padding=0, "
                    "blocksize=8192), alpha=10.0, confmode='mean')")

__all__ = [
    "APLoss", "ConfLoss", "ConfMatchingLoss", "Criterion", "CriterionSpecError", "InfoNCE", "KNOWN_CALLS",
    "L21", "L21Loss", "MAST3R_CRITERION", "MatchingLoss", "Regr3D", "Regr3D_ScaleInv", "Regr3D_ScaleShiftInv",
    "Regr3D_ShiftInv", "WeightedSum", "build_criterion", "preds_from_pair",
]
