"""Training pairs rendered on the fly: fresh random scenes, GT pointmaps and sampled correspondences.

``PairSampler(config, seed=S, device=...).batch(step, start, stop) -> (view1, view2)`` returns the pairs
with global indices ``[start, stop)`` of training step ``step`` as the official MASt3R view dicts (see
:meth:`PairSampler.batch`). Pair ``(step, i)`` is a pure function of ``(seed, step, i)``: its numpy scene
and cameras come from ``SeedSequence(seed, spawn_key=(TRAIN_NAMESPACE, 1, step, i))`` and its torch-side
randomness (correspondence draws) from a counter-based hash of a key drawn there, so any split of a step
over processes sees the same pairs up to float rounding. All pairs of a step share one resolution, drawn
from ``SeedSequence(seed, spawn_key=(TRAIN_NAMESPACE, 2, step))``.

Disjoint from the benchmark suite by construction: the suite (:mod:`datasets.synthetic.suite`) draws its
scenes from ``default_rng([seed, index])`` and its texture bank from ``default_rng([seed, 1000])`` -- seed
sequences without a spawn key -- while every generator here has a spawn key starting with
``TRAIN_NAMESPACE`` (the texture bank too: ``(TRAIN_NAMESPACE, 3)``), so no training stream equals a suite
stream (tested by comparing generator states).

Benchmark: ``python -m datasets.synthetic.train_pairs --bench --device cuda --batch 64 --steps 20``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from datasets.synthetic.geometry import invert_pose
from datasets.synthetic.textures import TextureBank, make_texture_bank
from datasets.synthetic.train_corres import (
    TRAIN_RESOLUTIONS,
    ViewSampling,
    color_jitter,
    sample_correspondences,
    to_network_input,
)
from datasets.synthetic.train_render import TorchTextures, pack_rows, render_views, scene_rows
from datasets.synthetic.train_scenes import PairSpec, SceneConfig, make_pair

__all__ = ["TRAIN_NAMESPACE", "PairSamplerConfig", "PairSampler", "pair_rng", "step_rng", "bank_rng",
           "training_bank", "pair_spec", "pair_arrays"]

TRAIN_NAMESPACE = 0x6D337472  # "m3tr": first spawn-key word of every training generator

_RESOLUTIONS = TRAIN_RESOLUTIONS


@dataclass(frozen=True)
class PairSamplerConfig(ViewSampling):
    """Training-pair distribution (sizes, correspondences and jitter: :class:`ViewSampling`).

    Attributes:
        crop: the crop/aspect-ratio augmentation (random focal in ``hfov_deg`` and principal point
            within ``pp_jitter`` of the image size: a crop of a larger render).
        hfov_deg, pp_jitter, max_azimuth_deg, p_tabletop_room, p_tabletop_open: see
            :class:`~datasets.synthetic.train_scenes.SceneConfig`.
        n_noise, n_rect: procedural textures in the training texture bank (besides the photographs).
        max_render_elems: ray-primitive tests per render chunk (memory bound).
    """

    crop: bool = True
    hfov_deg: tuple[float, float] = (45.0, 80.0)
    pp_jitter: float = 0.1
    max_azimuth_deg: float = 180.0
    p_tabletop_room: float = 0.3
    p_tabletop_open: float = 0.15
    n_noise: int = 10
    n_rect: int = 10
    max_render_elems: int = 1 << 27
    scene: SceneConfig = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for h, w in self.resolutions:
            if h % 16 or w % 16 or h <= 0 or w <= 0:
                raise ValueError(f"PairSamplerConfig: resolution {(h, w)} is not a positive multiple of 16")
        if not 0.0 <= self.nneg <= 1.0 or self.n_corres < 1:
            raise ValueError("PairSamplerConfig: need n_corres >= 1 and 0 <= nneg <= 1")
        object.__setattr__(self, "scene", SceneConfig(
            p_tabletop_room=self.p_tabletop_room, p_tabletop_open=self.p_tabletop_open,
            max_azimuth_deg=self.max_azimuth_deg, hfov_deg=tuple(self.hfov_deg), pp_jitter=self.pp_jitter,
            crop=self.crop))


def pair_rng(seed: int, step: int, index: int) -> np.random.Generator:
    """The numpy generator of training pair ``(step, index)``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(TRAIN_NAMESPACE, 1, step, index)))


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of a step's shared draws (its resolution)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(TRAIN_NAMESPACE, 2, step)))


