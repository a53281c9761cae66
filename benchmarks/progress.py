"""Progress lines for runs whose output is not a terminal (CI, ``nohup``, a pipe, a log file).

A terminal gets tqdm's bar; elsewhere a bar is either silent or unreadable, so :class:`ProgressLines`
prints one plain line per run at a steady interval instead::

    [progress] mapfree/sift: 120/500 samples (24%), 1.92 samples/s, elapsed 1m02s, ETA 3m18s

The interval is ``$MAST3R_BENCH_PROGRESS_INTERVAL`` seconds (default 30; ``0`` prints after every
sample, as the tests do). Lines go to stderr, like the bar they replace, so that stdout keeps only
results (tables, run paths).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["ProgressLines", "INTERVAL_ENV", "DEFAULT_INTERVAL_S", "format_duration", "progress_interval"]

INTERVAL_ENV = "MAST3R_BENCH_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0


def progress_interval() -> float:
    """Seconds between lines: ``$MAST3R_BENCH_PROGRESS_INTERVAL`` (a number >= 0), else 30."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"${INTERVAL_ENV}={raw!r} is not a number of seconds") from None
    if value < 0 or value != value:
        raise ValueError(f"${INTERVAL_ENV}={raw!r} must be >= 0 seconds")
    return value


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class ProgressLines:
    """One line per ``interval`` seconds about a run of ``total`` samples of which ``initial`` were
    already done (resumed). Inactive (prints nothing) when ``enabled`` is False. The rate and ETA
    count only the samples done by this process. A context manager; on exit it prints a last line
    when it printed any before."""

    def __init__(self, desc: str, total: int, initial: int = 0, *, enabled: bool = True,
                 interval: float | None = None, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.desc, self.total, self.initial = desc, int(total), int(initial)
        self.enabled = bool(enabled) and self.total > self.initial
        self.interval = progress_interval() if interval is None else float(interval)
        self.stream, self.clock = stream, clock
        self.done = 0
        self.lines = 0
        self.printed_at = -1  # samples done at the last line
        self.t0 = self.clock()
        self.last = self.t0

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def line(self) -> str:
        """The current progress line (without the newline)."""
        elapsed = self.clock() - self.t0
        at = self.initial + self.done
        pct = 100.0 * at / self.total if self.total else 100.0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = self.total - at
        eta = format_duration(left / rate) if rate > 0 else "?"
        return (f"[progress] {self.desc}: {at}/{self.total} samples ({pct:.0f}%), {rate:.3g} samples/s, "
                f"elapsed {format_duration(elapsed)}, ETA {eta if left else '0s'}")

    def _emit(self) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        print(self.line(), file=stream, flush=True)
        self.lines += 1
        self.printed_at = self.done

    def update(self, n: int = 1) -> None:
        """``n`` more samples done; prints a line when ``interval`` has passed since the last one."""
        self.done += n
        if not self.enabled:
            return
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self._emit()

    def close(self) -> None:
        """A final line, when lines were printed and the last one is not already the final state."""
        if self.enabled and self.lines and self.printed_at != self.done:
            self._emit()
        self.enabled = False
