"""Exact, analytic ray casting of a :class:`~datasets.synthetic.scene.Scene` (numpy, float64).

A pixel ``(x, y)`` (centres at integer coordinates) casts the ray ``o + s * R^T K^-1 [x, y, 1]``
from the camera centre ``o``; with that direction the ray parameter ``s`` *is* the z-depth of the
hit in the camera frame, so ``depth`` is z-depth (not range), as in every benchmark's depth maps.

Shading is view-independent (``albedo * (ambient + diffuse * |n . l|)``), so a surface point has
the same colour in every view up to texture filtering (trilinear mip-mapping) and quantisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.synthetic.scene import Scene
from datasets.synthetic.textures import TEXTURE_SIZE

__all__ = ["Render", "render", "probe_depth", "pixel_rays", "apply_night"]

_EPS = 1e-6


@dataclass(frozen=True)
class Render:
    """One rendered view.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 z-depth in the camera frame (scene unit, metres), 0 where invalid.
        valid: (H, W) bool, True where the pixel's ray hits a surface.
        object_id: (H, W) int32 object ids (0 room/table, 1.. objects, -1 invalid).
        K: (3, 3) float64 intrinsics used.
        cam_from_world: (4, 4) float64 pose used.
    """

    image: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    object_id: np.ndarray
    K: np.ndarray
    cam_from_world: np.ndarray

    @property
    def height(self) -> int:
        return int(self.depth.shape[0])

    @property
    def width(self) -> int:
        return int(self.depth.shape[1])


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` for (N, 3) and (M, 3) without BLAS (BLAS threads thrash on these thin shapes)."""
    return a[:, 0:1] * b[:, 0] + a[:, 1:2] * b[:, 1] + a[:, 2:3] * b[:, 2]


