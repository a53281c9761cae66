"""Implementation of ``mast3r-bench match`` (see :mod:`benchmarks.commands.match` for the options
and the keys written): the MASt3R checkpoint path (FRM, dense NN, coarse-to-fine) and the
``--matcher NAME`` path through the matcher registry."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch

from benchmarks.store import save_npz_atomic
from mast3r.coarse_to_fine import CoarseToFineConfig, coarse_to_fine_match
from mast3r.config import ConfigError
from mast3r.matching import FRMConfig, MatchingInputError, match_descriptors
from mast3r.preprocess import ImageLoadError, PreparedImage, load_image, preprocess_pil, stack_images
from mast3r.weights import CheckpointError, load_model

log = logging.getLogger(__name__)

_AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _match_prepared(model: Any, ims0: list[PreparedImage], ims1: list[PreparedImage], cfg: FRMConfig,
                    device: str, amp: torch.dtype | None) -> list[Any]:
    """Forward a batch of same-size pairs and match each: list of :class:`PixelMatches`."""
    with torch.inference_mode():
        out = model(stack_images(ims0).to(device), stack_images(ims1).to(device), autocast_dtype=amp)
    v0, v1 = out.view0, out.view1
    if v0.desc is None or v1.desc is None:
        raise ValueError("the checkpoint has no descriptor head (a DUSt3R model cannot match)")
    return [match_descriptors(v0.desc[b], v1.desc[b], v0.desc_conf[b], v1.desc_conf[b], cfg)
            for b in range(len(ims0))]


def _open_rgb(path: Path, max_size: int) -> tuple[np.ndarray, float]:
    """EXIF-oriented RGB uint8 array, downscaled to ``max_size`` long side (0: kept); returns the
    scale (original pixels per working pixel)."""
    try:
        with PIL.Image.open(path) as pil:
            img = PIL.ImageOps.exif_transpose(pil).convert("RGB")
    except (OSError, PIL.UnidentifiedImageError) as exc:
        raise ImageLoadError(f"{path}: unreadable image ({exc})") from None
    w, h = img.size
    if max_size and max(w, h) > max_size:
        s = max_size / max(w, h)
        img = img.resize((round(w * s), round(h * s)), PIL.Image.Resampling.LANCZOS)
    return np.asarray(img), w / img.size[0]


def _prepare_crop(crop: np.ndarray, size: int) -> PreparedImage:
    """A window crop (already at network size) through the official preprocessing, kept square."""
    return preprocess_pil(PIL.Image.fromarray(np.ascontiguousarray(crop)), size, True)


def _run_c2f(model: Any, args: argparse.Namespace, cfg: FRMConfig, device: str, pts0: np.ndarray,
             pts1: np.ndarray) -> dict[str, np.ndarray]:
    full0, s0 = _open_rgb(args.img0, args.c2f_max_size)
    full1, s1 = _open_rgb(args.img1, args.c2f_max_size)
    crop_xy: list[tuple[np.ndarray, np.ndarray]] = []

    def match_crops(crops0: list[np.ndarray], crops1: list[np.ndarray]) -> list[tuple[Any, Any, Any]]:
        ims0 = [_prepare_crop(c, args.c2f_window) for c in crops0]
        ims1 = [_prepare_crop(c, args.c2f_window) for c in crops1]
        results = []
        for m, a, b in zip(_match_prepared(model, ims0, ims1, cfg, device, _AMP[args.amp]), ims0, ims1):
            crop_xy.append((m.xy0, m.xy1))
            results.append((a.net_to_orig(m.xy0), b.net_to_orig(m.xy1), m.conf))
        return results

    c2f_cfg = CoarseToFineConfig(window_size=args.c2f_window, max_batch=args.c2f_batch)
    coarse0, coarse1 = (pts0 + 0.5) / s0 - 0.5, (pts1 + 0.5) / s1 - 0.5  # original -> working pixels
    res = coarse_to_fine_match(full0, full1, coarse0, coarse1, match_crops, c2f_cfg)
    # network pixels of each kept match (rows of the concatenated crop results)
    all0 = np.concatenate([a for a, _ in crop_xy]) if crop_xy else np.zeros((0, 2), np.int32)
    all1 = np.concatenate([b for _, b in crop_xy]) if crop_xy else np.zeros((0, 2), np.int32)
    return {
        "xy0": all0[res.source_index].astype(np.int32), "xy1": all1[res.source_index].astype(np.int32),
        "pts0": (res.xy0 + 0.5) * s0 - 0.5, "pts1": (res.xy1 + 0.5) * s1 - 0.5,
        "conf": res.conf.astype(np.float32), "windows0": res.windows0, "windows1": res.windows1,
        "pair_index": res.pair_index, "c2f_scale": np.array([s0, s1]),
    }


_LEGACY_DEFAULTS = {"subsample": 8, "dense": False, "border": 3, "conf_mode": "min", "backend": "auto",
                    "size": 512, "amp": "none", "coarse_to_fine": False, "c2f_max_size": 0, "c2f_window": 512,
                    "c2f_batch": 16}


def _match_with_registry(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """``--matcher NAME``: any registered matcher, original-pixel output (module docstring)."""
    import dataclasses

    from benchmarks.config import apply_overrides, parse_assignments
    from benchmarks.matchers._images import view_from_path
    from benchmarks.registry import MATCHERS
    from benchmarks.run_setup import default_device

    changed = sorted(k for k, v in _LEGACY_DEFAULTS.items() if getattr(args, k) != v)
    if changed:
        opts = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise ValueError(f"{opts}: options of the built-in MASt3R path, not used with --matcher; set "
                         "matcher options with --opt KEY=VALUE "
                         "(e.g. --opt frm.subsample=4)")
    cls = MATCHERS.get(args.matcher)
    overrides = parse_assignments(args.opt)
    if args.checkpoint is not None:
        if "checkpoint" not in {f.name for f in dataclasses.fields(cls.Config)}:
            raise ValueError(f"--checkpoint: matcher {args.matcher!r} has no checkpoint option")
        overrides.setdefault("checkpoint", str(args.checkpoint))
    config = apply_overrides(cls.Config(), overrides)
    if getattr(cls, "needs_ground_truth", False):
        raise ValueError(f"matcher {args.matcher!r} needs ground-truth correspondences (not available for "
                         "an image pair)")
    matcher = cls(config, device=args.device or default_device(cls))
    views = [view_from_path(args.img0), view_from_path(args.img1)]
    t0 = time.perf_counter()
    corrs = matcher.match(*views)
    log.info("%s: %d matches in %.2f s", args.matcher, len(corrs), time.perf_counter() - t0)
    arrays: dict[str, np.ndarray] = {
        "pts0": corrs.pts0.astype(np.float64), "pts1": corrs.pts1.astype(np.float64),
        "conf": corrs.scores.astype(np.float32),
    }
    for name in ("pts3d0", "pts3d1"):
        if getattr(corrs, name) is not None:
            arrays[name] = getattr(corrs, name)
    network = getattr(matcher, "network", None)
    for i, view in enumerate(views):
        arrays[f"orig_size{i}"] = np.asarray([view.width, view.height], dtype=np.int32)
        if network is not None:
            prep = network.prepare(view)
            h, w = prep.true_shape
            xy = np.rint(prep.orig_to_net(arrays[f"pts{i}"])).astype(np.int64).reshape(-1, 2)
            xy = np.stack([np.clip(xy[:, 0], 0, w - 1), np.clip(xy[:, 1], 0, h - 1)], axis=1)
            arrays[f"xy{i}"] = xy.astype(np.int32)
            arrays[f"true_shape{i}"] = np.asarray(prep.true_shape, dtype=np.int32)
    for key in ("focal0_px", "focal1_px"):
        if corrs.meta.get(key) is not None:
            arrays[key] = np.asarray(corrs.meta[key], np.float64)
    return arrays


def run(args: argparse.Namespace) -> int:
    if getattr(args, "matcher", None):
        from benchmarks.registry import UnknownNameError

        try:
            out = _match_with_registry(args)
        except (UnknownNameError, ValueError, RuntimeError, OSError) as exc:  # config/weights/image errors
            log.debug("match failed", exc_info=True)
            print(f"mast3r-bench match: error: {exc}".splitlines()[0], file=sys.stderr)
            return 2
        save_npz_atomic(args.out, out)
        log.info("wrote %s: %d matches", args.out, len(out["conf"]))
        return 0
    if args.checkpoint is None:
        print("mast3r-bench match: error: give --checkpoint PATH (or --matcher NAME)", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        cfg = FRMConfig(subsample=args.subsample, border=args.border, conf_mode=args.conf_mode,
                        backend=args.backend, dense=args.dense)
        images = [load_image(args.img0, args.size), load_image(args.img1, args.size)]
        t0 = time.perf_counter()
        model = load_model(args.checkpoint, device=device)
        log.info("loaded %s in %.1f s", args.checkpoint, time.perf_counter() - t0)
        t0 = time.perf_counter()
        (m,) = _match_prepared(model, images[:1], images[1:], cfg, device, _AMP[args.amp])
        log.info("%d matches in %.2f s (forward + matching)", len(m), time.perf_counter() - t0)
        arrays: dict[str, np.ndarray] = {
            "xy0": m.xy0, "xy1": m.xy1, "conf": m.conf,
            "pts0": images[0].net_to_orig(m.xy0), "pts1": images[1].net_to_orig(m.xy1),
        }
        if m.stats is not None:
            arrays["query_sizes"] = np.asarray(m.stats.query_sizes, np.int64)
        if args.coarse_to_fine:
            t0 = time.perf_counter()
            arrays.update(_run_c2f(model, args, cfg, device, arrays["pts0"], arrays["pts1"]))
            log.info("coarse-to-fine: %d matches from %d window pairs in %.2f s", len(arrays["conf"]),
                     len(arrays["windows0"]), time.perf_counter() - t0)
    except (CheckpointError, ConfigError, ImageLoadError, MatchingInputError, ValueError,
            RuntimeError) as exc:
        log.debug("match failed", exc_info=True)
        print(f"mast3r-bench match: error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    for i, im in enumerate(images):
        arrays[f"true_shape{i}"] = np.asarray(im.true_shape, dtype=np.int32)
        arrays[f"orig_size{i}"] = np.asarray(im.orig_size, dtype=np.int32)
    save_npz_atomic(args.out, arrays)
    log.info("wrote %s: %d matches", args.out, len(arrays["conf"]))
    return 0
