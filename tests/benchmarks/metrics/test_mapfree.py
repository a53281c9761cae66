"""Map-free metrics: hand-worked values and every quirk of the official evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.metrics import mapfree as mf

Z_VALUES = [1.8 + 0.3 * k for k in range(7)]
SUM_INV_Z = sum(1.0 / z for z in Z_VALUES)
IDENTITY = "1 0 0 0 0 0 0"


def poses_text(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def big_intrinsics(keys=range(20), f=100.0) -> mf.Intrinsics:
    """No clipping: the principal point far inside a huge image."""
    text = "".join(f"seq1/frame_{k:05d}.jpg {f} {f} 5000 5000 10000 10000\n" for k in keys)
    return mf.load_intrinsics(text)


def pose(line_values: str, conf: float | None = None) -> mf.FramePose:
    name = "seq1/frame_00001.jpg"
    text = f"{name} {line_values}" + ("" if conf is None else f" {conf}")
    return mf.load_poses(text, load_confidence=conf is not None)[1]


def test_virtual_grid_values_and_order():
    g = mf.VCRE_GRID
    assert g.shape == (196, 4) and np.all(g[:, 3] == 1)
    np.testing.assert_allclose(np.unique(g[:, 0]), np.linspace(-0.9, 0.9, 7), atol=1e-12)
    np.testing.assert_allclose(np.unique(g[:, 1]), [-0.45, -0.15, 0.15, 0.45], atol=1e-12)
    np.testing.assert_allclose(np.unique(g[:, 2]), Z_VALUES, atol=1e-12)
    # meshgrid 'xy' order flattened: y slowest, then x, then z fastest.
    np.testing.assert_allclose(g[0, :3], [-0.9, -0.45, 1.8])
    np.testing.assert_allclose(g[1, :3], [-0.9, -0.45, 2.1])
    np.testing.assert_allclose(g[7, :3], [-0.6, -0.45, 1.8])
    np.testing.assert_allclose(g[49, :3], [-0.9, -0.15, 1.8])


def test_load_poses_token_and_value_rules():
    text = poses_text(
        f"seq1/frame_00001.jpg {IDENTITY}",               # ok
        f"seq1/frame_00002.jpg {IDENTITY} 5",             # 9 tokens in GT mode: skipped
        f"seq1/frame_00003.jpg  {IDENTITY}",              # double space: skipped
        "seq1/frame_00004.jpg\t1\t0\t0\t0\t0\t0\t0",      # tabs: one token, skipped
        f"#seq1/frame_00005.jpg {IDENTITY}",              # '#' in name: skipped
        f"seq1/frame_0000x.jpg {IDENTITY}",               # no frame number: skipped
        "seq1/frame_00007.jpg nan 0 0 0 0 0 0",           # NaN: skipped
        "seq1/frame_00008.jpg 1 0 0 0 0 inf 0",           # inf: skipped
        "seq1/frame_00009.jpg 0 0 0 0 1 2 3",             # zero quaternion: skipped
        "seq1/frame_00010.jpg 1e-9 0 0 0 1 2 3",          # np.isclose(|q|, 0): skipped
        "seq1/frame_00011.jpg 1e-7 0 0 0 1 2 3",          # small but kept
        "seq1/frame_00012.jpg 1 0 0 0 0 zero 0",          # not a number: skipped
        f"  seq1/frame_00013.jpg {IDENTITY}  ",           # outer whitespace stripped: ok
        "",
    )
    poses = mf.load_poses(text)
    assert list(poses) == [1, 11, 13]
    assert poses[1].confidence is None
    with_conf = mf.load_poses(poses_text(f"seq1/frame_00001.jpg {IDENTITY} 2.5",
                                         f"seq1/frame_00002.jpg {IDENTITY}",
                                         f"seq1/frame_00003.jpg {IDENTITY} nan"), load_confidence=True)
    assert list(with_conf) == [1] and with_conf[1].confidence == 2.5


def test_universal_newlines():
    text = (f"seq1/frame_00001.jpg {IDENTITY}\r\nseq1/frame_00002.jpg {IDENTITY}\r"
            f"seq1/frame_00003.jpg {IDENTITY}")
    assert list(mf.load_poses(text)) == [1, 2, 3]


def test_frame_key_collision_later_value_first_position():
    a = "0.9531880055 -0.2281508163 0.1981964220 0.0098999699 0.3525282761 -0.2506982129 3.4108204362"
    text = poses_text(f"seq0/frame_00000.jpg {IDENTITY}", f"seq1/frame_00000.jpg {a}",
                      f"seq1/frame_00001.jpg {IDENTITY}")
    poses = mf.load_poses(text)
    assert list(poses) == [0, 1]
    assert not np.allclose(poses[0].centre, 0)  # the seq1 value replaced the identity reference
    np.testing.assert_array_equal(poses[0].centre, mf.load_poses(f"x/frame_00000.jpg {a}")[0].centre)


def test_subsample_by_position_evaluates_reference_without_seq1_frame0():
    frames = [3, 4, 7, 8, 9, 11, 12]
    text = poses_text(f"seq0/frame_00000.jpg {IDENTITY}",
                      *(f"seq1/frame_{k:05d}.jpg 1 0 0 0 0 0 {k}" for k in frames))
    gt = mf.load_poses(text)
    assert list(gt) == [0, 3, 4, 7, 8, 9, 11, 12]
    assert list(mf.subsample_poses(gt)) == [0, 9]  # positions 0 and 5; key 0 is the seq0 identity


def test_cam2world_conversion_hand_worked():
    # R_z(90 deg), t = (1, 2, 3): c = -R^T t = -(2, -1, 3).
    s = math.sqrt(0.5)
    p = pose(f"{s} 0 0 {s} 1 2 3")
    np.testing.assert_allclose(p.centre, [-2, 1, -3], atol=1e-15)
    np.testing.assert_allclose(p.q_c2w, [s, 0, 0, -s], atol=1e-15)
    # transforms3d qinverse divides by |q| (not |q|^2): a scaled quaternion gives the same centre.
    scaled = pose(f"{3 * s} 0 0 {3 * s} 1 2 3")
    np.testing.assert_allclose(scaled.centre, [-2, 1, -3], atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(scaled.q_c2w), 1.0, atol=1e-15)


def test_translation_and_rotation_errors_hand_worked():
    gt = pose(IDENTITY)
    est = pose("1 0 0 0 -0.3 -0.4 0")  # centre (0.3, 0.4, 0)
    assert mf.translation_error_m(gt, est) == pytest.approx(0.5, abs=1e-15)
    half = math.radians(10) / 2
    rotated = pose(f"{math.cos(half)} 0 {math.sin(half)} 0 0 0 0")
    assert mf.rotation_error_deg(gt, rotated) == pytest.approx(10.0, abs=1e-10)
    flipped = pose(f"{-math.cos(half)} 0 {-math.sin(half)} 0 0 0 0")  # same rotation, -q
    assert mf.rotation_error_deg(gt, flipped) == pytest.approx(10.0, abs=1e-10)
    assert mf.rotation_error_deg(gt, pose("0 1 0 0 0 0 0")) == pytest.approx(180.0, abs=1e-10)


def test_vcre_lateral_shift_hand_worked():
    # Estimated centre shifted by d along x: every point moves by f d / z pixels (no clipping).
    K = big_intrinsics().K[1]
    gt = pose(IDENTITY)
    for d in (0.1, -0.25):
        est = pose(f"1 0 0 0 {-d} 0 0")
        want = 100 * abs(d) * SUM_INV_Z / 7
        assert mf.vcre_px(gt, est, K, 10000.0, 10000.0) == pytest.approx(want, rel=1e-12)
    assert mf.vcre_px(gt, gt, K, 10000.0, 10000.0) == 0.0


def test_vcre_uses_float32_intrinsics():
    intr = big_intrinsics(f=100.1)
    assert intr.K[1].dtype == np.float32 and intr.K[1][0, 0] == np.float32(100.1)
    gt, est = pose(IDENTITY), pose("1 0 0 0 -0.1 0 0")
    got = mf.vcre_px(gt, est, intr.K[1], intr.width, intr.height)
    assert got == pytest.approx(float(np.float32(100.1)) * 0.1 * SUM_INV_Z / 7, rel=1e-12)
    assert abs(got - 100.1 * 0.1 * SUM_INV_Z / 7) > 1e-8  # float64 K would differ


def test_vcre_clipping_with_size_from_last_intrinsics_line():
    text = ("seq1/frame_00000.jpg 100 100 5000 5000 10000 10000\n"
            "seq1/frame_00001.jpg 100 100 5000 5000 1 1\n")
    intr = mf.load_intrinsics(text)
    assert (intr.width, intr.height) == (1.0, 1.0)
    gt, est = pose(IDENTITY), pose("1 0 0 0 -0.1 0 0")
    # Frame 0 is projected far outside a 1x1 image: both projections clip to (1, 1).
    assert mf.vcre_px(gt, est, intr.K[0], intr.width, intr.height) == 0.0
    # Everything left of the image clips to x = 0 (huge pose error, zero VCRE).
    K_left = np.array([[100, 0, -1e4], [0, 100, -1e4], [0, 0, 1]], dtype=np.float32)
    assert mf.vcre_px(gt, pose("1 0 0 0 -5 3 0"), K_left, 540.0, 720.0) == 0.0


def _vcre_reference(R_gt, c_gt, R_est, c_est, K, W, H):
    """Independent per-point implementation (camera-to-world rotations and centres)."""
    total = 0.0
    count = 0
    for y in (-0.45, -0.15, 0.15, 0.45):
        for x in [-0.9 + 0.3 * i for i in range(7)]:
            for z in Z_VALUES:
                X = np.array([x, y, z])
                world = R_gt @ X + c_gt
                Xe = R_est.T @ (world - c_est)
                uv = []
                for P in (X, Xe):
                    h = K.astype(np.float64) @ P
                    with np.errstate(divide="ignore", invalid="ignore"):
                        u, v = h[0] / h[2], h[1] / h[2]
                    uv.append((min(max(u, 0), W), min(max(v, 0), H)))
                total += math.hypot(uv[0][0] - uv[1][0], uv[0][1] - uv[1][1])
                count += 1
    return total / count


def _rot(axis, deg):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = math.radians(deg)
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * K @ K


def test_vcre_matches_independent_reference_including_points_behind_camera():
    K = np.array([[590.1, 0, 268.5], [0, 590.1, 359.4], [0, 0, 1]], dtype=np.float32)
    rng = np.random.default_rng(3)
    for trial in range(4):
        R_gt_w2c = _rot(rng.normal(size=3), rng.uniform(0, 40))
        t_gt = rng.normal(size=3)
        R_est_w2c = _rot(rng.normal(size=3), rng.uniform(0, 40)) @ R_gt_w2c
        c_gt = -R_gt_w2c.T @ t_gt
        # trial 0 puts the estimated camera 2 m ahead: the nearest grid points end up behind it.
        c_est = c_gt + (R_gt_w2c.T @ [0, 0, 2.0] if trial == 0 else rng.normal(scale=0.5, size=3))
        t_est = -R_est_w2c @ c_est
        gt = mf.frame_pose_from_cam_from_world(np.c_[R_gt_w2c, t_gt])
        est = mf.frame_pose_from_cam_from_world(np.c_[R_est_w2c, t_est], 1.0)
        want = _vcre_reference(R_gt_w2c.T, c_gt, R_est_w2c.T, c_est, K, 540.0, 720.0)
        assert mf.vcre_px(gt, est, K, 540.0, 720.0) == pytest.approx(want, rel=1e-9)


def test_frame_pose_from_matrix_equals_parsed_line():
    R = _rot([0.3, -1, 0.2], 33)
    t = np.array([0.5, -1.25, 2.0])
    direct = mf.frame_pose_from_cam_from_world(np.c_[R, t], 3.0)
    q = direct.q_c2w * [1, -1, -1, -1]  # back to world-to-camera
    parsed = pose(" ".join(repr(float(v)) for v in (*q, *t)), conf=3.0)
    np.testing.assert_allclose(parsed.centre, direct.centre, atol=1e-14)
    np.testing.assert_allclose(direct.centre, -R.T @ t, atol=1e-14)
    assert mf.rotation_error_deg(parsed, direct) == pytest.approx(0.0, abs=1e-6)


def test_evaluate_scene_failures_and_missing_file_quirk():
    gt = mf.load_poses(poses_text(f"seq0/frame_00000.jpg {IDENTITY}",
                                  *(f"seq1/frame_{k:05d}.jpg {IDENTITY}" for k in range(12))))
    intr = big_intrinsics()
    missing = mf.evaluate_scene(gt, None, intr)
    assert missing.failures == 12 and missing.num_estimates == 0  # all keys, not the 3 evaluated
    est = mf.load_poses(f"seq1/frame_00005.jpg 1 0 0 0 -0.1 0 0 4\nseq1/frame_00003.jpg {IDENTITY} 1\n",
                        load_confidence=True)
    res = mf.evaluate_scene(gt, est, intr)
    assert res.frame_keys.tolist() == [5] and res.failures == 2  # keys 0 and 10 have no estimate
    assert res.trans_err_m[0] == pytest.approx(0.1) and res.confidence.tolist() == [4.0]


def test_evaluate_scene_errors_like_the_official_crashes():
    gt = mf.load_poses(poses_text(*(f"seq1/frame_{k:05d}.jpg {IDENTITY}" for k in range(6))))
    negative = mf.load_poses(f"seq1/frame_00000.jpg {IDENTITY} -1\n", load_confidence=True)
    with pytest.raises(ValueError, match="confidence"):
        mf.evaluate_scene(gt, negative, big_intrinsics(), scene="s1")
    unevaluated = mf.load_poses(f"seq1/frame_00001.jpg {IDENTITY} -1\n", load_confidence=True)
    assert mf.evaluate_scene(gt, unevaluated, big_intrinsics()).failures == 2  # negative but unused
    ok = mf.load_poses(f"seq1/frame_00000.jpg {IDENTITY} 1\n", load_confidence=True)
    with pytest.raises(ValueError, match="intrinsics"):
        mf.evaluate_scene(gt, ok, big_intrinsics(keys=[1, 2]))
    with pytest.raises(ValueError, match="file.txt:2"):
        mf.load_intrinsics("seq1/frame_00000.jpg 1 1 1 1 1 1\nseq1/frame_00001.jpg 1 1 1\n",
                           source="file.txt")
    intr = mf.load_intrinsics("# comment\nseq1/frame_00000.jpg 1 1 1 1 # 5 5\n"
                              "seq1/frame_00000.jpg 2 2 1 1 7 8\n")
    assert intr.K[0][0, 0] == 2 and (intr.width, intr.height) == (7.0, 8.0)


def test_average_precision_hand_worked_with_float32_recall():
    conf = np.array([2.0, 3.0, 1.0, 2.0])
    tp = np.array([False, True, True, True])
    # Sorted: 3 (tp), 2, 2 (one tp), 1 (tp); thresholds at k = 1, 3, 4 of total 5.
    r = [np.float32(k) / np.float32(5) for k in (1, 3, 4)]
    d = [np.float32(r[0]) - np.float32(0), r[1] - r[0], r[2] - r[1]]
    want = float(d[0]) * 1.0 + float(d[1]) * (2 / 3) + float(d[2]) * (3 / 4)
    assert mf.average_precision(conf, tp, failures=1) == pytest.approx(want, abs=1e-15)
    assert want == pytest.approx(0.2 + 0.4 * 2 / 3 + 0.2 * 0.75, abs=1e-7)
    # Order within a tie does not matter; failures cap the area.
    tie = mf.average_precision([2.0, 2.0], [True, False], 0)
    assert tie == mf.average_precision([2.0, 2.0], [False, True], 0)
    assert mf.average_precision([2.0, 2.0], [True, False], 0) == pytest.approx(0.5)
    assert mf.average_precision([3.0, 2.0, 1.0], [True, True, True], failures=1) == pytest.approx(0.75)


def _scene(trans, rot=None, vcre=None, conf=None, failures=0):
    n = len(trans)
    z = np.zeros(n)
    return mf.SceneResult(np.arange(n), np.array(trans, float), np.array(rot if rot else z, float),
                          np.array(vcre if vcre else z, float), np.array(conf if conf else np.ones(n), float),
                          failures)


def test_aggregate_hand_worked():
    results = {
        "a": _scene([0.1, 0.3, 0.2], rot=[1, 6, 2], vcre=[10, 100, 20], conf=[3, 2, 1]),
        "b": _scene([0.25], rot=[0], vcre=[89.9], conf=[5]),          # t == 0.25: not < 0.25
        "c": _scene([], failures=4),                                   # missing file: skipped in medians
        "d": _scene([], failures=0),                                   # present but nothing matched
    }
    m = mf.aggregate(results)
    assert m.num_estimates == 4 and m.num_failures == 4
    assert m.avg_median_trans_err_m == pytest.approx((0.2 + 0.25) / 2)
    assert m.avg_median_rot_err_deg == pytest.approx((2 + 0) / 2)
    assert m.avg_median_vcre_px == pytest.approx((20 + 89.9) / 2)
    assert m.precision_pose == pytest.approx(2 / 8)   # a: 0.1/1deg and 0.2/2deg
    assert m.precision_vcre == pytest.approx(3 / 8)   # 10, 20, 89.9
    assert m.estimated_fraction == pytest.approx(0.5)
    # Pose AUC: conf order 5(b:F) 3(T) 2(F) 1(T) over total 8.
    assert m.auc_pose == pytest.approx(0.125 * 0 + 0.125 * 0.5 + 0.125 * (1 / 3) + 0.125 * 0.5, abs=1e-7)
    assert set(m.as_dict()) == {"avg_median_trans_err_m", "avg_median_rot_err_deg", "avg_median_vcre_px",
                                "precision_pose", "auc_pose", "precision_vcre", "auc_vcre",
                                "estimated_fraction"}
    with pytest.raises(mf.NoEstimatesError):
        mf.aggregate({"c": _scene([], failures=3)})