def _dot(d: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``d . v`` over the last axis of a (..., 3) array and a (3,) vector."""
    return d[..., 0] * v[0] + d[..., 1] * v[1] + d[..., 2] * v[2]


def pixel_rays(K: np.ndarray, cam_from_world: np.ndarray, width: int, height: int,
               step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre (3,) and (H', W', 3) world ray directions with unit camera-z component.

    The grid holds pixels ``x = x0 + step * i`` (``x0 = step // 2``; ``step = 1``: every pixel);
    the direction of pixel ``(x, y)`` is ``R^T K^-1 [x, y, 1]``.
    """
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    origin = -R.T @ t
    xs = np.arange(step // 2, width, step, dtype=np.float64)
    ys = np.arange(step // 2, height, step, dtype=np.float64)
    Kinv = np.linalg.inv(K)
    d_cam = (xs[None, :, None] * Kinv[:, 0] + ys[:, None, None] * Kinv[:, 1]) + Kinv[:, 2]
    d_cam /= d_cam[..., 2:3]
    M = R.T
    d = d_cam[..., 0:1] * M[:, 0] + d_cam[..., 1:2] * M[:, 1] + d_cam[..., 2:3] * M[:, 2]
    return origin, d


def _frustum_planes(K: np.ndarray, width: int, height: int, margin: float = 1.0) -> np.ndarray:
    """(5, 4) camera-frame half-spaces ``a . X + b >= 0`` of the view frustum (unit normals)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lo_x, hi_x, lo_y, hi_y = -0.5 - margin, width - 0.5 + margin, -0.5 - margin, height - 0.5 + margin
    planes = np.array([
        [0.0, 0.0, 1.0, 0.0],
        [fx, 0.0, cx - lo_x, 0.0],
        [-fx, 0.0, hi_x - cx, 0.0],
        [0.0, fy, cy - lo_y, 0.0],
        [0.0, -fy, hi_y - cy, 0.0],
    ])
    planes[:, :3] /= np.linalg.norm(planes[:, :3], axis=1, keepdims=True)
    return planes


def _bbox(cam_pts: np.ndarray, K: np.ndarray, width: int, height: int, znear: float = 1e-4):
    """Pixel bounding box ``(x0, x1, y0, y1)`` of a convex set given by its (V, 3) camera-frame
    vertices, clipped to the image; the whole image when any vertex is behind ``znear``."""
    if np.any(cam_pts[:, 2] <= znear):
        return (-1.0, float(width), -1.0, float(height))
    u = K[0, 0] * cam_pts[:, 0] / cam_pts[:, 2] + K[0, 2]
    v = K[1, 1] * cam_pts[:, 1] / cam_pts[:, 2] + K[1, 2]
    return (u.min() - 1, u.max() + 1, v.min() - 1, v.max() + 1)


def _visible(scene: Scene, K, cam_from_world, width, height):
    """Quads and spheres that can appear in the view (conservative culling), with pixel boxes.

    Returns ``[(quad index, bbox), ...]`` and ``[(sphere index, bbox), ...]``; room walls are
    excluded (cast separately).
    """
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    o = -R.T @ t
    planes = _frustum_planes(K, width, height)
    q = scene.quads
    first = 6 if scene.room is not None else 0
    out_q, out_s = [], []
    if len(q) > first:
        facing = ~q.one_sided | (np.einsum("mk,mk->m", q.normal, o - q.center) > 0)
        signs = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], float)
        corners = (q.center[:, None, :] + signs[None, :, 0:1] * (q.hu[:, None, None] * q.u[:, None, :])
                   + signs[None, :, 1:2] * (q.hv[:, None, None] * q.v[:, None, :]))  # (M, 4, 3)
        cam = corners @ R.T + t
        side = cam @ planes[:, :3].T + planes[:, 3]  # (M, 4, 5)
        outside = (side < 0).all(axis=1).any(axis=1)
        for j in np.nonzero(facing & ~outside)[0]:
            if j >= first:
                out_q.append((int(j), _bbox(cam[j], K, width, height)))
    sp = scene.spheres
    if len(sp):
        cube = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)
        cam_c = sp.center @ R.T + t
        side = cam_c @ planes[:, :3].T + planes[:, 3]  # (S, 5)
        for j in np.nonzero(~(side < -sp.radius[:, None]).any(axis=1))[0]:
            out_s.append((int(j), _bbox(cam_c[j] + sp.radius[j] * cube, K, width, height)))
    return out_q, out_s


def _slices(box, xs: np.ndarray, ys: np.ndarray) -> tuple[slice, slice] | None:
    x0, x1, y0, y1 = box
    i0, i1 = np.searchsorted(ys, y0), np.searchsorted(ys, y1, side="right")
    j0, j1 = np.searchsorted(xs, x0), np.searchsorted(xs, x1, side="right")
    if i1 <= i0 or j1 <= j0:
        return None
    return slice(int(i0), int(i1)), slice(int(j0), int(j1))


def _cast(scene: Scene, K, cam_from_world, width: int, height: int, step: int = 1):
    """Nearest hit for a pixel grid (see :func:`pixel_rays`).

    Returns the camera centre, ray directions (H', W', 3), ``s`` (H', W') z-depth (``inf``: no
    hit), the primitive index (H', W') into the full scene (quads first, then spheres; -1 for no
    hit) and (H', W', 2) in-plane coordinates ``(a, b)`` of quad hits (``c + a u + b v``).
    """
    o, d = pixel_rays(K, cam_from_world, width, height, step)
    xs = np.arange(step // 2, width, step, dtype=np.float64)
    ys = np.arange(step // 2, height, step, dtype=np.float64)
    best = np.full(d.shape[:2], np.inf)
    prim = np.full(d.shape[:2], -1, dtype=np.int64)
    luv = np.zeros(d.shape[:2] + (2,))  # in-plane coordinates of quad hits
    q = scene.quads
    if scene.room is not None:  # slab exit from inside the room box
        lo, hi = scene.room
        for axis in range(3):
            dk = d[..., axis]
            with np.errstate(divide="ignore", invalid="ignore"):
                s_lo = (lo[axis] - o[axis]) / dk
                s_hi = (hi[axis] - o[axis]) / dk
            s_ax = np.where(dk > 0, s_hi, np.where(dk < 0, s_lo, np.inf))
            upd = s_ax < best
            best[upd] = s_ax[upd]
            prim[upd] = np.where(dk[upd] > 0, 2 * axis + 1, 2 * axis)
        walls = np.minimum(prim, 5)
        p = o + best[..., None] * d
        for k in range(2):
            ax = np.take(q.u if k == 0 else q.v, walls, axis=0)
            ctr = np.take(q.center, walls, axis=0)
            luv[..., k] = np.einsum("...k,...k->...", p - ctr, ax)
    quads, spheres = _visible(scene, K, cam_from_world, width, height)
    for j, box in quads:
        sl = _slices(box, xs, ys)
        if sl is None:
            continue
        dd = d[sl]
        nrm = q.normal[j]
        rel = o - q.center[j]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = -(rel @ nrm) / _dot(dd, nrm)
        hit = s > _EPS
        lu = rel @ q.u[j] + s * _dot(dd, q.u[j])
        hit &= np.abs(lu) <= q.hu[j]
        lv = rel @ q.v[j] + s * _dot(dd, q.v[j])
        hit &= np.abs(lv) <= q.hv[j]
        b, p, c = best[sl], prim[sl], luv[sl]
        upd = hit & (s < b)
        b[upd] = s[upd]
        p[upd] = j
        c[upd, 0] = lu[upd]
        c[upd, 1] = lv[upd]
    sp = scene.spheres
    for j, box in spheres:
        sl = _slices(box, xs, ys)
        if sl is None:
            continue
        dd = d[sl]
        oc = o - sp.center[j]
        a = np.einsum("...k,...k->...", dd, dd)
        bh = _dot(dd, oc)
        disc = bh * bh - a * (oc @ oc - sp.radius[j] ** 2)
        with np.errstate(invalid="ignore"):
            s = (-bh - np.sqrt(disc)) / a
        b, p = best[sl], prim[sl]
        upd = (disc >= 0) & (s > _EPS) & (s < b)
        b[upd] = s[upd]
        p[upd] = len(q) + j
    return o, d, best, prim, luv


def _surface(scene: Scene, o, d, s, prim, luv, focal: float):
    """Albedo (N, 3) float32, normal (N, 3) and object id (N,) of hits (every ray here hits)."""
    q, sp = scene.quads, scene.spheres
    nq = len(q)
    # per-primitive tables (quads then spheres), gathered per pixel
    tex_t = np.concatenate([q.tex, sp.tex])
    obj_t = np.concatenate([q.obj, sp.obj])
    tint_t = np.concatenate([q.tint, sp.tint]).astype(np.float32)
    tex = np.take(tex_t, prim)
    obj = np.take(obj_t, prim)
    tint = np.take(tint_t, prim, axis=0)
    n = len(s)
    if len(sp):
        normal = np.zeros((n, 3))
        u = np.zeros(n)
        v = np.zeros(n)
        mpr = np.ones(n)
        isq = prim < nq
        iss = ~isq
    else:
        isq = slice(None)
    jq = prim[isq]
    sc = np.take(q.tex_scale, jq)
    uq = (luv[isq, 0] + np.take(q.hu, jq)) / sc + np.take(q.tex_offset[:, 0], jq)
    vq = (np.take(q.hv, jq) - luv[isq, 1]) / sc + np.take(q.tex_offset[:, 1], jq)  # rows run down v
    nrm_q = np.take(q.normal, jq, axis=0)
    if len(sp):
        u[isq], v[isq], mpr[isq], normal[isq] = uq, vq, sc, nrm_q
        j = prim[iss] - nq
        p = o + s[iss, None] * d[iss]
        nl = (p - sp.center[j]) / sp.radius[j, None]
        normal[iss] = nl
        loc = np.einsum("nki,nk->ni", sp.rot[j], nl)  # rot^T @ nl
        lon = np.arctan2(loc[:, 1], loc[:, 0]) / (2 * np.pi) + 0.5
        lat = np.arccos(np.clip(loc[:, 2], -1, 1)) / np.pi
        u[iss] = lon * sp.repeats[j, 0]
        v[iss] = lat * sp.repeats[j, 1]
        mpr[iss] = np.pi * sp.radius[j] / sp.repeats[j, 1]
    else:
        u, v, mpr, normal = uq, vq, sc, nrm_q
    # level of detail from the pixel footprint on the surface, in texels
    dn = np.sqrt(np.einsum("nk,nk->n", d, d))
    cos = np.abs(np.einsum("nk,nk->n", normal, d)) / dn
    texels = (s * dn / focal * TEXTURE_SIZE) / (mpr * np.sqrt(np.maximum(cos, 0.05)))
    lod = np.log2(np.maximum(texels, 1e-6))
    albedo = scene.textures.sample(tex, u, v, lod) * tint
    return albedo, normal, obj


def render(scene: Scene, K: np.ndarray, cam_from_world: np.ndarray, width: int, height: int) -> Render:
    """Ray-cast one view of ``scene``: image, z-depth, valid mask and object ids (see :class:`Render`)."""
    K = np.asarray(K, np.float64)
    cam_from_world = np.asarray(cam_from_world, np.float64)
    o, d, s, prim, luv = _cast(scene, K, cam_from_world, width, height)
    d, s, prim, luv = d.reshape(-1, 3), s.reshape(-1), prim.reshape(-1), luv.reshape(-1, 2)
    n = len(d)
    rgb = np.tile(np.asarray(scene.background, np.float32), (n, 1))
    obj = np.full(n, -1, np.int64)
    hit = np.nonzero(prim >= 0)[0]
    focal = float(np.sqrt(K[0, 0] * K[1, 1]))
    if len(hit):
        albedo, normal, ob = _surface(scene, o, d[hit], s[hit], prim[hit], luv[hit], focal)
        shade = scene.ambient + scene.diffuse * np.abs(_rowdot(normal, scene.light_dir[None])[:, 0])
        rgb[hit] = albedo * shade[:, None].astype(np.float32)
        obj[hit] = ob
    depth = np.where(prim >= 0, s, 0.0)
    image = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8).reshape(height, width, 3)
    valid = (obj >= 0).reshape(height, width)
    return Render(image=image, depth=depth.astype(np.float32).reshape(height, width), valid=valid,
                  object_id=obj.astype(np.int32).reshape(height, width), K=K,
                  cam_from_world=cam_from_world)


def probe_depth(scene: Scene, K: np.ndarray, cam_from_world: np.ndarray, width: int, height: int,
                step: int = 8) -> np.ndarray:
    """Z-depth at every ``step``-th pixel (starting at ``step // 2``), ``inf`` where nothing is hit:
    a cheap look at a candidate view. Returns (H', W') float64."""
    _, _, s, _, _ = _cast(scene, np.asarray(K, np.float64), np.asarray(cam_from_world, np.float64), width,
                       height, step)
    return s


def apply_night(image: np.ndarray, rng: np.random.Generator, gain: float = 0.3,
                noise_sigma: float = 6.0) -> np.ndarray:
    """Night version of a day render: darker, warm-tinted, with seeded Gaussian sensor noise.

    ``image`` (H, W, 3) uint8 -> (H, W, 3) uint8; the geometry (and so all ground truth) is unchanged.
    """
    tint = np.array([1.0, 0.85, 0.6]) * gain
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    # a street-light-like falloff across the image, seeded position
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.1, 0.5) * h
    fall = 0.6 + 0.8 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.35 * max(h, w)) ** 2))
    out = image.astype(np.float64) * tint * fall[..., None]
    out += rng.normal(0.0, noise_sigma, out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
