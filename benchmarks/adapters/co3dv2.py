"""CO3Dv2 multi-view relative pose (PoseDiffusion protocol, as DUSt3R/MASt3R report it).

Data: the CO3Dv2 release layout (``datasets.co3dv2``) under ``<data root>/co3dv2`` (or ``--data``
pointing at that folder). Sequences, as PoseDiffusion's ``Co3dDataset`` (``datasets/co3d_v2.py``)
selects them, in this order:

* categories: PoseDiffusion's 41 "seen" categories present under the root (``categories`` to
  choose), sorted;
* per category, the relpose++ annotations of ``split`` (``test``): read from PoseDiffusion's
  preprocessed ``<annotations>/<category>_<split>.jgz`` when ``annotations`` is set, else rebuilt from
  the raw release like relpose++'s ``preprocess_co3d.py`` (``set_lists_fewview_dev.json[split]``,
  sequences with ``viewpoint_quality_score > min_quality``, frames with an empty mask dropped:
  :func:`datasets.co3dv2_relpose.build_relpose_annotations`); sequences in file order;
* sequences with fewer than ``min_frames`` annotated frames are dropped (PoseDiffusion
  ``min_num_images = 50``), then any sequence with a frame whose PyTorch3D ``T[0] + T[1] + T[2] >
  max_translation_sum`` (1e5; the sum of the components, as the official check) is dropped.

``min_frames = None`` (default) means 50 on a real release; on the synthetic suite (whose
sequences are short; detected by its ``MANIFEST.json``) it means ``num_frames``, logged, and
recorded in every sample's ``meta["min_frames"]``. Then 10 frames per sequence, 45 pairs, per-pair
solvers, metrics, failure accounting and aggregation: :mod:`benchmarks.adapters._posediffusion`
(default aggregation: per category, then the mean over categories, as PoseDiffusion).

Intrinsics: MASt3R's row uses no GT focal; the default ``estimator.intrinsics = "auto"`` takes the
matcher's focal estimates (``Correspondences.meta["focal0_px"/"focal1_px"]``) and falls back to the
GT K, recording ``"intrinsics": "gt"`` per pair (2D matchers have no other source).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from benchmarks.adapters._pose_solvers import PoseEstimatorConfig
from benchmarks.adapters._posediffusion import FrameSampler, PoseDiffusionProtocol, pair_viewpoints
from benchmarks.adapters._roots import is_synthetic_root, listing_checksum, resolve_root
from benchmarks.adapters._synthetic_gt import SyntheticTruth
from benchmarks.types import Correspondences, Sample
from datasets.co3dv2 import SEEN_CATEGORIES, Co3dDataset
from datasets.co3dv2_relpose import RelposeFrame, build_relpose_annotations, read_relpose_annotations
from datasets.records import DatasetFormatError

__all__ = ["Co3dv2Adapter", "Co3dv2Config", "Co3dv2EstimatorConfig", "POSEDIFFUSION_MIN_FRAMES"]
log = logging.getLogger(__name__)

POSEDIFFUSION_MIN_FRAMES = 50


@dataclass(frozen=True)
class Co3dv2Config:
    """Protocol options (``adapter.<field>``).

    Attributes:
        categories: categories to evaluate; empty = PoseDiffusion's 41 seen categories present.
        split: relpose++ split of ``set_lists_fewview_dev.json`` (``test``).
        annotations: folder of PoseDiffusion's preprocessed ``<category>_<split>.jgz``; None = rebuild
            them from the raw release.
        min_quality: ``viewpoint_quality_score`` threshold of the rebuild (strict ``>``).
        min_frames: minimum annotated frames per sequence; None = 50, or ``num_frames`` on the
            synthetic suite (module docstring).
        max_translation_sum: drop sequences with a frame whose ``T[0] + T[1] + T[2]`` exceeds this.
        num_frames: frames drawn per sequence. seed: numpy legacy seed of the draw.
        sampling: ``"stream"`` (PoseDiffusion) or ``"per_sequence"`` (see ``_posediffusion``).
        aggregation: ``"per_category"`` (category mean, PoseDiffusion) or ``"pooled"``.
    """

    categories: tuple[str, ...] = ()
    split: str = "test"
    annotations: str | None = None
    min_quality: float = 0.5
    min_frames: int | None = None
    max_translation_sum: float = 1e5
    num_frames: int = 10
    seed: int = 0
    sampling: Literal["stream", "per_sequence"] = "stream"
    aggregation: Literal["per_category", "pooled"] = "per_category"


@dataclass(frozen=True)
class Co3dv2EstimatorConfig(PoseEstimatorConfig):
    """Per-pair solver options (:class:`benchmarks.adapters._pose_solvers.PoseEstimatorConfig`)."""


def _looks_like_co3d(path: Path) -> bool:
    return path.is_dir() and any((p / "frame_annotations.jgz").is_file()
                                 for p in path.iterdir() if p.is_dir())


class Co3dv2Adapter(PoseDiffusionProtocol):
    """CO3Dv2 RRA@15 / RTA@15 / mAA(30) over 10-frame samples of the test sequences."""

    name: ClassVar[str] = "co3dv2"
    title: ClassVar[str] = "CO3Dv2 multi-view relative pose (10 frames, 45 pairs; RRA@15, RTA@15, mAA(30))"
    version: ClassVar[str] = "1"
    data_dir: ClassVar[str] = "co3dv2"
    Config: ClassVar[type] = Co3dv2Config
    EstimatorConfig: ClassVar[type] = Co3dv2EstimatorConfig

    def __init__(self, root: Path, config: Co3dv2Config | None = None,
                 estimator: Co3dv2EstimatorConfig | None = None) -> None:
        self.root = resolve_root(Path(root), _looks_like_co3d, self.data_dir)
        self.config = config or Co3dv2Config()
        self.estimator = estimator or Co3dv2EstimatorConfig()
        self._truth = SyntheticTruth(self.root)

    def dataset_checksum(self) -> str | None:
        """Fingerprint of the annotation files (the release has ~1.5M image/depth/mask files)."""
        return listing_checksum(self.root, ("*/frame_annotations.jgz", "*/sequence_annotations.jgz",
                                            "*/set_lists/*.json"))

    def min_frames(self) -> int:
        """The effective ``min_frames`` (see :class:`Co3dv2Config`)."""
        if self.config.min_frames is not None:
            return int(self.config.min_frames)
        if is_synthetic_root(self.root):
            log.info("co3dv2: synthetic suite at %s: min_frames = num_frames = %d (real data: %d)",
                     self.root, self.config.num_frames, POSEDIFFUSION_MIN_FRAMES)
            return int(self.config.num_frames)
        return POSEDIFFUSION_MIN_FRAMES

    def categories(self) -> list[str]:
        """Sorted categories to evaluate (present under the root, or in ``annotations``)."""
        cfg = self.config
        if cfg.categories:
            return sorted(cfg.categories)
        if cfg.annotations is not None:
            ann = Path(cfg.annotations)
            return sorted(c for c in SEEN_CATEGORIES if (ann / f"{c}_{cfg.split}.jgz").is_file())
        ds = Co3dDataset(self.root)
        present = set(ds.categories())
        return sorted(c for c in SEEN_CATEGORIES if c in present)

    def _annotations(self, ds: Co3dDataset, category: str) -> dict[str, list[RelposeFrame]]:
        cfg = self.config
        if cfg.annotations is not None:
            return read_relpose_annotations(Path(cfg.annotations) / f"{category}_{cfg.split}.jgz")
        return build_relpose_annotations(ds, category, cfg.split, cfg.min_quality)

    def samples(self) -> Iterator[Sample]:
        cfg = self.config
        min_frames = self.min_frames()
        sampler = FrameSampler(cfg.seed, cfg.num_frames, cfg.sampling)
        ds = Co3dDataset(self.root)
        categories = self.categories()
        if not categories:
            raise DatasetFormatError(self.root, None, "no CO3Dv2 category of PoseDiffusion's 41 seen "
                                     "categories found (expected <category>/frame_annotations.jgz)")
        for category in categories:
            kept = 0
            for seq, frames in self._annotations(ds, category).items():
                if len(frames) < min_frames or len(frames) < cfg.num_frames:
                    continue
                if any(float(f.T[0] + f.T[1] + f.T[2]) > cfg.max_translation_sum for f in frames):
                    log.info("co3dv2: %s/%s dropped (translation sum > %g)", category, seq,
                             cfg.max_translation_sum)
                    continue
                ids = sampler.draw(len(frames))
                chosen = sorted(((int(i), frames[int(i)]) for i in ids), key=lambda p: p[1].filepath)
                kept += 1
                yield self._sample(category, seq, chosen, min_frames, len(frames))
            log.debug("co3dv2: %s: %d sequences", category, kept)

    def _sample(self, category: str, seq: str, chosen: list[tuple[int, RelposeFrame]], min_frames: int,
                n_frames: int) -> Sample:
        views = tuple(f.to_view(self.root, meta={"category": category, "sequence": seq, "index": i})
                      for i, f in chosen)
        angles, buckets = pair_viewpoints(views)
        meta: dict[str, Any] = {
            "category": category, "sequence": seq, "frames": [f.filepath for _, f in chosen],
            "frame_indices": [i for i, _ in chosen], "num_annotated_frames": n_frames,
            "min_frames": min_frames, "pair_viewpoint_deg": angles, "pair_viewpoint_bucket": buckets,
        }
        return Sample(f"{category}/{seq}", views, {}, meta)

    def gt_correspondences(self, sample: Sample, i: int, j: int) -> Correspondences | None:
        """Exact matches (with ``pts3d0``) on the synthetic suite; None on real data."""
        return self._truth.correspondences(sample.views[i], sample.views[j])
