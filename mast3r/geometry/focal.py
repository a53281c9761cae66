"""Focal length from a pointmap (official ``estimate_focal_knowing_depth``; spec ``model.md`` §7)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mast3r.geometry.conventions import default_principal_point

__all__ = ["estimate_focal", "FOCAL_MODES"]

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
    base = max(h, w) / (2 * np.tan(np.deg2rad(30)))
    return float(np.clip(focal, min_focal * base, max_focal * base)) if np.isfinite(focal) else float("nan")
