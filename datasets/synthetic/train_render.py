"""Batched analytic ray casting of synthetic scenes in torch (GPU; the same code runs on CPU).

The torch twin of :mod:`datasets.synthetic.render` for training-data generation: the scenes are the
same :class:`~datasets.synthetic.scene.Scene` descriptions, packed into padded tensors
(:func:`pack_scenes`), and every view of a batch is cast at once (rays chunked by views to bound
memory). Geometry matches the numpy renderer (z-depth, nearest hit over quads and spheres, the same
texture coordinates, trilinear mip-mapped texture lookup and view-independent shading
``albedo * (ambient + diffuse * |n . l|)``) up to float32 rounding.

Frames: ``cam_from_world`` (V, 4, 4) OpenCV world-to-camera; a pixel ``(x, y)`` (centres at integer
coordinates) casts ``o + s * R^T K^-1 [x, y, 1]``, so ``s`` is the z-depth (metres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from datasets.synthetic.scene import Scene
from datasets.synthetic.textures import LEVELS, TEXTURE_SIZE, TextureBank

__all__ = ["TorchTextures", "PackedScenes", "scene_rows", "pack_rows", "pack_scenes", "render_views",
           "Rendered"]

_EPS = 1e-6
# quad features: centre 3, u 3, v 3, n 3, hu, hv, tex, scale, off 2, tint 3 -> 21
_QF = 21
# sphere features: centre 3, radius, rot 9, tex, rep 2, tint 3 -> 19
_SF = 19


class TorchTextures:
    """A :class:`TextureBank` on a torch device (flat level-major texels, as the numpy bank)."""

    def __init__(self, bank: TextureBank, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.flat = torch.tensor(np.asarray(bank.flat, np.float32), device=self.device)
        self.offsets = torch.as_tensor(np.asarray(bank.offsets, np.int64), device=self.device)
        self.sizes = torch.tensor([TEXTURE_SIZE >> lv for lv in range(LEVELS)], device=self.device)
        self.n = len(bank)

    def sample(self, tex: torch.Tensor, u: torch.Tensor, v: torch.Tensor, lod: torch.Tensor) -> torch.Tensor:
        """Trilinear wrapping lookup: (N,) long ``tex``, float ``u``/``v`` (one unit = one repeat), ``lod``
        -> (N, 3) float32 RGB in [0, 1] (the numpy bank's ``sample``)."""
        lod = lod.clamp(0.0, LEVELS - 1)
        l0 = lod.floor().long()
        l1 = (l0 + 1).clamp(max=LEVELS - 1)
        frac = (lod - l0.to(lod.dtype))[:, None]
        fu = u - u.floor()
        fv = v - v.floor()
        c0 = self._bilinear(l0, tex, fu, fv)
        c1 = self._bilinear(l1, tex, fu, fv)
        return c0 + frac * (c1 - c0)

    def _bilinear(self, level, tid, fu, fv):
        s = self.sizes[level]
        mask = s - 1
        sf = s.to(fu.dtype)
        x = fu * sf - 0.5
        y = fv * sf - 0.5
        x0f, y0f = x.floor(), y.floor()
        ax, ay = (x - x0f)[:, None], (y - y0f)[:, None]
        x0 = x0f.long() & mask
        y0 = y0f.long() & mask
        x1 = (x0 + 1) & mask
        y1 = (y0 + 1) & mask
        base = self.offsets[level] + tid * s * s
        r0, r1 = base + y0 * s, base + y1 * s
        f = self.flat
        top = f[r0 + x0] * (1 - ax) + f[r0 + x1] * ax
        bot = f[r1 + x0] * (1 - ax) + f[r1 + x1] * ax
        return top * (1 - ay) + bot * ay


@dataclass(frozen=True)
class PackedScenes:
    """B scenes as padded tensors on one device.

    Attributes:
        quads: (B, Q, 21) float32 rows ``[centre 3, u 3, v 3, n 3, hu, hv, tex, scale, off 2, tint 3]``;
            padding rows have ``hu = hv = -1`` (never hit).
        spheres: (B, S, 19) float32 rows ``[centre 3, radius, rot 9 (row-major world-from-local), tex,
            repeats 2, tint 3]``; padding rows have ``radius = -1``.
        light: (B, 3) unit light directions; shade: (B, 2) ``(ambient, diffuse)``; background: (B, 3).
    """

    quads: torch.Tensor
    spheres: torch.Tensor
    light: torch.Tensor
    shade: torch.Tensor
    background: torch.Tensor


def scene_rows(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene as ``(quad rows (M, 21), sphere rows (S, 19), [light 3, ambient, diffuse, background 3])``
    float32 (the row layouts of :class:`PackedScenes`)."""
    q, sp = scene.quads, scene.spheres
    m, k = len(q), len(sp)
    qr = np.zeros((m, _QF), np.float32)
    if m:
        qr[:] = np.concatenate([q.center, q.u, q.v, q.normal, q.hu[:, None], q.hv[:, None], q.tex[:, None],
                                q.tex_scale[:, None], q.tex_offset, q.tint], axis=1)
    sr = np.zeros((k, _SF), np.float32)
    if k:
        sr[:] = np.concatenate([sp.center, sp.radius[:, None], sp.rot.reshape(k, 9), sp.tex[:, None],
                                sp.repeats, sp.tint], axis=1)
    glob = np.concatenate([scene.light_dir, [scene.ambient, scene.diffuse], scene.background])
    glob = glob.astype(np.float32)
    return qr, sr, glob


def pack_rows(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
              device: str | torch.device = "cpu") -> PackedScenes:
    """Pad per-scene :func:`scene_rows` into one :class:`PackedScenes` (one transfer per field)."""
    b = len(rows)
    nq = max(1, max(len(r[0]) for r in rows))
    ns = max(1, max(len(r[1]) for r in rows))
    Q = np.zeros((b, nq, _QF), np.float32)
    Q[:, :, 12:14] = -1.0
    S = np.zeros((b, ns, _SF), np.float32)
    S[:, :, 3] = -1.0
    for i, (qr, sr, _) in enumerate(rows):
        Q[i, :len(qr)] = qr
        S[i, :len(sr)] = sr
    G = np.stack([r[2] for r in rows])
    dev = torch.device(device)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    return PackedScenes(t(Q), t(S), t(G[:, 0:3]), t(G[:, 3:5]), t(G[:, 5:8]))


def pack_scenes(scenes: list[Scene], device: str | torch.device = "cpu") -> PackedScenes:
    """Pad the primitive lists of ``scenes`` into tensors on ``device``."""
    return pack_rows([scene_rows(s) for s in scenes], device)


@dataclass(frozen=True)
class Rendered:
    """V rendered views: ``rgb`` (V, H, W, 3) float32 in [0, 1], ``depth`` (V, H, W) float32 z-depth
    (0 where nothing is hit), ``valid`` (V, H, W) bool, ``pts3d`` (V, H, W, 3) float32 world points
    (0 where invalid)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    valid: torch.Tensor
    pts3d: torch.Tensor


def _rays(K: torch.Tensor, cfw: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera centres (V, 3) and world directions (V, H*W, 3) with unit camera-z component."""
    dev, dt = K.device, K.dtype
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=dt), torch.arange(w, device=dev, dtype=dt),
                            indexing="ij")
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones(h * w, device=dev, dtype=dt)], -1)
    Kinv = torch.linalg.inv(K.double()).to(dt)
    d_cam = pix[None] @ Kinv.transpose(1, 2)  # (V, P, 3)
    d_cam = d_cam / d_cam[..., 2:3]
    R, t = cfw[:, :3, :3], cfw[:, :3, 3]
    d = d_cam @ R  # rows: R^T d
    o = -(R.transpose(1, 2) @ t[..., None])[..., 0]
    return o, d


def _cast_chunk(o, d, quads, spheres):
    """Nearest hit of rays ``o + s d`` ((C, 3), (C, P, 3)) against (C, Q, 21) quads and (C, S, 19)
    spheres. Returns s (C, P) (inf: miss), is_sphere (C, P), primitive slot (C, P) and quad-plane
    coordinates lu, lv (C, P)."""
    nq = quads.shape[1]
    c, u, v, n = quads[..., 0:3], quads[..., 3:6], quads[..., 6:9], quads[..., 9:12]
    hu, hv = quads[..., 12], quads[..., 13]
    A = d @ torch.cat([n, u, v], 1).transpose(1, 2)  # (C, P, 3Q)
    dn, du, dv = A[..., :nq], A[..., nq:2 * nq], A[..., 2 * nq:]
    rel = o[:, None, :] - c
    reln, relu, relv = (rel * n).sum(-1), (rel * u).sum(-1), (rel * v).sum(-1)
    s = -reln[:, None, :] / dn
    lu = relu[:, None, :] + s * du
    lv = relv[:, None, :] + s * dv
    hit = (s > _EPS) & (lu.abs() <= hu[:, None, :]) & (lv.abs() <= hv[:, None, :])
    sq, jq = torch.where(hit, s, torch.full_like(s, math.inf)).min(-1)
    luq = lu.gather(-1, jq[..., None])[..., 0]
    lvq = lv.gather(-1, jq[..., None])[..., 0]
    del A, dn, du, dv, s, lu, lv, hit
    sc, r = spheres[..., 0:3], spheres[..., 3]
    oc = o[:, None, :] - sc  # (C, S, 3)
    bh = d @ oc.transpose(1, 2)  # (C, P, S)
    a = (d * d).sum(-1, keepdim=True)
    cc = ((oc * oc).sum(-1) - r * r)[:, None, :]
    disc = bh * bh - a * cc
    ss = (-bh - disc.clamp(min=0).sqrt()) / a
    shit = (disc >= 0) & (ss > _EPS) & (r[:, None, :] > 0)
    sss, js = torch.where(shit, ss, torch.full_like(ss, math.inf)).min(-1)
    is_sph = sss < sq
    return torch.minimum(sq, sss), is_sph, torch.where(is_sph, js, jq), luq, lvq


def _gather(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows of (C, M, F) ``table`` at (C, P) ``idx`` -> (C, P, F)."""
    return table.gather(1, idx[..., None].expand(-1, -1, table.shape[-1]))


def _shade_chunk(tex: TorchTextures, o, d, s, is_sph, j, luq, lvq, quads, spheres, light, shade, bg, focal):
    """RGB (C, P, 3) of the hits (background where ``s`` is inf)."""
    hitm = torch.isfinite(s)
    s0 = torch.where(hitm, s, torch.zeros_like(s))
    jq = torch.where(is_sph, torch.zeros_like(j), j)
    js = torch.where(is_sph, j, torch.zeros_like(j))
    qa = _gather(quads, jq)
    sa = _gather(spheres, js)
    # quads
    sc_q = qa[..., 15]
    uq = (luq + qa[..., 12]) / sc_q + qa[..., 16]
    vq = (qa[..., 13] - lvq) / sc_q + qa[..., 17]  # texture rows run down v
    # spheres
    p = o[:, None, :] + s0[..., None] * d
    rad = sa[..., 3].clamp(min=1e-6)
    nl = (p - sa[..., 0:3]) / rad[..., None]
    rot = sa[..., 4:13].reshape(*sa.shape[:2], 3, 3)
    loc = (rot * nl[..., :, None]).sum(-2)  # rot^T nl
    lon = torch.atan2(loc[..., 1], loc[..., 0]) / (2 * math.pi) + 0.5
    lat = torch.arccos(loc[..., 2].clamp(-1, 1)) / math.pi
    us, vs = lon * sa[..., 14], lat * sa[..., 15]
    mpr_s = math.pi * rad / sa[..., 15].clamp(min=1e-6)
    sel = is_sph[..., None]
    normal = torch.where(sel, nl, qa[..., 9:12])
    u = torch.where(is_sph, us, uq)
    v = torch.where(is_sph, vs, vq)
    mpr = torch.where(is_sph, mpr_s, sc_q)
    texid = torch.where(is_sph, sa[..., 13], qa[..., 14]).round().long().clamp(0, tex.n - 1)
    tint = torch.where(sel, sa[..., 16:19], qa[..., 18:21])
    dn = d.norm(dim=-1)
    cos = (normal * d).sum(-1).abs() / dn
    texels = (s0 * dn / focal[:, None] * TEXTURE_SIZE) / (mpr * cos.clamp(min=0.05).sqrt())
    lod = texels.clamp(min=1e-6).log2()
    shp = u.shape
    albedo = tex.sample(texid.reshape(-1), u.reshape(-1), v.reshape(-1), lod.reshape(-1)).reshape(*shp, 3)
    lam = shade[:, None, 0:1] + shade[:, None, 1:2] * (normal * light[:, None, :]).sum(-1, keepdim=True).abs()
    rgb = albedo * tint * lam
    return torch.where(hitm[..., None], rgb, bg[:, None, :].expand_as(rgb))


def render_views(tex: TorchTextures, scenes: PackedScenes, scene_index: torch.Tensor, K: torch.Tensor,
                 cam_from_world: torch.Tensor, height: int, width: int,
                 max_elems: int = 1 << 26) -> Rendered:
    """Render V views: view ``k`` shows scene ``scene_index[k]`` through (V, 3, 3) ``K`` and (V, 4, 4)
    ``cam_from_world`` (float32, on the scenes' device). Views are cast in chunks of about ``max_elems``
    ray-primitive tests."""
    V = K.shape[0]
    P = height * width
    K = K.float()
    cfw = cam_from_world.float()
    nprim = scenes.quads.shape[1] * 3 + scenes.spheres.shape[1] + 24
    chunk = max(1, int(max_elems // (P * nprim)))
    focal_all = (K[:, 0, 0] * K[:, 1, 1]).sqrt()
    outs = []
    for a in range(0, V, chunk):
        b = min(V, a + chunk)
        si = scene_index[a:b]
        o, d = _rays(K[a:b], cfw[a:b], height, width)
        q, sp = scenes.quads[si], scenes.spheres[si]
        s, is_sph, j, luq, lvq = _cast_chunk(o, d, q, sp)
        rgb = _shade_chunk(tex, o, d, s, is_sph, j, luq, lvq, q, sp, scenes.light[si], scenes.shade[si],
                           scenes.background[si], focal_all[a:b])
        valid = torch.isfinite(s)
        depth = torch.where(valid, s, torch.zeros_like(s))
        pts = torch.where(valid[..., None], o[:, None, :] + depth[..., None] * d, torch.zeros_like(d))
        outs.append((rgb, depth, valid, pts))
    rgb, depth, valid, pts = (torch.cat(x) for x in zip(*outs))
    return Rendered(rgb=rgb.reshape(V, height, width, 3), depth=depth.reshape(V, height, width),
                    valid=valid.reshape(V, height, width), pts3d=pts.reshape(V, height, width, 3))
