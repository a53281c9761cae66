"""Scene description: textured rectangles (walls, box faces, panels) and spheres, plus generators.

Worlds are z-up, in metres. Object id 0 is the room (or the table of a table-top scene); objects
are numbered from 1; -1 means "no surface" in renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.synthetic.geometry import rotation_about_axis
from datasets.synthetic.textures import TextureBank

__all__ = ["Quads", "Spheres", "Scene", "room_scene", "tabletop_scene", "box_quads"]


@dataclass(frozen=True)
class Quads:
    """M textured rectangles ``c + a*u + b*v`` with ``|a| <= hu``, ``|b| <= hv``.

    Attributes: ``center`` (M, 3), ``u``/``v`` (M, 3) orthonormal in-plane axes, ``hu``/``hv``
    (M,) half sizes (m), ``tex`` (M,) texture ids, ``tex_scale`` (M,) metres per texture repeat,
    ``tex_offset`` (M, 2) uv offsets, ``tint`` (M, 3) albedo multipliers, ``obj`` (M,) object ids,
    ``one_sided`` (M,) bool: the face is only visible from the side its normal ``u x v`` points to
    (faces of closed boxes pointing outwards, room walls pointing inwards), used for culling.
    """

    center: np.ndarray
    u: np.ndarray
    v: np.ndarray
    hu: np.ndarray
    hv: np.ndarray
    tex: np.ndarray
    tex_scale: np.ndarray
    tex_offset: np.ndarray
    tint: np.ndarray
    obj: np.ndarray
    one_sided: np.ndarray

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.u, self.v)

    def __len__(self) -> int:
        return len(self.center)


@dataclass(frozen=True)
class Spheres:
    """S textured spheres: ``center`` (S, 3), ``radius`` (S,), ``rot`` (S, 3, 3) texture frame
    (world from local), ``tex`` (S,), ``repeats`` (S, 2) texture repeats along longitude/latitude,
    ``tint`` (S, 3), ``obj`` (S,)."""

    center: np.ndarray
    radius: np.ndarray
    rot: np.ndarray
    tex: np.ndarray
    repeats: np.ndarray
    tint: np.ndarray
    obj: np.ndarray

    def __len__(self) -> int:
        return len(self.center)


@dataclass(frozen=True)
class Scene:
    """Everything the renderer needs.

    Attributes:
        quads, spheres: the geometry.
        textures: the texture bank indexed by ``quads.tex`` / ``spheres.tex``.
        light_dir: (3,) unit direction towards the light (view-independent Lambertian shading).
        ambient, diffuse: shading weights: ``albedo * (ambient + diffuse * |n . light_dir|)``.
        background: (3,) RGB in [0, 1] for rays that hit nothing.
        bounds: (2, 3) axis-aligned box containing every surface (m).
        keepout: list of (centre (3,), radius) spheres cameras must stay out of.
        room: (2, 3) min/max corners of the enclosing room, or None. When set, quads 0..5 are its
            inward-facing walls in the order (x-min, x-max, y-min, y-max, floor, ceiling); the
            renderer intersects them with the slab method instead of one by one.
    """

    quads: Quads
    spheres: Spheres
    textures: TextureBank
    light_dir: np.ndarray
    ambient: float
    diffuse: float
    background: np.ndarray
    bounds: np.ndarray
    keepout: tuple[tuple[np.ndarray, float], ...]
    room: np.ndarray | None = None

    def clearance(self, point: np.ndarray) -> float:
        """Distance (m) from ``point`` to the nearest keep-out sphere surface (negative inside)."""
        if not self.keepout:
            return float("inf")
        return float(min(np.linalg.norm(point - c) - r for c, r in self.keepout))


class _QuadList:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, c, u, v, hu, hv, tex, scale, off, tint, obj, one_sided: bool = False) -> None:
        self.rows.append((np.asarray(c, float), np.asarray(u, float), np.asarray(v, float), float(hu),
                          float(hv), int(tex), float(scale), np.asarray(off, float),
                          np.asarray(tint, float), int(obj), float(one_sided)))

    def build(self) -> Quads:
        cols = list(zip(*self.rows)) if self.rows else [[]] * 11
        arr = [np.array(c, dtype=np.float64).reshape(len(self.rows), -1) for c in cols]
        return Quads(center=arr[0], u=arr[1], v=arr[2], hu=arr[3][:, 0], hv=arr[4][:, 0],
                     tex=arr[5][:, 0].astype(np.int64), tex_scale=arr[6][:, 0], tex_offset=arr[7],
                     tint=arr[8], obj=arr[9][:, 0].astype(np.int64), one_sided=arr[10][:, 0] > 0)


def box_quads(ql: _QuadList, center, R, half, tex, scale, off, tint, obj) -> None:
    """Add the 6 faces of an oriented box (``R`` world-from-box, ``half`` (3,) half extents)."""
    center = np.asarray(center, float)
    for axis in range(3):
        a1, a2 = (axis + 1) % 3, (axis + 2) % 3
        for sgn in (-1.0, 1.0):
            c = center + sgn * half[axis] * R[:, axis]
            u = sgn * R[:, a1]  # u x v = sgn * R[:, axis]: the outward normal
            ql.add(c, u, R[:, a2], half[a1], half[a2], tex, scale, off, tint, obj, one_sided=True)


def _tint(rng: np.random.Generator, bank: TextureBank, tex: int) -> np.ndarray:
    if bank.names[tex].startswith("photo:"):
        return np.ones(3)
    return rng.uniform(0.8, 1.1, 3)


def _room(ql: _QuadList, rng, bank, lo, hi) -> None:
    """Inward-facing walls, floor and ceiling of the box [lo, hi] (object id 0)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    ctr, half = (lo + hi) / 2, (hi - lo) / 2
    eye = np.eye(3)
    for axis in range(3):
        a1, a2 = (axis + 1) % 3, (axis + 2) % 3
        for sgn in (-1.0, 1.0):
            c = ctr + sgn * half[axis] * eye[axis]
            tex = int(rng.integers(len(bank)))
            u = -sgn * eye[a1]  # u x v = -sgn * e_axis: the inward normal
            ql.add(c, u, eye[a2], half[a1], half[a2], tex, rng.uniform(0.8, 1.6),
                   rng.uniform(0, 1, 2), _tint(rng, bank, tex), 0, one_sided=True)


