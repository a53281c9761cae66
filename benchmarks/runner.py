"""The runner: samples -> (cached) matches -> solve -> evaluate -> records -> summary.

It is the only writer of ``results/`` (layout in :mod:`benchmarks.store`). Semantics:

* **Identity.** A run is identified by :class:`benchmarks.hashing.RunSpec` (adapter name, version and
  config, estimator config, matcher name and config, weights checksum, base seed). Same settings ->
  same directory; any changed setting -> a new directory. ``--force`` deletes and restarts it.
* **Resume.** Records are appended durably one per sample; a re-run skips every sample that has a
  record, so a run killed at any instant (SIGKILL included) continues where it stopped, with no
  duplicates and the same final summary.
* **Limit.** ``limit`` takes the first N samples of ``adapter.samples()`` (a prefix, not part of the
  key). A run is *finished* when every sample of the requested prefix has a record; running again
  with a larger limit continues the same run; a smaller limit never shrinks it (nothing is
  computed, the stored summary is returned). The summary covers all records present.
* **Data.** Each record carries its sample's data fingerprint (:mod:`benchmarks.fingerprint`); a
  resume first checks every record's key against the adapter's sample list (all of it, whatever the
  limit) and its fingerprint against the data read now: a foreign record or changed data is a
  :class:`~benchmarks.run_errors.DataChangedError` naming the records file and line (nothing runs).
* **Setup.** The matcher's optional ``setup()`` (checkpoint load) runs once before the first sample
  to compute; a failure is a :class:`~benchmarks.run_errors.SetupError` (no record, no summary).
* **Failures are records.** A matcher exception fails the sample with reason
  ``matcher_error: <ExcType>: <msg>``, a solver exception with ``solver_error: ...``; the run goes on.
  Bad data (unreadable, wrong-size or over-budget image, unreadable depth map or ``.mat``: see
  :mod:`benchmarks.run_errors`) gives ``data_error: <file>: <problem>`` records instead, counted apart
  (``num_data_errors``), left out of the metrics and retried by every later run (``retry_failed``:
  method failures too). Disk errors (ENOSPC, read-only) stop the run; records written stay.
* **Seeds.** ``adapter.solve`` gets ``derive_seed(seed, sample.key)``: independent of order/resume.
* **Cache.** Correspondences are cached per (matcher key, pair key) unless the matcher class sets
  ``cacheable = False``; re-solving with other estimator settings never re-runs the matcher.
* **Distributed.** Under torchrun (``comm``), samples without a record are split across the ranks
  by pair count; each rank appends to its own shard and rank 0 merges them in sample order (see
  :mod:`benchmarks.distributed`): same run, same records and summary as one process. Any run, of
  any world size, first folds in the shards an earlier job left.
* **Batching.** Cache misses go to the matcher's ``match_many`` (when it has one) in chunks of its
  ``config.batch_size`` pairs; consecutive samples of fewer pairs are matched together, so a kill
  loses at most that group's samples (:mod:`benchmarks.sample_matching`).
* **Ground truth.** Matchers with ``needs_ground_truth = True`` get
  ``match(view0, view1, gt=adapter.gt_correspondences(sample, i, j))`` (see
  :mod:`benchmarks.matchers.doubles`).

Optional adapter attributes the runner uses when present: ``root`` (the dataset folder, recorded in
the manifest), ``data_files(sample) -> list[Path]`` (files its solver reads besides the images: part
of the data fingerprint), ``dataset_checksum() -> str`` (instead of hashing the listing of ``root``: worth it
for benchmarks with millions of files), ``gt_correspondences(sample, i, j)`` (for ground-truth
matchers), ``title`` (table caption) and the class attribute ``data_dir`` (folder name under the
data root; default: the benchmark name).

Testing hook: ``MAST3R_BENCH_TEST_SLEEP_PER_SAMPLE=<seconds>`` sleeps before each sample (used by the
SIGKILL test to land the kill mid-run).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import traceback
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks import distributed as dist
from benchmarks.fingerprint import META_KEY, FileHashCache, sample_fingerprint, verify_records
from benchmarks.hashing import RunSpec, dataset_checksum, derive_seed, sha256_json
from benchmarks.manifest import base_manifest, device_info, now_iso, precision_flags
from benchmarks.progress import ProgressLines
from benchmarks.registry import ADAPTERS, MATCHERS
from benchmarks.run_errors import (
    EmptyBenchmarkError,
    ResourceError,
    RunInterrupted,
    check_sample_files,
    describe_os_error,
    is_resource_error,
    max_image_pixels,
    setup_matcher,
)
from benchmarks.run_results import RunResult, failure_prediction, retry_keys, status_counts, variant_slug
from benchmarks.run_setup import default_device, resolve_configs, resolve_data_root  # noqa: F401 - re-exported
from benchmarks.sample_matching import SampleMatches, match_sample, matched_groups
from benchmarks.store import (
    CorrespondenceCache,
    RecordStore,
    RunDir,
    export_run,
    read_json,
    write_json_atomic,
)
from benchmarks.store import results_root as results_root_of
from benchmarks.types import Correspondences, Record, Sample
from datasets.records import DatasetFormatError

__all__ = ["Runner", "RunResult", "run_benchmark", "resolve_configs", "resolve_data_root", "default_device",
           "variant_slug", "SLEEP_ENV"]
log = logging.getLogger(__name__)

SLEEP_ENV = "MAST3R_BENCH_TEST_SLEEP_PER_SAMPLE"


class Runner:
    """Runs one (adapter, matcher) combination into its run directory.

    Args:
        adapter: a ``BenchmarkAdapter`` built from ``adapter_config`` and ``estimator_config``.
        matcher: a ``Matcher`` (its ``config`` attribute is part of the run key).
        adapter_config, estimator_config: the adapter's resolved config instances.
        results_root: the ``results`` folder.
        data_root: the data root (pair keys hold image paths relative to it; provenance).
        bench, matcher_name: registry names (default: the classes' ``name``).
        seed: base seed of the solver. limit: first N samples only (None: all).
        device: recorded in the manifest (the matcher was built for it).
        force: delete an existing run with the same key first.
        retry_failed: recompute the samples of method-failure records too (data errors always are).
        progress: tqdm bar (None: only on a terminal; under torchrun on rank 0 only).
        comm: this rank's :class:`benchmarks.distributed.Comm` under torchrun (None: one process).
    """

    def __init__(self, adapter: Any, matcher: Any, adapter_config: Any, estimator_config: Any, *,
                 results_root: Path, data_root: Path, bench: str | None = None,
                 matcher_name: str | None = None, seed: int = 0, limit: int | None = None,
                 device: str = "cpu", force: bool = False, progress: bool | None = None,
                 comm: Any = None, retry_failed: bool = False) -> None:
        self.adapter, self.matcher, self.comm = adapter, matcher, comm
        self.results_root, self.data_root = Path(results_root), Path(data_root)
        self.seed, self.limit, self.device = seed, limit, device
        self.force, self.progress, self.retry_failed = force, progress, retry_failed
        self.hashes = FileHashCache(self.results_root / "cache" / "file_sha256.json")
        self.max_pixels = max_image_pixels()
        self._set_up = False
        self._run_dir: RunDir | None = None
        self.configs = {"matcher": matcher.config, "adapter": adapter_config, "estimator": estimator_config}
        self.spec = RunSpec(  # configs as dataclasses: RunSpec keeps their identity part
            bench=bench or adapter.name, adapter_version=str(adapter.version),
            adapter_config=adapter_config, estimator_config=estimator_config,
            matcher=matcher_name or matcher.name, matcher_config=matcher.config,
            weights=matcher.weights_checksum(), seed=seed,
        )
        if hasattr(adapter, "artifacts_dir") and adapter.artifacts_dir is None:
            # files a solver writes (DTU clouds), content-addressed under this results root
            adapter.artifacts_dir = self.results_root / "cache" / "artifacts" / self.spec.bench
        self.needs_gt = bool(getattr(matcher, "needs_ground_truth", False))
        if self.needs_gt and not hasattr(adapter, "gt_correspondences"):
            raise ValueError(f"matcher {self.spec.matcher!r} needs ground-truth correspondences, which "
                             f"adapter {self.spec.bench!r} does not provide (no gt_correspondences())")
        self.cache = None
        if getattr(matcher, "cacheable", True):
            self.cache = CorrespondenceCache(
                self.results_root / "cache" / "correspondences" / self.spec.matcher_key[:16])

    # -- one sample ---------------------------------------------------------------------------------
    def process(self, sample: Sample, matched: SampleMatches | None = None) -> Record:
        """Match (unless ``matched`` is given), solve and evaluate one sample into a :class:`Record`
        (never raises for matcher or solver errors; ``evaluate`` errors are adapter bugs and
        propagate)."""
        timings: dict[str, float] = defaultdict(float)
        corrs: list[Correspondences] = []
        hits = 0
        fingerprint = self._fingerprint(sample)
        try:
            check_sample_files(sample, self.max_pixels)
            if matched is None:
                matched = match_sample(self.matcher, self.adapter, sample, cache=self.cache,
                                       data_root=self.data_root, needs_gt=self.needs_gt)
            corrs, hits = matched.corrs, matched.cache_hits
            timings.update(matched.timings)
        except Exception as e:  # noqa: BLE001 - a failed match is a failure record
            prediction = failure_prediction("matcher", e)
            log.warning("%s: matcher failed: %s", sample.key, prediction.failure_reason)
            log.debug("%s", traceback.format_exc())
        else:
            timings["match"] = matched.seconds
            t0 = time.perf_counter()
            try:
                prediction = self.adapter.solve(sample, corrs, derive_seed(self.seed, sample.key))
            except Exception as e:  # noqa: BLE001
                prediction = failure_prediction("solver", e, sum(len(c) for c in corrs))
                log.warning("%s: solver failed: %s", sample.key, prediction.failure_reason)
                log.debug("%s", traceback.format_exc())
            timings["solve"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = self.adapter.evaluate(sample, prediction)
        timings["evaluate"] = time.perf_counter() - t0
        meta = {**dict(sample.meta), "num_matches": [len(c) for c in corrs], "cache_hits": hits,
                "seed": derive_seed(self.seed, sample.key), META_KEY: fingerprint}
        return Record(sample.key, dict(metrics), asdict(prediction), meta, dict(timings))

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run, resume or extend the run. With ``comm`` (a :class:`benchmarks.distributed.Comm`) this
        process is one rank of a torchrun job (protocol in :mod:`benchmarks.distributed`); every rank
        returns the same summary. Ctrl-C raises :class:`RunInterrupted`, a disk that refuses a write
        :class:`ResourceError` (both count the records kept)."""
        try:
            return self._run()
        except KeyboardInterrupt:
            raise RunInterrupted(self._run_dir, self._kept()) from None
        except OSError as e:
            if not is_resource_error(e):
                raise
            raise ResourceError(describe_os_error(e), self._kept()) from e
        finally:
            self.hashes.save()

    def _kept(self) -> int:
        if self._run_dir is None:
            return 0
        return self._run_dir.count_records() + sum(p.read_bytes().count(b"\n")
                                                   for p in dist.shard_paths(self._run_dir))

    def _run(self) -> RunResult:
        comm = self.comm or dist.SoloComm()
        infos = comm.all_gather({"rank": comm.rank, "local_rank": comm.local_rank,
                                 "hostname": socket.gethostname(), **device_info(self.device)})
        state: dict[str, Any] = {}
        with contextlib.ExitStack() as stack:
            plan = dist.on_rank0(comm, lambda: self._prepare(stack, comm, infos, state))
            run_dir = self._run_dir = RunDir(Path(plan["run_dir"]))
            if "outcome" in plan:
                return self._result(run_dir, plan["outcome"], comm)
            samples = state["samples"] if comm.rank == 0 else self._check_plan(plan, run_dir, comm)
            self.setup()  # rank 0 did it before writing the manifest: a no-op there
            mine = [samples[i] for i in plan["parts"][comm.rank]]
            path = dist.shard_path(run_dir, comm.rank) if comm.distributed else run_dir.records_path
            stats = {**infos[comm.rank], **self._process_all(mine, RecordStore(path), comm, len(samples))}
            all_stats = comm.all_gather(stats)  # also the barrier: every shard is complete
            outcome = dist.on_rank0(comm, lambda: self._finish(state, all_stats))
        return self._result(run_dir, outcome, comm)

    def setup(self) -> None:
        """Set the matcher up, once (:func:`benchmarks.run_errors.setup_matcher`)."""
        if not self._set_up:
            setup_matcher(self.matcher, self.spec.matcher)
            self._set_up = True

    def _fingerprint(self, sample: Sample) -> dict[str, str]:
        files_fn = getattr(self.adapter, "data_files", None)
        return sample_fingerprint(sample, self.hashes, files_fn(sample) if callable(files_fn) else ())

    def _samples(self) -> tuple[list[Sample], list[Sample]]:
        """Every sample of the adapter and the requested prefix of them."""
        every = list(self.adapter.samples())
        dupes = len(every) - len({s.key for s in every})
        if dupes:
            raise ValueError(f"adapter {self.spec.bench!r} yields {dupes} duplicate sample keys")
        if not every:
            root = getattr(self.adapter, "root", self.data_root)
            raise EmptyBenchmarkError(f"{self.spec.bench}: no samples in {root} (empty split or pair "
                                      "lists?): nothing to run")
        return every, every[:self.limit] if self.limit is not None else every

    def _resumable(self, run_dir: RunDir, records: dict[str, Record], every: list[Sample],
                   keys: list[str]) -> dict[str, Record]:
        """The records to keep: the data-error records of the prefix (and failures, with
        ``retry_failed``) are dropped to be retried; the others are checked against the data."""
        retry = retry_keys(records, keys, self.retry_failed)
        keep = {k: r for k, r in records.items() if k not in retry}
        by_key = {s.key: s for s in every}
        fingerprints = {k: self._fingerprint(by_key[k]) for k in keep if k in by_key}
        verify_records(keep, fingerprints, set(by_key), [run_dir.records_path], bench=self.spec.bench,
                       data_root=Path(getattr(self.adapter, "root", self.data_root)))
        if retry:
            log.info("%s: retrying %d samples (data errors%s)", run_dir.path, len(retry),
                     ", failures" if self.retry_failed else "")
            RecordStore(run_dir.records_path).rewrite(keep.values())
        return keep

    def _prepare(self, stack: contextlib.ExitStack, comm: Any, infos: list[dict[str, Any]],
                 state: dict[str, Any]) -> dict[str, Any]:
        """Rank 0: list and check the samples, take the lock, write the config, fold in any record
        shards, drop the records to retry, set the matcher up; the plan (samples to compute per rank)
        or, for a finished run, its outcome."""
        spec = self.spec
        every, samples = self._samples()
        run_dir = RunDir.locate(self.results_root, spec, variant_slug(self.configs, self.seed))
        self._run_dir = run_dir
        stack.enter_context(run_dir.lock())
        if self.force:
            log.info("--force: restarting %s", run_dir.path)
            run_dir.reset()
            dist.remove_shards(run_dir)
        keys = [s.key for s in samples]
        records = dist.merge_shards(run_dir, keys)  # what an earlier (distributed) job left, any world size
        records = self._resumable(run_dir, records, every, keys)
        if not run_dir.config_path.is_file():
            write_json_atomic(run_dir.config_path, {"key": spec.key, "slug": run_dir.slug, **spec.as_dict()})
        todo = [i for i, key in enumerate(keys) if key not in records]
        manifest, summary = run_dir.read_manifest(), run_dir.read_summary()
        plan: dict[str, Any] = {"run_dir": str(run_dir.path), "expected": len(samples),
                                "keys": sha256_json(keys)}
        if not todo and manifest.get("status") == "finished" and summary is not None:
            log.info("%s: finished (%d records); nothing to do", run_dir.path, len(records))
            return {**plan, "outcome": self._outcome(summary, len(samples), records, 0)}
        if todo:
            self.setup()
        adapter_root = Path(getattr(self.adapter, "root", self.data_root))
        checksum_fn = getattr(self.adapter, "dataset_checksum", None)
        checksum = checksum_fn() if callable(checksum_fn) else dataset_checksum(adapter_root)
        manifest = {
            **base_manifest(device=self.device, data_root=self.data_root, dataset_root=adapter_root,
                            dataset_checksum=checksum, seed=self.seed, configs=self.configs),
            "key": spec.key, "bench": spec.bench, "matcher": spec.matcher,
            "started": manifest.get("started", now_iso()), "resumed": manifest.get("resumed", -1) + 1,
            "status": "running", "limit": self.limit, "world_size": comm.world_size, "backend": comm.backend,
            "ranks": infos, "counts": {"expected": len(samples), "done": len(records)},
        }
        write_json_atomic(run_dir.manifest_path, manifest)
        if records and todo:
            log.info("%s: resuming: %d of %d samples done", run_dir.path, len(records), len(samples))
        weights = [len(self.adapter.pairs(samples[i])) if comm.world_size > 1 else 0 for i in todo]
        state.update(run_dir=run_dir, samples=samples, manifest=manifest, computed=len(todo))
        parts = dist.partition(weights, comm.world_size)
        return {**plan, "parts": [[todo[j] for j in part] for part in parts]}

    def _check_plan(self, plan: dict[str, Any], run_dir: RunDir, comm: Any) -> list[Sample]:
        """Ranks > 0: the samples, checked against rank 0's (same run directory, same keys)."""
        where = f"rank {comm.rank} on {socket.gethostname()}"
        if not run_dir.config_path.is_file() or read_json(run_dir.config_path).get("key") != self.spec.key:
            raise dist.DistributedError(f"{where}: run directory {run_dir.path} not found or of another "
                                        "run: --results must be a folder shared by all nodes, same settings")
        samples = self._samples()[1]
        if len(samples) != plan["expected"] or sha256_json([s.key for s in samples]) != plan["keys"]:
            raise dist.DistributedError(f"{where}: the adapter lists other samples than on rank 0 "
                                        "(is the data root the same on every node?)")
        return samples

    def _process_all(self, samples: list[Sample], store: RecordStore, comm: Any, expected: int
                     ) -> dict[str, Any]:
        """Process ``samples`` in order, appending each record to ``store``; this rank's throughput."""
        sleep = float(os.environ.get(SLEEP_ENV, 0) or 0)
        show = self.progress if comm.rank == 0 else False
        desc = f"{self.spec.bench}/{self.spec.matcher}"
        total, initial = (len(samples), 0) if comm.distributed else (expected, expected - len(samples))
        if comm.distributed:
            desc += f" [rank 0 of {comm.world_size}]"
        bar = tqdm(total=total, initial=initial, unit="sample", desc=desc,
                   disable=None if show is None else not show, leave=False)
        lines = ProgressLines(desc, total, initial, enabled=show is None and bar.disable)  # no terminal
        pairs, t0 = 0, time.perf_counter()
        good = []
        with store, bar, lines:
            for sample in samples:  # bad files first, from their headers: nothing decodes them
                try:
                    check_sample_files(sample, self.max_pixels)
                    good.append(sample)
                except DatasetFormatError:
                    store.append(self.process(sample))
                    bar.update()
                    lines.update()
            for sample, matched in matched_groups(self.matcher, self.adapter, good, cache=self.cache,
                                                  data_root=self.data_root, needs_gt=self.needs_gt):
                if sleep:
                    time.sleep(sleep)
                store.append(self.process(sample, matched))
                pairs += len(self.adapter.pairs(sample))
                bar.update()
                lines.update()
                self.hashes.save(every=1000)
        return dist.rates(len(samples), pairs, time.perf_counter() - t0)

    def _finish(self, state: dict[str, Any], stats: list[dict[str, Any]]) -> dict[str, Any]:
        """Rank 0: merge the shards into ``records.jsonl``; write the summary and finished manifest."""
        spec, run_dir, samples = self.spec, state["run_dir"], state["samples"]
        records = dist.merge_shards(run_dir, [s.key for s in samples])  # in sample order
        failures, bad = status_counts(records)
        errors = {k for k, _ in bad}
        summary = {
            "bench": spec.bench, "matcher": spec.matcher, "slug": run_dir.slug, "key": spec.key,
            "num_records": len(records), "num_failures": failures,
            "num_data_errors": len(bad), "data_errors": [{"key": k, "error": e} for k, e in bad],
            # data errors say nothing of the method: the metrics leave them out (and count them above)
            "metrics": self.adapter.summarize([r for k, r in records.items() if k not in errors]),
        }
        summary["exports"] = export_run(self.adapter, records.values(), run_dir)
        write_json_atomic(run_dir.summary_path, summary)
        total = dist.rates(sum(s["samples"] for s in stats), sum(s["pairs"] for s in stats),
                           max(s["seconds"] for s in stats))
        state["manifest"].update(status="finished", finished=now_iso(), precision=precision_flags(),
                                 counts={"expected": len(samples), "done": len(records)}, ranks=stats,
                                 throughput=total)
        write_json_atomic(run_dir.manifest_path, state["manifest"])
        return self._outcome(summary, len(samples), records, state["computed"])

    @staticmethod
    def _outcome(summary: dict[str, Any], expected: int, records: dict[str, Record], computed: int
                 ) -> dict[str, Any]:
        failures, bad = status_counts(records)
        return {"summary": summary, "expected": expected, "done": len(records), "computed": computed,
                "failures": failures, "data_errors": bad}

    def _result(self, run_dir: RunDir, outcome: dict[str, Any], comm: Any) -> RunResult:
        extra = {"rank": comm.rank, "world_size": comm.world_size}
        return RunResult(run_dir, self.spec, **outcome, extra=extra)


def run_benchmark(bench: str, matcher: str, *, overrides: Mapping[str, str] | None = None,
                  data_root: str | os.PathLike | None = None, results_root: str | os.PathLike | None = None,
                  limit: int | None = None, device: str | None = None, seed: int = 0, force: bool = False,
                  progress: bool | None = None, comm: Any = None, retry_failed: bool = False) -> RunResult:
    """Build adapter ``bench`` and matcher ``matcher`` from the registries (configs = defaults +
    ``overrides``) and run them. The adapter reads ``<data root>/<bench>`` (or the class's
    ``data_dir`` attribute instead of ``bench``). Under torchrun, ``comm`` is this rank's
    :class:`benchmarks.distributed.Comm` and a CUDA matcher gets ``cuda:<LOCAL_RANK>``."""
    adapter_cls, matcher_cls = ADAPTERS.get(bench), MATCHERS.get(matcher)
    configs = resolve_configs(adapter_cls, matcher_cls, overrides)
    root = resolve_data_root(data_root, getattr(adapter_cls, "data_dir", bench))
    device = device if device not in (None, "auto") else default_device(matcher_cls)
    if comm is not None and comm.distributed:
        device = dist.rank_device(device, comm.local_rank)
    adapter = adapter_cls(root / getattr(adapter_cls, "data_dir", bench), configs["adapter"],
                          configs["estimator"])
    matcher_obj = matcher_cls(configs["matcher"], device=device)
    runner = Runner(adapter, matcher_obj, configs["adapter"], configs["estimator"],
                    results_root=results_root_of(results_root), data_root=root, bench=bench,
                    matcher_name=matcher, seed=seed, limit=limit, device=device, force=force,
                    progress=progress, comm=comm, retry_failed=retry_failed)
    return runner.run()
