"""Training pairs from a CO3Dv2 download (fine-tuning on real data), as the synthetic sampler's view dicts.

``Co3dPairSource(root, config, seed=S, device=...).batch(step, start, stop) -> (view1, view2)`` returns the
same keys as :meth:`datasets.synthetic.train_pairs.PairSampler.batch`: two frames of one sequence, read
from the CO3D layout (:mod:`datasets.co3dv2`: ``frame_annotations.jgz``, ``depths/*.jpg.geometric.png``
float16 depth times ``depth.scale_adjustment``, ``depth_masks/*.png``), randomly zoomed and cropped to the
step's resolution (the crop/aspect-ratio augmentation: intrinsics adjusted exactly; depth and masks
resampled nearest-neighbour), ``pts3d`` back-projected from depth with the pose (CO3D world frame, SfM
units), ``valid_mask`` = depth > 0 inside the depth mask, ``sky_mask`` all False, ``is_metric_scale``
False by default (CO3D's scale is arbitrary), correspondences sampled exactly as the synthetic pairs
(:func:`datasets.synthetic.train_corres.sample_correspondences`) and the same colour jitter.

Pair ``(step, i)`` is a pure function of ``(seed, step, i)`` (``SeedSequence(seed, spawn_key=(
CO3D_NAMESPACE, 1, step, i))``; resolution from ``(CO3D_NAMESPACE, 2, step)``), whatever the split.
Frames used: those of ``config.split`` in ``set_lists_<config.set_list>.json``, or (``set_list=None``)
every annotated frame; with ``exclude_test`` every sequence named in the ``test`` split of any set list
of its category is left out, so benchmark sequences are not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasets.co3dv2 import Co3dDataset, Co3dFrame, read_depth, read_set_list
from datasets.records import DatasetFormatError
from datasets.synthetic.geometry import invert_pose, viewpoint_angle_deg
from datasets.synthetic.train_corres import (
    ViewSampling,
    color_jitter,
    sample_correspondences,
    to_network_input,
)

__all__ = ["CO3D_NAMESPACE", "Co3dPairConfig", "Co3dPairSource", "load_view"]

CO3D_NAMESPACE = 0x6D336333  # "m3c3"


@dataclass(frozen=True)
class Co3dPairConfig(ViewSampling):
    """Pair distribution for CO3D fine-tuning.

    Attributes:
        resolutions, portrait_prob, n_corres, nneg, jitter, brightness/contrast/saturation/hue: as in
            :class:`~datasets.synthetic.train_pairs.PairSamplerConfig`.
        zoom: the crop scale is ``cover * U(1, 1 + zoom)`` (cover: the smallest scale that fills the
            output); the crop window is placed uniformly.
        min_gap, max_gap: frame-rank distance of the two views within a sequence (sorted by frame_number).
        categories: categories to use (None: every category folder with annotations).
        set_list, split: which frames (see the module docstring); exclude_test: drop test sequences.
        metric_scale: the value of ``is_metric_scale``.
    """

    zoom: float = 0.3
    min_gap: int = 1
    max_gap: int = 30
    categories: tuple[str, ...] | None = None
    set_list: str | None = None
    split: str = "train"
    exclude_test: bool = True
    metric_scale: bool = False


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CO3D_NAMESPACE, *key)))


def load_view(root: Path, frame: Co3dFrame, h: int, w: int, rng: np.random.Generator,
              zoom: float) -> dict[str, np.ndarray]:
    """One frame zoomed/cropped to (h, w): ``rgb`` (h, w, 3) uint8, ``depth`` (h, w) float32 (0 invalid),
    ``valid`` (h, w) bool, ``K`` (3, 3) and ``cam_from_world`` (4, 4) float64 of the crop."""
    H0, W0 = frame.image_hw
    if frame.depth_path is None:
        raise DatasetFormatError(root / frame.image_path, None, "frame has no depth annotation")
    with Image.open(root / frame.image_path) as im:
        img = im.convert("RGB")
    if img.size != (W0, H0):
        raise DatasetFormatError(root / frame.image_path, None,
                                 f"image is {img.size[0]}x{img.size[1]}, annotation says {W0}x{H0}")
    depth = read_depth(root / frame.depth_path, frame.depth_scale_adjustment or 1.0)
    if depth.shape != (H0, W0):
        raise DatasetFormatError(root / frame.depth_path, None, f"depth is {depth.shape}, image {(H0, W0)}")
    valid = np.isfinite(depth) & (depth > 0)
    if frame.depth_mask_path is not None:
        with Image.open(root / frame.depth_mask_path) as im:
            valid &= np.asarray(im.convert("L")) > 127
    s = max(h / H0, w / W0) * rng.uniform(1.0, 1.0 + zoom)
    ox = rng.uniform(0.0, max(0.0, s * W0 - w))
    oy = rng.uniform(0.0, max(0.0, s * H0 - h))
    # output pixel x (centre) <- source x_src = (x + 0.5 + ox) / s - 0.5 (edge-aligned scaling)
    box = (ox / s, oy / s, (ox + w) / s, (oy + h) / s)
    rgb = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR, box=box))
    xs = np.clip(np.floor((np.arange(w) + 0.5 + ox) / s).astype(np.int64), 0, W0 - 1)
    ys = np.clip(np.floor((np.arange(h) + 0.5 + oy) / s).astype(np.int64), 0, H0 - 1)
    d = depth[ys[:, None], xs[None, :]]
    v = valid[ys[:, None], xs[None, :]]
    K0 = frame.K
    K = K0.copy()
    K[0, 0], K[1, 1] = K0[0, 0] * s, K0[1, 1] * s
    K[0, 1] = K0[0, 1] * s
    K[0, 2] = s * (K0[0, 2] + 0.5) - 0.5 - ox
    K[1, 2] = s * (K0[1, 2] + 0.5) - 0.5 - oy
    return {"rgb": rgb, "depth": np.where(v, d, 0.0).astype(np.float32), "valid": v, "K": K,
            "cam_from_world": frame.cam_from_world}


def _backproject(depth: torch.Tensor, K: torch.Tensor, cfw: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) world points of (B, H, W) z-depth maps."""
    B, H, W = depth.shape
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64, device=depth.device),
                            torch.arange(W, dtype=torch.float64, device=depth.device), indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)
    ray = pix @ torch.linalg.inv(K.double()).transpose(1, 2)
    ray = ray / ray[..., 2:3]
    cam = ray * depth.reshape(B, -1, 1).double()
    R, t = cfw[:, :3, :3].double(), cfw[:, :3, 3].double()
    world = (cam - t[:, None, :]) @ R  # R^T (X - t)
    return world.reshape(B, H, W, 3).float()


