"""``loftr``: kornia LoFTR (detector-free, dense-to-sparse) with weights from a local file.

LoFTR's checkpoints are not on the package registry and cannot be downloaded here: the matcher
loads ``weights`` (a path) or kornia's cache name in ``torch.hub.get_dir()/checkpoints``
(:data:`benchmarks.weights.LOFTR_FILES`), and is unavailable, with a message saying where to put
the file, when neither exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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
from benchmarks.weights import LOFTR_FILES, WeightsNotFoundError, checkpoints_dir, loftr_hint
from mast3r.fileio import sha256_file

__all__ = ["LoftrConfig", "LoftrMatcher"]


@dataclass(frozen=True)
class LoftrConfig:
    """Options of the ``loftr`` matcher.

    Attributes:
        variant: ``"outdoor"`` (MegaDepth), ``"indoor"`` or ``"indoor_new"`` (ScanNet) checkpoint.
        weights: path of the checkpoint (a dict with ``state_dict``); ``None`` looks for kornia's
            cache file of ``variant`` in ``torch.hub.get_dir()/checkpoints``.
        resize_max: long side in pixels the network runs at (never upscales); sides are then rounded
            down to multiples of 8. ``None`` = full resolution.
        conf_threshold: coarse dual-softmax confidence a match must exceed (LoFTR's ``thr``).
    """

    variant: Literal["outdoor", "indoor", "indoor_new"] = "outdoor"
    weights: str | None = None
    resize_max: int | None = 640
    conf_threshold: float = 0.2

    def __post_init__(self) -> None:
        if self.variant not in LOFTR_FILES:
            raise ValueError(f"variant must be one of {sorted(LOFTR_FILES)}, got {self.variant!r}")
        if not 0.0 <= self.conf_threshold < 1.0:
            raise ValueError(f"conf_threshold must be in [0, 1), got {self.conf_threshold}")


def _weights_path(config: LoftrConfig) -> Path:
    if config.weights is not None:
        return Path(config.weights).expanduser()
    return checkpoints_dir() / LOFTR_FILES[config.variant]


class LoftrMatcher:
    """kornia ``LoFTR`` on grayscale images resized as :class:`LoftrConfig` says.

    kornia reports LoFTR keypoints in the reference implementation's frame, where the centre of
    pixel ``(x, y)`` is at ``(x + 0.5, y + 0.5)``; they are shifted by -0.5 before mapping back to
    original pixels. Scores are the coarse matching confidences.
    """

    name: ClassVar[str] = "loftr"
    Config: ClassVar[type] = LoftrConfig

    def __init__(self, config: LoftrConfig | None = None, device: str = "cpu") -> None:
        self.config = config if config is not None else LoftrConfig()
        self.device = torch_device(device)
        ok, reason = self.available(self.config)
        if not ok:
            raise WeightsNotFoundError(reason)
        self._weights = _weights_path(self.config)
        self._checksum = sha256_file(self._weights)
        self._model = self._build(self.config)
        state = load_checkpoint(self._weights, key="state_dict")
        state = {k.replace("matcher.", "", 1) if k.startswith("matcher.") else k: v for k, v in state.items()}
        load_weights_into(self._model, state, self._weights)
        self._model.eval().to(self.device)

    @staticmethod
    def _build(config: LoftrConfig):
        """A kornia LoFTR without weights (nothing downloaded), configured for ``config``."""
        import copy

        from kornia.feature.loftr.loftr import LoFTR, default_cfg

        cfg: dict[str, Any] = copy.deepcopy(default_cfg)
        cfg["match_coarse"]["thr"] = config.conf_threshold
        if config.variant == "indoor_new":
            cfg["coarse"]["temp_bug_fix"] = True
        return LoFTR(pretrained=None, config=cfg)

    @classmethod
    def available(cls, config: LoftrConfig | None = None) -> tuple[bool, str]:
        """``(True, "")`` when the checkpoint file exists, else ``(False, where to put it)``."""
        config = config if config is not None else LoftrConfig()
        path = _weights_path(config)
        if path.is_file():
            return True, ""
        if config.weights is not None:
            return False, f"LoFTR weights not found: {path} does not exist"
        return False, f"LoFTR weights not found: {loftr_hint(config.variant)}"

    def weights_checksum(self) -> str | None:
        return self._checksum

    def _run(self, prep0: PreparedImage, prep1: PreparedImage):
        import torch

        with torch.inference_mode():
            out = self._model({"image0": prep0.tensor, "image1": prep1.tensor})
        return out["keypoints0"] - 0.5, out["keypoints1"] - 0.5, out["confidence"]

    def match(self, view0: View, view1: View) -> Correspondences:
        """Match two views (grayscale, resized to multiples of 8)."""
        clock = Stopwatch()
        c = self.config
        prep0 = prepare_view(view0, gray=True, resize_max=c.resize_max, multiple=8, device=self.device)
        prep1 = prepare_view(view1, gray=True, resize_max=c.resize_max, multiple=8, device=self.device)
        k0, k1, conf = self._run(prep0, prep1)
        corrs = build_correspondences(k0, k1, conf, prep0, prep1,
                                      size0=list(prep0.size), size1=list(prep1.size))
        corrs.timings["match"] = clock.elapsed()
        return corrs