def bank_rng(seed: int) -> np.random.Generator:
    """The generator of the training texture bank."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(TRAIN_NAMESPACE, 3)))


@lru_cache(maxsize=2)
def training_bank(seed: int, n_noise: int, n_rect: int) -> TextureBank:
    """The training texture bank of ``seed`` (immutable; built once per process)."""
    return make_texture_bank(bank_rng(seed), n_noise, n_rect)


def pair_spec(seed: int, step: int, index: int, h: int, w: int, config: PairSamplerConfig,
              bank: TextureBank) -> tuple[PairSpec, np.ndarray]:
    """Scene, cameras and (2, 4) colour-jitter parameters of pair ``(step, index)`` at (h, w)."""
    rng = pair_rng(seed, step, index)
    spec = make_pair(rng, bank, h, w, config.scene)
    c = config
    lo = np.array([1 - c.brightness, 1 - c.contrast, 1 - c.saturation, -c.hue])
    hi = np.array([1 + c.brightness, 1 + c.contrast, 1 + c.saturation, c.hue])
    return spec, rng.uniform(lo, hi, (2, 4))


def pair_arrays(seed: int, step: int, index: int, h: int, w: int, config: PairSamplerConfig,
                bank: TextureBank) -> tuple:
    """:func:`pair_spec` as plain arrays: ``(scene rows (see train_render.scene_rows), K1, P1, K2, P2,
    jitter (2, 4), key, angle_deg)``; small and picklable (what worker processes send back)."""
    spec, jit = pair_spec(seed, step, index, h, w, config, bank)
    return (scene_rows(spec.scene), spec.K1, spec.P1, spec.K2, spec.P2, jit, spec.key, spec.angle_deg)


_WORKER: dict = {}  # per worker process: (seed, config, bank), set once by _init_worker


def _init_worker(seed: int, config: PairSamplerConfig, bank: TextureBank) -> None:
    _WORKER["args"] = (seed, config, bank)


def _worker_arrays(job: tuple[int, int, int, int]) -> tuple:
    seed, config, bank = _WORKER["args"]
    step, index, h, w = job
    return pair_arrays(seed, step, index, h, w, config, bank)


class PairSampler:
    """Renders training pairs on ``device`` (see the module docstring)."""

    def __init__(self, config: PairSamplerConfig, *, seed: int, device: str | torch.device = "cpu",
                 bank: TextureBank | None = None, workers: int | None = None, prefetch: bool = True) -> None:
        """``workers > 0``: the CPU scene/camera setup runs in that many spawned processes (same pairs),
        and with ``prefetch`` the setup of ``(step + 1, start, stop)`` starts as soon as a batch is
        handed out; ``None``: 0 on a CPU device, else ``min(8, cpu_count // 2 - 1)``. ``bank``: a
        texture bank to use instead of the training bank of ``seed``."""
        self.config = config
        self.seed = int(seed)
        self.device = torch.device(device)
        self.bank = bank if bank is not None else training_bank(self.seed, config.n_noise, config.n_rect)
        self.textures = TorchTextures(self.bank, self.device)
        self.prefetch = prefetch
        self._pool = None
        self._pending: dict[tuple[int, int, int], object] = {}
        if workers is None:
            workers = 0 if self.device.type == "cpu" else max(0, min(8, (os.cpu_count() or 2) // 2 - 1))
        self.workers = workers
        if workers > 0:
            ctx = mp.get_context("spawn")
            self._pool = ctx.Pool(workers, initializer=_init_worker, initargs=(self.seed, config, self.bank))

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            self._pending.clear()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _submit(self, step: int, start: int, stop: int):
        h, w = self.resolution(step)
        jobs = [(step, i, h, w) for i in range(start, stop)]
        chunk = max(1, len(jobs) // (4 * self._pool._processes))
        return self._pool.map_async(_worker_arrays, jobs, chunksize=chunk)

    def _arrays(self, step: int, start: int, stop: int) -> list[tuple]:
        if self._pool is None:
            h, w = self.resolution(step)
            return [pair_arrays(self.seed, step, i, h, w, self.config, self.bank) for i in range(start, stop)]
        fut = self._pending.pop((step, start, stop), None)
        if fut is None:
            self._pending.clear()  # a jump: drop stale prefetches
            fut = self._submit(step, start, stop)
        if self.prefetch:
            self._pending[(step + 1, start, stop)] = self._submit(step + 1, start, stop)
        return fut.get()

    def resolution(self, step: int) -> tuple[int, int]:
        """(H, W) of every pair of ``step``."""
        rng = step_rng(self.seed, step)
        h, w = self.config.resolutions[int(rng.integers(len(self.config.resolutions)))]
        return (w, h) if rng.uniform() < self.config.portrait_prob else (h, w)

    def spec(self, step: int, index: int, h: int, w: int) -> tuple[PairSpec, np.ndarray]:
        """Scene, cameras and (2, 4) colour-jitter parameters of pair ``(step, index)`` at (h, w)."""
        return pair_spec(self.seed, step, index, h, w, self.config, self.bank)

    def batch(self, step: int, start: int, stop: int) -> tuple[dict, dict]:
        """Pairs ``[start, stop)`` of ``step`` as two view dicts (B = stop - start, tensors on the device):

        ``img`` (B, 3, H, W) float32 in [-1, 1]; ``true_shape`` (B, 2) int64 [H, W]; ``pts3d`` (B, H, W, 3)
        float32 world metres; ``depthmap`` (B, H, W) float32 z-depth (0 invalid); ``camera_pose`` (B, 4, 4)
        float32 cam-to-world; ``camera_intrinsics`` (B, 3, 3) float32; ``valid_mask`` and ``sky_mask`` (B, H,
        W) bool (sky: the ray hits nothing); ``is_metric_scale`` (B,) bool (True); ``corres`` (B, N, 2) int64
        (x, y) in this view and ``valid_corres`` (B, N) bool (slot k of both views: the two ends of one
        correspondence; the same mask in both); ``viewpoint_deg`` (B,) float32 (rotation angle between the
        two cameras); ``n_reciprocal`` (B,) int64 reciprocal pixels found; ``pair_id`` (B, 2) int64
        [step, index].
        """
        if not 0 <= start < stop:
            raise ValueError(f"PairSampler.batch: need 0 <= start < stop, got {start}, {stop}")
        h, w = self.resolution(step)
        rows, K1, P1, K2, P2, jits, keys, angles = zip(*self._arrays(step, start, stop))
        B = len(rows)
        dev = self.device
        packed = pack_rows(list(rows), dev)
        Ks = np.stack(K1 + K2).astype(np.float32)
        Ps = np.stack(P1 + P2)
        poses = np.stack([invert_pose(P) for P in Ps]).astype(np.float32)
        K = torch.from_numpy(Ks).to(dev)
        cfw = torch.from_numpy(Ps.astype(np.float32)).to(dev)
        sidx = torch.arange(B, device=dev).repeat(2)
        r = render_views(self.textures, packed, sidx, K, cfw, h, w, self.config.max_render_elems)
        img = r.rgb.permute(0, 3, 1, 2)
        if self.config.jitter:
            jit = np.concatenate([np.stack([j[0] for j in jits]), np.stack([j[1] for j in jits])])
            img = color_jitter(img, torch.from_numpy(jit.astype(np.float32)).to(dev))
        img = to_network_input(img)
        key = torch.tensor(keys, dtype=torch.int64, device=dev)
        c1, c2, vc, nrec = sample_correspondences(r.pts3d[:B], r.valid[:B], K[:B], cfw[:B], r.pts3d[B:],
                                                  r.valid[B:], K[B:], cfw[B:], key, self.config.n_corres,
                                                  self.config.nneg)
        angle = torch.tensor(angles, dtype=torch.float32, device=dev)
        shape = torch.tensor([[h, w]] * B, dtype=torch.int64, device=dev)
        pid = torch.tensor([[step, i] for i in range(start, stop)], dtype=torch.int64, device=dev)
        pose_t = torch.from_numpy(poses).to(dev)
        views = []
        for sl, corres in ((slice(0, B), c1), (slice(B, 2 * B), c2)):
            views.append({
                "img": img[sl], "true_shape": shape, "pts3d": r.pts3d[sl], "depthmap": r.depth[sl],
                "camera_pose": pose_t[sl], "camera_intrinsics": K[sl], "valid_mask": r.valid[sl],
                "sky_mask": ~r.valid[sl], "is_metric_scale": torch.ones(B, dtype=torch.bool, device=dev),
                "corres": corres, "valid_corres": vc, "viewpoint_deg": angle, "n_reciprocal": nrec,
                "pair_id": pid,
            })
        return views[0], views[1]


def _bench(args: argparse.Namespace) -> None:
    dev = torch.device(args.device)
    cfg = PairSamplerConfig(n_corres=args.n_corres)
    sampler = PairSampler(cfg, seed=args.seed, device=dev, workers=args.workers)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    sampler.batch(0, 0, args.batch)  # warm-up
    sync()
    t_setup = 0.0
    dt = 0.0
    for step in range(1, args.steps + 1):
        if not sampler.workers:  # the CPU scene/camera setup alone, measured on a few pairs (not counted)
            ts = time.perf_counter()
            h, w = sampler.resolution(step)
            k = min(4, args.batch)
            for i in range(k):
                sampler.spec(step, i, h, w)
            t_setup += (time.perf_counter() - ts) * args.batch / k
        t0 = time.perf_counter()
        v1, v2 = sampler.batch(step, 0, args.batch)
        sync()
        dt += time.perf_counter() - t0
    n = args.batch * args.steps
    pos = float(v1["valid_corres"].float().mean())
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"device={dev} ({name}) batch={args.batch} steps={args.steps} n_corres={args.n_corres}")
    setup = f"CPU scene setup share {t_setup / max(dt, 1e-9):.0%} est." if not sampler.workers else (
        f"setup in {sampler.workers} workers, prefetched")
    print(f"pairs/s: {n / dt:.1f}  ({setup}; "
          f"last step {tuple(v1['true_shape'][0].tolist())}, positives {pos:.2f} of slots)")
    sampler.close()
    if dev.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GiB")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m datasets.synthetic.train_pairs",
                                description="Benchmark the synthetic training-pair generator.")
    p.add_argument("--bench", action="store_true", help="time batch() and print pairs/s")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-corres", type=int, default=2048)
    p.add_argument("--workers", type=int, default=None,
                   help="CPU processes for the scene setup (0: inline; default: 0 on CPU, else up to 8)")
    args = p.parse_args(argv)
    if not args.bench:
        p.error("nothing to do: pass --bench")
    _bench(args)


if __name__ == "__main__":
    main()
