"""CO3D / RealEstate10K relative pose metrics: hand-worked values and PoseDiffusion/PyTorch3D quirks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.metrics import pose as pm


def rot(axis, deg):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = math.radians(deg)
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * K @ K


def random_cameras(rng, n, max_deg=180.0):
    rotations = [rot(rng.normal(size=3), rng.uniform(0, max_deg)) for _ in range(n)]
    return cameras(rng.normal(size=(n, 3)), rotations)


def cameras(centres, rotations):
    R = np.stack(rotations)
    t = -np.einsum("nij,nj->ni", R, np.asarray(centres, float))
    return R, t


# The PyTorch3D tangent line at cos = 1 - 1e-4, evaluated at cos = 1 (identical rotations).
_X0 = 1 - 1e-4
QUIRK_ZERO_DEG = math.degrees((1 - _X0) * (-1 / math.sqrt(1 - _X0 * _X0)) + math.acos(_X0))


def test_quirk_constant_is_0_405_deg():
    assert QUIRK_ZERO_DEG == pytest.approx(0.40514, abs=1e-5)


def test_all_pairs_lexicographic():
    i, j = pm.all_pairs(4)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def test_identical_poses_faithful_quirk_and_exact_zero():
    R, t = cameras([[0, 0, 0], [1, 0.2, 0], [0.3, -1, 2]],
                   [rot([1, 2, 3], 20), rot([0, 1, 0], -35), np.eye(3)])
    r, tr = pm.relative_pose_errors(R, t, R, t)
    assert r.dtype == np.float32 and tr.dtype == np.float32 and r.shape == (3,)
    np.testing.assert_allclose(r, QUIRK_ZERO_DEG, atol=2e-4)
    assert np.all(tr < 0.06)  # float32 acos(sqrt(.)) near 1: 0 or a few 1e-2 deg
    r64, t64 = pm.relative_pose_errors(R, t, R, t, faithful=False)
    assert r64.dtype == np.float64
    np.testing.assert_allclose(r64, 0, atol=1e-6)
    np.testing.assert_allclose(t64, 0, atol=1e-6)


@pytest.mark.parametrize("faithful", [True, False])
def test_hand_worked_rotated_third_camera(faithful):
    # Camera 2 (at the origin, identity rotation) is rotated by 20 deg about its y axis in place.
    # Pairs (0,2) and (1,2): relative rotation off by 20 deg; relative translation R_2 (c_i - c_2) lies
    # in the x-z plane and rotates by 20 deg about y. Pair (0,1) is untouched.
    centres = [[1, 0, 0], [0, 0, 2], [0, 0, 0]]
    R_gt, t_gt = cameras(centres, [rot([1, 0, 0], 30), rot([0, 0, 1], -40), np.eye(3)])
    R_pred, t_pred = cameras(centres, [rot([1, 0, 0], 30), rot([0, 0, 1], -40), rot([0, 1, 0], 20)])
    r, tr = pm.relative_pose_errors(R_gt, t_gt, R_pred, t_pred, faithful=faithful)
    zero = QUIRK_ZERO_DEG if faithful else 0.0
    tol = 2e-3 if faithful else 1e-9
    np.testing.assert_allclose(r, [zero, 20, 20], atol=tol)
    np.testing.assert_allclose(tr, [0, 20, 20], atol=0.06 if faithful else 1e-9)


@pytest.mark.parametrize("faithful", [True, False])
def test_prediction_in_a_similarity_frame(faithful):
    rng = np.random.default_rng(0)
    n = 6
    centres = rng.normal(size=(n, 3)) * 3
    R_gt, t_gt = cameras(centres, [rot(rng.normal(size=3), rng.uniform(0, 180)) for _ in range(n)])
    Q, s, d = rot([1, -2, 0.5], 70), 3.7, np.array([4.0, -1.0, 9.0])
    R_pred = R_gt @ Q.T                                   # x_w' = s Q x_w + d
    t_pred = s * t_gt - np.einsum("nij,j->ni", R_pred, d)
    r, tr = pm.relative_pose_errors(R_gt, t_gt, R_pred, t_pred, faithful=faithful)
    assert r.shape == (15,)
    np.testing.assert_allclose(r, QUIRK_ZERO_DEG if faithful else 0, atol=2e-3 if faithful else 1e-7)
    np.testing.assert_allclose(tr, 0, atol=0.06 if faithful else 1e-6)


@pytest.mark.parametrize("faithful", [True, False])
def test_translation_angle_sign_agnostic_zero_and_nan(faithful):
    R = np.stack([np.eye(3)] * 5)
    t_gt = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]], float)
    t_pred = np.array([[-2.5, 0, 0], [0, 3, 0], [0, 0, 0], [np.nan, 0, 0], [1, 0, 1]], float)
    _, tr = pm.pair_errors(R, t_gt, R, t_pred, faithful=faithful)
    default = 1e6 * 180 / math.pi
    np.testing.assert_allclose(tr[:3], [0, 90, 90], atol=0.06)
    assert tr[3] == pytest.approx(default, rel=1e-6)
    assert tr[4] == pytest.approx(45, abs=1e-3 if faithful else 1e-9)


@pytest.mark.parametrize("faithful", [True, False])
def test_pair_errors_match_sequence_errors(faithful):
    rng = np.random.default_rng(5)
    n = 5
    R_gt, t_gt = random_cameras(rng, n, 90)
    R_pr, t_pr = random_cameras(rng, n, 90)
    i, j = pm.all_pairs(n)

    def rel(R, t):
        Rij = R[j] @ np.swapaxes(R[i], -1, -2)
        return Rij, t[j] - np.einsum("nab,nb->na", Rij, t[i])

    a = pm.relative_pose_errors(R_gt, t_gt, R_pr, t_pr, faithful=faithful)
    b = pm.pair_errors(*rel(R_gt, t_gt), *rel(R_pr, t_pr), faithful=faithful)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=2e-3 if faithful else 1e-9)


def test_faithful_matches_a_torch_float32_evaluation():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    n = 7
    R_gt, t_gt = random_cameras(rng, n)
    R_pr, t_pr = random_cameras(rng, n)
    R_pr[:3], t_pr[:3] = R_gt[:3], t_gt[:3]
    R_pr[2] = R_gt[2] @ rot([0, 0, 1], 0.3)  # pairs (0,1), (0,2), (1,2) fall in the extrapolated band
    flip = torch.tensor([-1.0, -1.0, 1.0])

    def se3(R, t):  # PyTorch3D world-to-view matrices [[R, 0], [T, 1]] from OpenCV poses
        R = torch.tensor(R, dtype=torch.float32).transpose(1, 2) * flip
        M = torch.zeros(len(R), 4, 4)
        M[:, :3, :3] = R
        M[:, 3, :3] = torch.tensor(t, dtype=torch.float32) * flip
        M[:, 3, 3] = 1
        return M

    def inv(M):
        Rt = M[:, :3, :3].transpose(1, 2)
        return torch.cat((torch.cat((Rt, -M[:, 3:, :3].bmm(Rt)), 1), M[:, :, 3:]), -1)

    i1, i2 = torch.combinations(torch.arange(n), 2).unbind(-1)
    g, p = se3(R_gt, t_gt), se3(R_pr, t_pr)
    rg, rp = inv(g[i1]).bmm(g[i2]), inv(p[i1]).bmm(p[i2])
    cos = (torch.diagonal(rg[:, :3, :3].bmm(rp[:, :3, :3].transpose(1, 2)), dim1=1, dim2=2).sum(-1) - 1) * 0.5
    b = 1 - 1e-4
    ang = torch.where(cos >= b, (cos - b) * (-1 / math.sqrt(1 - b * b)) + math.acos(b), torch.acos(cos))
    tg = rg[:, 3, :3] / (rg[:, 3, :3].norm(dim=1, keepdim=True) + 1e-15)
    tp = rp[:, 3, :3] / (rp[:, 3, :3].norm(dim=1, keepdim=True) + 1e-15)
    et = torch.acos(torch.sqrt(1 - torch.clamp_min(1 - (tg * tp).sum(1) ** 2, 1e-15)))
    r, t = pm.relative_pose_errors(R_gt, t_gt, R_pr, t_pr)
    # float32 accumulation orders differ (numpy vs torch): a few ulps of the cosine, times the slope
    # of acos (~70 in the extrapolated band; 1/sin(angle) for small translation angles, where
    # float32 acos(sqrt(.)) is ill-conditioned: ~0.03 deg near 0).
    np.testing.assert_allclose(r, (ang * 180 / np.pi).numpy(), atol=1e-3)
    np.testing.assert_allclose(t, (et * 180 / np.pi).numpy(), atol=0.05)
    assert np.ptp(r) > 1 and np.ptp(t) > 1  # non-trivial errors
    assert r[0] == pytest.approx(QUIRK_ZERO_DEG, abs=1e-3)  # pair (0, 1): identical rotations


def test_trace_check_like_pytorch3d():
    R = np.stack([np.eye(3) * 2])
    with pytest.raises(ValueError, match="trace"):
        pm.pair_errors(R, np.ones((1, 3)), np.stack([np.eye(3)]), np.ones((1, 3)))


def test_nan_rotation_fails_every_threshold():
    R = np.stack([np.eye(3), np.full((3, 3), np.nan)])
    r, _ = pm.pair_errors(np.stack([np.eye(3)] * 2), np.ones((2, 3)), R, np.ones((2, 3)))
    assert np.isnan(r[1])
    assert pm.relative_rotation_accuracy(r, 15) == 0.5
    assert pm.mean_average_accuracy(r, np.zeros(2)) == pytest.approx(0.5, abs=1e-12)


def test_accuracies_are_strict_fractions():
    e = np.array([14.999, 15.0, 15.001, np.nan])
    assert pm.relative_rotation_accuracy(e, 15) == 0.25
    assert pm.relative_translation_accuracy(e, 15.0001) == 0.5


def test_maa_hand_worked_histogram_quirks():
    # max errors: 0.5 | 1.0 | 29.5 | 30.0 (last bin is inclusive) | 31 (never) | NaN (never)
    r = np.array([0.5, 1.0, 2.0, 30.0, 31.0, np.nan])
    t = np.array([0.1, 0.0, 29.5, 1.0, 0.0, 0.0])
    assert pm.mean_average_accuracy(r, t) == pytest.approx(61 / 180, abs=1e-15)
    # Equivalent closed form (1/30) sum_k frac(e < k), e == 30 counted at k = 30.
    e = np.array([0.5, 1.0, 29.5, 30.0, 31.0])
    closed = (sum(np.mean(e < k) for k in range(1, 30)) + np.mean(e <= 30)) / 30 * 5 / 6
    assert pm.mean_average_accuracy(r, t) == pytest.approx(closed, abs=1e-15)
    assert pm.mean_average_accuracy(np.array([2.5]), np.array([0.0]), max_threshold=5) == pytest.approx(3 / 5)
    assert math.isnan(pm.mean_average_accuracy(np.zeros(0), np.zeros(0)))
