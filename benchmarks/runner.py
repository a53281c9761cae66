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
* **Pipelining.** ``execution`` (``run --workers N``): solve + evaluate in N threads while the next
  samples are matched, records still appended in sample order (:mod:`benchmarks.pipeline`).
* **Batching.** Cache misses go to the matcher's ``match_many`` (when it has one) in chunks of its
  ``config.batch_size`` pairs; consecutive samples of fewer pairs are matched together, so a kill
  loses at most that group's samples (:mod:`benchmarks.sample_matching`).
* **Ground truth.** Matchers with ``needs_ground_truth = True`` get
  ``match(view0, view1, gt=adapter.gt_correspondences(sample, i, j))`` (see
  :mod:`benchmarks.matchers.doubles`).
* **Capabilities.** Optional adapter and matcher extras (``root``, ``data_files``,
  ``dataset_checksum``, ``artifacts_dir``, ``export``, ``setup``, ``match_many``, ...) are the typed
  protocols of :mod:`benchmarks.capabilities`, checked with ``isinstance``.
* **Assembly.** :func:`build_run` (registries, configs, data root, device: :mod:`benchmarks.run_build`)
  is the one way ``run``, ``sweep`` and the tests' :func:`run_benchmark` build a runner.

Testing hook: ``MAST3R_BENCH_TEST_SLEEP_PER_SAMPLE=<seconds>`` sleeps before each sample (the SIGKILL tests).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks import distributed as dist
from benchmarks.capabilities import (
    HasArtifactsDir,
    HasDataFiles,
    HasDatasetChecksum,
    HasGTCorrespondences,
    HasRoot,
    is_cacheable,
    needs_ground_truth,
)
from benchmarks.distributed import RunPlan
from benchmarks.fingerprint import FileHashCache, sample_fingerprint, verify_records
from benchmarks.hashing import RunSpec, dataset_checksum
from benchmarks.manifest import base_manifest, device_info, now_iso, precision_flags
from benchmarks.pipeline import SERIAL, Execution, scored_records
from benchmarks.progress import ProgressLines
from benchmarks.run_build import assemble
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
from benchmarks.run_results import RunOutcome, RunResult, retry_keys, run_summary, variant_slug
from benchmarks.run_setup import default_device, resolve_configs, resolve_data_root  # noqa: F401 - re-exported
from benchmarks.sample_eval import SampleScorer
from benchmarks.sample_matching import SampleMatches, matched_groups
from benchmarks.store import (
    CorrespondenceCache,
    RecordStore,
    RunDir,
    export_run,
    read_json,
    write_json_atomic,
)
from benchmarks.store import results_root as results_root_of
from benchmarks.types import BenchmarkAdapter, Matcher, Record, Sample
from datasets.records import DatasetFormatError

__all__ = ["Runner", "RunResult", "build_run", "run_benchmark", "resolve_configs", "resolve_data_root",
           "default_device", "variant_slug", "SLEEP_ENV"]
log = logging.getLogger(__name__)

SLEEP_ENV = "MAST3R_BENCH_TEST_SLEEP_PER_SAMPLE"


