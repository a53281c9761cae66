"""``mast3r-bench match``: match one image pair with MASt3R (FRM, dense mutual NN, coarse-to-fine),
or with any registered matcher: ``--matcher NAME [--opt KEY=VALUE ...]``.

With ``--matcher`` the matcher is built from its ``Config`` with the ``--opt`` overrides (dotted keys,
as ``mast3r-bench run`` takes them, e.g. ``--opt frm.subsample=4``; ``--checkpoint`` sets the
``checkpoint`` option of matchers that have one) and the ``.npz`` holds ``pts0``, ``pts1`` (float64
ORIGINAL pixels), ``conf`` (float32 scores), ``orig_size0/1``; ``pts3d0``/``pts3d1`` when the matcher
returns them; for the network matchers (``mast3r``, ``dust3r``) also ``xy0``, ``xy1`` (int32 nearest
network pixels of the full image) and ``true_shape0/1``. The legacy options below (``--subsample``,
``--dense``, ``--coarse-to-fine``, ...) drive the built-in MASt3R path only.

Keys written to the ``.npz`` without ``--matcher``:

* ``xy0``, ``xy1``: (N, 2) int32 ``(x, y)`` network pixels of the matches (with
  ``--coarse-to-fine``: network pixels inside the window crop given by ``pair_index``);
* ``pts0``, ``pts1``: (N, 2) float64 ``(x, y)`` in ORIGINAL image pixels (centres at integers);
* ``conf``: (N,) float32 match confidence (``--conf-mode`` of the two ``desc_conf``);
* ``true_shape0/1`` (int32 ``[H, W]`` network sizes), ``orig_size0/1`` (int32 ``[W0, H0]``);
* FRM only: ``query_sizes`` (int64 iteration trace); coarse-to-fine only: ``windows0``,
  ``windows1`` ((S, 4) int64 ``[x0, y0, x1, y1]`` in the working image), ``pair_index`` (N,)
  and ``c2f_scale`` (original pixels per working-image pixel).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

_AMP = ("none", "bf16", "fp16")


@dataclass(frozen=True)
class LegacyOptions:
    """The options of the built-in MASt3R path (``--subsample`` ... ``--c2f-batch``), defaults once:
    the parser takes its defaults from here, ``--matcher`` refuses any changed one, and
    :mod:`benchmarks.pair_match` maps them onto the inference engine's options."""

    subsample: int = 8
    dense: bool = False
    border: int = 3
    conf_mode: str = "min"
    backend: str = "auto"
    size: int = 512
    amp: str = "none"
    coarse_to_fine: bool = False
    c2f_max_size: int = 0
    c2f_window: int = 512
    c2f_batch: int = 16

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LegacyOptions:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    def changed_flags(self) -> list[str]:
        """``--flag`` names of the options that differ from their defaults (sorted)."""
        default = type(self)()
        return ["--" + f.name.replace("_", "-") for f in sorted(fields(self), key=lambda f: f.name)
                if getattr(self, f.name) != getattr(default, f.name)]


_D = LegacyOptions()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "match",
        help="match one image pair with MASt3R (FRM, dense NN or coarse-to-fine) into an .npz file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("img0", type=Path, help="first image (view 0)")
    p.add_argument("img1", type=Path, help="second image (view 1)")
    p.add_argument("--checkpoint", type=Path,
                   help="official .pth, state dict or .safetensors (required without --matcher)")
    p.add_argument("--matcher", metavar="NAME", help="use this registered matcher (see `mast3r-bench ls`)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="matcher option override (repeatable; with --matcher)")
    p.add_argument("--out", required=True, type=Path, help="output .npz path")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--subsample", type=int, default=_D.subsample,
                     help=f"FRM seed grid step in pixels (default {_D.subsample})")
    how.add_argument("--dense", action="store_true", help="exhaustive mutual NN instead of FRM")
    p.add_argument("--border", type=int, default=_D.border,
                   help=f"drop matches this close to a border (default {_D.border})")
    p.add_argument("--conf-mode", choices=("min", "geomean"), default=_D.conf_mode,
                   help="per-match confidence")
    p.add_argument("--backend", choices=("auto", "torch", "faiss"), default=_D.backend,
                   help="NN search backend")
    p.add_argument("--size", type=int, default=_D.size,
                   help=f"network long side in pixels (default {_D.size})")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--amp", choices=_AMP, default=_D.amp, help="autocast dtype for encoder/decoders")
    c2f = p.add_argument_group("coarse-to-fine (paper §3.4)")
    c2f.add_argument("--coarse-to-fine", action="store_true", help="refine with matching of window crops")
    c2f.add_argument("--c2f-max-size", type=int, default=_D.c2f_max_size,
                     help="downscale the originals to this long side first (0: original resolution)")
    c2f.add_argument("--c2f-window", type=int, default=_D.c2f_window,
                     help=f"window long side in pixels (default {_D.c2f_window})")
    c2f.add_argument("--c2f-batch", type=int, default=_D.c2f_batch,
                     help=f"crop pairs per forward pass (default {_D.c2f_batch})")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from benchmarks.pair_match import run  # torch and the model load only when the command runs

    rc = run(args)
    if rc == 0:
        print(summary_line(args.out))
    return rc


def summary_line(out: Path) -> str:
    """``"<n> matches -> OUT.npz"`` from the file written (``conf`` holds one score per match)."""
    import numpy as np

    with np.load(out) as data:
        n = len(data["conf"]) if "conf" in data else 0
        extra = " (coarse-to-fine)" if "windows0" in data else ""
    return f"{n} matches{extra} -> {out}"
