"""The criteria against the official values (refvec ``loss_small.npz``: loss and gradients, float64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mast3r.train import MAST3R_CRITERION, build_criterion, preds_from_pair

NAMES = ("mast3r_metric", "mast3r_metric_log", "dust3r", "infonce_only")


@pytest.fixture(scope="module")
def oracle(refvec_dir: Path) -> dict[str, np.ndarray]:
    with np.load(refvec_dir / "loss_small.npz") as data:
        return {k: data[k] for k in data.files}


def views(oracle: dict[str, np.ndarray], dtype: torch.dtype = torch.float64):
    def conv(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a.copy())
        return t.to(dtype) if t.is_floating_point() else t

    gts = [{k[4:]: conv(v) for k, v in oracle.items() if k.startswith(f"gt{i}_")} for i in (1, 2)]
    preds = [{k[6:]: conv(v).requires_grad_() for k, v in oracle.items() if k.startswith(f"pred{i}_")}
             for i in (1, 2)]
    return gts, preds


def test_oracle_lists_only_known_criteria(oracle):
    stored = {k.split("__")[0] for k in oracle if "__" in k}
    assert stored == set(NAMES), "new criteria in loss_small.npz: add them to NAMES"
    assert str(oracle["mast3r_metric__criterion"]) == MAST3R_CRITERION


def max_abs_rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.parametrize("name", NAMES)
def test_loss_and_gradients_match_official(oracle, name):
    crit = build_criterion(str(oracle[f"{name}__criterion"]))
    (gt1, gt2), (pred1, pred2) = views(oracle)
    loss, details = crit(gt1, gt2, pred1, pred2)
    want = float(oracle[f"{name}__loss"])
    # the official InfoNCE runs in float32 whatever the input dtype
    assert loss.dtype == (torch.float32 if name == "infonce_only" else torch.float64)
    assert abs(loss.item() - want) <= 1e-5 * abs(want)
    assert all(isinstance(v, float) for v in details.values()) and details
    loss.backward()
    checked = 0
    for i, pred in ((1, pred1), (2, pred2)):
        for key, tensor in pred.items():
            ref_key = f"{name}__grad_pred{i}_{key}"
            if ref_key in oracle:
                assert tensor.grad is not None, ref_key
                assert max_abs_rel(tensor.grad.numpy(), oracle[ref_key]) <= 1e-4, ref_key
                checked += 1
            else:  # the official criterion does not depend on it
                assert tensor.grad is None or not tensor.grad.any(), ref_key
    assert checked == sum(k.startswith(f"{name}__grad_") for k in oracle)


def test_release_details_use_official_names(oracle):
    (gt1, gt2), (pred1, pred2) = views(oracle)
    _, details = build_criterion(MAST3R_CRITERION)(gt1, gt2, pred1, pred2)
    assert list(details) == ["conf_loss_1", "conf_loss2", "Regr3D_pts3d_1", "Regr3D_pts3d_2",
                             "matching_conf_loss", "Conf1_std", "Conf2_std", "MatchingLoss"]
    total = details["conf_loss_1"] + details["conf_loss2"] + 0.075 * details["matching_conf_loss"]
    assert total == pytest.approx(float(oracle["mast3r_metric__loss"]), rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_float32_and_bf16_autocast_inputs(oracle, name):
    """Training dtypes: float32 tensors (also under bf16 autocast) give the float64 values to float32
    precision; bf16 predictions are upcast and the loss is float32."""
    crit = build_criterion(str(oracle[f"{name}__criterion"]))
    want = float(oracle[f"{name}__loss"])
    (gt1, gt2), (pred1, pred2) = views(oracle, torch.float32)
    loss, _ = crit(gt1, gt2, pred1, pred2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_ac, _ = crit(gt1, gt2, pred1, pred2)
    assert loss.dtype == loss_ac.dtype == torch.float32
    assert loss_ac.item() == loss.item()
    assert loss.item() == pytest.approx(want, rel=1e-5)
    (gt1, gt2), (pred1, pred2) = views(oracle, torch.bfloat16)
    loss_bf, _ = crit(gt1, gt2, pred1, pred2)
    loss_bf.backward()
    assert loss_bf.dtype == torch.float32 and np.isfinite(loss_bf.item())
    assert loss_bf.item() == pytest.approx(want, rel=0.05)
    assert all(t.grad is None or t.grad.dtype == torch.bfloat16 for p in (pred1, pred2) for t in p.values())


def test_preds_from_pair_feeds_the_criterion(oracle):
    from mast3r.model import PairOutput, ViewOutput

    (gt1, gt2), (pred1, pred2) = views(oracle)
    out = PairOutput(ViewOutput(**pred1), ViewOutput(pts3d=pred2["pts3d_in_other_view"], conf=pred2["conf"],
                                                     desc=pred2["desc"], desc_conf=pred2["desc_conf"]))
    p1, p2 = preds_from_pair(out)
    assert set(p1) == {"pts3d", "conf", "desc", "desc_conf"}
    assert set(p2) == {"pts3d_in_other_view", "conf", "desc", "desc_conf"}
    loss, _ = build_criterion(MAST3R_CRITERION)(gt1, gt2, p1, p2)
    assert loss.item() == pytest.approx(float(oracle["mast3r_metric__loss"]), rel=1e-5)
