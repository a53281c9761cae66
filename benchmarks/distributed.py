"""Multi-process evaluation on ``torch.distributed``, launched by ``torchrun`` (one node, several
nodes, or a Slurm allocation). :meth:`benchmarks.runner.Runner.run` drives the protocol; this module
holds the launch environment, the process group, the partition and the record shards.

One distributed run, in order:

1. Every rank reports its host and device (all-gather).
2. Rank 0 takes the run's lock (held to the end), writes ``config.json``, lists the samples, folds the
   record shards an earlier job left (any world size) into ``records.jsonl`` (:func:`merge_shards`)
   and partitions the samples without a record (:func:`partition`: greedy LPT on pair counts). It
   broadcasts the plan (:class:`RunPlan`), or its error (:func:`on_rank0`).
3. Each rank lists the samples itself (and checks it sees the same keys and the same run directory:
   ``--results`` must be on a filesystem all nodes share), processes its share in sample order and
   appends every record durably to its own shard ``records.rank<k>.jsonl``
   (:class:`benchmarks.store.RecordStore`: one write + fsync per record, torn tails repaired).
4. The ranks all-gather their throughput (the final barrier); rank 0 merges the shards into
   ``records.jsonl`` in sample order (atomic replace, then the shards are deleted), writes
   ``summary.json`` and the manifest, and broadcasts the outcome.

A job killed at any moment (one rank SIGKILLed: torchrun stops the others) and started again, with
any world size or as a single process, skips every sample with a record in ``records.jsonl`` or in
any shard and computes each missing one exactly once; records are per-sample deterministic, so the
merged result equals a single-process run's. A crash between the atomic replace and the deletion of
the shards leaves records in both: merging keeps the first copy (the merged file's).
"""

from __future__ import annotations

import contextlib
import datetime
import heapq
import logging
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.hashing import sha256_json
from benchmarks.run_results import RunOutcome
from benchmarks.store import RecordStore, RunDir, records_text
from benchmarks.types import Record
from mast3r.fileio import atomic_write_text, fsync_dir

__all__ = [
    "RunPlan", "AnyComm", "DistEnv", "DistributedError", "PeerFailedError", "Comm", "SoloComm",
    "process_group", "choose_backend", "rank_device", "on_rank0", "partition", "shard_path", "shard_paths",
    "collect_records", "ordered_records", "merge_shards", "remove_shards", "rates", "DEFAULT_TIMEOUT_S",
    "ENV_VARS",
]
log = logging.getLogger(__name__)
T = TypeVar("T")

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""The variables torchrun sets that a distributed run needs (``env://`` rendezvous + device)."""
DEFAULT_TIMEOUT_S = 24 * 3600.0
"""Collective timeout: a rank that finishes its share early waits at the final barrier for the
slowest one, which on a long benchmark can take far longer than torch's default (10 min for NCCL).
A rank that dies is detected by torchrun, which stops the others at once, whatever the timeout."""
_SHARD_RE = re.compile(r"^records\.rank(\d+)\.jsonl$")


class DistributedError(RuntimeError):
    """The distributed launch is unusable (missing torchrun variables, no GPU for a rank, ...)."""


class PeerFailedError(RuntimeError):
    """Rank 0 failed (and reported the error itself); raised on the other ranks."""


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a torchrun job: global ``rank`` of ``world_size``, and ``local_rank``
    on its node (the index of the GPU it owns)."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, *, required: bool = False
                     ) -> DistEnv | None:
        """The torchrun environment (:data:`ENV_VARS`), or None when it is absent. ``required``
        (``--distributed``) turns an absent or partial one into a :class:`DistributedError`."""
        env = os.environ if environ is None else environ
        missing = [k for k in ENV_VARS if not env.get(k)]
        if missing:
            if required:
                raise DistributedError(
                    f"--distributed needs a torchrun launch, but {', '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not set; run e.g. "
                    "`torchrun --nproc_per_node=N -m benchmarks run BENCH ...`")
            if len(missing) < len(ENV_VARS):
                log.warning("incomplete torch.distributed environment (%s unset): running as a single "
                            "process", ", ".join(missing))
            return None
        values = {}
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            try:
                values[name] = int(env[name])
            except ValueError:
                raise DistributedError(f"{name}={env[name]!r} is not an integer") from None
        rank, world, local = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
        if world < 1 or not 0 <= rank < world or local < 0:
            raise DistributedError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}, "
                                   f"LOCAL_RANK={local}")
        return cls(rank, world, local)


