"""A tiny least-recently-used cache (kernels' captured graphs, prepared images, adapter ground truth).

Thread-safe: ``get_or`` holds a re-entrant lock (``make`` included), so solver threads
(:mod:`benchmarks.pipeline`) may share an adapter's cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["LRU"]


class LRU(OrderedDict):
    """An ``OrderedDict`` that keeps the ``size`` most recently used entries: ``get_or(key, make)``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._lock = threading.RLock()

    def get_or(self, key: Any, make: Callable[[], Any]) -> Any:
        """The entry of ``key`` (now the most recent), or ``make()`` stored under it; the oldest
        entries are dropped first, so at most ``size`` entries exist at any time (also while
        ``make`` runs: it may allocate a lot, e.g. a CUDA graph)."""
        with self._lock:
            if key in self:
                self.move_to_end(key)
                return self[key]
            while self and len(self) >= self.size:
                self.popitem(last=False)
            value = make()
            self[key] = value
            return value