class Co3dPairSource:
    """CO3D training pairs (see the module docstring)."""

    def __init__(self, root: str | Path, config: Co3dPairConfig, *, seed: int,
                 device: str | torch.device = "cpu") -> None:
        self.root = Path(root)
        self.config = config
        self.seed = int(seed)
        self.device = torch.device(device)
        ds = Co3dDataset(self.root)
        cats = list(config.categories) if config.categories is not None else ds.categories()
        self.sequences: list[tuple[str, list[Co3dFrame]]] = []
        for cat in cats:
            frames = [f for f in ds.frames(cat) if f.depth_path is not None]
            if config.set_list is not None:
                entries = ds.set_list(cat, config.set_list).get(config.split, [])
                keep = {(e.sequence, e.frame_number) for e in entries}
                frames = [f for f in frames if (f.sequence_name, f.frame_number) in keep]
            if config.exclude_test:
                test = set()
                for p in sorted((self.root / cat / "set_lists").glob("set_lists_*.json")):
                    test |= {e.sequence for e in read_set_list(p).get("test", [])}
                frames = [f for f in frames if f.sequence_name not in test]
            by_seq: dict[str, list[Co3dFrame]] = {}
            for f in frames:
                by_seq.setdefault(f.sequence_name, []).append(f)
            for name in sorted(by_seq):
                fs = sorted(by_seq[name], key=lambda f: f.frame_number)
                if len(fs) >= 2:
                    self.sequences.append((cat, fs))
        if not self.sequences:
            raise DatasetFormatError(self.root, None, "CO3D training: no sequence with >= 2 depth frames "
                                     "left (check categories/set_list/split; exclude_test drops test ones)")

    def resolution(self, step: int) -> tuple[int, int]:
        """(H, W) of every pair of ``step``."""
        rng = _rng(self.seed, 2, step)
        h, w = self.config.resolutions[int(rng.integers(len(self.config.resolutions)))]
        return (w, h) if rng.uniform() < self.config.portrait_prob else (h, w)

    def _choose(self, rng: np.random.Generator) -> tuple[Co3dFrame, Co3dFrame]:
        c = self.config
        _, frames = self.sequences[int(rng.integers(len(self.sequences)))]
        n = len(frames)
        a = int(rng.integers(n))
        gaps = [g for g in range(-min(c.max_gap, n - 1), min(c.max_gap, n - 1) + 1)
                if abs(g) >= c.min_gap and 0 <= a + g < n] or [g for g in range(-a, n - a) if g != 0]
        return frames[a], frames[a + gaps[int(rng.integers(len(gaps)))]]

    def pair_frames(self, step: int, index: int) -> tuple[Co3dFrame, Co3dFrame]:
        """The two frames (view 1, view 2) of pair ``(step, index)``."""
        return self._choose(_rng(self.seed, 1, step, index))

    def _pair(self, step: int, i: int, h: int, w: int):
        c = self.config
        rng = _rng(self.seed, 1, step, i)
        f1, f2 = self._choose(rng)
        v1 = load_view(self.root, f1, h, w, rng, c.zoom)
        v2 = load_view(self.root, f2, h, w, rng, c.zoom)
        lo = np.array([1 - c.brightness, 1 - c.contrast, 1 - c.saturation, -c.hue])
        hi = np.array([1 + c.brightness, 1 + c.contrast, 1 + c.saturation, c.hue])
        return v1, v2, rng.uniform(lo, hi, (2, 4)), int(rng.integers(0, 1 << 62))

    def batch(self, step: int, start: int, stop: int) -> tuple[dict, dict]:
        """Pairs ``[start, stop)`` of ``step``: the keys of ``PairSampler.batch``."""
        if not 0 <= start < stop:
            raise ValueError(f"Co3dPairSource.batch: need 0 <= start < stop, got {start}, {stop}")
        h, w = self.resolution(step)
        pairs = [self._pair(step, i, h, w) for i in range(start, stop)]
        B = len(pairs)
        dev = self.device
        views = [[p[0] for p in pairs], [p[1] for p in pairs]]

        def stack(k, vs, dtype=None):
            a = np.stack([v[k] for v in vs])
            return torch.from_numpy(a if dtype is None else a.astype(dtype)).to(dev)

        K = torch.cat([stack("K", vs, np.float64) for vs in views])
        cfw = torch.cat([stack("cam_from_world", vs, np.float64) for vs in views])
        depth = torch.cat([stack("depth", vs) for vs in views])
        valid = torch.cat([stack("valid", vs) for vs in views])
        pts = _backproject(depth, K, cfw)
        img = torch.cat([stack("rgb", vs) for vs in views]).permute(0, 3, 1, 2).float() / 255.0
        if self.config.jitter:
            jit = np.concatenate([np.stack([p[2][0] for p in pairs]), np.stack([p[2][1] for p in pairs])])
            img = color_jitter(img, torch.from_numpy(jit.astype(np.float32)).to(dev))
        img = to_network_input(img)
        key = torch.tensor([p[3] for p in pairs], dtype=torch.int64, device=dev)
        Kf, cfwf = K.float(), cfw.float()
        c1, c2, vc, nrec = sample_correspondences(pts[:B], valid[:B], Kf[:B], cfwf[:B], pts[B:], valid[B:],
                                                  Kf[B:], cfwf[B:], key, self.config.n_corres,
                                                  self.config.nneg)
        P = cfw.cpu().numpy()
        angle = torch.tensor([viewpoint_angle_deg(P[k], P[B + k]) for k in range(B)], dtype=torch.float32,
                             device=dev)
        pose = torch.from_numpy(np.stack([invert_pose(p) for p in P]).astype(np.float32)).to(dev)
        shape = torch.tensor([[h, w]] * B, dtype=torch.int64, device=dev)
        pid = torch.tensor([[step, i] for i in range(start, stop)], dtype=torch.int64, device=dev)
        out = []
        for sl, corres in ((slice(0, B), c1), (slice(B, 2 * B), c2)):
            out.append({
                "img": img[sl], "true_shape": shape, "pts3d": pts[sl], "depthmap": depth[sl],
                "camera_pose": pose[sl], "camera_intrinsics": Kf[sl], "valid_mask": valid[sl],
                "sky_mask": torch.zeros_like(valid[sl]),
                "is_metric_scale": torch.full((B,), self.config.metric_scale, dtype=torch.bool, device=dev),
                "corres": corres, "valid_corres": vc, "viewpoint_deg": angle, "n_reciprocal": nrec,
                "pair_id": pid,
            })
        return out[0], out[1]
