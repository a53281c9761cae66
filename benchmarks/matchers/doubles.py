"""Test doubles registered like real matchers: ``oracle`` (the ceiling) and ``random`` (the floor).

Ground-truth hook (the contract the oracle relies on)
-----------------------------------------------------
A matcher class with ``needs_ground_truth = True`` is called as ``match(view0, view1, gt=corrs)``:
for every pair ``(i, j)`` of ``adapter.pairs(sample)`` the runner first asks the adapter for
``adapter.gt_correspondences(sample, i, j) -> Correspondences | None`` (pts0 in view i, pts1 in
view j, ORIGINAL pixels). Adapters that can derive exact correspondences (synthetic scenes, GT
depth + poses, known homographies) implement that method; ``None`` means "not available for this
pair" and the oracle then fails that sample with a ``matcher_error`` record. Running a
ground-truth matcher on an adapter without the method is refused before anything runs.

Optional class attributes honoured by the runner (real matchers may set them too):
``cacheable = False`` (do not cache correspondences: these doubles are instant),
``uses_torch = False`` (``--device auto`` resolves to ``cpu`` without importing torch),
``available() -> (bool, reason)`` (shown by ``mast3r-bench ls``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmarks.hashing import derive_seed
from benchmarks.types import Correspondences, View

__all__ = ["OracleMatcher", "RandomMatcher", "GroundTruthUnavailable"]


class GroundTruthUnavailable(RuntimeError):
    """The adapter has no ground-truth correspondences for this pair."""


def _pair_rng(seed: int, view0: View, view1: View) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, f"{view0.name}\n{view1.name}"))


@dataclass(frozen=True)
class OracleConfig:
    """Attributes:
    noise_px: std-dev of Gaussian noise added to ``pts1`` (pixels), seeded by the pair names.
    max_matches: keep at most this many GT matches (evenly spaced); 0 keeps all.
    seed: base seed of the noise.
    """

    noise_px: float = 0.0
    max_matches: int = 0
    seed: int = 0


class OracleMatcher:
    """Returns the adapter's ground-truth correspondences (optionally noisy / subsampled).

    With ``noise_px=0`` every benchmark metric must come out perfect: a failing oracle points at the
    adapter's solver or metric, not at a matcher.
    """

    name: ClassVar[str] = "oracle"
    Config: ClassVar[type] = OracleConfig
    needs_ground_truth: ClassVar[bool] = True
    cacheable: ClassVar[bool] = False
    uses_torch: ClassVar[bool] = False

    def __init__(self, config: OracleConfig | None = None, device: str = "cpu") -> None:
        self.config = config or OracleConfig()
        self.device = device

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, "test double: needs an adapter with gt_correspondences()"

    def weights_checksum(self) -> str | None:
        return None

    def match(self, view0: View, view1: View, gt: Correspondences | None = None) -> Correspondences:
        if gt is None:
            raise GroundTruthUnavailable(f"no ground-truth correspondences for {view0.name} -> {view1.name}")
        corrs = Correspondences(gt.pts0, gt.pts1, np.ones(len(gt), np.float32), gt.pts3d0, gt.pts3d1,
                                meta=dict(gt.meta))
        cfg = self.config
        if cfg.max_matches and len(corrs) > cfg.max_matches:
            corrs = corrs.subset(np.linspace(0, len(corrs) - 1, cfg.max_matches).round().astype(int))
        if cfg.noise_px > 0:
            noise = _pair_rng(cfg.seed, view0, view1).normal(0.0, cfg.noise_px, corrs.pts1.shape)
            corrs.pts1 = (corrs.pts1 + noise).astype(np.float32)
        return corrs


@dataclass(frozen=True)
class RandomConfig:
    """Attributes:
    num_matches: points drawn uniformly in each image (pixel centres at integers).
    seed: base seed; each pair's points are seeded by the seed and the two view names.
    """

    num_matches: int = 256
    seed: int = 0


class RandomMatcher:
    """Uniformly random "matches": the floor every real matcher must beat."""

    name: ClassVar[str] = "random"
    Config: ClassVar[type] = RandomConfig
    cacheable: ClassVar[bool] = False
    uses_torch: ClassVar[bool] = False

    def __init__(self, config: RandomConfig | None = None, device: str = "cpu") -> None:
        self.config = config or RandomConfig()
        self.device = device

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, "test double"

    def weights_checksum(self) -> str | None:
        return None

    def match(self, view0: View, view1: View) -> Correspondences:
        rng = _pair_rng(self.config.seed, view0, view1)
        n = self.config.num_matches
        size0 = np.array([view0.width, view0.height], np.float64)
        size1 = np.array([view1.width, view1.height], np.float64)
        # the image covers [-0.5, size - 0.5) with pixel centres at integers
        pts0 = rng.uniform(0.0, 1.0, (n, 2)) * size0 - 0.5
        pts1 = rng.uniform(0.0, 1.0, (n, 2)) * size1 - 0.5
        return Correspondences(pts0, pts1, rng.uniform(0.0, 1.0, n))
