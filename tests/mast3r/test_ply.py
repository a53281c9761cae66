"""PLY read/write: ascii and binary, colours and normals, meshes (DTU STL style), bad files."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from mast3r.ply import PlyFormatError, read_ply, read_ply_points, write_ply


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("double", [True, False])
def test_roundtrip_with_colors_and_normals(tmp_path, binary, double):
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(57, 3)) * 100
    nrm = rng.normal(size=(57, 3))
    col = rng.integers(0, 256, (57, 3)).astype(np.uint8)
    path = tmp_path / "a.ply"
    write_ply(path, pts, col, nrm, binary=binary, double=double, comment="made by\ntest")
    back = read_ply(path)
    dt = np.float64 if double else np.float32
    np.testing.assert_array_equal(back.points, pts.astype(dt).astype(np.float64))
    np.testing.assert_array_equal(back.normals, nrm.astype(dt).astype(np.float64))
    np.testing.assert_array_equal(back.colors, col)
    assert back.properties["red"].dtype == np.uint8
    np.testing.assert_array_equal(read_ply_points(path), back.points)


def test_float_colors_and_empty_cloud(tmp_path):
    write_ply(tmp_path / "c.ply", np.zeros((2, 3)), np.array([[0, 0.5, 1.0], [0.2, 2.0, -1.0]]), binary=False)
    assert read_ply(tmp_path / "c.ply").colors.tolist() == [[0, 128, 255], [51, 255, 0]]
    for binary in (True, False):
        write_ply(tmp_path / "e.ply", np.zeros((0, 3)), binary=binary)
        back = read_ply(tmp_path / "e.ply")
        assert back.points.shape == (0, 3) and back.colors is None and back.normals is None


def _mesh_bytes(endian: str, faces_first: bool) -> bytes:
    """A 3-vertex, 2-face binary PLY like the DTU STL files (float xyz, uchar-count int faces)."""
    fmt = {"<": "binary_little_endian", ">": "binary_big_endian"}[endian]
    vert = ["element vertex 3", "property float x", "property float y", "property float z"]
    face = ["element face 2", "property list uchar int vertex_indices"]
    header = ["ply", f"format {fmt} 1.0", "comment VCGLIB generated"]
    header += (face + vert) if faces_first else (vert + face)
    v = struct.pack(endian + "9f", 1, 2, 3, 4, 5, 6, -7.5, 8, 9)
    f = struct.pack(endian + "B3i", 3, 0, 1, 2) + struct.pack(endian + "B4i", 4, 0, 1, 2, 0)
    body = (f + v) if faces_first else (v + f)
    return ("\n".join(header + ["end_header"]) + "\n").encode() + body


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("faces_first", [False, True])
def test_binary_mesh_vertices(tmp_path, endian, faces_first):
    path = tmp_path / "stl001_total.ply"
    path.write_bytes(_mesh_bytes(endian, faces_first))
    pts = read_ply_points(path)
    assert pts.dtype == np.float64
    assert pts.tolist() == [[1, 2, 3], [4, 5, 6], [-7.5, 8, 9]]


def test_ascii_mesh_with_faces_first(tmp_path):
    text = ("ply\nformat ascii 1.0\nelement face 1\nproperty list uchar int vertex_indices\n"
            "element vertex 2\nproperty double x\nproperty double y\nproperty double z\n"
            "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
            "3 0 1 1\n0.5 1 2 10 20 30\n-1 -2 -3 40 50 60\n")
    (tmp_path / "m.ply").write_text(text)
    back = read_ply(tmp_path / "m.ply")
    assert back.points.tolist() == [[0.5, 1, 2], [-1, -2, -3]] and back.colors.tolist()[1] == [40, 50, 60]


@pytest.mark.parametrize("content,match", [
    (b"PLY\n", "not a PLY file"),
    (b"ply\nformat binary_middle_endian 1.0\nend_header\n", "line 2: unsupported format"),
    (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\nend_header\n",
     "line 4: unsupported property"),
    (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n", "no end_header"),
    (b"ply\nformat ascii 1.0\nelement face 0\nend_header\n", "no 'vertex' element"),
    (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n", "no y/z property"),
    (b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n"
     b"end_header\n1 2 3\n4 5\n", "vertex 1 has 2 values"),
    (b"ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
     b"property float z\nend_header\n" + b"\0" * 20, "truncated"),
    (b"ply\nelement vertex 0\nend_header\n", "no format line"),
])
def test_bad_files_name_the_file_and_problem(tmp_path, content, match):
    path = tmp_path / "bad.ply"
    path.write_bytes(content)
    with pytest.raises(PlyFormatError, match=match) as info:
        read_ply(path)
    assert "bad.ply" in str(info.value)


def test_write_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match="colours"):
        write_ply(tmp_path / "x.ply", np.zeros((3, 3)), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="normals"):
        write_ply(tmp_path / "x.ply", np.zeros((3, 3)), normals=np.zeros((4, 3)))
