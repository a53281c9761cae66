"""Coarse-to-fine: window grid, window-pair scoring and selection, fine matches mapped back."""

from __future__ import annotations

import numpy as np
import pytest

from mast3r.coarse_to_fine import (
    CoarseToFineConfig,
    coarse_to_fine_match,
    crop_windows,
    dedupe_matches,
    fine_match,
    greedy_select,
    make_window_grid,
    normalize_windows,
    score_window_pairs,
    select_window_pairs,
    window_resolution,
)


def test_window_grid_hand_worked_1200x1600():
    # window 384x512; x: n = 2 + (1600-512-1)//256 = 6 starts in [0, 1088]; y: n = 2 + 815//192 = 6
    grid = make_window_grid((1200, 1600), 512, 0.5)
    assert window_resolution((1200, 1600)) == (384, 512)
    xs, ys = sorted(set(grid[:, 0].tolist())), sorted(set(grid[:, 1].tolist()))
    assert xs == [0, 218, 435, 653, 870, 1088]
    assert ys == [0, 163, 326, 490, 653, 816]
    assert grid.shape == (36, 4)
    assert grid[:7, :2].tolist() == [[0, 0], [218, 0], [435, 0], [653, 0], [870, 0], [1088, 0], [0, 163]]
    assert np.all(grid[:, 2] - grid[:, 0] == 512) and np.all(grid[:, 3] - grid[:, 1] == 384)


@pytest.mark.parametrize("shape", [(700, 1000), (1000, 700), (512, 512), (300, 400), (1024, 1023)])
@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.75])
def test_window_grid_covers_image_with_overlap(shape, overlap):
    grid = make_window_grid(shape, 512, overlap)
    h, w = window_resolution(shape)
    assert h % 16 == 0 and w % 16 == 0 and max(h, w) <= 512 and h <= shape[0] and w <= shape[1]
    assert grid[:, 0].min() == 0 and grid[:, 1].min() == 0
    assert grid[:, 2].max() == shape[1] - (shape[1] - w if len(set(grid[:, 0])) == 1 else 0)
    for axis, win in ((0, w), (1, h)):
        starts = np.unique(grid[:, axis])
        if len(starts) > 1:
            assert np.all(win - np.diff(starts) >= overlap * win - 1)  # rounding: at most 1 px


def test_normalize_windows_recenters_resizes_and_shifts_inside():
    cells = np.array([[100, 100, 200, 180], [-50, -40, 30, 60], [950, 650, 1200, 900]], float)
    out = normalize_windows(cells, (700, 1000), (384, 512))
    assert out.tolist() == [[0, 0, 512, 384], [0, 0, 512, 384], [488, 316, 1000, 700]]
    out = normalize_windows(np.array([[400, 300, 500, 400]]), (1000, 1000), (384, 512))
    assert out.tolist() == [[194, 158, 706, 542]]  # centre (450, 350) kept


def test_greedy_selection_hand_worked():
    w = np.array([[1.0, 1.0, 0.0, 0.0],
                  [0.9, 0.9, 0.9, 0.0],
                  [0.0, 0.0, 0.0, 1.0]])
    # total = 1 + 1 + 0.9 + 1 = 3.9; pick 1 (2.7), then pair 2 (1.0): 3.7 >= 0.9 * 3.9 = 3.51
    assert greedy_select(w, 0.9) == [1, 2]
    # full coverage also needs pair 0's leftover 0.1 + 0.1
    assert greedy_select(w, 1.0) == [1, 2, 0]
    assert greedy_select(np.zeros((0, 5))) == [] and greedy_select(np.zeros((2, 3))) == []


def test_dedupe_keeps_most_confident_copy():
    xy0 = np.array([[1, 1], [2, 2], [1, 1], [3, 3], [1, 1]], float)
    xy1 = np.array([[5, 5], [6, 6], [5, 5], [7, 7], [5, 6]], float)
    conf = np.array([0.5, 0.1, 0.9, 0.2, 0.3], np.float32)
    assert dedupe_matches(xy0, xy1, conf).tolist() == [1, 2, 3, 4]


# ------------------------------------------------------------------ synthetic homography scene

H_01 = np.array([[1.08, 0.06, -40.0], [-0.05, 1.05, 25.0], [2e-5, -1e-5, 1.0]])  # view-0 px -> view-1 px


