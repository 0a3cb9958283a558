from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uqlib import tables
from uqlib.criteria import DOptimality
from uqlib.paper import active_learning, data


@pytest.fixture(scope="module")
def campaign():
    start = tables.subsample(data.load_subsets("A+B"), 4, seed=0)
    pool = tables.subsample(data.load_subsets("C"), 6, seed=0)
    test = tables.subsample(data.load_subsets("E"), 3, seed=0)
    return active_learning.Campaign(start, pool, test, "Func-33")


@pytest.mark.parametrize("criterion", active_learning.CRITERIA)
def test_a_race_labels_the_budget_each_round_and_is_seeded(campaign, criterion):
    curve = campaign.race(criterion, budget=2, rounds=2, seed=3)
    assert curve["labels"].tolist() == [0, 2, 4] and (curve["F_rmse"] > 0).all()
    pd.testing.assert_frame_equal(curve, campaign.race(criterion, budget=2, rounds=2, seed=3))


def test_informed_picks_follow_the_score(campaign, monkeypatch):
    scores = campaign.scores("gamma", campaign.start, campaign.pool, np.random.default_rng(0))
    expected = DOptimality().fit(campaign.data.subset(campaign.start)).score(campaign.data.subset(campaign.pool))
    np.testing.assert_allclose(scores, expected.configs["gamma"])
    # the first round labels exactly the highest-scoring candidates
    monkeypatch.setattr(campaign, "scores", lambda c, train, cand, rng: np.arange(len(cand), dtype=float))
    picked_last = campaign.pool[-2:]
    curve = campaign.race("gamma", budget=2, rounds=1, seed=0)
    model = campaign.fit(np.concatenate([campaign.start, picked_last]))
    assert curve["F_rmse"].iloc[-1] == pytest.approx(model.rmse(campaign.data.dm.subset(campaign.test))["F_rmse"])
    with pytest.raises(ValueError, match="at least 1"):
        campaign.race("random", budget=0, rounds=1, seed=0)


def test_unknown_criterion_and_round_zero_rho(campaign):
    with pytest.raises(ValueError, match="Unknown criterion"):
        campaign.scores("entropy", campaign.start, campaign.pool, np.random.default_rng(0))
    rho = campaign.round_zero_rho(seed=0)
    assert list(rho["criterion"]) == list(active_learning.CRITERIA) and rho["rho"].abs().max() <= 1


def test_labels_to_reach_uses_the_mean_over_seeds():
    curves = pd.DataFrame({"criterion": ["a"] * 4 + ["b"] * 4, "seed": [0, 0, 1, 1] * 2,
                           "labels": [0, 5, 0, 5] * 2, "F_rmse": [10, 6, 10, 8, 10, 9, 10, 9.5]})
    reached = active_learning.labels_to_reach(curves, target=7.5)
    assert reached["a"] == 5 and np.isnan(reached["b"])


def test_mean_curves_average_over_seeds_per_start():
    curves = pd.DataFrame({"start": ["A+B"] * 4 + ["A+D"] * 2, "criterion": ["random", "random", "CBF", "CBF",
                                                                             "random", "random"],
                           "seed": [0, 1, 0, 1, 0, 0], "labels": [5, 5, 5, 5, 0, 5],
                           "F_rmse": [10.0, 14.0, 6.0, 6.0, 1.0, 2.0]})
    ab = active_learning.mean_curves(curves, "A+B")
    assert list(ab["x"]) == [5] and list(ab["series"]) == ["random", "CBF"]
    assert ab["series"]["random"][0] == 12.0 and ab["spread"]["random"][0] == pytest.approx(np.std([10, 14], ddof=1))
    ad = active_learning.mean_curves(curves, "A+D")
    np.testing.assert_array_equal(ad["series"]["random"], [1.0, 2.0])
    assert ad["spread"]["random"].tolist() == [0.0, 0.0]  # one seed: no spread
    with pytest.raises(ValueError, match="No curves"):
        active_learning.mean_curves(curves, "C")
