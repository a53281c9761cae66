"""Textures for the synthetic scenes: bundled photographs plus seeded procedural patterns.

The photographs are scikit-image's bundled sample images (BSD-licensed package data; the images
themselves are public-domain or CC0 per scikit-image's ``skimage.data`` docs), read from the
installed package with Pillow, so nothing is downloaded. Procedural textures are multi-octave
(1/f) noise and layered random rectangles, both tileable, generated from a ``numpy`` Generator.

Every texture is square, RGB float32 in [0, 1], stored as a mip pyramid
(``TEXTURE_SIZE``, /2, ..., ``TEXTURE_SIZE / 2**(LEVELS-1)``) for trilinear sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["TEXTURE_SIZE", "LEVELS", "PHOTOS", "TextureBank", "make_texture_bank"]

TEXTURE_SIZE = 256
LEVELS = 6
PHOTOS: tuple[str, ...] = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "ihc.png",
    "brick.png", "grass.png", "gravel.png", "camera.png", "coins.png", "moon.png",
)
"""File names inside ``skimage.data`` used as textures (grey ones are tinted per seed)."""


@dataclass(frozen=True)
class TextureBank:
    """A set of tileable textures with mip pyramids.

    Attributes:
        flat: (P, 3) float32 texels of all levels, level-major: level ``l`` is a (T, S_l, S_l)
            block starting at row ``offsets[l]``, ``S_l = TEXTURE_SIZE >> l``; RGB in [0, 1].
        offsets: (LEVELS,) int64 first row of each level.
        names: T descriptive names (``"photo:astronaut.png"``, ``"noise:3"``, ...).
    """

    flat: np.ndarray
    offsets: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def level(self, level: int) -> np.ndarray:
        """(T, S_l, S_l, 3) view of one pyramid level."""
        s = TEXTURE_SIZE >> level
        start = self.offsets[level]
        return self.flat[start:start + len(self) * s * s].reshape(len(self), s, s, 3)

    def sample(self, tex_id: np.ndarray, u: np.ndarray, v: np.ndarray, lod: np.ndarray) -> np.ndarray:
        """Trilinear, wrapping lookup.

        Args:
            tex_id: (N,) int texture indices.
            u, v: (N,) float64 texture coordinates; one unit is one repeat of the texture, u along
                texture columns, v along rows.
            lod: (N,) float level of detail (0 = full resolution; clamped to the pyramid).
        Returns:
            (N, 3) float32 RGB.
        """
        lod = np.clip(lod, 0.0, LEVELS - 1)
        l0 = np.floor(lod).astype(np.int64)
        l1 = np.minimum(l0 + 1, LEVELS - 1)
        frac = (lod - l0).astype(np.float32)[:, None]
        fu = u - np.floor(u)
        fv = v - np.floor(v)
        tid = np.asarray(tex_id, np.int64)
        c0 = self._bilinear(l0, tid, fu, fv)
        c1 = self._bilinear(l1, tid, fu, fv)
        return c0 + frac * (c1 - c0)

    def _bilinear(self, level: np.ndarray, tid: np.ndarray, fu: np.ndarray, fv: np.ndarray) -> np.ndarray:
        """Bilinear wrap-around lookup at per-sample levels; ``fu, fv`` in [0, 1)."""
        s = TEXTURE_SIZE >> level
        mask = s - 1  # sizes are powers of two: wrap with a bit mask
        x = fu.astype(np.float32) * s - np.float32(0.5)
        y = fv.astype(np.float32) * s - np.float32(0.5)
        x0f = np.floor(x)
        y0f = np.floor(y)
        ax = (x - x0f)[:, None]
        ay = (y - y0f)[:, None]
        x0 = x0f.astype(np.int64) & mask
        y0 = y0f.astype(np.int64) & mask
        x1 = (x0 + 1) & mask
        y1 = (y0 + 1) & mask
        base = self.offsets[level] + tid * s * s
        r0 = base + y0 * s
        r1 = base + y1 * s
        f = self.flat
        top = np.take(f, r0 + x0, axis=0) * (1 - ax) + np.take(f, r0 + x1, axis=0) * ax
        bot = np.take(f, r1 + x0, axis=0) * (1 - ax) + np.take(f, r1 + x1, axis=0) * ax
        return top * (1 - ay) + bot * ay


def _pyramid(tex: np.ndarray) -> list[np.ndarray]:
    out = [tex]
    for _ in range(LEVELS - 1):
        t = out[-1]
        out.append(0.25 * (t[0::2, 0::2] + t[1::2, 0::2] + t[0::2, 1::2] + t[1::2, 1::2]))
    return out


@cache
def _photo(name: str) -> np.ndarray:
    """A bundled photograph, centre-cropped to a square and resized: (S, S) or (S, S, 3) float32."""
    import skimage.data  # only for the location of the bundled files

    with Image.open(Path(skimage.data.data_dir) / name) as im:
        im.load()
        img = im.convert("RGB") if im.mode not in ("L", "I;16", "I") else im.convert("L")
    w, h = img.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    img = img.crop(box).resize((TEXTURE_SIZE, TEXTURE_SIZE), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr.setflags(write=False)
    return arr


def _normalise(t: np.ndarray, lo: float = 0.08, hi: float = 0.92) -> np.ndarray:
    a, b = np.percentile(t, 1), np.percentile(t, 99)
    return np.clip((t - a) / max(b - a, 1e-6), 0, 1) * (hi - lo) + lo


def _fractal_noise(rng: np.random.Generator, beta: float) -> np.ndarray:
    """(S, S) tileable 1/f^beta noise in [0, 1]."""
    s = TEXTURE_SIZE
    white = rng.standard_normal((s, s))
    k = np.fft.fftfreq(s) * s
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    kk[0, 0] = 1.0
    spec = np.fft.fft2(white) / kk**beta
    spec[0, 0] = 0.0
    return _normalise(np.real(np.fft.ifft2(spec)), 0.0, 1.0)


def _palette(rng: np.random.Generator, scalar: np.ndarray, n: int = 3) -> np.ndarray:
    """Map a (S, S) scalar field in [0, 1] through a random piecewise-linear colour ramp."""
    stops = np.sort(rng.uniform(0, 1, n - 2))
    xs = np.concatenate([[0.0], stops, [1.0]])
    cols = rng.uniform(0.05, 0.95, (n, 3))
    return np.stack([np.interp(scalar, xs, cols[:, c]) for c in range(3)], axis=-1)


def _rectangles(rng: np.random.Generator) -> np.ndarray:
    """(S, S, 3) tileable layered random rectangles over noise (corner-rich)."""
    s = TEXTURE_SIZE
    tex = _palette(rng, _fractal_noise(rng, 1.2), 3) * 0.6 + 0.2
    yy, xx = np.mgrid[0:s, 0:s]
    for _ in range(int(rng.integers(25, 45))):
        w, h = rng.integers(s // 24, s // 4, 2)
        x0, y0 = rng.integers(0, s, 2)
        inside = (((xx - x0) % s) < w) & (((yy - y0) % s) < h)
        tex[inside] = rng.uniform(0.05, 0.95, 3)
    grain = _fractal_noise(rng, 0.6)[..., None] - 0.5
    return np.clip(tex + 0.12 * grain, 0, 1)


def make_texture_bank(rng: np.random.Generator, n_noise: int = 6, n_rect: int = 6) -> TextureBank:
    """All photographs (grey ones tinted with colours drawn from ``rng``) plus procedural textures."""
    texs: list[np.ndarray] = []
    names: list[str] = []
    for name in PHOTOS:
        img = _photo(name)
        if img.ndim == 2:
            a, b = rng.uniform(0.1, 0.5, 3), rng.uniform(0.5, 0.95, 3)
            img = a + (b - a) * _normalise(img, 0.0, 1.0)[..., None]
        texs.append(np.asarray(img, np.float64))
        names.append(f"photo:{name}")
    for i in range(n_noise):
        texs.append(_palette(rng, _fractal_noise(rng, float(rng.uniform(0.9, 1.6))), 4))
        names.append(f"noise:{i}")
    for i in range(n_rect):
        texs.append(_rectangles(rng))
        names.append(f"rect:{i}")
    pyramids = [_pyramid(t.astype(np.float32)) for t in texs]
    blocks = [np.stack([p[level] for p in pyramids]).reshape(-1, 3) for level in range(LEVELS)]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blocks])[:-1]]).astype(np.int64)
    flat = np.ascontiguousarray(np.concatenate(blocks), np.float32)
    flat.setflags(write=False)
    return TextureBank(flat=flat, offsets=offsets, names=tuple(names))