def _apply(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = np.c_[xy, np.ones(len(xy))] @ h.T
    return p[:, :2] / p[:, 2:]


@pytest.fixture(scope="module")
def scene():
    """Images whose pixels store a view-0 coordinate: view 0 its own (x, y); view 1 the view-0
    pixel that maps to it. A crop therefore knows where it came from."""
    h0, w0, h1, w1 = 900, 1200, 960, 1280
    ys, xs = np.mgrid[0:h0, 0:w0]
    img0 = np.stack([xs, ys], -1).astype(np.float64)
    ys, xs = np.mgrid[0:h1, 0:w1]
    img1 = _apply(np.linalg.inv(H_01), np.c_[xs.ravel(), ys.ravel()]).reshape(h1, w1, 2)
    return img0, img1


def oracle_match_crops(crops0, crops1, step=6):
    """Exact fine matcher: for every `step`-th crop-1 pixel, the nearest crop-0 pixel it sees."""
    out = []
    for c0, c1 in zip(crops0, crops1):
        origin0 = c0[0, 0]  # view-0 (x, y) of the crop's top-left pixel
        ys, xs = np.mgrid[0 : c1.shape[0] : step, 0 : c1.shape[1] : step]
        local0 = np.rint(c1[ys, xs].reshape(-1, 2) - origin0)
        ok = (local0 >= 0).all(1) & (local0[:, 0] < c0.shape[1]) & (local0[:, 1] < c0.shape[0])
        xy1 = np.c_[xs.ravel(), ys.ravel()][ok]
        out.append((local0[ok].astype(np.int32), xy1.astype(np.int32), np.ones(ok.sum(), np.float32)))
    return out


def _coarse(scene, step=40):
    img0, img1 = scene
    ys, xs = np.mgrid[0 : img0.shape[0] : step, 0 : img0.shape[1] : step]
    xy0 = np.c_[xs.ravel(), ys.ravel()].astype(np.float64)
    xy1 = _apply(H_01, xy0)
    ok = (xy1 >= 0).all(1) & (xy1[:, 0] < img1.shape[1]) & (xy1[:, 1] < img1.shape[0])
    return xy0[ok], xy1[ok]


def test_selected_windows_have_network_size_and_cover_the_matches(scene):
    img0, img1 = scene
    xy0, xy1 = _coarse(scene)
    cfg = CoarseToFineConfig()
    win0, win1, weights = score_window_pairs(xy0, xy1, img0.shape[:2], img1.shape[:2], cfg)
    assert weights.shape == (len(win0), len(xy0)) and len(win0) > 10
    sel0, sel1 = select_window_pairs(xy0, xy1, img0.shape[:2], img1.shape[:2], cfg)
    assert 1 <= len(sel0) < len(win0)
    for win, shape in ((sel0, img0.shape), (sel1, img1.shape)):
        h, w = window_resolution(shape[:2])
        assert np.all(win[:, 2] - win[:, 0] == w) and np.all(win[:, 3] - win[:, 1] == h)
        assert win.min() >= 0 and np.all(win[:, 2] <= shape[1]) and np.all(win[:, 3] <= shape[0])
    # partner windows really look at the same content: the matched points' centroid maps inside
    idx = [int(np.flatnonzero((win0 == a).all(1) & (win1 == b).all(1))[0]) for a, b in zip(sel0, sel1)]
    chosen = weights[idx]
    assert chosen.max(0).sum() >= 0.75 * weights.max(0).sum()
    for a, b in zip(sel0, sel1):
        inside = (xy0[:, 0] >= a[0]) & (xy0[:, 0] < a[2]) & (xy0[:, 1] >= a[1]) & (xy0[:, 1] < a[3])
        in_b = ((xy1[inside, 0] >= b[0]) & (xy1[inside, 0] < b[2]) & (xy1[inside, 1] >= b[1])
                & (xy1[inside, 1] < b[3]))
        assert in_b.mean() > 0.5


def test_fine_matches_map_back_to_the_homography(scene):
    img0, img1 = scene
    xy0, xy1 = _coarse(scene)
    calls = []

    def match_crops(c0, c1):
        calls.append(len(c0))
        return oracle_match_crops(c0, c1)

    res = coarse_to_fine_match(img0, img1, xy0, xy1, match_crops, CoarseToFineConfig(max_batch=3))
    assert len(res) > 5000 and sum(calls) == len(res.windows0) and max(calls) <= 3
    err = np.linalg.norm(_apply(H_01, res.xy0) - res.xy1, axis=1)
    # view-0 pixels are the rounded pre-image of a view-1 pixel: error <= Jacobian * sqrt(2)/2
    assert err.max() < 1.0
    assert len(np.unique(np.c_[res.xy0, res.xy1], axis=0)) == len(res)  # de-duplicated
    assert res.pair_index.min() >= 0 and res.pair_index.max() < len(res.windows0)
    # every match lies in the windows of its pair
    w0, w1 = res.windows0[res.pair_index], res.windows1[res.pair_index]
    assert np.all((res.xy0 >= w0[:, :2]) & (res.xy0 < w0[:, 2:]))
    assert np.all((res.xy1 >= w1[:, :2]) & (res.xy1 < w1[:, 2:]))


def test_crop_windows_are_views_and_bad_matcher_output_is_reported(scene):
    img0, img1 = scene
    win = np.array([[10, 20, 26, 52]])
    (crop,) = crop_windows(img0, win)
    assert crop.shape == (32, 16, 2) and crop[0, 0].tolist() == [10, 20] and np.shares_memory(crop, img0)
    with pytest.raises(ValueError, match="returned 0 results for 1"):
        fine_match(img0, img1, win, win, lambda a, b: [])
    with pytest.raises(ValueError, match="result 0"):
        fine_match(img0, img1, win, win, lambda a, b: [(np.zeros((2, 2)), np.zeros((3, 2)), np.ones(2))])


def test_too_few_coarse_matches_gives_empty_result(scene):
    img0, img1 = scene
    res = coarse_to_fine_match(img0, img1, np.array([[5.0, 5.0]]), np.array([[7.0, 7.0]]),
                               oracle_match_crops)
    assert len(res) == 0 and res.windows0.shape == (0, 4) and res.xy0.shape == (0, 2)
    with pytest.raises(ValueError, match="too small"):
        make_window_grid((10, 100))
    with pytest.raises(ValueError, match="overlap"):
        CoarseToFineConfig(overlap=1.0)
