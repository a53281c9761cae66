"""Dense (exhaustive) mutual nearest-neighbour matching over all pixels of two descriptor maps.

This is what FRM approximates and the paper's "full matching" baseline. The torch backend works
blockwise (``block_size**2`` scores at a time), so memory stays bounded for any image size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mast3r.matching.backend import resolve_backend
from mast3r.matching.frm import linear_to_xy
from mast3r.matching.nn import as_descriptor_map, check_pair, mutual_nearest_neighbours

__all__ = ["dense_nearest_neighbours", "dense_reciprocal_nn"]


def _nn_both(desc0: Any, desc1: Any, backend: str, dist: str, block_size: int | None
             ) -> tuple[Any, Any, int, int]:
    """Validated maps -> (nn01, nn10) int64 tensors on the search device, and both map widths."""
    d0 = as_descriptor_map(desc0, "desc0")
    d1 = as_descriptor_map(desc1, "desc1")
    f0, f1 = check_pair(d0, d1)
    if resolve_backend(backend) == "faiss":
        f0, f1 = f0.cpu(), f1.cpu()
    nn01, nn10 = mutual_nearest_neighbours(f0, f1, backend=backend, dist=dist, block_size=block_size)
    return nn01, nn10, int(d0.shape[1]), int(d1.shape[1])


def dense_nearest_neighbours(desc0: Any, desc1: Any, *, backend: str = "auto", dist: str = "dot",
                             block_size: int | None = 2**12) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbour of every pixel of each map in the other map.

    Args:
        desc0: (H0, W0, D), desc1: (H1, W1, D) descriptor maps (numpy or torch, any device).
        backend, dist, block_size: see :mod:`mast3r.matching.nn` (ties: lowest index wins).
    Returns: ``(nn01 (H0*W0,), nn10 (H1*W1,))`` int64 numpy linear indices ``x + W * y`` into the
        other map (-1 where the other map is empty).
    """
    nn01, nn10, _, _ = _nn_both(desc0, desc1, backend, dist, block_size)
    return nn01.cpu().numpy(), nn10.cpu().numpy()


def dense_reciprocal_nn(desc0: Any, desc1: Any, *, backend: str = "auto", dist: str = "dot",
                        block_size: int | None = 2**12) -> tuple[np.ndarray, np.ndarray]:
    """All mutual nearest-neighbour pixel pairs (``nn10[nn01[i]] == i``).

    Args: as :func:`dense_nearest_neighbours`.
    Returns: ``(xy0, xy1)`` (N, 2) int32 ``(x, y)`` network pixels, sorted by view-0 linear index
        (each view-0 pixel appears at most once). The mutual check runs where the search ran (on
        a GPU only the matches are copied to the host).
    """
    nn01, nn10, w0, w1 = _nn_both(desc0, desc1, backend, dist, block_size)
    if len(nn01) == 0 or len(nn10) == 0:
        z = np.zeros((0, 2), np.int32)
        return z, z.copy()
    idx0 = torch.arange(len(nn01), dtype=torch.int64, device=nn01.device)
    mutual = nn10[nn01] == idx0
    pairs = torch.stack((idx0[mutual], nn01[mutual])).cpu().numpy()
    return linear_to_xy(pairs[0], w0), linear_to_xy(pairs[1], w1)
