"""Training-view utilities shared by every pair source: GT correspondence sampling, colour jitter and
counter-based per-pair randomness (torch, batched, any device).

Randomness here is a pure function of a per-pair 62-bit ``key`` (drawn on the CPU from the pair's own
seed), a stream number and an element index (a splitmix64-style integer hash), so a pair's samples do not
depend on which other pairs share its batch, nor on the device.

Correspondences (MASt3R's dataset-side sampling, spec model.md section 8): every valid pixel's GT 3D point
is projected into the other view (rounded to the nearest pixel, clipped to the image); pixel pairs that map
onto each other both ways (reciprocal) are the positives; ``int(n_corres * (1 - nneg))`` of them are drawn
at random without replacement (fewer when there are not enough), and the remaining slots are random
non-reciprocal pixels of each view, flagged invalid (distractors). Here a projection must also land in
front of the camera and inside the image to count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["ViewSampling", "TRAIN_RESOLUTIONS", "hash_scores", "hash_uniform", "project_index",
           "sample_correspondences", "color_jitter", "to_network_input"]

TRAIN_RESOLUTIONS = ((240, 320), (224, 320), (192, 320), (176, 320), (160, 320))
"""Landscape (H, W) training sizes at 320 px (the paper's 512-wide aspect ratios, multiples of 16)."""


@dataclass(frozen=True)
class ViewSampling:
    """What every training-pair source shares: image sizes, correspondence slots and colour jitter.

    Attributes:
        resolutions: landscape (H, W) sizes, multiples of 16; one is drawn per step.
        portrait_prob: probability that a step's size is transposed (portrait).
        n_corres: correspondence slots per pair; nneg: fraction of them that are negatives
            (``int(n_corres * (1 - nneg))`` positives at most).
        jitter: per-view colour jitter; brightness/contrast/saturation: factor ranges ``1 +- x``;
            hue: shift range ``+- x`` of a full turn.
    """

    resolutions: tuple[tuple[int, int], ...] = TRAIN_RESOLUTIONS
    portrait_prob: float = 0.2
    n_corres: int = 2048
    nneg: float = 0.5
    jitter: bool = True
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.08


_MASK62 = (1 << 62) - 1
_C0 = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64
_C1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
_C2 = -7723592293110705685  # 0x94D049BB133111EB


def hash_scores(key: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) int64 pseudo-random values in [0, 2**62) from (B,) int64 ``key``, ``stream`` and the
    element index (a splitmix64-like mix; int64 arithmetic wraps the same on every device)."""
    idx = torch.arange(n, device=key.device, dtype=torch.int64)
    x = key[:, None] * _C0 + (idx[None, :] + (stream + 1) * 0x100000000) * _C1
    for c, sh in ((_C1, 30), (_C2, 27), (_C0, 31)):
        x = x ^ (x >> sh)
        x = x * c
    x = x ^ (x >> 29)
    return x & _MASK62


def hash_uniform(key: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) float32 uniform in [0, 1) (24 bits of :func:`hash_scores`)."""
    return (hash_scores(key, stream, n) >> 38).to(torch.float32) * (1.0 / (1 << 24))


def project_index(pts: torch.Tensor, valid: torch.Tensor, K: torch.Tensor, cam_from_world: torch.Tensor,
                  height: int, width: int) -> torch.Tensor:
    """Linear pixel index (B, P) in a (height, width) view of (B, P, 3) world points (rounded), -1 where the
    point is invalid, behind the camera or projects outside the image."""
    R, t = cam_from_world[:, :3, :3].float(), cam_from_world[:, :3, 3].float()
    cam = pts.float() @ R.transpose(1, 2) + t[:, None, :]
    z = cam[..., 2]
    zs = torch.where(z > 1e-6, z, torch.ones_like(z))
    Kf = K.float()
    x = (Kf[:, None, 0, 0] * cam[..., 0] + Kf[:, None, 0, 1] * cam[..., 1]) / zs + Kf[:, None, 0, 2]
    y = Kf[:, None, 1, 1] * cam[..., 1] / zs + Kf[:, None, 1, 2]
    inside = valid & (z > 1e-6) & (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)
    xi = torch.round(x).clamp(0, width - 1).long()
    yi = torch.round(y).clamp(0, height - 1).long()
    return torch.where(inside, yi * width + xi, torch.full_like(xi, -1))


def _pick(candidates: torch.Tensor, scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, k) of ``k`` random candidates per row (lowest hash scores first; non-candidates come
    after every candidate, in index order, so the choice is deterministic)."""
    n = candidates.shape[1]
    idx = torch.arange(n, device=scores.device, dtype=torch.int64)
    s = torch.where(candidates, scores, (1 << 62) + idx[None, :])
    return torch.topk(s, min(k, n), dim=1, largest=False, sorted=True).indices


def sample_correspondences(pts1, valid1, K1, P1, pts2, valid2, K2, P2, key: torch.Tensor, n_corres: int,
                           nneg: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """GT correspondences of B pairs of (B, H, W, 3) world pointmaps with (B, H, W) validity, (B, 3, 3)
    intrinsics and (B, 4, 4) cam_from_world.

    Returns ``corres1`` and ``corres2`` (B, n_corres, 2) int64 ``(x, y)`` in each view, ``valid`` (B,
    n_corres) bool (positives; slot k of both views are the two ends) and the number of reciprocal pixels
    per pair (B,) int64.
    """
    B, H, W = valid1.shape
    P = H * W
    i12 = project_index(pts1.reshape(B, P, 3), valid1.reshape(B, P), K2, P2, H, W)
    i21 = project_index(pts2.reshape(B, P, 3), valid2.reshape(B, P), K1, P1, H, W)
    ar = torch.arange(P, device=i12.device)[None, :]
    back1 = i21.gather(1, i12.clamp(min=0))
    recip1 = (i12 >= 0) & (back1 == ar)
    back2 = i12.gather(1, i21.clamp(min=0))
    recip2 = (i21 >= 0) & (back2 == ar)
    npos = max(0, min(n_corres, int(n_corres * (1 - nneg))))
    sel = _pick(recip1, hash_scores(key, 0, P), npos)
    pos_ok = recip1.gather(1, sel)
    pos2 = i12.gather(1, sel).clamp(min=0)
    neg1 = _pick(~recip1, hash_scores(key, 1, P), n_corres)
    neg2 = _pick(~recip2, hash_scores(key, 2, P), n_corres)
    if neg1.shape[1] < n_corres:  # tiny images: repeat
        rep = math.ceil(n_corres / neg1.shape[1])
        neg1, neg2 = neg1.repeat(1, rep)[:, :n_corres], neg2.repeat(1, rep)[:, :n_corres]
    k = sel.shape[1]
    c1 = neg1.clone()
    c2 = neg2.clone()
    valid = torch.zeros(B, n_corres, dtype=torch.bool, device=i12.device)
    c1[:, :k] = torch.where(pos_ok, sel, neg1[:, :k])
    c2[:, :k] = torch.where(pos_ok, pos2, neg2[:, :k])
    valid[:, :k] = pos_ok
    xy1 = torch.stack([c1 % W, c1 // W], -1)
    xy2 = torch.stack([c2 % W, c2 // W], -1)
    return xy1, xy2, valid, recip1.sum(1)


def _gray(img: torch.Tensor) -> torch.Tensor:
    return (0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2])[:, None]


def color_jitter(img: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Per-image brightness, contrast, saturation (factors) and hue (shift, fraction of a turn), in that
    order, as torchvision's ColorJitter: (N, 3, H, W) in [0, 1], (N, 4) params -> (N, 3, H, W) in [0, 1]."""
    b, c, s = (params[:, k].view(-1, 1, 1, 1) for k in range(3))
    img = (img * b).clamp(0, 1)
    mean = _gray(img).mean(dim=(1, 2, 3), keepdim=True)
    img = (mean + c * (img - mean)).clamp(0, 1)
    g = _gray(img)
    img = (g + s * (img - g)).clamp(0, 1)
    # hue: rotate chroma about the grey axis in YIQ
    th = 2 * math.pi * params[:, 3]
    cs, sn = torch.cos(th), torch.sin(th)
    to_yiq = img.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, img)
    i2 = cs.view(-1, 1, 1) * yiq[:, 1] - sn.view(-1, 1, 1) * yiq[:, 2]
    q2 = sn.view(-1, 1, 1) * yiq[:, 1] + cs.view(-1, 1, 1) * yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], i2, q2], 1)
    return torch.einsum("ij,njhw->nihw", from_yiq, yiq).clamp(0, 1)


def to_network_input(img01: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> quantised to 8 bits -> the network's [-1, 1] convention ((u8/255) - 0.5) / 0.5."""
    return (torch.round(img01.clamp(0, 1) * 255.0) / 255.0 - 0.5) / 0.5