def _posters(ql: _QuadList, rng, bank, lo, hi, n: int) -> None:
    """Flat pictures hung 1 cm in front of the four walls (object id 0: part of the room)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    for _ in range(n):
        wall = int(rng.integers(4))
        axis, sgn = wall // 2, (-1.0, 1.0)[wall % 2]
        other = 1 - axis
        w, h = rng.uniform(0.6, 1.6), rng.uniform(0.5, 1.2)
        c = np.zeros(3)
        c[axis] = (hi[axis] - 0.01) if sgn > 0 else (lo[axis] + 0.01)
        c[other] = rng.uniform(lo[other] + w / 2 + 0.1, hi[other] - w / 2 - 0.1)
        c[2] = rng.uniform(lo[2] + h / 2 + 0.6, hi[2] - h / 2 - 0.2)
        u = np.zeros(3)
        u[other] = 1.0
        tex = int(rng.integers(len(bank)))
        ql.add(c, u, [0, 0, 1.0], w / 2, h / 2, tex, max(w, h) * rng.uniform(0.9, 1.1), [0, 0],
               _tint(rng, bank, tex), 0)


def _random_rot(rng: np.random.Generator, tilt_deg: float) -> np.ndarray:
    yaw = rotation_about_axis(np.array([0, 0, 1.0]), rng.uniform(0, 360))
    if tilt_deg <= 0:
        return yaw
    axis = np.array([*rng.normal(size=2), 0.0])
    return yaw @ rotation_about_axis(axis, rng.uniform(-tilt_deg, tilt_deg))


def _objects(ql: _QuadList, rng, bank, region_c, region_r, floor_z, n_boxes, n_spheres, n_panels,
             size, first_obj: int) -> tuple[list, int, list]:
    """Boxes, spheres and free-standing panels on the floor within ``region_r`` of ``region_c``."""
    spheres = []
    keepout = []
    obj = first_obj
    region_c = np.asarray(region_c, float)
    kinds = ["box"] * n_boxes + ["sphere"] * n_spheres + ["panel"] * n_panels
    for kind in kinds:
        ang, rad = rng.uniform(0, 2 * np.pi), region_r * np.sqrt(rng.uniform(0, 1))
        xy = region_c[:2] + rad * np.array([np.cos(ang), np.sin(ang)])
        tex = int(rng.integers(len(bank)))
        tint = _tint(rng, bank, tex)
        scale = rng.uniform(0.4, 1.0) * size
        if kind == "box":
            half = rng.uniform(0.15, 0.5, 3) * size
            floating = rng.uniform() < 0.3
            z = floor_z + half[2] + (rng.uniform(0.2, 0.8) * size if floating else 0.0)
            R = _random_rot(rng, 25.0 if floating else 0.0)
            box_quads(ql, [*xy, z], R, half, tex, scale, rng.uniform(0, 1, 2), tint, obj)
            keepout.append((np.array([*xy, z]), float(np.linalg.norm(half))))
        elif kind == "sphere":
            r = rng.uniform(0.15, 0.4) * size
            z = floor_z + r + (rng.uniform(0, 0.8) * size if rng.uniform() < 0.5 else 0.0)
            rep = [max(1, round(2 * np.pi * r / scale)), max(1, round(np.pi * r / scale))]
            spheres.append((np.array([*xy, z]), r, _random_rot(rng, 90.0), tex, rep, tint, obj))
            keepout.append((np.array([*xy, z]), r))
        else:
            w, h = rng.uniform(0.3, 0.8) * size, rng.uniform(0.4, 1.0) * size
            R = _random_rot(rng, 0.0)
            c = np.array([*xy, floor_z + h / 2 + rng.uniform(0, 0.3) * size])
            ql.add(c, R[:, 0], R[:, 2], w / 2, h / 2, tex, scale, rng.uniform(0, 1, 2), tint, obj)
            keepout.append((c, float(np.hypot(w, h) / 2)))
        obj += 1
    return spheres, obj, keepout


def _spheres(rows: list) -> Spheres:
    if not rows:
        z = np.zeros((0,))
        return Spheres(np.zeros((0, 3)), z, np.zeros((0, 3, 3)), z.astype(np.int64), np.zeros((0, 2)),
                       np.zeros((0, 3)), z.astype(np.int64))
    c, r, R, tex, rep, tint, obj = zip(*rows)
    return Spheres(np.array(c), np.array(r, float), np.array(R), np.array(tex, np.int64),
                   np.array(rep, float), np.array(tint), np.array(obj, np.int64))


def _light(rng: np.random.Generator) -> np.ndarray:
    d = np.array([*rng.normal(size=2) * 0.5, 1.0])
    return d / np.linalg.norm(d)


def room_scene(rng: np.random.Generator, bank: TextureBank, size: tuple[float, float, float] = (8, 6, 3),
               n_boxes: int = 4, n_spheres: int = 2, n_panels: int = 2, n_posters: int = 6,
               object_region: float = 1.2) -> Scene:
    """A closed room ``[-sx/2, sx/2] x [-sy/2, sy/2] x [0, sz]`` with objects near its centre.

    Objects lie within ``object_region`` m of the room centre (on the floor or floating).
    """
    sx, sy, sz = size
    lo, hi = np.array([-sx / 2, -sy / 2, 0.0]), np.array([sx / 2, sy / 2, sz])
    ql = _QuadList()
    _room(ql, rng, bank, lo, hi)
    _posters(ql, rng, bank, lo, hi, n_posters)
    rows, _, keepout = _objects(ql, rng, bank, [0, 0], object_region, 0.0, n_boxes, n_spheres, n_panels,
                                1.0, 1)
    return Scene(quads=ql.build(), spheres=_spheres(rows), textures=bank, light_dir=_light(rng),
                 ambient=0.55, diffuse=0.45, background=np.zeros(3), bounds=np.stack([lo, hi]),
                 keepout=tuple(keepout), room=np.stack([lo, hi]))


def tabletop_scene(rng: np.random.Generator, bank: TextureBank, table_half: float = 0.35,
                   object_size: float = 0.25, n_objects: int = 3, room: bool = True,
                   room_size: tuple[float, float, float] = (5, 5, 3), table_z: float = 0.0) -> Scene:
    """A square table top (object id 0 when ``room`` is False) with small objects on it.

    With ``room`` the table (id 0 too) stands at ``table_z`` inside a room; without, rays that miss
    the table and objects are invalid (black background), as in DTU's turntable captures.
    The main object (id 1) is at the table centre; others around it.
    """
    ql = _QuadList()
    room_box = None
    if room:
        sx, sy, sz = room_size
        lo = np.array([-sx / 2, -sy / 2, table_z - 0.75])
        room_box = np.stack([lo, lo + np.array([sx, sy, sz])])
        _room(ql, rng, bank, *room_box)
        _posters(ql, rng, bank, *room_box, 4)
    tex = int(rng.integers(len(bank)))
    ql.add([0, 0, table_z], [1, 0, 0], [0, 1, 0], table_half, table_half, tex, table_half,
           rng.uniform(0, 1, 2), _tint(rng, bank, tex), 0)
    # main object: a box or a sphere at the centre
    rows: list = []
    keepout: list = []
    tex = int(rng.integers(len(bank)))
    if rng.uniform() < 0.5:
        half = np.array([rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.5), rng.uniform(0.35, 0.6)]) * object_size
        box_quads(ql, [0, 0, table_z + half[2]], _random_rot(rng, 0.0), half, tex, object_size * 0.8,
                  rng.uniform(0, 1, 2), _tint(rng, bank, tex), 1)
        keepout.append((np.array([0, 0, table_z + half[2]]), float(np.linalg.norm(half))))
    else:
        r = rng.uniform(0.35, 0.5) * object_size
        rows.append((np.array([0, 0, table_z + r]), r, _random_rot(rng, 90.0), tex, [3, 2],
                     _tint(rng, bank, tex), 1))
        keepout.append((np.array([0, 0, table_z + r]), r))
    more, _, ko = _objects(ql, rng, bank, [0, 0], table_half * 0.75, table_z, n_objects - n_objects // 3,
                           n_objects // 3, 0, object_size * 0.5, 2)
    rows += more
    keepout += ko
    bounds = room_box if room_box is not None else np.array(
        [[-table_half, -table_half, table_z], [table_half, table_half, table_z + 2 * object_size]])
    return Scene(quads=ql.build(), spheres=_spheres(rows), textures=bank, light_dir=_light(rng),
                 ambient=0.55, diffuse=0.45, background=np.zeros(3), bounds=bounds,
                 keepout=tuple(keepout), room=room_box)
