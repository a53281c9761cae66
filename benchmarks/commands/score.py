"""``mast3r-bench score``: score result files against ground truth with the official metrics.

Subcommands (each prints one JSON object on stdout and, with ``--json OUT``, writes it to OUT):

* ``score mapfree --data ROOT --split val --submission FILE.zip``: the official Map-free evaluator
  (``benchmarks.metrics.mapfree``) on a split with GT. ``ROOT`` is the data root holding
  ``mapfree/<split>/`` (or the ``mapfree`` folder itself). Keys: ``avg_median_trans_err_m,
  avg_median_rot_err_deg, avg_median_vcre_px, precision_pose, auc_pose, precision_vcre, auc_vcre,
  estimated_fraction`` (fractions in [0, 1]; ``null`` where the official script prints NaN).
  Only the split's ``pose_<scene>.txt`` members are read, bounded by what a submission can need:
  51,200,000 bytes uncompressed per member (100,000 frame keys x 512-byte lines) and 256 MiB in all,
  checked on the declared sizes and again while reading; over a cap is an error naming the member.
* ``score aachen|inloc --gt GT.txt --pred RESULTS.txt``: recall at the benchmark's thresholds,
  ``{"<condition>": [[t_m, r_deg, percent], ...], "all": [...]}``. GT lines are
  ``name qw qx qy qz tx ty tz [condition]`` (world-to-camera, names as in the query lists);
  predictions are the upload format (basenames). Missing queries are failures. Condition of a query:
  the optional 9th GT column; else Aachen: a ``day``/``night`` folder in the name; InLoc: ``DUC1`` /
  ``DUC2`` in the name, else ``--building-map`` (``name building`` lines, full name or basename);
  else the query is only in ``"all"``. ``--strict`` uses ``<`` instead of kapture's ``<=``.
* ``score dtu --gt-root "<SampleSet/MVS Data>" --scan N --ply FILE.ply``: DTUeval-python scores
  (``accuracy_mm, completeness_mm, overall_mm`` and the point counts of each stage).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.metrics import localization, mapfree
from benchmarks.metrics.dtu import dtu_chamfer
from benchmarks.metrics.submission import (
    SubmissionFormatError,
    list_zip_members,
    read_name_map,
    read_visloc_gt,
    read_visloc_results,
    read_zip_members,
)

__all__ = ["register", "handler"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="score a submission / result file against ground truth (official metrics)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)

    p = sub.add_parser("mapfree", help="Map-free submission zip against a split with GT")
    p.add_argument("--data", type=Path, default=None,
                   help="data root holding mapfree/<split>/ (or the mapfree folder itself); "
                        "default: $MAST3R_BENCH_DATA, else ./data")
    p.add_argument("--split", default="val", help="split folder to score against (default: val)")
    p.add_argument("--submission", type=Path, required=True, help="submission zip (pose_<scene>.txt)")

    for name, what in (("aachen", "Aachen Day-Night (day/night)"), ("inloc", "InLoc (DUC1/DUC2)")):
        p = sub.add_parser(name, help=f"{what} upload file against a GT pose file")
        p.add_argument("--gt", type=Path, required=True,
                       help="GT lines: name qw qx qy qz tx ty tz [condition]")
        p.add_argument("--pred", type=Path, required=True,
                       help="upload file: basename qw qx qy qz tx ty tz")
        p.add_argument("--strict", action="store_true",
                       help="strict '<' thresholds (default: kapture's '<=')")
        if name == "inloc":
            p.add_argument("--building-map", type=Path, default=None,
                           help="'name building' lines for queries whose GT line and name give none")

    p = sub.add_parser("dtu", help="DTU point cloud against the SampleSet ground truth")
    p.add_argument("--gt-root", type=Path, required=True, help='the "SampleSet/MVS Data" folder')
    p.add_argument("--scan", type=int, required=True, help="scan number, e.g. 24")
    p.add_argument("--ply", type=Path, required=True, help="reconstruction (DTU world frame, mm)")
    p.add_argument("--no-shuffle", action="store_true",
                   help="thin the points in file order (default: seeded shuffle, as the official code)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")

    for p in sub.choices.values():
        p.add_argument("--json", type=Path, default=None, help="also write the JSON object to this file")
        p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    scorers = {"mapfree": _score_mapfree, "aachen": _score_visloc, "inloc": _score_visloc, "dtu": _score_dtu}
    try:
        result = scorers[args.benchmark](args)
    except (ValueError, OSError, ImportError) as exc:
        log.error("score %s: %s", args.benchmark, exc)
        return 1
    text = json.dumps(_json_safe(result), indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


def _json_safe(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, NaN/inf to null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


# --- Map-free --------------------------------------------------------------------------------------------


def _mapfree_split_dir(root: Path | None, split: str) -> Path:
    root = Path(root if root is not None else os.environ.get("MAST3R_BENCH_DATA", "data"))
    candidates = (root / "mapfree" / split, root / split)
    for cand in candidates:
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"no Map-free split folder: looked for {candidates[0]} and {candidates[1]}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: ground-truth file not found") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _score_mapfree(args: argparse.Namespace) -> dict[str, Any]:
    split_dir = _mapfree_split_dir(args.data, args.split)
    # Every folder is a scene, as in the official script (which takes them in iterdir order; sorting
    # only changes the summation order of the average of medians, at the last bit).
    scenes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    if not scenes:
        raise ValueError(f"{split_dir}: no scene folders")
    names = list_zip_members(args.submission)
    members = read_zip_members(args.submission, [f"pose_{scene}.txt" for scene in scenes])
    results: dict[str, mapfree.SceneResult] = {}
    for scene in tqdm(scenes, desc="map-free scenes", disable=len(scenes) < 10):
        folder = split_dir / scene
        intrinsics = mapfree.load_intrinsics(_read_text(folder / "intrinsics.txt"),
                                             source=str(folder / "intrinsics.txt"))
        gt = mapfree.load_poses(_read_text(folder / "poses.txt"), source=str(folder / "poses.txt"))
        member = f"pose_{scene}.txt"
        est = None
        if member in members:
            where = f"{args.submission}:{member}"
            try:
                text = members[member].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SubmissionFormatError(f"{where}: unsupported encoding, use UTF-8 "
                                            f"({exc.reason})") from None
            est = mapfree.load_poses(text, load_confidence=True, source=where)
        else:
            log.warning("submission has no estimates for scene %s", scene)
        results[scene] = mapfree.evaluate_scene(gt, est, intrinsics, scene=scene)
    unexpected = {n[5:-4] for n in names if n.startswith("pose_") and n.endswith(".txt")} - set(scenes)
    if unexpected:
        log.warning("submission contains estimates for %d scenes outside the %s split", len(unexpected),
                    args.split)
    metrics = mapfree.aggregate(results)
    if metrics.num_failures:
        log.warning("submission is missing pose estimates for %d frames", metrics.num_failures)
    log.info("%d frames with estimates, %d failures", metrics.num_estimates, metrics.num_failures)
    return metrics.as_dict()


# --- Aachen / InLoc --------------------------------------------------------------------------------------


def _condition(benchmark: str, name: str, explicit: str | None, building_map: dict[str, str]) -> str | None:
    if explicit is not None:
        return explicit
    parts = name.replace("\\", "/").split("/")
    found: list[str]
    if benchmark == "aachen":
        found = [c for c in ("day", "night") if c in parts[:-1]]
    else:
        found = [b for b in ("DUC1", "DUC2") if b in name]
        if not found:
            mapped = building_map.get(name, building_map.get(parts[-1]))
            found = [mapped] if mapped is not None else []
    if len(found) > 1:
        raise ValueError(f"query {name!r}: ambiguous condition {found}; give it as a 9th GT column")
    return found[0] if found else None


def _score_visloc(args: argparse.Namespace) -> dict[str, Any]:
    gt = read_visloc_gt(args.gt)
    if not gt:
        raise ValueError(f"{args.gt}: no ground-truth queries")
    pred = read_visloc_results(args.pred)
    building_map = read_name_map(args.building_map) if getattr(args, "building_map", None) else {}
    basenames: dict[str, str] = {}
    for name, _, _ in gt:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if base in basenames:
            raise ValueError(f"{args.gt}: queries {basenames[base]!r} and {name!r} share the basename "
                             f"{base!r}, which the upload format cannot tell apart")
        basenames[base] = name
    unknown = sorted(set(pred) - set(basenames))
    if unknown:
        log.warning("%s: %d predictions for queries not in the GT (ignored), e.g. %s", args.pred,
                    len(unknown), unknown[:3])
    nan_pose = np.full((4, 4), np.nan)
    cam_gt = np.stack([pose for _, pose, _ in gt])
    cam_pred = np.stack([pred.get(base, nan_pose) for base in basenames])
    missing = sum(base not in pred for base in basenames)
    if missing:
        log.warning("%s: %d of %d queries have no estimate (failures)", args.pred, missing, len(gt))
    conditions = [_condition(args.benchmark, name, cond, building_map) for name, _, cond in gt]
    if all(c is None for c in conditions):
        log.warning("no query condition found: only 'all' is reported")
    thresholds = (localization.AACHEN_THRESHOLDS if args.benchmark == "aachen"
                  else localization.INLOC_THRESHOLDS)
    pos, rot = localization.localization_errors(cam_gt, cam_pred)
    return localization.recall_by_condition(pos, rot, conditions, thresholds, inclusive=not args.strict)


# --- DTU -------------------------------------------------------------------------------------------------


def _score_dtu(args: argparse.Namespace) -> dict[str, Any]:
    from datasets.dtu import read_dtu_gt
    from mast3r.ply import read_ply_points

    gt = read_dtu_gt(args.gt_root, args.scan)
    if gt.stl_points is None:
        raise ValueError(f"{args.gt_root}: no STL points for scan {args.scan}")
    points = read_ply_points(args.ply)
    result = dtu_chamfer(points, gt.stl_points, gt.obs_mask, gt.bb, gt.res, gt.plane,
                         shuffle=not args.no_shuffle, seed=args.seed)
    return result.as_dict()
