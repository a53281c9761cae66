"""Descriptor matching: Fast Reciprocal Matching, dense mutual NN, NN backends and filters.

Pure functions: descriptor maps in (numpy or torch, CPU or GPU), int32 ``(x, y)`` pixel matches
out (numpy). Ties between equally near neighbours go to the lowest index in every backend.
"""

from mast3r.matching.config import FRMConfig
from mast3r.matching.dense import dense_nearest_neighbours, dense_reciprocal_nn
from mast3r.matching.filters import border_filter, match_confidence
from mast3r.matching.frm import FRMStats, fast_reciprocal_nn, grid_seeds, linear_to_xy, merge_correspondences
from mast3r.matching.nn import MatchingInputError, make_index, nearest_neighbours
from mast3r.matching.pipeline import MatchingBackend, PixelMatches, match_descriptors

__all__ = [
    "FRMConfig",
    "FRMStats",
    "MatchingBackend",
    "MatchingInputError",
    "PixelMatches",
    "border_filter",
    "dense_nearest_neighbours",
    "dense_reciprocal_nn",
    "fast_reciprocal_nn",
    "grid_seeds",
    "linear_to_xy",
    "make_index",
    "match_confidence",
    "match_descriptors",
    "merge_correspondences",
    "nearest_neighbours",
]
