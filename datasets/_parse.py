"""Shared parsing and validation helpers for the dataset readers (private).

Every helper raises :class:`datasets.records.DatasetFormatError` naming the file and, where one
applies, the 1-based line number. Nothing here reads image pixels: image sizes come from the file
header only (PIL opens lazily).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datasets.records import DatasetFormatError

__all__ = [
    "data_lines",
    "expect_count",
    "group_pairs",
    "image_size",
    "json_array",
    "json_field",
    "load_mat",
    "parse_float",
    "parse_floats",
    "parse_int",
    "ply_vertex_count",
    "read_hloc_pairs",
    "read_jgz",
    "read_json",
    "read_kapture_pairs",
    "read_lines",
    "require_dir",
    "require_file",
    "verify_image_size",
]


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 text file, without line terminators (index i is line i + 1)."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "file not found") from None
    except IsADirectoryError:
        raise DatasetFormatError(path, None, "expected a file, found a directory") from None
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def data_lines(path: str | Path, comment: str | None = "#", sep: str | None = None
               ) -> Iterator[tuple[int, list[str]]]:
    """``(line_number, tokens)`` for each non-blank line whose first token does not start with
    ``comment``. ``sep=None`` splits on whitespace; otherwise tokens are split on ``sep`` and stripped.
    """
    for i, raw in enumerate(read_lines(path), start=1):
        text = raw.strip()
        if not text or (comment is not None and text.startswith(comment)):
            continue
        tokens = text.split() if sep is None else [t.strip() for t in text.split(sep)]
        yield i, tokens


def expect_count(tokens: Sequence[str], counts: int | Sequence[int], path: str | Path, line: int | None,
                 fmt: str) -> None:
    """Raise unless ``len(tokens)`` is one of ``counts``; ``fmt`` describes the expected line."""
    allowed = (counts,) if isinstance(counts, int) else tuple(counts)
    if len(tokens) not in allowed:
        want = " or ".join(str(c) for c in allowed)
        raise DatasetFormatError(path, line, f"expected {want} fields ({fmt}), got {len(tokens)}")


def parse_float(token: str, path: str | Path, line: int | None, what: str = "value",
                finite: bool = True) -> float:
    """``float(token)``, raising a located error for garbage or (when ``finite``) NaN/inf."""
    try:
        value = float(token)
    except ValueError:
        raise DatasetFormatError(path, line, f"cannot parse {what} {token!r} as a number") from None
    if finite and not np.isfinite(value):
        raise DatasetFormatError(path, line, f"{what} is not finite: {token!r}")
    return value


def parse_floats(tokens: Sequence[str], path: str | Path, line: int | None, what: str = "value",
                 finite: bool = True) -> np.ndarray:
    """(N,) float64 array of ``tokens`` (see :func:`parse_float`)."""
    return np.array([parse_float(t, path, line, what, finite) for t in tokens], dtype=np.float64)


def parse_int(token: str, path: str | Path, line: int | None, what: str = "value") -> int:
    """``int(token)`` with a located error."""
    try:
        return int(token)
    except ValueError:
        raise DatasetFormatError(path, line, f"cannot parse {what} {token!r} as an integer") from None


def require_file(path: str | Path, ref: str | Path | None = None, line: int | None = None,
                 what: str = "file") -> Path:
    """Return ``path`` if it is a file; else raise, blaming ``ref:line`` (the list that names it)
    when given, otherwise ``path`` itself."""
    path = Path(path)
    if path.is_file():
        return path
    if ref is not None:
        raise DatasetFormatError(ref, line, f"missing {what} {path}")
    raise DatasetFormatError(path, None, f"{what} not found")


def require_dir(path: str | Path, what: str = "folder") -> Path:
    """Return ``path`` if it is a directory; else raise naming it."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetFormatError(path, None, f"{what} not found")
    return path


_EXIF_ORIENTATION = 0x0112


def image_size(path: str | Path, ref: str | Path | None = None, line: int | None = None) -> tuple[int, int]:
    """``(width, height)`` of an image after EXIF orientation, from the header only."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
            except Exception:  # a broken EXIF block does not change the raster size
                orientation = 1
    except FileNotFoundError:
        if ref is not None:
            raise DatasetFormatError(ref, line, f"missing image {path}") from None
        raise DatasetFormatError(path, None, "image not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetFormatError(path, None, f"cannot read image header: {exc}") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def verify_image_size(path: str | Path, width: int, height: int, ref: str | Path | None = None,
                      line: int | None = None) -> None:
    """Raise unless the image at ``path`` is ``width`` x ``height``; blames ``ref:line`` if given."""
    w, h = image_size(path, ref, line)
    if (w, h) != (width, height):
        where = (ref, line) if ref is not None else (path, None)
        raise DatasetFormatError(*where, f"image {path} is {w}x{h} (WxH), expected {width}x{height}")


def read_json(path: str | Path) -> Any:
    """Parsed JSON file; a syntax error names its line."""
    path = Path(path)
    text = "\n".join(read_lines(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None


def read_jgz(path: str | Path) -> Any:
    """Parsed gzipped JSON file (``.jgz``)."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "file not found") from None
    except (OSError, EOFError) as exc:
        raise DatasetFormatError(path, None, f"not a gzip file: {exc}") from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        lineno = getattr(exc, "lineno", None)
        raise DatasetFormatError(path, lineno, f"invalid JSON: {getattr(exc, 'msg', exc)}") from None


