"""Optional capabilities of adapters and matchers, as typed protocols checked with ``isinstance``.

:class:`benchmarks.types.BenchmarkAdapter` and :class:`benchmarks.types.Matcher` are what every
adapter and matcher has. The runner, ``sweep``, ``paper`` and the commands ask for anything more
through the protocols below (``isinstance(adapter, Exportable)``), never with ``getattr``/``hasattr``
probes. Capabilities a class states as class attributes (``title``, ``data_dir``, ``available()``)
are checked on the class itself (``isinstance(adapter_cls, Titled)``). Boolean class flags
(``needs_ground_truth``, ``cacheable``, ``uses_torch``) have helpers that apply their defaults.

Adapters:
    :class:`HasGTCorrespondences` ``gt_correspondences(sample, i, j) -> Correspondences | None``:
        exact matches between views i and j (original pixels; None: not derivable), for
        ground-truth matchers (the ``oracle``).
    :class:`HasDataFiles` ``data_files(sample) -> list[Path]``: files the solver reads besides the
        images (part of the data fingerprint).
    :class:`HasDatasetChecksum` ``dataset_checksum() -> str | None``: the data root's checksum for
        the manifest, instead of hashing the listing of ``root`` (for benchmarks of millions of files).
    :class:`HasRoot` ``root: Path``: the dataset folder (manifest, messages).
    :class:`HasArtifactsDir` ``artifacts_dir: Path | None``: where the solver writes files (DTU
        clouds); None is pointed by the runner into ``<results>/cache/artifacts/<bench>``.
    :class:`Exportable` ``export(records, out_dir) -> list[Path]``: official submission / upload /
        PLY files of a finished run.
    :class:`Titled` ``title: str`` (table caption); :class:`HasDataDir` ``data_dir: str`` (folder
        name under the data root; default: the benchmark name).

Matchers:
    ``needs_ground_truth = True`` (:func:`needs_ground_truth`): called as ``match(view0, view1,
    gt=adapter.gt_correspondences(...))``. ``cacheable = False`` (:func:`is_cacheable`):
    correspondences are never cached. ``uses_torch = False`` (:func:`uses_torch`): ``--device auto``
    picks cpu without importing torch.
    :class:`SetupCapable` ``setup()``: one-time checkpoint load, before the first sample to compute.
    :class:`Available` ``available() -> (bool, reason)`` (classmethod).
    :class:`BatchMatcher` ``match_many(pairs) -> list[Correspondences]``: batched matching, in
    chunks of ``config.batch_size`` (:class:`BatchSized`).
    :class:`Reconfigurable` ``with_config(config) -> matcher``: the same model with other options
    (``sweep`` shares one model between variants).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from benchmarks.types import Correspondences, Sample, View

__all__ = [
    "HasGTCorrespondences", "HasDataFiles", "HasDatasetChecksum", "HasRoot", "HasArtifactsDir", "Exportable",
    "Titled", "HasDataDir", "NeedsGroundTruth", "Cacheable", "UsesTorch", "SetupCapable", "Available",
    "BatchMatcher", "BatchSized", "Reconfigurable", "needs_ground_truth", "is_cacheable", "uses_torch",
    "data_dir", "title", "batch_size",
]


# -- adapters ----------------------------------------------------------------------------------------
@runtime_checkable
class HasGTCorrespondences(Protocol):
    def gt_correspondences(self, sample: Sample, i: int, j: int) -> Correspondences | None: ...


@runtime_checkable
class HasDataFiles(Protocol):
    def data_files(self, sample: Sample) -> list[Path]: ...


@runtime_checkable
class HasDatasetChecksum(Protocol):
    def dataset_checksum(self) -> str | None: ...


@runtime_checkable
class HasRoot(Protocol):
    root: Path


@runtime_checkable
class HasArtifactsDir(Protocol):
    artifacts_dir: Path | None


@runtime_checkable
class Exportable(Protocol):
    def export(self, records: Iterable[Any], out_dir: Path) -> list[Path]: ...


@runtime_checkable
class Titled(Protocol):
    title: ClassVar[str]


@runtime_checkable
class HasDataDir(Protocol):
    data_dir: ClassVar[str]


# -- matchers ----------------------------------------------------------------------------------------
@runtime_checkable
class NeedsGroundTruth(Protocol):
    needs_ground_truth: ClassVar[bool]


@runtime_checkable
class Cacheable(Protocol):
    cacheable: ClassVar[bool]


@runtime_checkable
class UsesTorch(Protocol):
    uses_torch: ClassVar[bool]


@runtime_checkable
class SetupCapable(Protocol):
    def setup(self) -> None: ...


@runtime_checkable
class Available(Protocol):
    def available(self) -> tuple[bool, str]: ...


@runtime_checkable
class BatchMatcher(Protocol):
    def match_many(self, pairs: Sequence[tuple[View, View]]) -> list[Correspondences]: ...


@runtime_checkable
class BatchSized(Protocol):
    batch_size: int


@runtime_checkable
class Reconfigurable(Protocol):
    def with_config(self, config: Any) -> Any: ...


@runtime_checkable
class _Configured(Protocol):
    config: Any


# -- flags with their defaults -------------------------------------------------------------------------
def needs_ground_truth(matcher: object) -> bool:
    """Whether ``matcher`` (instance or class) is called with ground-truth correspondences (default
    False)."""
    return isinstance(matcher, NeedsGroundTruth) and bool(matcher.needs_ground_truth)


def is_cacheable(matcher: object) -> bool:
    """Whether its correspondences go to the correspondence cache (default True)."""
    return not isinstance(matcher, Cacheable) or bool(matcher.cacheable)


def uses_torch(matcher: object) -> bool:
    """Whether it runs on a torch device (default True)."""
    return not isinstance(matcher, UsesTorch) or bool(matcher.uses_torch)


def data_dir(adapter: object, bench: str) -> str:
    """The adapter's folder name under the data root (its ``data_dir``, else ``bench``)."""
    return str(adapter.data_dir) if isinstance(adapter, HasDataDir) else bench


def title(adapter: object, bench: str) -> str:
    """The adapter's table caption (its ``title``, else ``bench``)."""
    return str(adapter.title) if isinstance(adapter, Titled) else bench


def batch_size(matcher: object) -> int:
    """Pairs per ``match_many`` call: its config's ``batch_size`` (>= 1), else 1."""
    config = matcher.config if isinstance(matcher, _Configured) else None
    return max(1, int(config.batch_size or 1)) if isinstance(config, BatchSized) else 1
