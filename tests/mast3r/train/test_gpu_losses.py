"""The criteria on CUDA: the oracle values in float64 and a training-shaped bf16 batch under autocast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mast3r.train import MAST3R_CRITERION, build_criterion

pytestmark = pytest.mark.gpu


def test_oracle_on_cuda(refvec_dir: Path):
    with np.load(refvec_dir / "loss_small.npz") as data:
        d = {k: data[k] for k in data.files}
    for name in ("mast3r_metric", "dust3r", "infonce_only"):
        gts = [{k[4:]: torch.from_numpy(v).cuda() for k, v in d.items() if k.startswith(f"gt{i}_")}
               for i in (1, 2)]
        preds = [{k[6:]: torch.from_numpy(v).cuda().requires_grad_() for k, v in d.items()
                  if k.startswith(f"pred{i}_")} for i in (1, 2)]
        loss, _ = build_criterion(str(d[f"{name}__criterion"]))(gts[0], gts[1], preds[0], preds[1])
        assert loss.item() == pytest.approx(float(d[f"{name}__loss"]), rel=1e-5), name
        loss.backward()
        for i, pred in ((1, preds[0]), (2, preds[1])):
            for key, t in pred.items():
                ref = d.get(f"{name}__grad_pred{i}_{key}")
                if ref is not None:
                    err = np.abs(t.grad.cpu().numpy() - ref).max() / np.abs(ref).max()
                    assert err <= 1e-4, (name, key)


def test_training_batch_bf16_autocast_matches_float32():
    B, H, W, N, D = 4, 48, 64, 512, 24
    g = torch.Generator().manual_seed(0)
    gts, preds = [], []
    for v in range(2):
        gts.append(dict(pts3d=torch.randn(B, H, W, 3, generator=g) + torch.tensor([0, 0, 4.0]),
                        camera_pose=torch.eye(4).repeat(B, 1, 1),
                        valid_mask=torch.rand(B, H, W, generator=g) > 0.2,
                        is_metric_scale=torch.tensor([True, False] * (B // 2)),
                        sky_mask=torch.rand(B, H, W, generator=g) > 0.9,
                        corres=torch.stack([torch.randint(0, W, (B, N), generator=g),
                                            torch.randint(0, H, (B, N), generator=g)], -1),
                        valid_corres=torch.rand(B, N, generator=g) > 0.5))
        preds.append({"pts3d" if v == 0 else "pts3d_in_other_view": torch.randn(B, H, W, 3, generator=g) + 4,
                      "conf": 1 + torch.rand(B, H, W, generator=g),
                      "desc_conf": 1 + torch.rand(B, H, W, generator=g),
                      "desc": torch.nn.functional.normalize(torch.randn(B, H, W, D, generator=g), dim=-1)})
    crit = build_criterion(MAST3R_CRITERION.replace("blocksize=8192", "blocksize=256"),
                           generator=torch.Generator(device="cuda").manual_seed(1))
    gts = [{k: v.cuda() for k, v in gt.items()} for gt in gts]
    p32 = [{k: v.detach().cuda().requires_grad_() for k, v in p.items()} for p in preds]
    loss32, _ = crit(gts[0], gts[1], p32[0], p32[1])
    crit.set_generator(torch.Generator(device="cuda").manual_seed(1))
    pbf = [{k: v.detach().cuda().bfloat16().requires_grad_() for k, v in p.items()} for p in preds]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        lossbf, _ = crit(gts[0], gts[1], pbf[0], pbf[1])
    assert lossbf.dtype == torch.float32
    assert lossbf.item() == pytest.approx(loss32.item(), rel=2e-2)
    lossbf.backward()
    assert all(torch.isfinite(t.grad).all() for p in pbf for t in p.values())
