"""Focal length from a pointmap (official ``estimate_focal_knowing_depth``; spec ``model.md`` §7)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mast3r.geometry.conventions import default_principal_point

__all__ = ["estimate_focal", "estimate_focals_torch", "FOCAL_MODES"]

FOCAL_MODES = ("weiszfeld", "median")


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def estimate_focal(pts3d: Any, pp: tuple[float, float] | None = None, mode: str = "weiszfeld", *,
                   valid: Any = None, min_focal: float = 0.0, max_focal: float = np.inf,
                   n_iter: int = 10) -> float:
    """Focal length (pixels) of the camera that sees pointmap ``pts3d`` at its own pixel grid.

    Pixel ``(x, y)`` (integer grid, centres at integers) minus the principal point ``pp`` gives
    ``u``; each pixel's ray direction ``r = (X/Z, Y/Z)`` (NaN/inf -> 0) should equal ``u / f``.

    * ``"weiszfeld"``: least-squares init ``f = mean(r.u) / mean(r.r)``, then ``n_iter`` IRLS
      (Weiszfeld) steps minimising ``sum |u - f r|`` with weights ``1 / max(|u - f r|, 1e-8)``.
    * ``"median"``: NaN-median of the per-pixel votes ``u_x Z / X`` and ``u_y Z / Y`` (inf votes
      are ignored).

    Args:
        pts3d: (H, W, 3) points in the camera's own frame (numpy or torch), any unit.
        pp: principal point ``(cx, cy)``; default ``(W / 2, H / 2)`` (official).
        valid: optional (H, W) bool mask of pixels to use.
        min_focal, max_focal: clip, in units of ``max(H, W) / (2 tan 30°)`` (a 60° field of view).
        n_iter: Weiszfeld iterations.
    Returns: focal in pixels (NaN when no valid pixel constrains it).
    """
    if mode == "weiszfeld" and hasattr(pts3d, "detach") and valid is None:
        focal = _weiszfeld_torch(pts3d.detach(), pp, n_iter)  # on the tensor's device (GPU: no copy)
        return _clip_focal(focal, pts3d.shape[:2], min_focal, max_focal)
    pts = _to_numpy(pts3d)
    if pts.ndim != 3 or pts.shape[2] != 3:
        raise ValueError(f"estimate_focal: pts3d must be (H, W, 3), got {pts.shape}")
    if mode not in FOCAL_MODES:
        raise ValueError(f"estimate_focal: mode must be one of {FOCAL_MODES}, got {mode!r}")
    h, w = pts.shape[:2]
    cx, cy = pp if pp is not None else default_principal_point((h, w))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    u = np.stack([xs - cx, ys - cy], axis=-1)
    mask = np.ones((h, w), bool) if valid is None else np.asarray(_to_numpy(valid), bool).reshape(h, w)
    u, pts = u[mask], pts[mask]
    with np.errstate(divide="ignore", invalid="ignore"):
        if mode == "weiszfeld":
            r = pts[:, :2] / pts[:, 2:]
            r[~np.isfinite(r)] = 0
            dot_ru, dot_rr = (r * u).sum(-1), (r * r).sum(-1)
            focal = dot_ru.mean() / dot_rr.mean() if len(r) else np.nan
            for _ in range(n_iter):
                wgt = 1 / np.maximum(np.linalg.norm(u - focal * r, axis=-1), 1e-8)
                focal = (wgt * dot_ru).mean() / (wgt * dot_rr).mean()
        else:
            votes = np.concatenate([u[:, 0] * pts[:, 2] / pts[:, 0], u[:, 1] * pts[:, 2] / pts[:, 1]])
            votes[~np.isfinite(votes)] = np.nan
            focal = np.nanmedian(votes) if np.isfinite(votes).any() else np.nan
    return _clip_focal(float(focal), (h, w), min_focal, max_focal)


def _clip_focal(focal: float, shape: tuple[int, int], min_focal: float, max_focal: float) -> float:
    """Clip to ``[min_focal, max_focal] * max(H, W) / (2 tan 30°)``; NaN stays NaN."""
    base = max(shape) / (2 * np.tan(np.deg2rad(30)))
    return float(np.clip(focal, min_focal * base, max_focal * base)) if np.isfinite(focal) else float("nan")


def _weiszfeld_torch(pts3d: Any, pp: tuple[float, float] | None, n_iter: int) -> float:
    """The ``"weiszfeld"`` branch of :func:`estimate_focal` in float64 torch on ``pts3d``'s device
    (same arithmetic as the numpy branch; one host sync for the result)."""
    if pts3d.ndim != 3 or pts3d.shape[2] != 3:
        raise ValueError(f"estimate_focal: pts3d must be (H, W, 3), got {tuple(pts3d.shape)}")
    return float(estimate_focals_torch(pts3d[None], pp, n_iter)[0])


def estimate_focals_torch(pts3d: Any, pp: tuple[float, float] | None = None, n_iter: int = 10) -> Any:
    """Weiszfeld focal (pixels, unclipped) of each pointmap of a batch, without host sync.

    Args:
        pts3d: (B, H, W, 3) torch tensor, each map in its own camera frame (any unit, any device).
        pp: principal point ``(cx, cy)``; default ``(W / 2, H / 2)``. n_iter: Weiszfeld iterations.
    Returns: (B,) float64 tensor on ``pts3d``'s device (NaN where no pixel constrains it); the
        arithmetic of :func:`estimate_focal`'s ``"weiszfeld"`` mode, per map.
    """
    import torch

    if pts3d.ndim != 4 or pts3d.shape[3] != 3:
        raise ValueError(f"estimate_focals_torch: pts3d must be (B, H, W, 3), got {tuple(pts3d.shape)}")
    b, h, w = pts3d.shape[:3]
    cx, cy = pp if pp is not None else default_principal_point((h, w))
    pts = pts3d.detach().reshape(b, -1, 3).to(torch.float64)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64, device=pts.device),
                            torch.arange(w, dtype=torch.float64, device=pts.device), indexing="ij")
    u = torch.stack([xs - cx, ys - cy], dim=-1).reshape(1, -1, 2)
    r = pts[..., :2] / pts[..., 2:]
    r = torch.where(torch.isfinite(r), r, torch.zeros_like(r))
    dot_ru, dot_rr = (r * u).sum(-1), (r * r).sum(-1)
    focal = dot_ru.mean(-1) / dot_rr.mean(-1)
    for _ in range(n_iter):
        wgt = 1 / torch.clamp(torch.linalg.vector_norm(u - focal[:, None, None] * r, dim=-1), min=1e-8)
        focal = (wgt * dot_ru).mean(-1) / (wgt * dot_rr).mean(-1)
    return focal
