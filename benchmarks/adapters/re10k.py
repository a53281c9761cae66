"""RealEstate10K multi-view relative pose (PoseDiffusion protocol, as DUSt3R/MASt3R report it).

Data: ``<data root>/re10k`` (or ``--data`` pointing at that folder) in the layout of
``datasets.re10k``: camera files ``<split>/<sequence>.txt`` and frames extracted the PoseDiffusion
way, ``frames/<split>/<sequence>/<timestamp>.png``. The release's own ``RealEstate10K/<split>/`` is
found inside that folder (or the data root), with ``frames/`` inside it or beside it; ``--data`` may
also name ``RealEstate10K/`` itself. Sequences: those of ``sequence_list`` (e.g.
PoseDiffusion's ``re10k_test_1800.txt``, 1,832 ids; relative paths are relative to the root) or, by
default, every camera file of ``split``, sorted; clips whose video was not extracted (no frames
folder) are skipped (counted in the log), frames missing from an extracted clip are skipped, and a
clip with fewer than ``num_frames`` frames is skipped. Then 10 frames per clip (file-path order),
45 pairs, per-pair solvers, metrics, failure accounting: :mod:`benchmarks.adapters._posediffusion`.
Aggregation: pooled over all pairs (the papers' RE10K numbers); ``"per_category"`` treats the whole
benchmark as one category (same numbers).

Intrinsics: as CO3Dv2 (``estimator.intrinsics = "auto"``: the matcher's focal estimates, else the
GT K, recorded per pair).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from benchmarks.adapters._pose_solvers import PoseEstimatorConfig
from benchmarks.adapters._posediffusion import FrameSampler, PoseDiffusionProtocol, pair_viewpoints
from benchmarks.adapters._roots import listing_checksum, resolve_root
from benchmarks.adapters._synthetic_gt import SyntheticTruth
from benchmarks.types import Correspondences, Sample
from datasets.re10k import (
    RELEASE_DIR,
    Re10kDataset,
    default_frames_root,
    has_camera_files,
    read_sequence_list,
)

__all__ = ["Re10kAdapter", "Re10kConfig", "Re10kEstimatorConfig"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Re10kConfig:
    """Protocol options (``adapter.<field>``).

    Attributes:
        split: camera-file split (``test``).
        sequence_list: file of sequence ids to evaluate (one per line); None = every camera file. A
            relative path is taken in the root (for a ``RealEstate10K`` root, else beside it).
        frames_root: folder holding ``<split>/<sequence>/<timestamp>.png``; None = ``<root>/frames``.
        num_frames: frames drawn per clip. seed: numpy legacy seed of the draw.
        sampling: ``"stream"`` (PoseDiffusion) or ``"per_sequence"`` (see ``_posediffusion``).
        aggregation: ``"pooled"`` (default) or ``"per_category"`` (one category: the same numbers).
    """

    split: str = "test"
    sequence_list: str | None = None
    frames_root: str | None = None
    num_frames: int = 10
    seed: int = 0
    sampling: Literal["stream", "per_sequence"] = "stream"
    aggregation: Literal["per_category", "pooled"] = "pooled"


@dataclass(frozen=True)
class Re10kEstimatorConfig(PoseEstimatorConfig):
    """Per-pair solver options (:class:`benchmarks.adapters._pose_solvers.PoseEstimatorConfig`)."""




class Re10kAdapter(PoseDiffusionProtocol):
    """RealEstate10K RRA@15 / RTA@15 / mAA(30) over 10-frame samples of the test clips."""

    name: ClassVar[str] = "re10k"
    title: ClassVar[str] = "RealEstate10K multi-view relative pose (10 frames, 45 pairs; mAA(30))"
    version: ClassVar[str] = "1"
    data_dir: ClassVar[str] = "re10k"
    Config: ClassVar[type] = Re10kConfig
    EstimatorConfig: ClassVar[type] = Re10kEstimatorConfig

    def __init__(self, root: Path, config: Re10kConfig | None = None,
                 estimator: Re10kEstimatorConfig | None = None) -> None:
        self.root = resolve_root(Path(root), has_camera_files, self.data_dir, inner=(RELEASE_DIR,))
        self.config = config or Re10kConfig()
        self.estimator = estimator or Re10kEstimatorConfig()
        self._truth = SyntheticTruth(self.root)

    def dataset_checksum(self) -> str | None:
        """Fingerprint of the camera files and extracted clip folders (not of every frame)."""
        split = self.config.split
        if self.config.frames_root is not None:
            return listing_checksum(self.root, (f"{split}/*.txt",))
        frames = default_frames_root(self.root)
        if frames.parent == self.root:
            return listing_checksum(self.root, (f"{split}/*.txt", f"frames/{split}/*"))
        # frames beside the RealEstate10K folder: list both from their common parent
        return listing_checksum(self.root.parent, (f"{self.root.name}/{split}/*.txt", f"frames/{split}/*"))

    def sequences(self, ds: Re10kDataset) -> list[str]:
        """Sequence ids to evaluate, in protocol order."""
        if self.config.sequence_list is None:
            return ds.sequences()
        path = Path(self.config.sequence_list)
        if not path.is_absolute():
            inside, beside = self.root / path, self.root.parent / path
            # a list kept beside the RealEstate10K release folder (e.g. re10k/re10k_test_1800.txt)
            use_beside = self.root.name == RELEASE_DIR and not inside.is_file() and beside.is_file()
            path = beside if use_beside else inside
        return read_sequence_list(path)

    def samples(self) -> Iterator[Sample]:
        cfg = self.config
        ds = Re10kDataset(self.root, cfg.split, cfg.frames_root, missing_frames="skip")
        sampler = FrameSampler(cfg.seed, cfg.num_frames, cfg.sampling)
        no_frames = short = 0
        for seq in self.sequences(ds):
            if not ds.has_frames(seq):
                no_frames += 1
                continue
            sq = ds.sequence(seq)
            if len(sq.views) < cfg.num_frames:
                short += 1
                continue
            ids = sampler.draw(len(sq.views))
            chosen = sorted(((int(i), sq.views[int(i)]) for i in ids), key=lambda p: str(p[1].image_path))
            views = tuple(v for _, v in chosen)
            angles, buckets = pair_viewpoints(views)
            meta: dict[str, Any] = {
                "category": "re10k", "sequence": seq, "frames": [v.name for v in views],
                "frame_indices": [i for i, _ in chosen], "num_frames_available": len(sq.views),
                "missing_frames": len(sq.missing), "pair_viewpoint_deg": angles,
                "pair_viewpoint_bucket": buckets,
            }
            yield Sample(seq, views, {}, meta)
        if no_frames or short:
            log.info("re10k: skipped %d clips without extracted frames and %d with fewer than %d frames",
                     no_frames, short, cfg.num_frames)

    def gt_correspondences(self, sample: Sample, i: int, j: int) -> Correspondences | None:
        """Exact matches (with ``pts3d0``) on the synthetic suite; None on real data."""
        return self._truth.correspondences(sample.views[i], sample.views[j])