def load_mat(path: str | Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Load the variables ``keys`` of a MATLAB v5 ``.mat`` file (scipy); missing keys are errors."""
    import scipy.io

    path = Path(path)
    try:
        data = scipy.io.loadmat(str(path), variable_names=list(keys))
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "file not found") from None
    except NotImplementedError as exc:  # v7.3 (HDF5) files
        raise DatasetFormatError(path, None, f"unsupported MAT file: {exc}") from None
    except Exception as exc:  # scipy raises assorted errors for corrupt files
        raise DatasetFormatError(path, None, f"cannot read MAT file: {exc}") from None
    missing = [k for k in keys if k not in data]
    if missing:
        raise DatasetFormatError(path, None, f"missing variable(s) {missing}")
    return {k: data[k] for k in keys}


def read_hloc_pairs(path: str | Path) -> list[tuple[str, str]]:
    """hloc retrieval pairs: one ``<query name> <db name>`` per line, in file order.

    Blank lines and lines starting with ``#`` are skipped; any other line must have two tokens.
    """
    pairs = []
    for line, tokens in data_lines(path):
        expect_count(tokens, 2, path, line, "query_name db_name")
        pairs.append((tokens[0], tokens[1]))
    return pairs


def read_kapture_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """kapture pairsfile: ``query, map, score`` per line (comma-separated, ``#`` comments), file order.

    ``datasets.aachen.top_k_pairs`` orders them per query the way kapture does (stable, by score).
    """
    pairs = []
    for line, tokens in data_lines(path, sep=","):
        expect_count(tokens, 3, path, line, "query_name, map_name, score")
        if not tokens[0] or not tokens[1]:
            raise DatasetFormatError(path, line, "empty image name")
        pairs.append((tokens[0], tokens[1], parse_float(tokens[2], path, line, "score")))
    return pairs


def group_pairs(pairs: Sequence[tuple[str, ...]], topk: int | None = None
                ) -> dict[str, list[tuple[str, float]]]:
    """Group ``(query, db[, score])`` pairs by query, in first-appearance order of the queries.

    Scored pairs are sorted by descending score, ties kept in file order (kapture's
    ``get_ordered_pairs_from_file``); unscored (hloc) pairs keep file order with score 1.0. ``topk``
    keeps the first ``topk`` per query.
    """
    grouped: dict[str, list[tuple[str, float]]] = {}
    scored = False
    for pair in pairs:
        score = float(pair[2]) if len(pair) > 2 else 1.0
        scored = scored or len(pair) > 2
        grouped.setdefault(pair[0], []).append((pair[1], score))
    for query, items in grouped.items():
        if scored:
            items = sorted(items, key=lambda x: x[1], reverse=True)
        grouped[query] = items[:topk] if topk is not None else items
    return grouped


def json_field(obj: Any, key: str, path: str | Path, where: str, types: type | tuple[type, ...] | None = None,
               optional: bool = False) -> Any:
    """``obj[key]`` of a parsed JSON object, with a located error naming ``where`` and ``key``; a
    dotted ``key`` walks nested objects. ``types`` checks the value's type (``None`` passes when
    ``optional``)."""
    value = obj
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value or value[part] is None:
            if optional:
                return None
            raise DatasetFormatError(path, None, f"{where}: missing field {key!r}")
        value = value[part]
    if types is not None and (isinstance(value, bool) or not isinstance(value, types)):
        raise DatasetFormatError(path, None, f"{where}: field {key!r} has type {type(value).__name__}")
    return value


def json_array(value: Any, shape: tuple[int, ...], path: str | Path, where: str, key: str) -> np.ndarray:
    """float64 array of a JSON list with exactly ``shape`` and finite entries, else a located error."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetFormatError(path, None, f"{where}: field {key!r} is not numeric") from None
    if arr.shape != shape:
        raise DatasetFormatError(path, None,
                                 f"{where}: field {key!r} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise DatasetFormatError(path, None, f"{where}: field {key!r} has a non-finite entry")
    return arr


# --- PLY header (vertex counts without reading the data; DTU STL clouds are large). ---

_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def _ply_header(path: Path) -> tuple[str, list[tuple[str, int, list[tuple[str, str]]]], int]:
    """``(format, [(element, count, [(property, type)])], header_bytes)``; list properties -> type "list"."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "PLY file not found") from None
    with fh:
        first = fh.readline()
        if first.strip() != b"ply":
            raise DatasetFormatError(path, 1, "not a PLY file (first line is not 'ply')")
        elements: list[tuple[str, int, list[tuple[str, str]]]] = []
        fmt, line = "", 1
        while True:
            raw = fh.readline()
            line += 1
            if not raw:
                raise DatasetFormatError(path, line, "unexpected end of file in the PLY header")
            tokens = raw.decode("ascii", errors="replace").split()
            if not tokens or tokens[0] in ("comment", "obj_info"):
                continue
            if tokens[0] == "end_header":
                return fmt, elements, fh.tell()
            if tokens[0] == "format" and len(tokens) >= 2:
                fmt = tokens[1]
            elif tokens[0] == "element" and len(tokens) == 3:
                elements.append((tokens[1], parse_int(tokens[2], path, line, "element count"), []))
            elif tokens[0] == "property" and elements and len(tokens) >= 3:
                if tokens[1] == "list":
                    elements[-1][2].append((tokens[-1], "list"))
                elif tokens[1] in _PLY_TYPES:
                    elements[-1][2].append((tokens[2], _PLY_TYPES[tokens[1]]))
                else:
                    raise DatasetFormatError(path, line, f"unknown PLY property type {tokens[1]!r}")
            else:
                raise DatasetFormatError(path, line, f"unexpected PLY header line {raw[:60]!r}")


def ply_vertex_count(path: str | Path) -> int:
    """Number of vertices declared in a PLY header (nothing else is read)."""
    path = Path(path)
    _, elements, _ = _ply_header(path)
    for name, count, _props in elements:
        if name == "vertex":
            return count
    raise DatasetFormatError(path, None, "no 'element vertex' in the PLY header")
