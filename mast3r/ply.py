"""PLY point clouds: read (ascii, binary little/big endian) and write (ascii, binary little endian).

Reading returns the ``vertex`` element (other elements, e.g. ``face`` of a mesh such as the DTU
ground-truth STL files, are skipped). Writing stores ``x y z`` (float32 or float64), optional
``nx ny nz`` normals and ``red green blue`` uchar colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["PlyFormatError", "PlyPoints", "read_ply", "read_ply_points", "write_ply"]

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}


class PlyFormatError(ValueError):
    """A malformed or unsupported PLY file; the message names the file (and header line)."""


@dataclass(frozen=True)
class PlyPoints:
    """Vertices of a PLY file.

    Attributes:
        points: (N, 3) float64 ``x y z``.
        colors: (N, 3) uint8 ``red green blue`` or None.
        normals: (N, 3) float64 ``nx ny nz`` or None.
        properties: every vertex property by name (original dtypes).
    """

    points: np.ndarray
    colors: np.ndarray | None
    normals: np.ndarray | None
    properties: dict[str, np.ndarray]


@dataclass
class _Element:
    name: str
    count: int
    props: list[tuple[str, str, str | None]]  # (name, type, list count type or None)


def _parse_header(f: BinaryIO, path: Path) -> tuple[str, list[_Element]]:
    first = f.readline().strip()
    if first != b"ply":
        raise PlyFormatError(f"{path}: not a PLY file (first line {first[:20]!r})")
    fmt, elements = None, []
    for lineno in range(2, 10_000):
        raw = f.readline()
        if not raw:
            raise PlyFormatError(f"{path}: header has no end_header")
        words = raw.decode("ascii", "replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        where = f"{path}: header line {lineno}"
        if words[0] == "end_header":
            break
        if words[0] == "format":
            if len(words) < 2 or words[1] not in _FORMATS:
                raise PlyFormatError(f"{where}: unsupported format {' '.join(words[1:])!r}")
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise PlyFormatError(f"{where}: malformed element line {raw!r}")
            elements.append(_Element(words[1], int(words[2]), []))
        elif words[0] == "property":
            if not elements:
                raise PlyFormatError(f"{where}: property before any element")
            if len(words) == 5 and words[1] == "list" and words[2] in _TYPES and words[3] in _TYPES:
                elements[-1].props.append((words[4], words[3], words[2]))
            elif len(words) == 3 and words[1] in _TYPES:
                elements[-1].props.append((words[2], words[1], None))
            else:
                raise PlyFormatError(f"{where}: unsupported property {' '.join(words[1:])!r}")
        else:
            raise PlyFormatError(f"{where}: unknown keyword {words[0]!r}")
    else:
        raise PlyFormatError(f"{path}: header too long")
    if fmt is None:
        raise PlyFormatError(f"{path}: header has no format line")
    return fmt, elements


def _skip_binary(f: BinaryIO, el: _Element, endian: str) -> None:
    """Skip an element in a binary file (handles list properties)."""
    if all(p[2] is None for p in el.props):
        f.seek(el.count * sum(np.dtype(_TYPES[p[1]]).itemsize for p in el.props), 1)
        return
    for _ in range(el.count):
        for _name, typ, count_typ in el.props:
            size = np.dtype(_TYPES[typ]).itemsize
            if count_typ is None:
                f.seek(size, 1)
            else:
                cdt = np.dtype(endian + _TYPES[count_typ])
                n = int(np.frombuffer(f.read(cdt.itemsize), cdt)[0])
                f.seek(n * size, 1)


def read_ply(path: str | Path) -> PlyPoints:
    """Read the vertices of a PLY file (see module docstring)."""
    path = Path(path)
    with open(path, "rb") as f:
        fmt, elements = _parse_header(f, path)
        endian = _FORMATS[fmt]
        vertex = next((e for e in elements if e.name == "vertex"), None)
        if vertex is None:
            raise PlyFormatError(f"{path}: no 'vertex' element")
        if any(p[2] is not None for p in vertex.props):
            raise PlyFormatError(f"{path}: list properties in 'vertex' are not supported")
        names = [p[0] for p in vertex.props]
        if endian is None:
            lines_before = sum(e.count for e in elements[: elements.index(vertex)])
            for _ in range(lines_before):
                f.readline()
            rows = [f.readline().split() for _ in range(vertex.count)]
            if any(len(r) != len(names) for r in rows):
                bad = next(i for i, r in enumerate(rows) if len(r) != len(names))
                raise PlyFormatError(
                    f"{path}: vertex {bad} has {len(rows[bad])} values, expected {len(names)}")
            table = np.array(rows, dtype=np.float64).reshape(vertex.count, len(names))
            props = {n: table[:, i].astype(_TYPES[p[1]]) for i, (n, p) in enumerate(zip(names, vertex.props))}
        else:
            for el in elements[: elements.index(vertex)]:
                _skip_binary(f, el, endian)
            dtype = np.dtype([(n, endian + _TYPES[t]) for n, t, _ in vertex.props])
            buf = f.read(dtype.itemsize * vertex.count)
            if len(buf) != dtype.itemsize * vertex.count:
                raise PlyFormatError(f"{path}: file truncated: {vertex.count} vertices expected, "
                                     f"{len(buf) // max(dtype.itemsize, 1)} present")
            data = np.frombuffer(buf, dtype)
            props = {n: data[n].astype(data[n].dtype.newbyteorder("=")) for n in names}
    missing = [c for c in "xyz" if c not in props]
    if missing:
        raise PlyFormatError(f"{path}: vertex has no {'/'.join(missing)} property")
    pts = np.stack([props[c] for c in "xyz"], axis=1).astype(np.float64)
    colors = (np.stack([props[c] for c in ("red", "green", "blue")], 1).astype(np.uint8)
              if all(c in props for c in ("red", "green", "blue")) else None)
    normals = (np.stack([props[c] for c in ("nx", "ny", "nz")], 1).astype(np.float64)
               if all(c in props for c in ("nx", "ny", "nz")) else None)
    return PlyPoints(pts, colors, normals, props)


def read_ply_points(path: str | Path) -> np.ndarray:
    """(N, 3) float64 vertex positions of a PLY file (e.g. a DTU ground-truth STL cloud)."""
    return read_ply(path).points


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None,
              normals: np.ndarray | None = None, *, binary: bool = True, double: bool = False,
              comment: str | None = None) -> None:
    """Write a point cloud.

    Args:
        points: (N, 3) positions. colors: (N, 3) uint8, or floats in [0, 1] (scaled and rounded).
        normals: (N, 3). binary: little-endian binary (else ascii). double: store positions and
            normals as float64 (else float32). comment: one header comment line.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    n = len(pts)
    ftype, fdt = ("double", "f8") if double else ("float", "f4")
    fields: list[tuple[str, str, str, np.ndarray]] = [(c, ftype, fdt, pts[:, i]) for i, c in enumerate("xyz")]
    if normals is not None:
        nrm = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
        if len(nrm) != n:
            raise ValueError(f"write_ply: {len(nrm)} normals for {n} points")
        fields += [(c, ftype, fdt, nrm[:, i]) for i, c in enumerate(("nx", "ny", "nz"))]
    if colors is not None:
        col = np.asarray(colors)
        col = col.reshape(-1, 3)
        if len(col) != n:
            raise ValueError(f"write_ply: {len(col)} colours for {n} points")
        if col.dtype != np.uint8:
            col = np.clip(np.rint(col.astype(np.float64) * 255), 0, 255).astype(np.uint8)
        fields += [(c, "uchar", "u1", col[:, i]) for i, c in enumerate(("red", "green", "blue"))]
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0"]
    if comment:
        header.append("comment " + " ".join(comment.split()))
    header += [f"element vertex {n}"] + [f"property {t} {name}" for name, t, _, _ in fields] + ["end_header"]
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        if binary:
            rec = np.empty(n, dtype=[(name, "<" + dt) for name, _, dt, _ in fields])
            for name, _, _, values in fields:
                rec[name] = values
            f.write(rec.tobytes())
        else:
            # round to the stored type first, so that ascii and binary files hold the same values
            table = np.stack([values.astype(dt).astype(np.float64) for _, _, dt, values in fields], axis=1)
            fmt = " ".join("%d" if dt == "u1" else "%.17g" if double else "%.9g" for _, _, dt, _ in fields)
            np.savetxt(f, table, fmt=fmt)
