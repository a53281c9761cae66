"""The engine's coarse-to-fine step (paper §3.4): from coarse matches in ORIGINAL pixels, window
crops of the (optionally downscaled) originals go through the network and are matched again.

Window selection and bookkeeping are :mod:`mast3r.coarse_to_fine`; this module opens the images,
runs the crops through a :class:`~mast3r.engine.network.PairNetwork` (uncached: crops depend on the
coarse matches) and a :class:`~mast3r.matching.MatchingBackend`, and maps everything back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from mast3r.coarse_to_fine import CoarseToFineConfig, CoarseToFineResult
from mast3r.matching import FRMConfig, MatchingBackend

__all__ = ["Refinement", "open_rgb", "refine"]


@dataclass(frozen=True)
class Refinement:
    """Coarse-to-fine matches.

    Attributes:
        pts0, pts1: (N, 2) float64 ``(x, y)`` ORIGINAL pixels.
        conf: (N,) float32 confidences.
        crop_xy0, crop_xy1: (N, 2) int32 network pixels inside the window crop of each match
            (``result.pair_index``).
        result: the window bookkeeping (working-image windows, pair index, working-image pixels).
        scale0, scale1: ``(sx, sy)`` original pixels per working-image pixel.
    """

    pts0: np.ndarray
    pts1: np.ndarray
    conf: np.ndarray
    crop_xy0: np.ndarray
    crop_xy1: np.ndarray
    result: CoarseToFineResult
    scale0: tuple[float, float]
    scale1: tuple[float, float]


def open_rgb(path: str | os.PathLike, max_size: int = 0) -> tuple[np.ndarray, tuple[float, float]]:
    """EXIF-oriented RGB (H, W, 3) uint8 of an image, downscaled (LANCZOS) to ``max_size`` long side
    (0: kept), and its ``(sx, sy)`` scale (original pixels per working pixel). ImageLoadError naming
    the file when it cannot be read."""
    import PIL.Image
    import PIL.ImageOps

    from mast3r.preprocess import ImageLoadError

    try:
        with PIL.Image.open(path) as pil:
            img = PIL.ImageOps.exif_transpose(pil).convert("RGB")
    except (OSError, PIL.UnidentifiedImageError) as exc:
        raise ImageLoadError(f"{path}: unreadable image ({exc})") from None
    w, h = img.size
    if max_size and max(w, h) > max_size:
        s = max_size / max(w, h)
        img = img.resize((round(w * s), round(h * s)), PIL.Image.Resampling.LANCZOS)
    return np.asarray(img), (w / img.size[0], h / img.size[1])


def refine(network: Any, backend: MatchingBackend, path0: str | os.PathLike, path1: str | os.PathLike,
           pts0: np.ndarray, pts1: np.ndarray, frm: FRMConfig, config: CoarseToFineConfig, *,
           max_size: int = 0, fine_size: int = 0, isotropic: bool = False) -> Refinement:
    """Coarse-to-fine from coarse matches ``pts0``/``pts1`` (N, 2) in ORIGINAL pixels.

    Args:
        network: a :class:`~mast3r.engine.network.PairNetwork` (its :meth:`run`: uncached forwards).
        backend: matching of every crop pair with ``frm``.
        config: window grid / selection (:class:`~mast3r.coarse_to_fine.CoarseToFineConfig`).
        max_size: downscale the originals to this long side first (0: original resolution).
        fine_size: crops go through the network at this long side (0: at their own size, no
            resampling; windows are multiples of 16).
        isotropic: map original <-> working pixels with the x scale on both axes (what
            ``mast3r-bench match`` always did) instead of per axis.
    """
    import PIL.Image

    from mast3r.coarse_to_fine import coarse_to_fine_match
    from mast3r.preprocess import preprocess_pil, stack_images

    full0, s0 = open_rgb(path0, max_size)
    full1, s1 = open_rgb(path1, max_size)
    if isotropic:
        s0, s1 = (s0[0], s0[0]), (s1[0], s1[0])
    crop_xy: list[tuple[np.ndarray, np.ndarray]] = []

    def prep(crop: np.ndarray) -> Any:
        size = fine_size or max(crop.shape[:2])
        return preprocess_pil(PIL.Image.fromarray(np.ascontiguousarray(crop)), size, True)

    def match_crops(crops0: list[np.ndarray], crops1: list[np.ndarray]) -> list[tuple[Any, Any, Any]]:
        ims0, ims1 = [prep(x) for x in crops0], [prep(x) for x in crops1]
        out = []
        for a, b, f in zip(ims0, ims1, network.run(stack_images(ims0), stack_images(ims1), need_own=False)):
            if f.view0.get("desc") is None or f.view1.get("desc") is None:
                raise ValueError("the checkpoint has no descriptor head (a DUSt3R model cannot match)")
            v0, v1 = f.view0, f.view1
            m = backend.match(v0["desc"], v1["desc"], v0["desc_conf"], v1["desc_conf"], frm)
            crop_xy.append((m.xy0, m.xy1))
            out.append((a.net_to_orig(m.xy0), b.net_to_orig(m.xy1), m.conf))
        return out

    def to_work(pts: np.ndarray, s: tuple[float, float]) -> np.ndarray:
        return (pts + 0.5) / np.asarray(s) - 0.5

    def to_orig(pts: np.ndarray, s: tuple[float, float]) -> np.ndarray:
        return (pts + 0.5) * np.asarray(s) - 0.5

    res = coarse_to_fine_match(full0, full1, to_work(pts0, s0), to_work(pts1, s1), match_crops, config)
    all0 = np.concatenate([a for a, _ in crop_xy]) if crop_xy else np.zeros((0, 2), np.int32)
    all1 = np.concatenate([b for _, b in crop_xy]) if crop_xy else np.zeros((0, 2), np.int32)
    return Refinement(to_orig(res.xy0, s0), to_orig(res.xy1, s1), res.conf.astype(np.float32),
                      all0[res.source_index].astype(np.int32), all1[res.source_index].astype(np.int32),
                      res, s0, s1)
