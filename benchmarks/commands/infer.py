"""``mast3r-bench infer``: run the network on one image pair and save its outputs as ``.npz``
(through the inference engine, :class:`mast3r.engine.engine.Engine`).

Keys written (batch dimension removed, float32): ``pts3d0 conf0 desc0 desc_conf0`` (view 0) and
``pts3d1 conf1 desc1 desc_conf1`` (view 1; ``pts3d1`` in camera 0's frame), ``true_shape0/1``
(int32 ``[H, W]`` network sizes), ``orig_size0/1`` (int32 ``[W0, H0]``) and ``orig_from_net0/1``
(3x3 float64 maps from network pixels to original pixels, centres at integers). DUSt3R checkpoints
have no ``desc*`` keys.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports happen in the handler: `mast3r-bench --help` stays fast
    import numpy as np

log = logging.getLogger(__name__)

_AMP = ("none", "bf16", "fp16")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "infer",
        help="run MASt3R/DUSt3R on one image pair and write its outputs to an .npz file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("img0", type=Path, help="first image (view 0: the reference camera)")
    p.add_argument("img1", type=Path, help="second image (view 1)")
    p.add_argument("--checkpoint", required=True, type=Path, help="official .pth, state dict or .safetensors")
    p.add_argument("--out", required=True, type=Path, help="output .npz path")
    p.add_argument(
        "--size", type=int, default=512, help="long side in pixels (224: short side + square crop)"
    )
    p.add_argument("--square-ok", action="store_true", help="keep square images square (no 4:3 crop)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--amp", choices=_AMP, default="none", help="autocast dtype for encoder/decoders")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from benchmarks.store import save_npz_atomic
    from mast3r.config import ConfigError
    from mast3r.engine.engine import Engine
    from mast3r.preprocess import ImageLoadError
    from mast3r.weights import CheckpointError

    precision = {"none": "fp32", "bf16": "bf16", "fp16": "fp16"}[args.amp]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        engine = Engine(str(args.checkpoint), args.size, precision, device, square_ok=args.square_ok)
        images = [engine.prepare(args.img0), engine.prepare(args.img1)]
        t0 = time.perf_counter()
        model = engine.model
        log.info("loaded %s (%s, sha256 %s) in %.1f s", args.checkpoint, model.config.name,
                 engine.network.weights_checksum(), time.perf_counter() - t0)
        (fwd,) = engine.forward_pairs([(images[0], images[1])], need_own=False)
    except (CheckpointError, ConfigError, ImageLoadError, ValueError, RuntimeError, AssertionError) as exc:
        log.debug("infer failed", exc_info=True)
        print(f"mast3r-bench infer: error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    arrays: dict[str, np.ndarray] = {}
    for i, (view, im) in enumerate(zip((fwd.view0, fwd.view1), images)):
        for name, tensor in view.items():
            arrays[f"{name}{i}"] = tensor.float().cpu().numpy()
        arrays[f"true_shape{i}"] = np.asarray(im.true_shape, dtype=np.int32)
        arrays[f"orig_size{i}"] = np.asarray(im.orig_size, dtype=np.int32)
        arrays[f"orig_from_net{i}"] = im.orig_from_net
    save_npz_atomic(args.out, arrays)
    log.info("wrote %s (%s)", args.out, ", ".join(sorted(arrays)))
    print(summary_line(arrays, args.out))
    return 0


def summary_line(arrays: dict, out: Path) -> str:
    """``"pointmaps 384x512 + 384x512 (pts3d, conf, ...) -> OUT.npz"``: the shapes written."""
    shapes = " + ".join("x".join(str(int(v)) for v in arrays[f"true_shape{i}"]) for i in (0, 1))
    names = sorted({k[:-1] for k in arrays if k[-1] in "01"})
    return f"pointmaps {shapes} ({', '.join(names)}) -> {out}"
