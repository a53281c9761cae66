"""``disk+lightglue`` and ``aliked+lightglue``: kornia DISK / ALIKED features matched by LightGlue.

Weights come from ``mast3r-bench weights install NAME`` (see :mod:`benchmarks.weights`), are
verified against their pinned SHA-256 and loaded explicitly: nothing is ever downloaded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from benchmarks.matchers._images import PreparedImage, prepare_view
from benchmarks.matchers._kornia_common import (
    Stopwatch,
    build_correspondences,
    load_checkpoint,
    load_weights_into,
    torch_device,
)
from benchmarks.types import Correspondences, View
from benchmarks.weights import WeightsError, find_weight
from mast3r.fileio import sha256_file

__all__ = [
    "DiskLightGlueConfig",
    "AlikedLightGlueConfig",
    "DiskLightGlueMatcher",
    "AlikedLightGlueMatcher",
    "build_lightglue",
    "run_lightglue",
]

_LG_VERSION_SUFFIX = "_lightglue_v0-1_arxiv-pth"  # kornia's cache-name suffix of the LightGlue checkpoints


def _check_lightglue_options(c: Any) -> None:
    if c.max_keypoints < 2:
        raise ValueError(f"max_keypoints must be >= 2, got {c.max_keypoints}")
    if not 0.0 <= c.filter_threshold < 1.0:
        raise ValueError(f"filter_threshold must be in [0, 1), got {c.filter_threshold}")
    for name in ("depth_confidence", "width_confidence"):
        v = getattr(c, name)
        if v != -1 and not 0.0 < v < 1.0:
            raise ValueError(f"{name} must be -1 (off) or in (0, 1), got {v}")


@dataclass(frozen=True)
class DiskLightGlueConfig:
    """Options of ``disk+lightglue``.

    Attributes:
        max_keypoints: DISK keypoints kept per image (strongest heatmap maxima).
        resize_max: long side in pixels the networks run at (never upscales); ``None`` = full size.
        nms_window: DISK non-maximum-suppression window (pixels).
        detection_threshold: DISK heatmap value a keypoint must exceed.
        filter_threshold: LightGlue match score a match must exceed.
        depth_confidence, width_confidence: LightGlue early stopping / point pruning; ``-1`` (the
            default here) turns them off: slower, deterministic, most accurate.
    """

    max_keypoints: int = 2048
    resize_max: int | None = 1024
    nms_window: int = 5
    detection_threshold: float = 0.0
    filter_threshold: float = 0.1
    depth_confidence: float = -1.0
    width_confidence: float = -1.0

    def __post_init__(self) -> None:
        _check_lightglue_options(self)
        if self.nms_window < 1 or self.nms_window % 2 == 0:
            raise ValueError(f"nms_window must be a positive odd number, got {self.nms_window}")


@dataclass(frozen=True)
class AlikedLightGlueConfig:
    """Options of ``aliked+lightglue``.

    Attributes:
        model: ALIKED backbone, ``"aliked-n16"`` (the one LightGlue was trained with),
            ``"aliked-n16rot"`` or ``"aliked-n32"``.
        max_keypoints: keypoint budget per image.
        detection_threshold: ALIKED score a keypoint must exceed (``<= 0``: top-k mode).
        nms_radius: ALIKED NMS radius (window ``2 r + 1``).
        resize_max, filter_threshold, depth_confidence, width_confidence: as for DISK.
    """

    model: Literal["aliked-n16", "aliked-n16rot", "aliked-n32"] = "aliked-n16"
    max_keypoints: int = 2048
    resize_max: int | None = 1024
    detection_threshold: float = 0.2
    nms_radius: int = 2
    filter_threshold: float = 0.1
    depth_confidence: float = -1.0
    width_confidence: float = -1.0

    def __post_init__(self) -> None:
        _check_lightglue_options(self)
        if self.model not in ("aliked-n16", "aliked-n16rot", "aliked-n32"):
            raise ValueError(f"model must be aliked-n16, aliked-n16rot or aliked-n32, got {self.model!r}")
        if self.nms_radius < 1:
            raise ValueError(f"nms_radius must be >= 1, got {self.nms_radius}")


def build_lightglue(features: str, path: Any, config: Any):
    """kornia ``LightGlue`` for ``features`` with the checkpoint at ``path`` (no download).

    kornia's constructor would fetch weights by URL, so the model is built with ``features=None``
    and the feature preset passed explicitly, then the checkpoint is loaded with kornia's key
    renaming (old ``self_attn.i`` / ``cross_attn.i`` names; XFeat's ``matcher.`` prefix).
    """
    from kornia.feature import LightGlue

    conf = {
        **LightGlue.features[features],
        "weights": None,
        "filter_threshold": config.filter_threshold,
        "depth_confidence": config.depth_confidence,
        "width_confidence": config.width_confidence,
    }
    model = LightGlue(features=None, **conf)  # type: ignore[arg-type]  # None = no download
    state = load_checkpoint(path)
    renamed: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith("matcher."):
            key = key[len("matcher."):]
        for i in range(model.conf.n_layers):
            key = key.replace(f"self_attn.{i}.", f"transformers.{i}.self_attn.")
            key = key.replace(f"cross_attn.{i}.", f"transformers.{i}.cross_attn.")
        if key.startswith("log_assignment.") and key.endswith(".r"):
            continue  # a stale buffer of the original DISK checkpoint, unused by the model
        renamed[key] = value
    # extractor.*: the XFeat backbone that xfeat-lighterglue.pt bundles with its matcher
    load_weights_into(model, renamed, path, ignore_unexpected=("extractor.",))
    return model.eval()


def run_lightglue(model, kpts0, desc0, size0: tuple[int, int], kpts1, desc1, size1: tuple[int, int]):
    """Match one pair. ``kpts*``: (N, 2) pixels of an image of size ``(W, H)``; ``desc*``: (N, D).

    Returns:
        ``(idx0, idx1, scores)``: matched rows of the two keypoint sets and LightGlue's scores.
    """
    import torch

    if len(kpts0) < 2 or len(kpts1) < 2:
        empty = torch.zeros(0, dtype=torch.long, device=kpts0.device)
        return empty, empty, torch.zeros(0, device=kpts0.device)
    dev = kpts0.device
    data = {
        "image0": {"keypoints": kpts0[None].float(), "descriptors": desc0[None].float(),
                   "image_size": torch.tensor([list(size0)], device=dev, dtype=torch.float32)},
        "image1": {"keypoints": kpts1[None].float(), "descriptors": desc1[None].float(),
                   "image_size": torch.tensor([list(size1)], device=dev, dtype=torch.float32)},
    }
    with torch.inference_mode():
        out = model(data)
    m0 = out["matches0"][0]
    valid = m0 > -1
    idx0 = torch.nonzero(valid).reshape(-1)
    return idx0, m0[valid], out["matching_scores0"][0][valid]


class _LightGlueMatcherBase:
    """Shared match loop: extract features on both images, LightGlue, map back to pixels."""

    name: ClassVar[str]
    Config: ClassVar[type]
    _features: ClassVar[str]
    _gray: ClassVar[bool] = False
    _multiple: ClassVar[int] = 1

    def __init__(self, config: Any = None, device: str = "cpu") -> None:
        self.config = config if config is not None else self.Config()
        self.device = torch_device(device)
        paths = self._weight_paths(self.config)  # raises WeightsNotFoundError with the install command
        self._checksum = ",".join(sha256_file(p) for p in paths)
        self._extractor = self._build_extractor(self.config, paths[0]).eval().to(self.device)
        self._matcher = build_lightglue(self._features, paths[1], self.config).to(self.device)

    @classmethod
    def _weight_paths(cls, config: Any) -> list:
        """[extractor checkpoint, LightGlue checkpoint]; raises WeightsNotFoundError."""
        raise NotImplementedError

    def _build_extractor(self, config: Any, path: Any) -> Any:
        """The feature network with its weights loaded from ``path``."""
        raise NotImplementedError

    @classmethod
    def available(cls, config: Any = None) -> tuple[bool, str]:
        """``(True, "")`` when the weights are installed and intact, else ``(False, reason)``."""
        try:
            cls._weight_paths(config if config is not None else cls.Config())
        except WeightsError as e:
            return False, str(e)
        return True, ""

    def weights_checksum(self) -> str | None:
        """SHA-256 of the extractor and LightGlue weight files, comma-separated."""
        return self._checksum

    def _extract(self, prep: PreparedImage):
        raise NotImplementedError

    def match(self, view0: View, view1: View) -> Correspondences:
        clock = Stopwatch()
        c = self.config
        prep0 = prepare_view(view0, gray=self._gray, resize_max=c.resize_max, multiple=self._multiple,
                             device=self.device)
        prep1 = prepare_view(view1, gray=self._gray, resize_max=c.resize_max, multiple=self._multiple,
                             device=self.device)
        kpts0, desc0 = self._extract(prep0)
        kpts1, desc1 = self._extract(prep1)
        idx0, idx1, scores = run_lightglue(self._matcher, kpts0, desc0, prep0.size, kpts1, desc1, prep1.size)
        corrs = build_correspondences(
            kpts0[idx0], kpts1[idx1], scores, prep0, prep1,
            num_keypoints0=int(len(kpts0)), num_keypoints1=int(len(kpts1)),
        )
        corrs.timings["match"] = clock.elapsed()
        return corrs


class DiskLightGlueMatcher(_LightGlueMatcherBase):
    """DISK (``depth`` weights, RGB input, integer keypoints) + LightGlue."""

    name: ClassVar[str] = "disk+lightglue"
    Config: ClassVar[type] = DiskLightGlueConfig
    _features: ClassVar[str] = "disk"

    @classmethod
    def _weight_paths(cls, config: Any) -> list:
        return [find_weight("disk+lightglue", "depth-save.pth"),
                find_weight("disk+lightglue", "disk" + _LG_VERSION_SUFFIX)]

    def _build_extractor(self, config: DiskLightGlueConfig, path: Any):
        from kornia.feature import DISK

        model = DISK()
        load_weights_into(model, load_checkpoint(path, key="extractor"), path)
        return model

    def _extract(self, prep: PreparedImage):
        import torch

        c = self.config
        with torch.inference_mode():
            feats = self._extractor(prep.tensor, n=c.max_keypoints, window_size=c.nms_window,
                                    score_threshold=c.detection_threshold, pad_if_not_divisible=True)[0]
        return feats.keypoints, feats.descriptors


class AlikedLightGlueMatcher(_LightGlueMatcherBase):
    """ALIKED (subpixel keypoints, RGB input) + LightGlue."""

    name: ClassVar[str] = "aliked+lightglue"
    Config: ClassVar[type] = AlikedLightGlueConfig
    _features: ClassVar[str] = "aliked"

    @classmethod
    def _weight_paths(cls, config: Any) -> list:
        return [find_weight("aliked+lightglue", f"{config.model}.pth"),
                find_weight("aliked+lightglue", "aliked" + _LG_VERSION_SUFFIX)]

    def _build_extractor(self, config: AlikedLightGlueConfig, path: Any):
        from kornia.feature.aliked import ALIKED

        model = ALIKED(model_name=config.model, max_num_keypoints=config.max_keypoints,
                       detection_threshold=config.detection_threshold, nms_radius=config.nms_radius)
        load_weights_into(model, load_checkpoint(path), path)
        return model

    def _extract(self, prep: PreparedImage):
        import torch

        with torch.inference_mode():
            feats = self._extractor(prep.tensor)[0]
        return feats.keypoints, feats.descriptors
