"""``xfeat``: kornia XFeat sparse features, matched by mutual nearest neighbour or LighterGlue.

Weights come from ``mast3r-bench weights install xfeat`` (see :mod:`benchmarks.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from benchmarks.matchers._images import PreparedImage, prepare_view
from benchmarks.matchers._kornia_common import (
    Stopwatch,
    build_correspondences,
    load_checkpoint,
    load_weights_into,
    torch_device,
)
from benchmarks.matchers.lightglue import build_lightglue, run_lightglue
from benchmarks.types import Correspondences, View
from benchmarks.weights import WeightsError, find_weight
from mast3r.fileio import sha256_file

__all__ = ["XFeatConfig", "XFeatMatcher"]

_MODES = ("mnn", "lighterglue")


@dataclass(frozen=True)
class XFeatConfig:
    """Options of the ``xfeat`` matcher.

    Attributes:
        mode: ``"mnn"`` (XFeat's own sparse matching: mutual nearest neighbours of the 64-D
            descriptors) or ``"lighterglue"`` (the LightGlue variant trained for XFeat).
        top_k: keypoints kept per image (best keypoint-times-reliability scores).
        detection_threshold: keypoint heatmap value a keypoint must exceed.
        min_cossim: ``mnn`` only: cosine similarity a match must exceed; ``<= 0`` disables it.
        resize_max: long side in pixels the network runs at (never upscales); sides are then
            rounded down to multiples of 32, as XFeat needs. ``None`` = full size (still rounded).
        filter_threshold, depth_confidence, width_confidence: ``lighterglue`` only, as for LightGlue
            (``-1`` disables early stopping / pruning).
    """

    mode: Literal["mnn", "lighterglue"] = "mnn"
    top_k: int = 4096
    detection_threshold: float = 0.05
    min_cossim: float = -1.0
    resize_max: int | None = 1024
    filter_threshold: float = 0.1
    depth_confidence: float = -1.0
    width_confidence: float = -1.0

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        if self.top_k < 2:
            raise ValueError(f"top_k must be >= 2, got {self.top_k}")
        if not -1.0 <= self.min_cossim < 1.0:
            raise ValueError(f"min_cossim must be in [-1, 1), got {self.min_cossim}")
        if not 0.0 <= self.filter_threshold < 1.0:
            raise ValueError(f"filter_threshold must be in [0, 1), got {self.filter_threshold}")


class XFeatMatcher:
    """XFeat on the RGB image resized to multiples of 32 (so XFeat itself does not resample and its
    integer keypoints are pixel centres of the resized image), mapped back to original pixels.

    Scores: cosine similarity of the two descriptors (``mnn``) or LighterGlue's match score.
    """

    name: ClassVar[str] = "xfeat"
    Config: ClassVar[type] = XFeatConfig

    def __init__(self, config: XFeatConfig | None = None, device: str = "cpu") -> None:
        from kornia.feature import XFeat

        self.config = config if config is not None else XFeatConfig()
        self.device = torch_device(device)
        paths = self._weight_paths(self.config)
        self._checksum = ",".join(sha256_file(p) for p in paths)
        c = self.config
        self._xfeat = XFeat(top_k=c.top_k, detection_threshold=c.detection_threshold)
        load_weights_into(self._xfeat.net, load_checkpoint(paths[0]), paths[0])
        self._xfeat.eval().to(self.device)
        self._glue = None
        if c.mode == "lighterglue":
            self._glue = build_lightglue("xfeat", paths[1], c).to(self.device)

    @staticmethod
    def _weight_paths(config: XFeatConfig) -> list:
        paths = [find_weight("xfeat", "xfeat.pt")]
        if config.mode == "lighterglue":
            paths.append(find_weight("xfeat", "xfeat-lighterglue.pt"))
        return paths

    @classmethod
    def available(cls, config: XFeatConfig | None = None) -> tuple[bool, str]:
        """``(True, "")`` when the weights are installed and intact, else ``(False, reason)``."""
        try:
            cls._weight_paths(config if config is not None else XFeatConfig())
        except WeightsError as e:
            return False, str(e)
        return True, ""

    def weights_checksum(self) -> str | None:
        """SHA-256 of the XFeat (and LighterGlue) weight files, comma-separated."""
        return self._checksum

    def _extract(self, prep: PreparedImage):
        out = self._xfeat.detectAndCompute(prep.tensor)[0]
        return out["keypoints"].float(), out["descriptors"]

    def match(self, view0: View, view1: View) -> Correspondences:
        import torch

        clock = Stopwatch()
        c = self.config
        prep0 = prepare_view(view0, gray=False, resize_max=c.resize_max, multiple=32, device=self.device)
        prep1 = prepare_view(view1, gray=False, resize_max=c.resize_max, multiple=32, device=self.device)
        kpts0, desc0 = self._extract(prep0)
        kpts1, desc1 = self._extract(prep1)
        if self._glue is not None:
            idx0, idx1, scores = run_lightglue(self._glue, kpts0, desc0, prep0.size, kpts1, desc1, prep1.size)
        else:
            with torch.inference_mode():
                idx0, idx1 = self._xfeat._match_mnn(desc0, desc1, min_cossim=c.min_cossim)
                scores = (desc0[idx0] * desc1[idx1]).sum(-1)
        corrs = build_correspondences(
            kpts0[idx0], kpts1[idx1], scores, prep0, prep1,
            num_keypoints0=int(len(kpts0)), num_keypoints1=int(len(kpts1)),
        )
        corrs.timings["match"] = clock.elapsed()
        return corrs