@dataclass(frozen=True)
class RunPlan:
    """What rank 0 decided for one run, broadcast to every rank (step 2 of the module docstring).

    Attributes:
        run_dir: the run directory (on the filesystem all ranks share).
        expected: samples in the requested prefix.
        keys: ``sha256_json`` of their keys in order (each rank checks it lists the same samples).
        parts: per rank, the indices (into the prefix) of the samples it computes, ascending.
        outcome: set when the run was already finished: nothing to compute, this is its result.
    """

    run_dir: Path
    expected: int
    keys: str
    parts: tuple[tuple[int, ...], ...] = ()
    outcome: RunOutcome | None = None

    @classmethod
    def of(cls, run_dir: Path, keys: Sequence[str], parts: Sequence[Sequence[int]] = (),
           outcome: RunOutcome | None = None) -> RunPlan:
        return cls(Path(run_dir), len(keys), sha256_json(list(keys)), tuple(tuple(p) for p in parts), outcome)

    def share(self, rank: int) -> tuple[int, ...]:
        """The indices rank ``rank`` computes."""
        return self.parts[rank]

    def check_keys(self, keys: Sequence[str], where: str) -> None:
        """Raise :class:`DistributedError` unless ``keys`` are rank 0's."""
        if len(keys) != self.expected or sha256_json(list(keys)) != self.keys:
            raise DistributedError(f"{where}: the adapter lists other samples than on rank 0 "
                                   "(is the data root the same on every node?)")


def choose_backend(device: str, cuda_available: bool) -> str:
    """``"nccl"`` for CUDA devices (``--device auto`` on a machine with a GPU), else ``"gloo"``."""
    if device.startswith("cuda"):
        if not cuda_available:
            raise DistributedError(f"--device {device}: torch sees no CUDA device")
        return "nccl"
    return "nccl" if device == "auto" and cuda_available else "gloo"


def rank_device(device: str, local_rank: int) -> str:
    """The device of a rank's matcher: ``cuda`` becomes ``cuda:<LOCAL_RANK>`` (one GPU per rank);
    another explicit CUDA index is refused (choose GPUs with ``CUDA_VISIBLE_DEVICES``)."""
    if device == "cuda":
        return f"cuda:{local_rank}"
    if device.startswith("cuda:") and device != f"cuda:{local_rank}":
        raise DistributedError(f"--device {device}: under torchrun each rank uses cuda:LOCAL_RANK; pass "
                               "--device cuda (or auto) and pick GPUs with CUDA_VISIBLE_DEVICES")
    return device


class SoloComm:
    """The single-process stand-in for :class:`Comm` (rank 0 of 1; collectives are identities)."""

    distributed = False
    rank, world_size, local_rank = 0, 1, 0
    backend: str | None = None

    def barrier(self) -> None:
        pass

    def broadcast(self, obj: Any = None) -> Any:
        return obj

    def all_gather(self, obj: Any) -> list[Any]:
        return [obj]


