"""The assembly of a run, once for ``run``, ``sweep`` and ``paper``: registry classes, resolved configs,
data root, device, adapter and matcher objects. :func:`benchmarks.runner.build_run` turns the
:class:`RunParts` into a :class:`~benchmarks.runner.Runner`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import distributed as dist
from benchmarks.capabilities import Reconfigurable, data_dir
from benchmarks.registry import ADAPTERS, MATCHERS
from benchmarks.run_setup import default_device, resolve_configs, resolve_data_root
from benchmarks.types import BenchmarkAdapter, Matcher

__all__ = ["RunParts", "assemble", "build_adapter", "build_matcher", "run_device"]


@dataclass(frozen=True)
class RunParts:
    """Everything a :class:`~benchmarks.runner.Runner` is built from.

    Attributes:
        bench, matcher_name: registry names. configs: ``{"matcher", "adapter", "estimator"}`` resolved
        configs. data_root: the data root (the adapter reads ``data_root / data_dir``). device: the
        matcher's device (``cuda:<LOCAL_RANK>`` under torchrun).
    """

    bench: str
    matcher_name: str
    adapter: BenchmarkAdapter
    matcher: Matcher
    configs: Mapping[str, Any]
    data_root: Path
    device: str


def run_device(device: str | None, matcher_cls: type, comm: dist.AnyComm | None = None) -> str:
    """The matcher's device: ``device`` unless None/``auto`` (then :func:`default_device`), and under
    torchrun (``comm.distributed``) the rank's GPU (:func:`benchmarks.distributed.rank_device`)."""
    resolved = device if device not in (None, "auto") else default_device(matcher_cls)
    if comm is not None and comm.distributed:
        resolved = dist.rank_device(resolved, comm.local_rank)
    return str(resolved)


def build_adapter(adapter_cls: type[BenchmarkAdapter], data_root: Path, bench: str, adapter_config: Any,
                  estimator_config: Any) -> BenchmarkAdapter:
    """``adapter_cls`` reading ``data_root / <data_dir>`` (its ``data_dir``, else ``bench``)."""
    return adapter_cls(Path(data_root) / data_dir(adapter_cls, bench), adapter_config,  # type: ignore[call-arg]
                       estimator_config)


def build_matcher(matcher_cls: type[Matcher], config: Any, device: str, *, previous: Matcher | None = None,
                  forward_cache: Any = None) -> Matcher:
    """A matcher for ``config``: ``previous.with_config(config)`` when ``previous`` can (same model in
    memory, :class:`~benchmarks.capabilities.Reconfigurable`), else a new one, given ``forward_cache``
    when its constructor takes one."""
    if previous is not None and isinstance(previous, Reconfigurable):
        return previous.with_config(config)
    kwargs: dict[str, Any] = {}
    if forward_cache is not None and "forward_cache" in inspect.signature(matcher_cls).parameters:
        kwargs["forward_cache"] = forward_cache
    return matcher_cls(config, device=device, **kwargs)  # type: ignore[call-arg]


def assemble(bench: str, matcher: str, *, overrides: Mapping[str, str] | None = None,
             configs: Mapping[str, Any] | None = None, data_root: str | os.PathLike | None = None,
             device: str | None = None, comm: dist.AnyComm | None = None, previous: Matcher | None = None,
             forward_cache: Any = None) -> RunParts:
    """Build adapter ``bench`` and matcher ``matcher`` from the registries: configs = defaults +
    ``overrides`` (or ``configs``, already resolved); data root checked for ``bench``
    (:func:`resolve_data_root`); device by :func:`run_device`; matcher by :func:`build_matcher`."""
    adapter_cls, matcher_cls = ADAPTERS.get(bench), MATCHERS.get(matcher)
    if configs is None:
        configs = resolve_configs(adapter_cls, matcher_cls, overrides)
    root = resolve_data_root(data_root, data_dir(adapter_cls, bench))
    resolved = run_device(device, matcher_cls, comm)
    adapter = build_adapter(adapter_cls, root, bench, configs["adapter"], configs["estimator"])
    matcher_obj = build_matcher(matcher_cls, configs["matcher"], resolved, previous=previous,
                                forward_cache=forward_cache)
    return RunParts(bench, matcher, adapter, matcher_obj, dict(configs), root, resolved)
