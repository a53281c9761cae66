"""Typed, lazy registries of adapters and matchers.

Entries are ``"module:Class"`` strings imported on first use, so listing names never imports torch
models or heavy dependencies. ``ADAPTERS`` (a ``Registry[BenchmarkAdapter]``) and ``MATCHERS`` (a
``Registry[Matcher]``) are the two project registries; test doubles (``oracle``, ``random``) are
registered exactly like real entries. A registry made with ``required`` names checks, on import, that
the class has them (the class-level members of its protocol): a class that does not fit is an
``ImportError`` naming the target, not a late ``AttributeError`` in the middle of a run.
Optional capabilities are protocols of :mod:`benchmarks.capabilities`.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

from benchmarks.types import BenchmarkAdapter, Matcher

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError", "ADAPTERS", "MATCHERS"]


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists the close matches."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to lazily imported classes of protocol ``T``.

    Args:
        kind: what the registry holds ("adapter", "matcher"), used in messages.
        required: class attributes every entry must have (checked when it is imported).
    """

    def __init__(self, kind: str, required: tuple[str, ...] = ()) -> None:
        self.kind, self.required = kind, required
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, type[T]] = {}

    def register(self, name: str, target: str) -> None:
        """Register ``name`` -> ``"package.module:Class"``; a duplicate name is refused."""
        if name in self._targets:
            raise ValueError(f"{self.kind} {name!r} is already registered (-> {self._targets[name]})")
        if ":" not in target:
            raise ValueError(f"{self.kind} target must be 'module:Class', got {target!r}")
        self._targets[name] = target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def target(self, name: str) -> str:
        self._check(name)
        return self._targets[name]

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``, imported on first use."""
        self._check(name)
        if name not in self._loaded:
            module_name, _, attr = self._targets[name].partition(":")
            module = importlib.import_module(module_name)
            cls = getattr(module, attr, None)
            if cls is None:
                raise ImportError(f"{self.kind} {name!r}: {module_name} has no attribute {attr!r}")
            missing = [a for a in self.required if not hasattr(cls, a)]
            if missing:
                raise ImportError(f"{self.kind} {name!r}: {self._targets[name]} is not a {self.kind} "
                                  f"(no {', '.join(missing)})")
            self._loaded[name] = cls
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _check(self, name: str) -> None:
        if name not in self._targets:
            close = difflib.get_close_matches(name, self._targets, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names()) or 'none'})"
            )


ADAPTERS: Registry[BenchmarkAdapter] = Registry(
    "adapter", ("name", "version", "Config", "EstimatorConfig", "samples", "pairs", "solve", "evaluate",
                "summarize"))
MATCHERS: Registry[Matcher] = Registry("matcher", ("name", "Config", "match", "weights_checksum"))

# Adapters (benchmarks/adapters/<name>.py). The name is the benchmark id used on the command line and
# as the synthetic suite's folder name.
for _name, _target in {
    "smoke": "benchmarks.adapters.smoke:SmokeAdapter",
    "mapfree": "benchmarks.adapters.mapfree:MapFreeAdapter",
    "co3dv2": "benchmarks.adapters.co3dv2:Co3dv2Adapter",
    "re10k": "benchmarks.adapters.re10k:Re10kAdapter",
    "aachen": "benchmarks.adapters.aachen:AachenAdapter",
    "inloc": "benchmarks.adapters.inloc:InLocAdapter",
    "dtu": "benchmarks.adapters.dtu:DtuAdapter",
}.items():
    ADAPTERS.register(_name, _target)

for _name, _target in {
    "oracle": "benchmarks.matchers.doubles:OracleMatcher",
    "random": "benchmarks.matchers.doubles:RandomMatcher",
    "mast3r": "benchmarks.matchers.mast3r:Mast3rMatcher",
    "dust3r": "benchmarks.matchers.dust3r:Dust3rMatcher",
    "sift": "benchmarks.matchers.sift:SiftMatcher",
    "loftr": "benchmarks.matchers.loftr:LoftrMatcher",
    "disk+lightglue": "benchmarks.matchers.lightglue:DiskLightGlueMatcher",
    "aliked+lightglue": "benchmarks.matchers.lightglue:AlikedLightGlueMatcher",
    "xfeat": "benchmarks.matchers.xfeat:XFeatMatcher",
}.items():
    MATCHERS.register(_name, _target)
