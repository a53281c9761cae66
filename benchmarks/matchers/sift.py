"""``sift``: kornia DoG + (Root)SIFT with mutual / ratio-test nearest-neighbour matching. No weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from benchmarks.matchers._images import PreparedImage, prepare_view
from benchmarks.matchers._kornia_common import Stopwatch, build_correspondences, torch_device
from benchmarks.types import Correspondences, View

__all__ = ["SiftConfig", "SiftMatcher"]

_DETECTORS = ("scale_space", "multires")


@dataclass(frozen=True)
class SiftConfig:
    """Options of the ``sift`` matcher.

    Attributes:
        max_keypoints: detections kept per image (strongest DoG responses).
        root_sift: RootSIFT (Hellinger-normalised) descriptors instead of plain SIFT.
        upright: skip orientation assignment (all keypoints at angle 0).
        ratio: Lowe's ratio test, keep ``d1 / d2 <= ratio``; ``None`` disables it.
        mutual: keep only mutual nearest neighbours. With ``ratio`` too, the ratio test must pass in
            both directions (kornia ``match_smnn``).
        resize_max: long side in pixels the detector runs at (never upscales); ``None`` = full resolution.
        detector: ``"scale_space"`` (kornia ``SIFTFeatureScaleSpace``: 3-D DoG extrema with subpixel
            refinement, like classic SIFT) or ``"multires"`` (kornia ``SIFTFeature``: per-level 2-D
            extrema, integer positions per level).
        backend: kornia ``descriptor_backend`` of the scale-space detector: ``"pyramid"`` (orients
            and describes from the detector's Gaussian pyramid; about 20x faster on CPU) or ``"patch"``
            (41 x 41 patches per keypoint). Ignored by ``"multires"`` (always ``"patch"``).
        min_response: detections with absolute DoG response at or below this are dropped (a blank
            image has no keypoints rather than arbitrary ones).
    """

    max_keypoints: int = 8000
    root_sift: bool = True
    upright: bool = False
    ratio: float | None = 0.8
    mutual: bool = True
    resize_max: int | None = None
    detector: Literal["scale_space", "multires"] = "scale_space"
    backend: Literal["pyramid", "patch"] = "pyramid"
    min_response: float = 1e-6

    def __post_init__(self) -> None:
        if self.max_keypoints < 1:
            raise ValueError(f"max_keypoints must be >= 1, got {self.max_keypoints}")
        if self.ratio is not None and not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1] or None, got {self.ratio}")
        if self.detector not in _DETECTORS:
            raise ValueError(f"detector must be one of {_DETECTORS}, got {self.detector!r}")
        if self.backend not in ("pyramid", "patch"):
            raise ValueError(f"backend must be 'pyramid' or 'patch', got {self.backend!r}")


class SiftMatcher:
    """kornia SIFT features matched by (mutual) nearest neighbour with an optional ratio test.

    Scores are ``1 - ratio`` with a ratio test (the larger of the two ratios when ``mutual``), else
    ``1 / (1 + descriptor distance)``; higher is better.
    """

    name: ClassVar[str] = "sift"
    Config: ClassVar[type] = SiftConfig

    def __init__(self, config: SiftConfig | None = None, device: str = "cpu") -> None:
        import kornia.feature as KF

        self.config = config if config is not None else SiftConfig()
        self.device = torch_device(device)
        c = self.config
        self._feature: KF.SIFTFeatureScaleSpace | KF.SIFTFeature
        if c.detector == "scale_space":
            self._feature = KF.SIFTFeatureScaleSpace(
                num_features=c.max_keypoints, upright=c.upright, rootsift=c.root_sift, device=self.device,
                descriptor_backend=c.backend,
            ).eval()
        else:
            self._feature = KF.SIFTFeature(
                num_features=c.max_keypoints, upright=c.upright, rootsift=c.root_sift, device=self.device
            ).eval()

    @classmethod
    def available(cls, config: SiftConfig | None = None) -> tuple[bool, str]:
        """Always available (no weights)."""
        return True, ""

    def weights_checksum(self) -> str | None:
        return None

    def _detect(self, prep: PreparedImage):
        import torch

        with torch.inference_mode():
            lafs, responses, descs = self._feature(prep.tensor)
        keep = responses[0].reshape(-1).abs() > self.config.min_response
        kpts = lafs[0, :, :, 2][keep]
        return kpts, descs[0][keep]

    def match(self, view0: View, view1: View) -> Correspondences:
        """Match two views; keypoints are detected on grayscale images (see :class:`SiftConfig`)."""
        import kornia.feature as KF
        import torch

        clock = Stopwatch()
        c = self.config
        prep0 = prepare_view(view0, gray=True, resize_max=c.resize_max, device=self.device)
        prep1 = prepare_view(view1, gray=True, resize_max=c.resize_max, device=self.device)
        kpts0, desc0 = self._detect(prep0)
        kpts1, desc1 = self._detect(prep1)
        meta = {"num_keypoints0": int(len(kpts0)), "num_keypoints1": int(len(kpts1))}
        with torch.inference_mode():
            if c.mutual and c.ratio is not None:
                dists, idx = KF.match_smnn(desc0, desc1, th=c.ratio)
            elif c.ratio is not None:
                dists, idx = KF.match_snn(desc0, desc1, th=c.ratio)
            elif c.mutual:
                dists, idx = KF.match_mnn(desc0, desc1)
            else:
                dists, idx = KF.match_nn(desc0, desc1)
        dists = dists.reshape(-1)
        scores = 1.0 - dists if c.ratio is not None else 1.0 / (1.0 + dists)
        corrs = build_correspondences(kpts0[idx[:, 0]], kpts1[idx[:, 1]], scores, prep0, prep1, **meta)
        corrs.timings["match"] = clock.elapsed()
        return corrs
