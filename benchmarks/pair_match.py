"""Implementation of ``mast3r-bench match`` (see :mod:`benchmarks.commands.match` for the options
and the keys written): the built-in MASt3R path (FRM, dense NN, coarse-to-fine) and the
``--matcher NAME`` path through the matcher registry.

Both go through the inference engine (:class:`mast3r.engine.engine.Engine`): the legacy flags
(:class:`~benchmarks.commands.match.LegacyOptions`) map onto its options in :func:`engine_options`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

import numpy as np
import torch

from benchmarks.commands.match import LegacyOptions
from benchmarks.store import save_npz_atomic
from mast3r.coarse_to_fine import CoarseToFineConfig
from mast3r.config import ConfigError
from mast3r.engine.engine import Engine, NoDescriptorHead
from mast3r.engine.forward import nearest_net_pixels
from mast3r.matching import FRMConfig, MatchingInputError
from mast3r.preprocess import ImageLoadError
from mast3r.weights import CheckpointError

log = logging.getLogger(__name__)

_PRECISION = {"none": "fp32", "bf16": "bf16", "fp16": "fp16"}


def engine_options(opts: LegacyOptions) -> tuple[str, FRMConfig, CoarseToFineConfig | None]:
    """The legacy flags as engine options: (precision, matching, coarse-to-fine or None). The crops
    of ``--coarse-to-fine`` go through the network at ``--c2f-window`` long side, and original <->
    working pixels use the x scale on both axes (as this command always did)."""
    frm = FRMConfig(subsample=opts.subsample, border=opts.border, conf_mode=opts.conf_mode,
                    backend=opts.backend, dense=opts.dense)
    c2f = CoarseToFineConfig(window_size=opts.c2f_window, max_batch=opts.c2f_batch) if opts.coarse_to_fine \
        else None
    return _PRECISION[opts.amp], frm, c2f


def _match_legacy(args: argparse.Namespace, device: str) -> dict[str, np.ndarray]:
    opts = LegacyOptions.from_args(args)
    precision, frm, c2f = engine_options(opts)
    engine = Engine(str(args.checkpoint), opts.size, precision, device)
    images = [engine.prepare(args.img0), engine.prepare(args.img1)]
    t0 = time.perf_counter()
    _ = engine.model
    (fwd,) = engine.forward_pairs([(images[0], images[1])], need_own=False)
    try:
        m = engine.match(fwd, frm)
    except NoDescriptorHead:
        raise ValueError("the checkpoint has no descriptor head (a DUSt3R model cannot match)") from None
    log.info("%d matches in %.2f s (forward + matching)", len(m), time.perf_counter() - t0)
    arrays: dict[str, np.ndarray] = {
        "xy0": m.xy0, "xy1": m.xy1, "conf": m.conf,
        "pts0": images[0].net_to_orig(m.xy0), "pts1": images[1].net_to_orig(m.xy1),
    }
    if m.stats is not None:
        arrays["query_sizes"] = np.asarray(m.stats.query_sizes, np.int64)
    if c2f is not None:
        t0 = time.perf_counter()
        ref = engine.refine(args.img0, args.img1, arrays["pts0"], arrays["pts1"], frm, c2f,
                            max_size=opts.c2f_max_size, fine_size=opts.c2f_window, isotropic=True)
        arrays.update({
            "xy0": ref.crop_xy0, "xy1": ref.crop_xy1, "pts0": ref.pts0, "pts1": ref.pts1, "conf": ref.conf,
            "windows0": ref.result.windows0, "windows1": ref.result.windows1,
            "pair_index": ref.result.pair_index, "c2f_scale": np.array([ref.scale0[0], ref.scale1[0]]),
        })
        log.info("coarse-to-fine: %d matches from %d window pairs in %.2f s", len(arrays["conf"]),
                 len(arrays["windows0"]), time.perf_counter() - t0)
    for i, im in enumerate(images):
        arrays[f"true_shape{i}"] = np.asarray(im.true_shape, dtype=np.int32)
        arrays[f"orig_size{i}"] = np.asarray(im.orig_size, dtype=np.int32)
    return arrays


def _match_with_registry(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """``--matcher NAME``: any registered matcher, original-pixel output (module docstring)."""
    import dataclasses

    from benchmarks.config import apply_overrides, parse_assignments
    from benchmarks.matchers._forward_cache import prepare_view
    from benchmarks.matchers._images import view_from_path
    from benchmarks.registry import MATCHERS
    from benchmarks.run_setup import default_device

    changed = LegacyOptions.from_args(args).changed_flags()
    if changed:
        raise ValueError(f"{', '.join(changed)}: options of the built-in MASt3R path, not used with "
                         "--matcher; set matcher options with --opt KEY=VALUE (e.g. --opt frm.subsample=4)")
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
    engine: Any = getattr(matcher, "engine", None)
    for i, view in enumerate(views):
        arrays[f"orig_size{i}"] = np.asarray([view.width, view.height], dtype=np.int32)
        if engine is not None:
            prep = prepare_view(engine, view)
            arrays[f"xy{i}"] = nearest_net_pixels(prep, arrays[f"pts{i}"]).astype(np.int32)
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
        arrays = _match_legacy(args, device)
    except (CheckpointError, ConfigError, ImageLoadError, MatchingInputError, ValueError,
            RuntimeError) as exc:
        log.debug("match failed", exc_info=True)
        print(f"mast3r-bench match: error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    save_npz_atomic(args.out, arrays)
    log.info("wrote %s: %d matches", args.out, len(arrays["conf"]))
    return 0