class Comm:
    """The collectives the runner uses, over the default ``torch.distributed`` process group.
    Objects travel pickled (with NCCL through ``cuda:<LOCAL_RANK>``, set by :func:`process_group`)."""

    distributed = True

    def __init__(self, env: DistEnv, backend: str) -> None:
        self.rank, self.world_size, self.local_rank = env.rank, env.world_size, env.local_rank
        self.backend = backend

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def broadcast(self, obj: Any = None) -> Any:
        """Rank 0's ``obj`` on every rank."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, indexed by rank."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


@contextlib.contextmanager
def process_group(env: DistEnv, device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Comm]:
    """Join the torchrun job (``env://`` rendezvous): NCCL when ``device`` is CUDA (after
    ``torch.cuda.set_device(LOCAL_RANK)``, the communicator bound to that GPU), gloo otherwise, with
    collective timeout ``timeout_s``. On exit: a barrier (not after an error: peers may be gone), then
    the group is destroyed. A group that already exists is used as is (and left alone)."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        yield Comm(env, str(dist.get_backend()))
        return
    backend = choose_backend(device, torch.cuda.is_available())
    kwargs: dict[str, Any] = {}
    if backend == "nccl":
        count = torch.cuda.device_count()
        if env.local_rank >= count:
            raise DistributedError(f"LOCAL_RANK={env.local_rank} on {socket.gethostname()}, which has "
                                   f"{count} visible CUDA device(s): use --nproc_per_node={count} or fewer")
        torch.cuda.set_device(env.local_rank)
        kwargs["device_id"] = torch.device("cuda", env.local_rank)
    dist.init_process_group(backend, init_method="env://", rank=env.rank, world_size=env.world_size,
                            timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    log.info("rank %d/%d on %s: %s process group", env.rank, env.world_size, socket.gethostname(), backend)
    comm = Comm(env, backend)
    try:
        yield comm
        comm.barrier()  # no rank tears the group down while a peer still receives (NCCL is asynchronous)
    finally:
        dist.destroy_process_group()


AnyComm = Comm | SoloComm
"""A rank's collectives: :class:`Comm` under torchrun, :class:`SoloComm` in a single process."""


def on_rank0(comm: AnyComm, fn: Callable[[], T]) -> T:
    """``fn()`` run on rank 0 only, its value broadcast to every rank. If it raises, rank 0 re-raises
    and the others raise :class:`PeerFailedError` (no rank is left waiting)."""
    if comm.world_size == 1:
        return fn()
    if comm.rank == 0:
        try:
            value = fn()
        except Exception as e:
            comm.broadcast(("error", f"{type(e).__name__}: {e}"))
            raise
        comm.broadcast(("ok", value))
        return value
    status, value = comm.broadcast(None)
    if status == "error":
        raise PeerFailedError(f"rank 0 failed: {value}")
    return value


def partition(weights: Sequence[int], world_size: int) -> list[list[int]]:
    """Indices ``0..len(weights)-1`` split across ``world_size`` ranks, balanced by weight (a sample's
    pair count): greedy LPT, i.e. by decreasing weight (ties: lower index first) each index goes to
    the rank with the least weight so far (ties: fewer indices, then lower rank). Deterministic;
    each rank's indices are returned ascending. LPT's makespan is at most 4/3 of the optimum."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be >= 0")
    heap = [(0, 0, rank) for rank in range(world_size)]  # (load, count, rank)
    parts: list[list[int]] = [[] for _ in range(world_size)]
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        load, count, rank = heapq.heappop(heap)
        parts[rank].append(i)
        heapq.heappush(heap, (load + weights[i], count + 1, rank))
    return [sorted(p) for p in parts]


def rates(samples: int, pairs: int, seconds: float) -> dict[str, Any]:
    """Throughput of ``samples`` samples (``pairs`` pairs) processed in ``seconds`` of wall clock:
    ``{"samples", "pairs", "seconds", "samples_per_s", "pairs_per_s"}`` (rates None for 0 s)."""
    return {"samples": samples, "pairs": pairs, "seconds": seconds,
            "samples_per_s": samples / seconds if seconds > 0 else None,
            "pairs_per_s": pairs / seconds if seconds > 0 else None}


def shard_path(run_dir: RunDir, rank: int) -> Path:
    """Rank ``rank``'s record shard in ``run_dir``."""
    return run_dir.path / f"records.rank{rank}.jsonl"


def shard_paths(run_dir: RunDir) -> list[Path]:
    """The record shards present in ``run_dir``, by rank."""
    if not run_dir.path.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.path.iterdir() if (m := _SHARD_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def collect_records(run_dir: RunDir) -> dict[str, Record]:
    """Every complete record of the run: ``records.jsonl`` first, then the shards by rank; a key seen
    twice (a crash between merging and deleting the shards) keeps its first record. Torn tails are
    skipped; a malformed line elsewhere raises ``ValueError`` naming the file and line."""
    records = RecordStore(run_dir.records_path).load()
    for path in shard_paths(run_dir):
        for key, record in RecordStore(path).load().items():
            if key in records:
                log.debug("%s: %r already merged", path, key)
                continue
            records[key] = record
    return records


def ordered_records(records: Mapping[str, Record], keys: Iterable[str]) -> dict[str, Record]:
    """``records`` in the order of ``keys`` (the samples' order), then any others in their order."""
    out = {k: records[k] for k in keys if k in records}
    out.update((k, r) for k, r in records.items() if k not in out)
    return out


def merge_shards(run_dir: RunDir, keys: Iterable[str]) -> dict[str, Record]:
    """Fold the shards into ``records.jsonl``, ordered by ``keys`` (:func:`ordered_records`), and
    delete them; returns the run's records in that order. ``records.jsonl`` is rewritten (atomically)
    only when there are shards or its records are out of that order. Only the process holding the
    run's lock may call this."""
    shards = shard_paths(run_dir)
    collected = collect_records(run_dir)
    records = ordered_records(collected, keys)
    if shards or list(records) != list(collected):
        atomic_write_text(run_dir.records_path, records_text(records.values()), mkdir=False)
        remove_shards(run_dir)
        log.info("%s: merged %d shard(s); %d records", run_dir.path, len(shards), len(records))
    return records


def remove_shards(run_dir: RunDir) -> None:
    """Delete every record shard of ``run_dir`` (after a merge, or ``--force``)."""
    for path in shard_paths(run_dir):
        path.unlink(missing_ok=True)
    fsync_dir(run_dir.path)
