"""``data check --deep``: read every image, point cloud, array and MAT file of a download in full,
and the test for an empty benchmark (one with nothing for ``run`` to evaluate).

The header checks of ``datasets.<bench>.check`` pass a truncated JPEG, a corrupt PNG or a cut PLY;
``run`` then trips on them one sample at a time. :func:`deep_check` decodes every file under the
benchmark's folders whose suffix is in :data:`DEEP_SUFFIXES` and returns each unreadable one with the
reason, so all of them are reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEEP_SUFFIXES", "MAX_DECODE_PIXELS", "DeepResult", "deep_check", "deep_roots", "empty_reason",
           "read_fully"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")
DEEP_SUFFIXES = (*IMAGE_SUFFIXES, ".ply", ".npz", ".npy", ".mat")
"""Suffixes (case-insensitive) of the files ``--deep`` reads; images include depth and mask PNGs."""

MAX_DECODE_PIXELS = 64_000_000
"""Images with more pixels (width x height from the header) are reported, not decoded (8000 x 8000;
the largest images of the benchmarks, Aachen/InLoc phone queries, have about 12 M)."""


@dataclass(frozen=True)
class DeepResult:
    """``files``: how many were read; ``unreadable``: ``(path, reason)`` per file that failed."""

    files: int
    unreadable: tuple[tuple[Path, str], ...]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_image(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
        if w * h > MAX_DECODE_PIXELS:
            raise ValueError(f"{w}x{h} image ({w * h} pixels) is over the decoding budget of "
                             f"{MAX_DECODE_PIXELS} pixels; not decoded")
        im.load()


def _read_ply(path: Path) -> None:
    from mast3r.ply import read_ply

    read_ply(path)


def _read_npz(path: Path) -> None:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            np.asarray(data[key])  # decompresses the member and checks its CRC


def _read_npy(path: Path) -> None:
    import numpy as np

    np.load(path, allow_pickle=False)


def _read_mat(path: Path) -> None:
    import scipy.io

    scipy.io.loadmat(str(path))


_READERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    **{s: ("cannot decode image", _read_image) for s in IMAGE_SUFFIXES},
    ".ply": ("cannot read PLY", _read_ply),
    ".npz": ("cannot read npz", _read_npz),
    ".npy": ("cannot read npy", _read_npy),
    ".mat": ("cannot read MAT file", _read_mat),
}


def read_fully(path: str | Path) -> str | None:
    """Read one file in full; ``None`` when it reads, else the reason (one line)."""
    path = Path(path)
    what, reader = _READERS[path.suffix.lower()]
    try:
        if path.stat().st_size == 0:
            return f"{what}: empty file"
        reader(path)
    except Exception as exc:  # noqa: BLE001 - every decoder raises its own types; all mean "unreadable"
        return f"{what}: {_first_line(exc)}"
    return None


def _walk(root: Path) -> Iterator[Path]:
    """Files with a :data:`DEEP_SUFFIXES` suffix under ``root``, sorted; hidden entries skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in _READERS:
                yield Path(folder) / name


def deep_roots(roots: Iterable[str | Path | None]) -> list[Path]:
    """The existing folders among ``roots``, without those inside another one."""
    found = sorted({Path(r).resolve() for r in roots if r is not None and Path(r).is_dir()})
    return [r for r in found if not any(o != r and r.is_relative_to(o) for o in found)]


def deep_check(roots: Iterable[Path], progress: bool | None = None) -> DeepResult:
    """Read every :data:`DEEP_SUFFIXES` file under ``roots`` (see :func:`deep_roots`) in full.
    ``progress``: a bar on stderr (None: only on a terminal)."""
    from tqdm import tqdm

    files = [p for root in roots for p in _walk(root)]
    bad = []
    disable = None if progress is None else not progress
    for path in tqdm(files, desc="data check --deep", unit="file", disable=disable):
        reason = read_fully(path)
        if reason is not None:
            bad.append((path, reason))
    return DeepResult(len(files), tuple(bad))


def empty_reason(bench: str, summary: Mapping[str, Any]) -> str | None:
    """Why the checked benchmark has no samples for ``run`` (from ``check``'s counts), else None."""
    if bench == "mapfree" and not summary.get("queries"):
        return "no samples: the scenes hold no query frames"
    if bench in ("aachen", "inloc") and not summary.get("queries"):
        return "no samples: the query lists are empty"
    if bench == "co3dv2" and not summary.get("views"):
        return "no samples: frame_annotations.jgz lists no frames"
    if bench == "co3dv2" and not summary.get("set_list_entries"):
        return "no samples: the set lists (set_lists/set_lists_*.json) hold no entries"
    if bench == "re10k" and not summary.get("views"):
        n, frames = summary.get("sequences", 0), summary.get("frames_root")
        return f"no samples: no clip has extracted frames ({n} camera files; frames expected in {frames})"
    if bench == "dtu" and not summary.get("views"):
        return "no samples: no scan with input views"
    return None
