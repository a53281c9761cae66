"""Official MASt3R/DUSt3R image preprocessing and the exact network <-> original pixel mapping.

Steps (``dust3r.utils.image.load_images``): open, apply the EXIF orientation, convert to RGB; then

* ``size == 224``: resize so that the *short* side becomes 224 and centre-crop a square;
* otherwise: resize so that the *long* side becomes ``size``; centre-crop each axis to the largest
  multiple of 16 (an odd leftover pixel goes to the right/bottom); unless ``square_ok``, a square
  image is cropped to 4:3 landscape (height = 3/4 width).

Resizing: new size per axis ``round(x * L / max(W, H))`` (Python rounding), LANCZOS when shrinking,
BICUBIC otherwise. The network input is ``(u8 / 255 - 0.5) / 0.5`` in float32, shape (1, 3, H, W).

Pixel convention (both directions): ``(x, y)`` with pixel *centres at integer coordinates* (OpenCV)
in the EXIF-oriented original image and in the network image. PIL's resize maps pixel edges
linearly (``[0, W0] -> [0, W1]``), so a network pixel centre ``x`` (column ``x`` of the crop) is
``x_orig = (x + left + 0.5) * W0 / W1 - 0.5``, and likewise for ``y`` with ``top`` and ``H0 / H1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch

__all__ = [
    "PreparedImage",
    "ImageLoadError",
    "load_image",
    "preprocess_pil",
    "prepare_images",
    "stack_images",
    "normalize_uint8",
]


class ImageLoadError(ValueError):
    """An input that is not a readable image, or one too small for the network."""


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """One preprocessed image and its geometry.

    Attributes:
        img: (1, 3, H, W) float32 normalised network input.
        true_shape: (H, W) network size in pixels (multiples of 16 except for degenerate 224 inputs).
        uint8: (H, W, 3) uint8 network-resolution RGB image.
        orig_size: (W0, H0) of the EXIF-oriented original image.
        resized_size: (W1, H1) after resizing, before cropping.
        crop_box: (left, top, right, bottom) of the crop in resized-image pixel edges.
        path: source file, if any.
    """

    img: torch.Tensor
    true_shape: tuple[int, int]
    uint8: np.ndarray
    orig_size: tuple[int, int]
    resized_size: tuple[int, int]
    crop_box: tuple[int, int, int, int]
    path: str | None = None

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Original pixels per resized pixel along x and y: (W0 / W1, H0 / H1)."""
        return (self.orig_size[0] / self.resized_size[0], self.orig_size[1] / self.resized_size[1])

    @property
    def orig_from_net(self) -> np.ndarray:
        """3x3 float64 affine matrix mapping homogeneous network pixels to original pixels."""
        sx, sy = self.scale_xy
        left, top = self.crop_box[:2]
        return np.array(
            [[sx, 0.0, (left + 0.5) * sx - 0.5], [0.0, sy, (top + 0.5) * sy - 0.5], [0.0, 0.0, 1.0]]
        )

    @property
    def net_from_orig(self) -> np.ndarray:
        """3x3 float64 inverse of ``orig_from_net`` (e.g. ``K_net = net_from_orig @ K_orig``)."""
        sx, sy = self.scale_xy
        left, top = self.crop_box[:2]
        return np.array(
            [[1 / sx, 0.0, 0.5 / sx - 0.5 - left], [0.0, 1 / sy, 0.5 / sy - 0.5 - top], [0.0, 0.0, 1.0]]
        )

    def net_to_orig(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) network pixel coordinates (x, y) -> (N, 2) float64 original pixel coordinates."""
        xy = _as_points(xy)
        sx, sy = self.scale_xy
        left, top = self.crop_box[:2]
        out = np.empty_like(xy)
        out[:, 0] = (xy[:, 0] + left + 0.5) * sx - 0.5
        out[:, 1] = (xy[:, 1] + top + 0.5) * sy - 0.5
        return out

    def orig_to_net(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) original pixel coordinates (x, y) -> (N, 2) float64 network pixel coordinates."""
        xy = _as_points(xy)
        sx, sy = self.scale_xy
        left, top = self.crop_box[:2]
        out = np.empty_like(xy)
        out[:, 0] = (xy[:, 0] + 0.5) / sx - 0.5 - left
        out[:, 1] = (xy[:, 1] + 0.5) / sy - 0.5 - top
        return out


