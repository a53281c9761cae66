"""Time the training criterion on a training-shaped batch (not collected by pytest).

    PYTHONPATH=$PWD python tests/mast3r/train/bench_losses.py [--device cuda] [--batch 64] [--hw 240 320]
        [--corres 2048 4096 8192] [--criterion SPEC] [--dense]

Prints ms per forward+backward (bf16 predictions under bf16 autocast) and the peak CUDA memory.
``--dense`` swaps the block-wise InfoNCE for plain autograd on the full similarity matrix (for comparison).
"""

from __future__ import annotations

import argparse
import time

import torch

from mast3r.train import MAST3R_CRITERION, InfoNCE, build_criterion


def batch(B: int, H: int, W: int, N: int, device: str, D: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shift = torch.tensor([0, 0, 5.0])
    gts, preds = [], []
    for v in range(2):
        xs, ys = torch.randint(0, W, (B, N), generator=g), torch.randint(0, H, (B, N), generator=g)
        corres = torch.stack([xs, ys], -1)
        gts.append({k: t.to(device) for k, t in dict(
            pts3d=torch.randn(B, H, W, 3, generator=g) + shift, camera_pose=torch.eye(4).repeat(B, 1, 1),
            valid_mask=torch.rand(B, H, W, generator=g) > 0.1, is_metric_scale=torch.arange(B) % 2 == 0,
            sky_mask=torch.rand(B, H, W, generator=g) > 0.95, corres=corres,
            valid_corres=torch.rand(B, N, generator=g) > 0.5).items()})
        pred = {"pts3d" if v == 0 else "pts3d_in_other_view": torch.randn(B, H, W, 3, generator=g) + shift,
                "conf": 1 + torch.randn(B, H, W, generator=g).exp(),
                "desc": torch.nn.functional.normalize(torch.randn(B, H, W, D, generator=g), dim=-1),
                "desc_conf": 1 + torch.randn(B, H, W, generator=g).exp()}
        preds.append({k: t.to(device=device, dtype=torch.bfloat16).requires_grad_() for k, t in pred.items()})
    return gts, preds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hw", type=int, nargs=2, default=(240, 320))
    ap.add_argument("--corres", type=int, nargs="+", default=(2048, 4096, 8192))
    ap.add_argument("--criterion", default=MAST3R_CRITERION)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dense", action="store_true")
    args = ap.parse_args()
    if args.dense:
        InfoNCE.per_query = InfoNCE.per_query_dense  # type: ignore[method-assign]
    cuda = args.device.startswith("cuda")
    crit = build_criterion(args.criterion)
    for N in args.corres:
        (g1, g2), (p1, p2) = batch(args.batch, *args.hw, N, args.device)
        for i in range(args.reps + 2):
            if i == 2:
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
            with torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16):
                loss, _ = crit(g1, g2, p1, p2)
            loss.backward()
        if cuda:
            torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) / args.reps * 1e3
        peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else ""
        shape = f"B={args.batch} {args.hw[1]}x{args.hw[0]} N={N}"
        print(f"{shape}: {ms:.1f} ms/step{peak}, loss {loss.item():.4f}", flush=True)


if __name__ == "__main__":
    main()
