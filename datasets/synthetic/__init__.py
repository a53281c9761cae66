"""Synthetic multi-view suite: an exact ray caster and writers for the six benchmark layouts.

Public API (frames and units: OpenCV ``cam_from_world`` 4x4, pixel centres at integers, metres
except DTU's millimetres):

* ``suite.write_suite(out_dir, seed=0, size="default", benchmarks=None, workers=1) -> dict`` and
  ``suite.ensure_suite(...)`` (reuses folders whose ``MANIFEST.json`` matches). ``out_dir/<bench>``
  for ``mapfree, aachen, inloc, co3dv2, re10k, dtu`` is that benchmark's ``--data`` root.
  CLI: ``mast3r-bench synth [--out DIR] [--seed S] [--size small|default]``.
* ``sidecar.Sidecar.find(image_path)`` -> the root's exact ground truth: ``.truth(image)``
  (``K``, ``cam_from_world``, size, meta), ``.depth(image)`` (H, W) float32 z-depth,
  ``.correspondences(image0, image1, max_points=None, ...) -> (pts0, pts1)`` (N, 2) float64, and
  ``.pairs`` (evaluated pairs with ``angle_deg`` and ``bucket``). ``gt_matches`` below wraps it.
* ``gt.gt_correspondences(depth0, K0, cam0_from_world, depth1, K1, cam1_from_world, max_points=None,
  occlusion_tol=0.01, stride=1, seed=0)``, ``gt.backproject(depth, K, cam_from_world)``,
  ``gt.project``, ``gt.epipolar_distance``.
* ``geometry.viewpoint_angle_deg(P0, P1)``, ``geometry.viewpoint_bucket(angle)`` (``"0-30"``,
  ``"30-60"``, ``"60-90"``, ``"90-180"``).
* ``render.render(scene, K, cam_from_world, width, height) -> Render`` (image, depth, valid,
  object_id) for scenes from ``scene.room_scene`` / ``scene.tabletop_scene``.
* Training data (torch, GPU or CPU): ``train_pairs.PairSampler(PairSamplerConfig(...), seed=S,
  device=...).batch(step, start, stop) -> (view1, view2)`` renders fresh random scenes
  (``train_scenes``) with the batched ray caster ``train_render`` and samples GT correspondences
  (``train_corres``); never the suite's seeds. ``python -m datasets.synthetic.train_pairs --bench``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["gt_matches"]


def gt_matches(image0: str | Path, image1: str | Path, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Exact correspondences ``(pts0, pts1)`` (N, 2) float64 between two images of one synthetic
    benchmark root (found from ``image0``'s path); keyword arguments go to
    :func:`datasets.synthetic.gt.gt_correspondences`. Raises ``FileNotFoundError`` outside a
    synthetic root and ``KeyError`` for an unknown image."""
    from datasets.synthetic.sidecar import Sidecar

    side = Sidecar.find(Path(image0))
    return side.correspondences(image0, image1, **kwargs)
