"""``mast3r-bench export RUN_DIR [--out DIR] [--data ROOT]``: write a run's official export files.

Finished runs already hold them in ``RUN_DIR/export/`` (the runner exports when a run finishes);
this command writes them again, elsewhere or for a run made before, from the run's records and
its stored configs: the Map-free submission zip, the visuallocalization.net upload file for Aachen
and InLoc, one PLY per DTU scan. The adapter reads the dataset root recorded in the run's manifest
unless ``--data`` names another.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from benchmarks.capabilities import Exportable

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="write a run's official submission/upload/PLY files",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, help="results/runs/<bench>/<matcher>/<variant>-<hash8>")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: RUN_DIR/export)")
    p.add_argument("--data", type=Path, default=None,
                   help="the benchmark's data folder (default: the manifest's dataset_root)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from benchmarks.config import ConfigError, from_dict
    from benchmarks.registry import ADAPTERS
    from benchmarks.store import RecordStore, RunDir, read_json

    run = RunDir(args.run_dir)
    if not run.config_path.is_file():
        print(f"error: {args.run_dir} is not a run directory (no config.json)")
        return 2
    config = read_json(run.config_path)
    manifest = run.read_manifest()
    cls = ADAPTERS.get(config["adapter"])
    if not isinstance(cls, Exportable):
        print(f"error: benchmark {config['adapter']!r} has no export")
        return 2
    root = args.data or manifest.get("dataset_root")
    if root is None:
        print("error: the manifest records no dataset_root; pass --data")
        return 2
    try:
        adapter = cls(Path(root), from_dict(cls.Config, config["adapter_config"]),
                      from_dict(cls.EstimatorConfig, config["estimator_config"]))
    except ConfigError as exc:
        print(f"error: {run.config_path}: {exc}")
        return 2
    records = list(RecordStore(run.records_path).load().values())
    if not records:
        print(f"error: {run.records_path} holds no records")
        return 2
    out = args.out or run.path / "export"
    out.mkdir(parents=True, exist_ok=True)
    for path in adapter.export(records, out):
        print(path)
    return 0