def _as_points(xy: np.ndarray) -> np.ndarray:
    arr = np.asarray(xy, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"expected (N, 2) pixel coordinates, got shape {arr.shape}")
    return arr


def normalize_uint8(u8: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 ``(u8 / 255 - 0.5) / 0.5`` (the reference op order)."""
    t = torch.from_numpy(np.ascontiguousarray(u8)).permute(2, 0, 1).float().div(255)
    return ((t - 0.5) / 0.5)[None]


def _resize_long_edge(img: PIL.Image.Image, long_edge: int) -> PIL.Image.Image:
    s = max(img.size)
    resample = PIL.Image.Resampling.LANCZOS if s > long_edge else PIL.Image.Resampling.BICUBIC
    new_w, new_h = (int(round(x * long_edge / s)) for x in img.size)
    return img.resize((new_w, new_h), resample)


def preprocess_pil(
    image: PIL.Image.Image,
    size: int = 512,
    square_ok: bool = False,
    *,
    patch_size: int = 16,
    path: str | None = None,
) -> PreparedImage:
    """Preprocess an in-memory PIL image (EXIF orientation applied if present, converted to RGB)."""
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive int, got {size!r}")
    name = path if path is not None else "<image>"
    img = PIL.ImageOps.exif_transpose(image).convert("RGB")
    w0, h0 = img.size
    if min(w0, h0) <= 0:
        raise ImageLoadError(f"{name}: empty image ({w0}x{h0})")
    if size == 224:
        img = _resize_long_edge(img, round(size * max(w0 / h0, h0 / w0)))
    else:
        img = _resize_long_edge(img, size)
    w1, h1 = img.size
    cx, cy = w1 // 2, h1 // 2
    if size == 224:
        half = min(cx, cy)
        box_f: tuple[float, ...] = (cx - half, cy - half, cx + half, cy + half)
    else:
        halfw = ((2 * cx) // patch_size) * patch_size / 2
        halfh = ((2 * cy) // patch_size) * patch_size / 2
        if not square_ok and w1 == h1:
            halfh = 3 * halfw / 4
        box_f = (cx - halfw, cy - halfh, cx + halfw, cy + halfh)
    left, top, right, bottom = (int(round(v)) for v in box_f)  # what PIL's crop does with float boxes
    box = (left, top, right, bottom)
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ImageLoadError(f"{name}: image of {w0}x{h0} pixels is too small for size {size}")
    img = img.crop(box)
    u8 = np.asarray(img, dtype=np.uint8).copy()
    return PreparedImage(
        img=normalize_uint8(u8),
        true_shape=(int(u8.shape[0]), int(u8.shape[1])),
        uint8=u8,
        orig_size=(w0, h0),
        resized_size=(w1, h1),
        crop_box=box,
        path=path,
    )


def load_image(
    path: str | Path, size: int = 512, square_ok: bool = False, *, patch_size: int = 16
) -> PreparedImage:
    """Read and preprocess one image file (see the module docstring).

    Raises:
        ImageLoadError: missing file or not a decodable image (one line naming the file).
    """
    path = Path(path)
    try:
        with PIL.Image.open(path) as pil:
            pil.load()
            return preprocess_pil(pil, size, square_ok, patch_size=patch_size, path=str(path))
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: no such image file") from None
    except PIL.UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as exc:
        if isinstance(exc, ImageLoadError):
            raise
        raise ImageLoadError(f"{path}: unreadable image ({exc})") from None


def prepare_images(
    paths: Sequence[str | Path], size: int = 512, square_ok: bool = False
) -> list[PreparedImage]:
    """``load_image`` for each path, in order."""
    return [load_image(p, size, square_ok) for p in paths]


def stack_images(images: Sequence[PreparedImage]) -> torch.Tensor:
    """Batch same-size images into (B, 3, H, W); mixed sizes are refused (name the offenders)."""
    if not images:
        raise ValueError("stack_images: no images")
    shape = images[0].true_shape
    for i, im in enumerate(images):
        if im.true_shape != shape:
            raise ValueError(
                f"cannot batch images of different sizes: #0 ({images[0].path or '<image>'}) is "
                f"{shape[0]}x{shape[1]} but #{i} ({im.path or '<image>'}) is "
                f"{im.true_shape[0]}x{im.true_shape[1]} (HxW)"
            )
    return torch.cat([im.img for im in images], dim=0)
