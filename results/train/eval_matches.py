"""Matching quality and speed of a MASt3R checkpoint on the synthetic suite's evaluated pairs.

For each benchmark root given, its sidecar pairs (``_synthetic/pairs.json``, with viewpoint buckets) are
matched by the ``mast3r`` matcher in several variants; per variant: matches per pair, the share of
matches within ``--tol`` px of the GT reprojection (view-0 pixel back-projected with the exact GT depth,
projected into view 1), matching time per pair, and per viewpoint bucket the same shares. With
``--fast`` the fp16 fast path's FRM-8 matches are compared with fp32's (share identical, per pair pooled).

    PYTHONPATH=. python3 results/train/eval_matches.py --roots /tmp/syn/co3dv2 /tmp/syn/re10k \
        --checkpoint CKPT --device cuda --pairs 48 --fast --sweep 1,2,4,8,16 --dense --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.matchers.mast3r import Mast3rConfig, Mast3rMatcher
from benchmarks.types import View
from datasets.synthetic.gt import project
from datasets.synthetic.sidecar import Sidecar
from mast3r.matching.config import FRMConfig


def _view(root: Path, name: str) -> View:
    path = root / name
    with Image.open(path) as im:
        w, h = im.size
    return View(name=name, image_path=path, width=w, height=h)


def reprojection_errors(side: Sidecar, name0: str, name1: str, pts0: np.ndarray, pts1: np.ndarray) -> np.ndarray:
    """(N,) px error of each match against the GT reprojection of its exact view-0 pixel (z-depth of the
    nearest pixel); inf where view 0 has no GT depth there."""
    t0, t1 = side.truth(name0), side.truth(name1)
    depth0 = side.depth(name0)
    xi = np.clip(np.rint(pts0[:, 0]).astype(int), 0, depth0.shape[1] - 1)
    yi = np.clip(np.rint(pts0[:, 1]).astype(int), 0, depth0.shape[0] - 1)
    z = depth0[yi, xi].astype(np.float64)
    err = np.full(len(pts0), np.inf)
    ok = z > 0
    if ok.any():
        rays = np.c_[pts0[ok].astype(np.float64), np.ones(int(ok.sum()))] @ np.linalg.inv(t0.K).T
        cam = rays * z[ok, None]
        R, t = t0.cam_from_world[:3, :3], t0.cam_from_world[:3, 3]
        world = (cam - t) @ R  # R^T (cam - t), row-wise
        uv, zz = project(world, t1.K, t1.cam_from_world)
        e = np.linalg.norm(uv - pts1[ok], axis=1)
        e[~(zz > 0)] = np.inf
        err[ok] = e
    return err


def run_variant(matcher: Mast3rMatcher, roots: list[Path], n_pairs: int, tol: float) -> tuple[dict, dict]:
    per_bucket: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0])
    n_matches, n_good, n_pairs_done, seconds = 0, 0, 0, 0.0
    kept: dict = {}
    for root in roots:
        side = Sidecar(root)
        for p in side.pairs[:n_pairs]:
            v0, v1 = _view(root, p["view0"]), _view(root, p["view1"])
            t0 = time.perf_counter()
            c = matcher.match(v0, v1)
            seconds += c.timings.get("match", time.perf_counter() - t0)
            err = reprojection_errors(side, p["view0"], p["view1"], c.pts0, c.pts1)
            good = int((err <= tol).sum())
            n_matches, n_good, n_pairs_done = n_matches + len(err), n_good + good, n_pairs_done + 1
            b = per_bucket[p.get("bucket", "?")]
            b[0], b[1], b[2] = b[0] + 1, b[1] + len(err), b[2] + good
            kept[(str(root), p["view0"], p["view1"])] = {tuple(r) for r in np.c_[c.pts0, c.pts1].round(2).tolist()}
    summary = {"pairs": n_pairs_done, "matches_per_pair": n_matches / max(n_pairs_done, 1),
               "precision": n_good / max(n_matches, 1), "match_ms_per_pair": 1e3 * seconds / max(n_pairs_done, 1),
               "buckets": {k: {"pairs": v[0], "matches_per_pair": v[1] / max(v[0], 1),
                               "precision": v[2] / max(v[1], 1)} for k, v in sorted(per_bucket.items())}}
    return summary, kept


def agreement(a: dict, b: dict) -> float:
    same = sum(len(a[k] & b[k]) for k in a)
    total = sum(len(a[k]) for k in a)
    return same / max(total, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--roots", nargs="+", type=Path, required=True)
    ap.add_argument("--checkpoint", default="")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pairs", type=int, default=48, help="pairs per root")
    ap.add_argument("--tol", type=float, default=2.0)
    ap.add_argument("--sweep", default="8", help="FRM subsamples, comma separated")
    ap.add_argument("--dense", action="store_true", help="also dense mutual NN")
    ap.add_argument("--fast", action="store_true", help="fp16 fast path FRM-8 vs fp32 agreement")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    base = Mast3rConfig(checkpoint=args.checkpoint, estimate_focals=False)
    results: dict = {"device": args.device, "checkpoint": args.checkpoint or "embedded default", "variants": {}}
    if args.device.startswith("cuda"):
        import torch

        results["gpu"] = torch.cuda.get_device_name(0)
    first = None
    kept8 = None
    variants = [(f"frm{s}", FRMConfig(subsample=int(s))) for s in args.sweep.split(",")]
    if args.dense:
        variants.append(("dense", FRMConfig(dense=True)))
    for label, frm in variants:
        cfg = Mast3rConfig(**{**base.__dict__, "frm": frm})
        m = first.with_config(cfg) if first is not None else Mast3rMatcher(cfg, args.device)
        first = first or m
        run_variant(m, args.roots, min(2, args.pairs), args.tol)  # warm-up (graphs, caches)
        summary, kept = run_variant(m, args.roots, args.pairs, args.tol)
        if label == "frm8":
            kept8 = kept
        results["variants"][label] = summary
        print(f"{label:7s} pairs={summary['pairs']:4d} matches/pair={summary['matches_per_pair']:8.1f} "
              f"precision@{args.tol:g}px={summary['precision']:.3f} match={summary['match_ms_per_pair']:.2f} ms/pair "
              f"buckets={ {k: round(v['precision'], 3) for k, v in summary['buckets'].items()} }", flush=True)
    if args.fast and kept8 is not None:
        fcfg = Mast3rConfig(**{**base.__dict__, "precision": "fp16", "fast": True})
        fm = Mast3rMatcher(fcfg, args.device)
        summary, kept = run_variant(fm, args.roots, args.pairs, args.tol)
        results["variants"]["frm8_fast_fp16"] = summary
        results["fast_fp16_agreement_with_fp32"] = agreement(kept8, kept)
        print(f"fast fp16 FRM-8: precision={summary['precision']:.3f}, identical to fp32: "
              f"{results['fast_fp16_agreement_with_fp32']:.4f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