@dataclass
class _Rank0:
    """What rank 0 keeps from preparing the run to finishing it."""

    run_dir: RunDir
    samples: list[Sample]
    manifest: dict[str, Any]
    computed: int


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
        execution: solver threads (:class:`benchmarks.pipeline.Execution`; default serial): manifest only.
    """

    def __init__(self, adapter: BenchmarkAdapter, matcher: Matcher, adapter_config: Any,
                 estimator_config: Any, *, results_root: Path, data_root: Path, bench: str | None = None,
                 matcher_name: str | None = None, seed: int = 0, limit: int | None = None,
                 device: str = "cpu", force: bool = False, progress: bool | None = None,
                 comm: dist.AnyComm | None = None, retry_failed: bool = False,
                 execution: Execution | None = None) -> None:
        self.adapter, self.matcher, self.comm, self.execution = adapter, matcher, comm, execution or SERIAL
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
        if isinstance(adapter, HasArtifactsDir) and adapter.artifacts_dir is None:
            # files a solver writes (DTU clouds), content-addressed under this results root
            adapter.artifacts_dir = self.results_root / "cache" / "artifacts" / self.spec.bench
        self.needs_gt = needs_ground_truth(matcher)
        if self.needs_gt and not isinstance(adapter, HasGTCorrespondences):
            raise ValueError(f"matcher {self.spec.matcher!r} needs ground-truth correspondences, which "
                             f"adapter {self.spec.bench!r} does not provide (no gt_correspondences())")
        self.cache = None
        if is_cacheable(matcher):
            self.cache = CorrespondenceCache(
                self.results_root / "cache" / "correspondences" / self.spec.matcher_key[:16])
        self.scorer = SampleScorer(adapter, matcher, self.cache, self.data_root, self.needs_gt, seed,
                                   self.max_pixels)

    @property
    def adapter_root(self) -> Path:
        """The dataset folder: the adapter's ``root``, else the data root."""
        return Path(self.adapter.root) if isinstance(self.adapter, HasRoot) else self.data_root

    # -- one sample ---------------------------------------------------------------------------------
    def process(self, sample: Sample, matched: SampleMatches | None = None) -> Record:
        """Match (unless ``matched`` is given), solve and evaluate one sample into a :class:`Record`
        (never raises for matcher or solver errors; ``evaluate`` errors are adapter bugs and
        propagate)."""
        return self.scorer(sample, self._fingerprint(sample), matched)

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run, resume or extend the run. With ``comm`` (a :class:`benchmarks.distributed.Comm`) this
        process is one rank of a torchrun job (protocol in :mod:`benchmarks.distributed`); every rank
        returns the same summary. Ctrl-C raises :class:`RunInterrupted`, a disk that refuses a write
        :class:`ResourceError` (both count the records kept)."""
        try:
            return self._run()
        except KeyboardInterrupt:
            raise RunInterrupted(self._run_dir.path if self._run_dir else None, self._kept()) from None
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
        state: list[_Rank0] = []  # rank 0's, once prepared
        with contextlib.ExitStack() as stack:
            plan: RunPlan = dist.on_rank0(comm, lambda: self._prepare(stack, comm, infos, state))
            run_dir = self._run_dir = RunDir(plan.run_dir)
            if plan.outcome is not None:
                return self._result(run_dir, plan.outcome, comm)
            samples = state[0].samples if comm.rank == 0 else self._check_plan(plan, run_dir, comm)
            self.setup()  # rank 0 did it before writing the manifest: a no-op there
            mine = [samples[i] for i in plan.share(comm.rank)]
            path = dist.shard_path(run_dir, comm.rank) if comm.distributed else run_dir.records_path
            stats = {**infos[comm.rank], **self._process_all(mine, RecordStore(path), comm, len(samples))}
            all_stats = comm.all_gather(stats)  # also the barrier: every shard is complete
            outcome: RunOutcome = dist.on_rank0(comm, lambda: self._finish(state[0], all_stats))
        return self._result(run_dir, outcome, comm)

    def setup(self) -> None:
        """Set the matcher up, once (:func:`benchmarks.run_errors.setup_matcher`)."""
        if not self._set_up:
            setup_matcher(self.matcher, self.spec.matcher)
            self._set_up = True

    def _fingerprint(self, sample: Sample) -> dict[str, str]:
        files = self.adapter.data_files(sample) if isinstance(self.adapter, HasDataFiles) else ()
        return sample_fingerprint(sample, self.hashes, files)

    def _samples(self) -> tuple[list[Sample], list[Sample]]:
        """Every sample of the adapter and the requested prefix of them."""
        every = list(self.adapter.samples())
        dupes = len(every) - len({s.key for s in every})
        if dupes:
            raise ValueError(f"adapter {self.spec.bench!r} yields {dupes} duplicate sample keys")
        if not every:
            raise EmptyBenchmarkError(f"{self.spec.bench}: no samples in {self.adapter_root} (empty split or "
                                      "pair lists?): nothing to run")
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
                       data_root=self.adapter_root)
        if retry:
            log.info("%s: retrying %d samples (data errors%s)", run_dir.path, len(retry),
                     ", failures" if self.retry_failed else "")
            RecordStore(run_dir.records_path).rewrite(keep.values())
        return keep

    def _prepare(self, stack: contextlib.ExitStack, comm: dist.AnyComm, infos: list[dict[str, Any]],
                 state: list[_Rank0]) -> RunPlan:
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
        if not todo and manifest.get("status") == "finished" and summary is not None:
            log.info("%s: finished (%d records); nothing to do", run_dir.path, len(records))
            return RunPlan.of(run_dir.path, keys, outcome=RunOutcome.of(summary, len(samples), records, 0))
        if todo:
            self.setup()
        adapter_root = self.adapter_root
        checksum = (self.adapter.dataset_checksum() if isinstance(self.adapter, HasDatasetChecksum)
                    else dataset_checksum(adapter_root))
        manifest = {
            **base_manifest(device=self.device, data_root=self.data_root, dataset_root=adapter_root,
                            dataset_checksum=checksum, seed=self.seed, configs=self.configs),
            "key": spec.key, "bench": spec.bench, "matcher": spec.matcher,
            "started": manifest.get("started", now_iso()), "resumed": manifest.get("resumed", -1) + 1,
            "status": "running", "limit": self.limit, "world_size": comm.world_size, "backend": comm.backend,
            "ranks": infos, "counts": {"expected": len(samples), "done": len(records)},
        }
        manifest["execution"] = {**manifest.get("execution", {}), "runner": self.execution.as_dict()}
        write_json_atomic(run_dir.manifest_path, manifest)
        if records and todo:
            log.info("%s: resuming: %d of %d samples done", run_dir.path, len(records), len(samples))
        weights = [len(self.adapter.pairs(samples[i])) if comm.world_size > 1 else 0 for i in todo]
        state.append(_Rank0(run_dir, samples, manifest, len(todo)))
        parts = dist.partition(weights, comm.world_size)
        return RunPlan.of(run_dir.path, keys, [[todo[j] for j in part] for part in parts])

    def _check_plan(self, plan: RunPlan, run_dir: RunDir, comm: dist.AnyComm) -> list[Sample]:
        """Ranks > 0: the samples, checked against rank 0's (same run directory, same keys)."""
        where = f"rank {comm.rank} on {socket.gethostname()}"
        if not run_dir.config_path.is_file() or read_json(run_dir.config_path).get("key") != self.spec.key:
            raise dist.DistributedError(f"{where}: run directory {run_dir.path} not found or of another "
                                        "run: --results must be a folder shared by all nodes, same settings")
        samples = self._samples()[1]
        plan.check_keys([s.key for s in samples], where)
        return samples

    def _process_all(self, samples: list[Sample], store: RecordStore, comm: dist.AnyComm, expected: int
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
        pairs, t0, good = 0, time.perf_counter(), []
        with store, bar, lines:
            for sample in samples:  # bad files first, from their headers: nothing decodes them
                try:
                    check_sample_files(sample, self.max_pixels)
                    good.append(sample)
                except DatasetFormatError:
                    store.append(self.process(sample))
                    bar.update()
                    lines.update()
            groups = matched_groups(self.matcher, self.adapter, good, cache=self.cache,
                                    data_root=self.data_root, needs_gt=self.needs_gt)
            with contextlib.closing(scored_records(groups, self.scorer, self._fingerprint, self.execution,
                                                   sleep)) as records:
                for sample, record in zip(good, records):
                    store.append(record)
                    pairs += len(self.adapter.pairs(sample))
                    bar.update()
                    lines.update()
                    self.hashes.save(every=1000)
        return dist.rates(len(samples), pairs, time.perf_counter() - t0)

    def _finish(self, state: _Rank0, stats: list[dict[str, Any]]) -> RunOutcome:
        """Rank 0: merge the shards into ``records.jsonl``; write the summary and finished manifest."""
        run_dir, samples = state.run_dir, state.samples
        records = dist.merge_shards(run_dir, [s.key for s in samples])  # in sample order
        summary = run_summary(self.spec, run_dir.slug, records, self.adapter)
        summary["exports"] = export_run(self.adapter, records.values(), run_dir)
        write_json_atomic(run_dir.summary_path, summary)
        total = dist.rates(sum(s["samples"] for s in stats), sum(s["pairs"] for s in stats),
                           max(s["seconds"] for s in stats))
        state.manifest.update(status="finished", finished=now_iso(), precision=precision_flags(),
                              counts={"expected": len(samples), "done": len(records)}, ranks=stats,
                              throughput=total)
        write_json_atomic(run_dir.manifest_path, state.manifest)
        return RunOutcome.of(summary, len(samples), records, state.computed)

    def _result(self, run_dir: RunDir, outcome: RunOutcome, comm: dist.AnyComm) -> RunResult:
        return outcome.result(run_dir, self.spec, {"rank": comm.rank, "world_size": comm.world_size})


def build_run(bench: str, matcher: str, *, overrides: Mapping[str, str] | None = None,
              configs: Mapping[str, Any] | None = None, data_root: str | os.PathLike | None = None,
              results_root: str | os.PathLike | None = None, limit: int | None = None,
              device: str | None = None, seed: int = 0, force: bool = False, progress: bool | None = None,
              comm: dist.AnyComm | None = None, retry_failed: bool = False, previous: Matcher | None = None,
              forward_cache: Any = None, execution: Execution | None = None) -> Runner:
    """The :class:`Runner` of adapter ``bench`` with matcher ``matcher``
    (:func:`benchmarks.run_build.assemble`: configs = defaults + ``overrides``, or ``configs`` already
    resolved; the adapter reads ``<data root>/<data_dir or bench>``; under torchrun, ``comm`` is this rank's
    :class:`benchmarks.distributed.Comm` and a CUDA matcher gets ``cuda:<LOCAL_RANK>``). ``previous``
    and ``forward_cache``: share a model between sweep variants
    (:func:`benchmarks.run_build.build_matcher`)."""
    parts = assemble(bench, matcher, overrides=overrides, configs=configs, data_root=data_root, device=device,
                     comm=comm, previous=previous, forward_cache=forward_cache)
    return Runner(parts.adapter, parts.matcher, parts.configs["adapter"], parts.configs["estimator"],
                  results_root=results_root_of(results_root), data_root=parts.data_root, bench=bench,
                  matcher_name=matcher, seed=seed, limit=limit, device=parts.device, force=force,
                  progress=progress, comm=comm, retry_failed=retry_failed, execution=execution)


def run_benchmark(bench: str, matcher: str, **options: Any) -> RunResult:
    """``build_run(bench, matcher, **options).run()`` (options of :func:`build_run`)."""
    return build_run(bench, matcher, **options).run()
