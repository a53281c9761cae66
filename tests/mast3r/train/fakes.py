"""A tiny deterministic pair source for loop tests: pair (step, i) depends only on (seed, step, i)."""

from __future__ import annotations

import torch

TINY_MODEL = (
    "AsymmetricMASt3R(pos_embed='RoPE100', img_size=(32, 32), head_type='catmlp+dpt', "
    "output_mode='pts3d+desc24', depth_mode=('exp', -inf, inf), conf_mode=('exp', 1, inf), "
    "enc_embed_dim=32, enc_depth=1, enc_num_heads=2, dec_embed_dim=32, dec_depth=2, dec_num_heads=2, "
    "two_confs=True, desc_conf_mode=('exp', 0, inf), dpt_layer_dims=(8, 8, 8, 8), dpt_feature_dim=8, "
    "dpt_last_dim=8, local_feat_hidden_factor=0.5)"
)


class FakePairs:
    """Views of size ``hw``: random images, a fronto-parallel plane at depth 2-3 m seen by two cameras
    1 m apart, every pixel valid, ``n`` correspondences of which the first half are positives."""

    def __init__(self, seed: int, hw: tuple[int, int] = (32, 32), n: int = 16) -> None:
        self.seed, self.hw, self.n = seed, hw, n

    def _pair(self, step: int, i: int) -> tuple[dict, dict]:
        g = torch.Generator().manual_seed(self.seed * 1_000_000 + step * 1000 + i)
        h, w = self.hw
        depth = 2.0 + torch.rand((), generator=g)
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
        f = float(w)
        K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
        views = []
        for k in range(2):
            pose = torch.eye(4)
            pose[0, 3] = 0.2 * k
            cam = torch.stack(((xs - w / 2) * depth / f, (ys - h / 2) * depth / f, depth.expand(h, w)), -1)
            world = cam + pose[:3, 3]
            corres = torch.stack((torch.randint(0, w, (self.n,), generator=g),
                                  torch.randint(0, h, (self.n,), generator=g)), -1)
            views.append({
                "img": torch.rand(3, h, w, generator=g) * 2 - 1, "true_shape": torch.tensor([h, w]),
                "pts3d": world, "camera_pose": pose, "camera_intrinsics": K,
                "valid_mask": torch.ones(h, w, dtype=torch.bool),
                "sky_mask": torch.zeros(h, w, dtype=torch.bool),
                "is_metric_scale": torch.tensor(True), "corres": corres,
                "valid_corres": torch.arange(self.n) < self.n // 2,
            })
        views[1]["valid_corres"] = views[0]["valid_corres"]
        return views[0], views[1]

    def batch(self, step: int, start: int, stop: int) -> tuple[dict, dict]:
        pairs = [self._pair(step, i) for i in range(start, stop)]
        return tuple({k: torch.stack([p[v][k] for p in pairs]) for k in pairs[0][v]} for v in (0, 1))  # type: ignore[return-value]
