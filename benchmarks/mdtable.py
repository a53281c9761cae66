"""GitHub-flavoured Markdown tables sized for a terminal, and wrapped notes under them.

``markdown_table`` pads every column to its widest cell and nothing more (tabulate adds two spaces
to each header), so that the paper's columns fit :data:`MAX_WIDTH` characters.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

__all__ = ["MAX_WIDTH", "markdown_table", "wrap_notes", "width"]

MAX_WIDTH = 120
"""Widest line (characters) of a table printed to a terminal."""


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                   right: Sequence[bool] | None = None) -> str:
    """``| a | b |`` lines: the header, the ``|---|--:|`` rule (``right[i]``: right-aligned column,
    default: all but the first), then ``rows`` (strings; ``|`` in a cell is escaped)."""
    right = list(right) if right is not None else [i > 0 for i in range(len(headers))]
    cells = [[str(h).replace("|", "\\|") for h in headers],
             *([str(c).replace("|", "\\|") for c in row] for row in rows)]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = (c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in zip(widths, right)) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def wrap_notes(notes: Sequence[str], limit: int = MAX_WIDTH) -> str:
    """Each note wrapped to ``limit`` characters, one note per paragraph line."""
    return "\n".join(textwrap.fill(n, limit, break_on_hyphens=False, break_long_words=False) for n in notes)


def width(text: str) -> int:
    """The longest line of ``text``."""
    return max((len(line) for line in text.splitlines()), default=0)
