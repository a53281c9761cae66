"""Image loading and resizing for the kornia-based matchers, with exact pixel bookkeeping.

Every matcher reads the image file itself (EXIF orientation applied, like ``View.width/height``),
optionally resizes it, runs its network on the resized image and maps the keypoints back with
:meth:`PreparedImage.to_original`. Pixel centres are at integer coordinates in both frames, so an
axis resized from ``W0`` to ``W1`` pixels maps as ``x0 = (x1 + 0.5) * W0 / W1 - 0.5`` (the relation
that ``torch.nn.functional.interpolate(align_corners=False)`` and PIL implement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from datasets.records import DatasetFormatError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from benchmarks.types import View

__all__ = [
    "PreparedImage",
    "load_image",
    "target_size",
    "prepare_image",
    "prepare_view",
    "resized_to_original",
    "view_from_path",
]


def load_image(path: str | Path, *, gray: bool) -> np.ndarray:
    """Read an image file with EXIF orientation applied.

    Returns:
        (H, W) float32 luminance in [0, 1] when ``gray``, else (H, W, 3) float32 RGB in [0, 1].

    Raises:
        FileNotFoundError / ValueError naming the file when it is missing or not an image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as raw:
            upright = ImageOps.exif_transpose(raw)
            arr = np.asarray(upright.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as e:  # a data error of the sample (benchmarks.run_errors)
        raise DatasetFormatError(path, None, f"cannot read image: {e}") from e
    return arr


def target_size(width: int, height: int, resize_max: int | None, multiple: int = 1) -> tuple[int, int]:
    """Size ``(W1, H1)`` a matcher works at.

    The long side is scaled down to ``resize_max`` (never up; ``None`` keeps the size), keeping the
    aspect ratio (rounded to nearest), then each side is rounded down to a multiple of ``multiple``
    (at least one multiple). Axes may then scale by slightly different factors; the mapping in
    :class:`PreparedImage` is exact per axis.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if resize_max is not None and resize_max < 1:
        raise ValueError(f"resize_max must be a positive number of pixels or None, got {resize_max}")
    scale = 1.0
    if resize_max is not None and max(width, height) > resize_max:
        scale = resize_max / max(width, height)
    w1 = max(1, int(round(width * scale)))
    h1 = max(1, int(round(height * scale)))
    if multiple > 1:
        w1 = max(multiple, (w1 // multiple) * multiple)
        h1 = max(multiple, (h1 // multiple) * multiple)
    return w1, h1


def resized_to_original(
    pts: np.ndarray, size_resized: tuple[int, int], size_original: tuple[int, int]
) -> np.ndarray:
    """Map (N, 2) ``(x, y)`` pixels of an image of size ``size_resized = (W1, H1)`` to the original
    ``(W0, H0)`` image: ``x0 = (x1 + 0.5) * W0 / W1 - 0.5`` (same for y). Returns float32 (N, 2)."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    scale = np.array(
        [size_original[0] / size_resized[0], size_original[1] / size_resized[1]], dtype=np.float64
    )
    return ((pts + 0.5) * scale - 0.5).astype(np.float32)


@dataclass(frozen=True)
class PreparedImage:
    """A matcher's network input and how to get back to the file's pixels.

    Attributes:
        tensor: (1, C, H1, W1) float32 in [0, 1] on the matcher's device (C = 1 gray, 3 RGB).
        size_original: ``(W0, H0)`` of the image as stored (after EXIF orientation).
        size: ``(W1, H1)`` of ``tensor``.
    """

    tensor: torch.Tensor
    size_original: tuple[int, int]
    size: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """``(W0 / W1, H0 / H1)``: original pixels per resized pixel along x and y."""
        return self.size_original[0] / self.size[0], self.size_original[1] / self.size[1]

    def to_original(self, pts: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, 2) ``(x, y)`` pixels of ``tensor`` -> (N, 2) float32 pixels of the stored image."""
        if not isinstance(pts, np.ndarray):
            pts = pts.detach().to("cpu").double().numpy()
        return resized_to_original(pts, self.size, self.size_original)


def prepare_image(
    image: np.ndarray, *, resize_max: int | None, multiple: int = 1, device: str | torch.device = "cpu"
) -> PreparedImage:
    """Resize a float image ((H, W) or (H, W, 3), [0, 1]) as :func:`target_size` says.

    Downscaling uses antialiased bilinear interpolation (``align_corners=False``), which keeps pixel
    centres where :func:`resized_to_original` expects them; same-size input is not resampled.
    """
    import torch
    import torch.nn.functional as F

    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    h0, w0 = image.shape[:2]
    w1, h1 = target_size(w0, h0, resize_max, multiple)
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    t = t.to(device)
    if (w1, h1) != (w0, h0):
        antialias = w1 < w0 or h1 < h0
        t = F.interpolate(t, size=(h1, w1), mode="bilinear", align_corners=False, antialias=antialias)
        t = t.clamp_(0.0, 1.0)
    return PreparedImage(tensor=t, size_original=(w0, h0), size=(w1, h1))


def prepare_view(
    view: View, *, gray: bool, resize_max: int | None, multiple: int = 1, device: str | torch.device = "cpu"
) -> PreparedImage:
    """Load ``view.image_path`` and prepare it; the stored size must match ``view.width/height``."""
    image = load_image(view.image_path, gray=gray)
    h, w = image.shape[:2]
    if (w, h) != (view.width, view.height):
        raise ValueError(
            f"{view.image_path}: image is {w}x{h} pixels but view {view.name!r} says "
            f"{view.width}x{view.height}"
        )
    return prepare_image(image, resize_max=resize_max, multiple=multiple, device=device)


def check_finite_positive(name: str, value: float | None, allow_none: bool = False) -> None:
    """Config validation helper: ``value`` must be a finite positive number (or None if allowed)."""
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")


def view_from_path(path: str | Path, name: str | None = None) -> View:
    """A :class:`View` of an image file (size as displayed, i.e. after EXIF orientation), without
    intrinsics or pose: what ``mast3r-bench match IMG0 IMG1`` needs to call a matcher."""
    from PIL import Image, UnidentifiedImageError

    from benchmarks.types import View

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from e
    if orientation in (5, 6, 7, 8):  # EXIF transposes: width and height swap
        w, h = h, w
    return View(name if name is not None else path.name, path.resolve(), w, h)
