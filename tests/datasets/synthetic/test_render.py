"""The ray caster: analytic depth, validity/ids, photometric consistency between views, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.synthetic.geometry import intrinsics, look_at
from datasets.synthetic.gt import backproject, gt_correspondences
from datasets.synthetic.render import apply_night, render
from datasets.synthetic.scene import Quads, Scene, Spheres, room_scene, tabletop_scene
from datasets.synthetic.textures import make_texture_bank


@pytest.fixture(scope="module")
def bank():
    return make_texture_bank(np.random.default_rng(0), n_noise=2, n_rect=2)


def _scene(bank, quads: Quads | None = None, spheres: Spheres | None = None) -> Scene:
    e = np.zeros((0, 3))
    q = quads or Quads(e, e, e, np.zeros(0), np.zeros(0), np.zeros(0, int), np.zeros(0), np.zeros((0, 2)), e,
                       np.zeros(0, int), np.zeros(0, bool))
    s = spheres or Spheres(e, np.zeros(0), np.zeros((0, 3, 3)), np.zeros(0, int), np.zeros((0, 2)), e,
                           np.zeros(0, int))
    bounds = np.array([[-9, -9, -9], [9, 9, 9.0]])
    return Scene(q, s, bank, np.array([0, 0, 1.0]), 0.5, 0.5, np.zeros(3), bounds, ())


def test_plane_depth_is_analytic(bank):
    floor = Quads(center=np.zeros((1, 3)), u=np.array([[1.0, 0, 0]]), v=np.array([[0, 1.0, 0]]),
                  hu=np.array([5.0]), hv=np.array([5.0]), tex=np.array([0]), tex_scale=np.array([1.0]),
                  tex_offset=np.zeros((1, 2)), tint=np.ones((1, 3)), obj=np.array([0]),
                  one_sided=np.array([False]))
    K = intrinsics(60.0, 60.0, 31.5, 23.5)
    P = look_at([0.2, -1.5, 1.2], [0, 0.3, 0], roll_deg=5)
    r = render(_scene(bank, quads=floor), K, P, 64, 48)
    world = backproject(r.depth.astype(np.float64), K, P)
    # every valid pixel lies on z = 0 up to float32 depth rounding (relative 6e-8 of ~2 m)
    assert r.valid.mean() > 0.5
    np.testing.assert_allclose(world[r.valid][:, 2], 0.0, atol=1e-6)
    assert np.all(r.depth[~r.valid] == 0) and np.all(r.object_id[~r.valid] == -1)
    assert np.all(r.image[~r.valid] == 0)  # black background


def test_sphere_depth_is_analytic(bank):
    sph = Spheres(center=np.array([[0.0, 0.0, 0.0]]), radius=np.array([0.5]), rot=np.eye(3)[None],
                  tex=np.array([1]), repeats=np.array([[2.0, 1.0]]), tint=np.ones((1, 3)), obj=np.array([3]))
    K = intrinsics(80.0, 80.0, 32.0, 24.0)
    P = look_at([0.0, -3.0, 0.0], [0, 0, 0])
    r = render(_scene(bank, spheres=sph), K, P, 65, 49)
    assert r.depth[24, 32] == pytest.approx(2.5, abs=1e-6)
    world = backproject(r.depth.astype(np.float64), K, P)[r.valid]
    np.testing.assert_allclose(np.linalg.norm(world, axis=1), 0.5, atol=2e-6)
    assert set(np.unique(r.object_id)) == {-1, 3}
    # the silhouette is a disc of angular radius asin(r / d)
    ys, xs = np.nonzero(r.valid)
    radius_px = 80.0 * np.tan(np.arcsin(0.5 / 3.0))
    assert np.hypot(xs - 32, ys - 24).max() == pytest.approx(radius_px, abs=1.0)


def test_views_are_photometrically_consistent(bank):
    scene = room_scene(np.random.default_rng(5), bank)
    K = intrinsics(140.0, 140.0, 79.5, 59.5)
    P0 = look_at([2.2, 0.4, 1.4], [0, 0, 0.5])
    P1 = look_at([1.6, 1.6, 1.3], [0, 0, 0.5])
    r0, r1 = render(scene, K, P0, 160, 120), render(scene, K, P1, 160, 120)
    pts0, pts1 = gt_correspondences(r0.depth, K, P0, r1.depth, K, P1)
    assert len(pts0) > 3000
    c0 = r0.image[pts0[:, 1].astype(int), pts0[:, 0].astype(int)].astype(float)
    # bilinear colour of view 1 at the sub-pixel projections
    x, y = pts1[:, 0], pts1[:, 1]
    x0, y0 = np.clip(np.floor(x).astype(int), 0, 158), np.clip(np.floor(y).astype(int), 0, 118)
    ax, ay = (x - x0)[:, None], (y - y0)[:, None]
    im = r1.image.astype(float)
    c1 = (im[y0, x0] * (1 - ax) * (1 - ay) + im[y0, x0 + 1] * ax * (1 - ay) + im[y0 + 1, x0] * (1 - ax) * ay
          + im[y0 + 1, x0 + 1] * ax * ay)
    err = np.abs(c0 - c1).mean(axis=1)
    shuffled = np.abs(c0 - c1[np.random.default_rng(0).permutation(len(c1))]).mean(axis=1)
    assert np.median(err) < 3.0  # grey levels; texture filtering differs slightly between views
    assert np.median(shuffled) > 10 * np.median(err)


def test_render_is_deterministic_and_seeded(bank):
    K = intrinsics(60.0, 60.0, 39.5, 29.5)
    P = look_at([1.0, 1.0, 0.6], [0, 0, 0.1])
    a = render(tabletop_scene(np.random.default_rng(1), bank, room=False), K, P, 80, 60)
    b = render(tabletop_scene(np.random.default_rng(1), bank, room=False), K, P, 80, 60)
    c = render(tabletop_scene(np.random.default_rng(2), bank, room=False), K, P, 80, 60)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert not np.array_equal(a.image, c.image)
    assert (~a.valid).any() and a.valid.any()  # no room: background is invalid


def test_night_is_darker_noisy_and_seeded():
    day = np.full((40, 50, 3), 150, np.uint8)
    n1 = apply_night(day, np.random.default_rng(0))
    n2 = apply_night(day, np.random.default_rng(0))
    np.testing.assert_array_equal(n1, n2)
    assert n1.mean() < 0.5 * day.mean()
    assert n1[..., 0].std() > 2.0  # sensor noise
