from __future__ import annotations

import numpy as np
import pytest

from uqlib import metrics


def test_tukey_threshold_by_hand():
    # quartiles of 1..9 (numpy linear): Q1 = 3, Q3 = 7, IQR = 4 -> 7 + 6 = 13
    assert metrics.tukey_threshold(np.arange(1, 10)) == pytest.approx(13.0)
    with pytest.raises(ValueError, match="non-empty"):
        metrics.tukey_threshold(np.array([]))


def test_spearman_and_selection_rate():
    u = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.spearman(u, u**3) == pytest.approx(1.0)
    assert metrics.spearman(u, -u) == pytest.approx(-1.0)
    assert metrics.selection_rate(u, 2.5) == 0.5
    with pytest.raises(ValueError, match="empty test set"):
        metrics.selection_rate(np.array([]), 1.0)


def test_confusion_fractions_add_up():
    u = np.array([0.1, 0.9, 0.9, 0.1])
    e = np.array([0.9, 0.9, 0.1, 0.1])
    assert metrics.confusion(u, e, 0.5) == {"detected": 0.25, "missed": 0.25, "false alarm": 0.25, "quiet": 0.25}


def test_trend_is_spearman_over_every_point():
    assert metrics.trend([3, 2, 1], [0.1, 0.5, 0.9]) == pytest.approx(-1.0)
    assert np.isnan(metrics.trend([1], [2]))


def test_detection_scores_by_hand_and_one_class():
    score = np.array([0.1, 0.4, 0.35, 0.8])
    novel = np.array([False, False, True, True])
    s = metrics.detection_scores(score, novel)
    assert s["roc_auc"] == pytest.approx(0.75) and s["positives"] == 0.5
    assert s["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(metrics.detection_scores(score, np.ones(4, bool))["roc_auc"])
    with pytest.raises(ValueError, match="as many labels"):
        metrics.detection_scores(score, novel[:2])


def test_ence_is_zero_for_honest_error_bars_and_calibration_repairs_a_scale():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.1, 1.0, 200000)
    error = std * rng.standard_normal(std.size)
    assert metrics.ence(std, error) < 0.05
    assert metrics.ence(std / 5, error) > 3  # five times over-confident
    truth = rng.standard_normal(4000)
    prediction = truth + std[:4000] * rng.standard_normal(4000)
    halves = [(prediction[h], std[:4000][h] / 4, truth[h]) for h in (slice(0, 2000), slice(2000, 4000))]
    result = metrics.calibration(*halves)
    assert result["scale"] == pytest.approx(4, rel=0.2)
    assert result["miscalibration_area_recalibrated"] < result["miscalibration_area_raw"] / 3
    with pytest.raises(ValueError, match="positive"):
        metrics.calibration((truth, np.zeros_like(truth), truth), halves[1])


def test_clusterwise_thresholds_nearest_centroid_and_centroid_distances():
    errors = np.concatenate([np.arange(1, 10), 10 * np.arange(1, 10)]).astype(float)
    eps = metrics.clusterwise_thresholds(errors, np.repeat(["a", "b"], 9))
    assert eps["a"] == pytest.approx(13.0) and eps["b"] == pytest.approx(130.0)
    train = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 10.0]])
    nearest = metrics.nearest_centroid(np.array([[1.0, 1.0], [8.0, 9.0]]), train, np.array(["a", "a", "b"]))
    assert list(nearest) == ["a", "b"]
    points = np.array([[-1.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    distance = metrics.centroid_distances(points, np.array(["r", "r", "far"]), np.array([True, True, False]))
    assert distance["r"] == 0.0 and distance["far"] == 10.0


def test_metrics_imports_nothing_from_uqlib():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(metrics.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.split(".")[0] == "uqlib"]
