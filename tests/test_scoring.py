from __future__ import annotations

import numpy as np
import pytest

from uqlib import data, scoring


def test_detection_scores_by_hand_and_one_class():
    score = np.array([0.1, 0.4, 0.35, 0.8])
    novel = np.array([False, False, True, True])
    s = scoring.detection_scores(score, novel)
    assert s["roc_auc"] == pytest.approx(0.75) and s["positives"] == 0.5
    assert s["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(scoring.detection_scores(score, np.ones(4, bool))["roc_auc"])
    with pytest.raises(ValueError, match="as many labels"):
        scoring.detection_scores(score, novel[:2])


def test_ence_is_zero_for_honest_error_bars_and_calibration_repairs_a_scale():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.1, 1.0, 200000)
    error = std * rng.standard_normal(std.size)
    assert scoring.ence(std, error) < 0.05
    assert scoring.ence(std / 5, error) > 3  # five times over-confident
    # error bars four times too small, on a calibration half and a test half
    truth = rng.standard_normal(4000)
    prediction = truth + std[:4000] * rng.standard_normal(4000)
    halves = [(prediction[h], std[:4000][h] / 4, truth[h]) for h in (slice(0, 2000), slice(2000, 4000))]
    result = scoring.calibration(*halves)
    assert result["scale"] == pytest.approx(4, rel=0.2)
    assert result["miscalibration_area_recalibrated"] < result["miscalibration_area_raw"] / 3
    with pytest.raises(ValueError, match="positive"):
        scoring.calibration((truth, np.zeros_like(truth), truth), halves[1])


def test_clusterwise_thresholds_and_nearest_cluster():
    errors = np.concatenate([np.arange(1, 10), 10 * np.arange(1, 10)]).astype(float)
    clusters = np.repeat(["a", "b"], 9)
    eps = scoring.clusterwise_thresholds(errors, clusters)
    assert eps["a"] == pytest.approx(13.0) and eps["b"] == pytest.approx(130.0)
    train = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 10.0]])
    nearest = scoring.nearest_cluster(np.array([[1.0, 1.0], [8.0, 9.0]]), train, np.array(["a", "a", "b"]))
    assert list(nearest) == ["a", "b"]


def test_split_for_scoring_keeps_every_subset_fitted():
    table = data.subsample(data.load_subsets("A+D"), 5, seed=0)
    fit, held = scoring.split_for_scoring(table, 0.2, seed=1)
    assert len(fit) + len(held) == 10 and set(fit["subset"]) == {"A", "D"} and len(held) == 2
    assert not set(fit["structure_id"]) & set(held["structure_id"])
    with pytest.raises(ValueError, match="holdout_fraction"):
        scoring.split_for_scoring(table, 1.0, seed=0)


def test_quests_entropy_is_higher_for_unseen_environments():
    bulk = data.subsample(data.load_subsets("B"), 3, seed=0)
    spheres = data.subsample(data.load_subsets("D"), 1, seed=0)
    train = scoring.quests_descriptors(bulk["atoms"].iloc[:2])
    same = scoring.quests_delta_entropy(scoring.quests_descriptors(bulk["atoms"].iloc[2:]), train)
    other = scoring.quests_delta_entropy(scoring.quests_descriptors(spheres["atoms"]), train)
    assert np.median(other) > np.median(same)
