"""Where benchmark data lives.

``data_root(cli_value)``: the ``--data`` style CLI value when given, else ``$MAST3R_BENCH_DATA``,
else ``./data`` (relative to the working directory). ``synthetic_root()`` is the default home of the
synthetic suite, ``<data root>/synthetic`` (one folder per benchmark id inside).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "data_root", "synthetic_root"]

ENV_VAR = "MAST3R_BENCH_DATA"


def data_root(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """The data root as an absolute path (nothing is created or checked)."""
    value = cli_value if cli_value not in (None, "") else os.environ.get(ENV_VAR) or "data"
    return Path(value).expanduser().absolute()


def synthetic_root(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """``data_root(cli_value) / "synthetic"``."""
    return data_root(cli_value) / "synthetic"
