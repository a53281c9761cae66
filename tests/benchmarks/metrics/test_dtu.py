"""DTU chamfer: exact greedy thinning and every DTUeval-python step, on hand-built scenes."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.metrics.dtu import dtu_chamfer, greedy_radius_downsample


def naive_greedy(points: np.ndarray, radius: float) -> np.ndarray:
    """The O(N^2) sequential definition."""
    removed = np.zeros(len(points), dtype=bool)
    keep = np.zeros(len(points), dtype=bool)
    for i in range(len(points)):
        if removed[i]:
            continue
        keep[i] = True
        removed |= ((points - points[i]) ** 2).sum(axis=1) <= radius * radius
    return keep


@pytest.mark.parametrize("seed", range(8))
def test_greedy_equals_sequential_on_random_clouds(seed):
    rng = np.random.default_rng(seed)
    pts = rng.random((600, 3)) * rng.uniform(0.6, 3.0)
    if seed % 2:
        pts = np.concatenate([pts, pts[:40]])          # exact duplicates
    if seed % 3 == 0:
        pts = pts[np.lexsort(pts.T[::-1])]             # scan order: long dependency chains
    np.testing.assert_array_equal(greedy_radius_downsample(pts, 0.2), naive_greedy(pts, 0.2))


def test_greedy_boundary_distance_is_inclusive_and_chains_are_exact():
    line = np.zeros((400, 3))
    line[:, 0] = np.arange(400) * 0.25                 # neighbours exactly at the radius (exact binary)
    np.testing.assert_array_equal(greedy_radius_downsample(line, 0.25), np.arange(400) % 2 == 0)
    float_line = line * 0.8                            # k * 0.2: rounding puts some pairs just outside
    np.testing.assert_array_equal(greedy_radius_downsample(float_line, 0.2), naive_greedy(float_line, 0.2))
    chain = np.zeros((3000, 3))
    chain[:, 0] = np.arange(3000) * 0.15               # each point depends on the previous one
    np.testing.assert_array_equal(greedy_radius_downsample(chain, 0.2), np.arange(3000) % 2 == 0)
    assert greedy_radius_downsample(np.zeros((0, 3)), 0.2).shape == (0,)
    assert greedy_radius_downsample(np.zeros((5, 3)), 0.2).tolist() == [True, False, False, False, False]


@pytest.mark.slow
def test_greedy_million_points_matches_on_a_sample():
    rng = np.random.default_rng(0)
    pts = rng.random((1_000_000, 3)) * np.array([60.0, 60.0, 10.0])
    keep = greedy_radius_downsample(pts, 0.2)
    # A corner window thinned on its own agrees with the full run 2 mm (10 hops) inside its border.
    window = np.all(pts < [4.0, 4.0, 10.0], axis=1)
    sub = pts[window]
    inner = np.all(sub < [2.0, 2.0, 10.0], axis=1)
    np.testing.assert_array_equal(keep[window][inner], naive_greedy(sub, 0.2)[inner])


def grid_scene():
    """STL: a 11 x 11 grid at z = 5 (+5 points below the plane, +1 far point); data: the grid at
    z = 5.5 (+1 far point in the mask). The data point (10, 10, 5.5) sits in an unobserved voxel."""
    xs, ys = np.meshgrid(np.arange(11.0), np.arange(11.0), indexing="ij")
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    stl = np.concatenate([np.c_[grid, np.full(121, 5.0)],
                          np.c_[np.arange(5.0), np.full(5, 20.0), np.full(5, -3.0)],
                          [[35.0, 35.0, 35.0]]])
    data = np.concatenate([np.c_[grid, np.full(121, 5.5)], [[5.0, 5.0, 30.0]]])
    obs = np.ones((41, 41, 41), dtype=bool)
    obs[10, 10, 6] = False                             # round(5.5) = 6 (half to even)
    bb = np.array([[0.0, 0.0, 0.0], [40.0, 40.0, 40.0]])
    plane = np.array([0.0, 0.0, 1.0, -4.0])            # above: z > 4
    return data, stl, obs, bb, 1.0, plane


def test_chamfer_hand_worked_scene():
    r = dtu_chamfer(*grid_scene())
    assert r.accuracy_mm == pytest.approx(0.5, abs=1e-12)
    # Completeness targets the in-bounds points, NOT the ObsMask-filtered ones: STL (10, 10, 5) still
    # finds (10, 10, 5.5) at 0.5 mm (with the filtered set it would be sqrt(1.25)).
    assert r.completeness_mm == pytest.approx(0.5, abs=1e-12)
    assert r.overall_mm == pytest.approx(0.5, abs=1e-12)
    assert r.as_dict() == {
        "accuracy_mm": r.accuracy_mm, "completeness_mm": r.completeness_mm, "overall_mm": r.overall_mm,
        "n_points": 122, "n_downsampled": 122, "n_in_bounds": 122, "n_in_obs": 121,
        "n_accuracy_used": 120,        # the far data point (25 mm) is left out of the mean
        "n_stl": 127, "n_stl_above": 122,
        "n_completeness_used": 121,    # the far STL point is left out
    }


def test_chamfer_round_half_even_voxels():
    obs = np.zeros((11, 11, 11), dtype=bool)
    obs[2, 0, 0] = True                                # 2.5 -> 2 (half to even), not 3
    bb = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]])
    data = np.array([[2.5, 0.0, 0.0], [3.5, 0.0, 0.0]])  # 3.5 -> 4: unobserved
    stl = np.array([[2.5, 0.0, 0.3], [3.5, 0.0, 0.7]])
    r = dtu_chamfer(data, stl, obs, bb, 1.0, np.array([0.0, 0.0, 1.0, 1.0]))
    assert r.n_in_obs == 1 and r.accuracy_mm == pytest.approx(0.3, abs=1e-12)
    assert r.completeness_mm == pytest.approx(0.5, abs=1e-12)


def test_chamfer_bounding_box_float32_and_asymmetric_margins():
    obs = np.ones((3, 3, 3), dtype=bool)
    stl = np.array([[0.0, 0.0, 1.0]])
    plane = np.array([0.0, 0.0, 1.0, 0.0])

    def n_in(x, bb_min_x=0.0):
        bb = np.array([[bb_min_x, 0.0, 0.0], [10.0, 10.0, 10.0]])
        return dtu_chamfer(np.array([[x, 0.0, 0.0]]), stl, obs, bb, 1.0, plane).n_in_bounds

    assert [n_in(-60.0), n_in(-60.01), n_in(129.99), n_in(130.0)] == [1, 0, 1, 0]
    # BB is cast to float32: float32(0.1) - 60 = -59.9000015..., so -59.9000005 is in bounds
    # (a float64 test, 0.1 - 60 = -59.9, would reject it).
    assert float(np.float32(0.1) - 60) < -59.9000005 < 0.1 - 60
    assert n_in(-59.9000005, bb_min_x=0.1) == 1


def test_chamfer_shuffle_seeded_and_file_order():
    obs = np.ones((3, 3, 3), dtype=bool)
    bb = np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    stl, plane = np.array([[0.0, 0.0, 1.0]]), np.array([0.0, 0.0, 1.0, 0.0])
    pts = np.array([[0.15, 0, 0], [0.0, 0, 0], [0.3, 0, 0]])  # the middle point first removes both
    args = (stl, obs, bb, 1.0, plane)
    assert dtu_chamfer(pts, *args, shuffle=False).n_downsampled == 1
    assert dtu_chamfer(pts[[1, 0, 2]], *args, shuffle=False).n_downsampled == 2
    counts = {dtu_chamfer(pts, *args, seed=s).n_downsampled for s in range(12)}
    assert counts == {1, 2}
    assert dtu_chamfer(pts, *args, seed=3) == dtu_chamfer(pts, *args, seed=3)


def test_chamfer_empty_reconstruction_gives_nan_not_a_crash():
    data, stl, obs, bb, res, plane = grid_scene()
    r = dtu_chamfer(np.array([[500.0, 500.0, 500.0]]), stl, obs, bb, res, plane)
    assert r.n_in_bounds == 0 and np.isnan(r.accuracy_mm) and np.isnan(r.completeness_mm)
    with pytest.raises(ValueError, match="3D"):
        dtu_chamfer(data, stl, obs[0], bb, res, plane)
