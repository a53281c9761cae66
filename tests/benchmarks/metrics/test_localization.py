"""Aachen / InLoc localisation metrics: hand-worked errors, inclusive vs strict thresholds, failures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.metrics import localization as lm


def pose(R=None, centre=(0, 0, 0)):
    T = np.eye(4)
    R = np.eye(3) if R is None else np.asarray(R)
    T[:3, :3] = R
    T[:3, 3] = -R @ np.asarray(centre, float)
    return T


def rot_z(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_errors_hand_worked():
    gt = np.stack([pose(), pose(rot_z(30), (10, -2, 1)), pose(rot_z(-179), (0, 0, 5))])
    pred = np.stack([pose(rot_z(5), (0.3, 0.4, 0)), pose(rot_z(30), (10, -2, 1)),
                     pose(rot_z(179), (0, 0, 5))])
    pos, rot = lm.localization_errors(gt, pred)
    np.testing.assert_allclose(pos, [0.5, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rot, [5, 0, 2], atol=1e-10)  # 179 and -179 are 2 deg apart


def test_missing_prediction_gives_nan_and_fails():
    gt = np.stack([pose(), pose()])
    pred = np.stack([pose(), np.full((4, 4), np.nan)])
    pos, rot = lm.localization_errors(gt, pred)
    assert pos[0] == 0 and np.isnan(pos[1]) and np.isnan(rot[1])
    np.testing.assert_allclose(lm.recall_at_thresholds(pos, rot, lm.AACHEN_THRESHOLDS), [0.5, 0.5, 0.5])


def test_inclusive_by_default_strict_on_request():
    pos = np.array([0.25, 0.1, 0.5, 5.0])
    rot = np.array([1.0, 2.0, 5.0, 10.0])
    np.testing.assert_allclose(lm.recall_at_thresholds(pos, rot, lm.AACHEN_THRESHOLDS), [0.5, 0.75, 1.0])
    np.testing.assert_allclose(lm.recall_at_thresholds(pos, rot, lm.AACHEN_THRESHOLDS, inclusive=False),
                               [0.0, 0.5, 0.75])


def test_kapture_position_only_bins():
    pos, rot = np.array([0.1, 0.2, 0.3]), np.array([50.0, 0.0, np.nan])
    np.testing.assert_allclose(lm.recall_at_thresholds(pos, rot, [(0.25, math.nan), (0.25, -1), (0.25, 10)]),
                               [2 / 3, 2 / 3, 1 / 3])


def test_recall_by_condition_table():
    pos = np.array([0.0, 0.3, 0.1, np.nan])
    rot = np.array([0.0, 1.0, 4.0, np.nan])
    table = lm.recall_by_condition(pos, rot, ["day", "day", "night", None], lm.AACHEN_THRESHOLDS)
    assert list(table) == ["day", "night", "all"]
    assert table["day"] == [[0.25, 2.0, 50.0], [0.5, 5.0, 100.0], [5.0, 10.0, 100.0]]
    assert table["night"] == [[0.25, 2.0, 0.0], [0.5, 5.0, 100.0], [5.0, 10.0, 100.0]]
    assert table["all"] == [[0.25, 2.0, 25.0], [0.5, 5.0, 75.0], [5.0, 10.0, 75.0]]
    with pytest.raises(ValueError, match="reserved"):
        lm.recall_by_condition(pos, rot, ["all"] * 4, lm.INLOC_THRESHOLDS)
    with pytest.raises(ValueError):
        lm.recall_by_condition(pos, rot, ["day"], lm.INLOC_THRESHOLDS)
