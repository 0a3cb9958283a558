from __future__ import annotations

import numpy as np
import pytest

from uqlib import metrics, tables
from uqlib.criteria import featurize, quests_delta_entropy, quests_descriptors
from uqlib.paper import data, scoring


@pytest.fixture(scope="module")
def novelty():
    train = tables.subsample(data.load_subsets("A+B"), 8, seed=0)
    fit, holdout = tables.holdout_split(train, 0.25, seed=0)
    test = tables.subsample(data.load_subsets("D"), 2, seed=0)
    sets = [featurize(t, "Func-33", progress=False) for t in (fit, holdout, test)]
    return sets, scoring.novelty_scores(*sets, n_members=3, seed=0, max_clusters=3)


def test_novelty_scores_hold_every_criterion_for_held_out_and_test_rows(novelty):
    (fit, holdout, test), scores = novelty
    assert len(scores.structures) == len(holdout.table) + len(test.table)
    assert scores.structures["test"].sum() == len(test.table)
    assert {"CBE", "CBF", "gamma", "clustered gamma", "QUESTS"} <= set(scores.structures)
    assert {"ABF", "gamma", "clustered gamma", "QUESTS"} <= set(scores.atoms)
    # a structure's gamma is the largest of its atoms'
    atoms = scores.atoms[scores.atoms["test"]]
    gamma_cfg = tables.per_structure_max(atoms["gamma"].to_numpy(), test.dm.n_atoms)
    np.testing.assert_allclose(scores.structures[scores.structures["test"]]["gamma"], gamma_cfg)
    assert set(scores.structures["cluster"]) <= set(scores.clusterwise_cbf.index)
    assert scores.calibration["scale"] > 0


def test_detection_table_scores_every_criterion_against_both_labellings(novelty):
    _, scores = novelty
    table = scoring.detection_table(scores)
    known = table[(table["labels"] == "known") & (table["level"] == "configuration")].set_index("criterion")
    expected = metrics.detection_scores(scores.structures["gamma"], scores.structures["test"])
    assert known.loc["gamma", "roc_auc"] == expected["roc_auc"]
    assert set(table["labels"]) == {"known", "error"}


def test_clusterwise_rates_are_percentages_of_each_part(novelty):
    _, scores = novelty
    rates = scoring.clusterwise_rates(scores)
    flagged = scores.structures["CBF"] > scores.thresholds["CBF"]
    assert rates.loc["test (novel)", "global threshold (%)"] == pytest.approx(
        100 * flagged[scores.structures["test"]].mean())


def test_quests_entropy_is_higher_for_unseen_environments():
    bulk = tables.subsample(data.load_subsets("B"), 3, seed=0)
    spheres = tables.subsample(data.load_subsets("D"), 1, seed=0)
    train = quests_descriptors(bulk["atoms"].iloc[:2])
    same = quests_delta_entropy(quests_descriptors(bulk["atoms"].iloc[2:]), train)
    other = quests_delta_entropy(quests_descriptors(spheres["atoms"]), train)
    assert np.median(other) > np.median(same)


# -- several splits (notebook 06) ---------------------------------------------------------------------

def test_score_splits_hold_out_part_of_each_training_set_and_tabulate_by_split(novelty):
    _, expected = novelty
    train = tables.subsample(data.load_subsets("A+B"), 8, seed=0)
    test = tables.subsample(data.load_subsets("D"), 2, seed=0)
    results = scoring.score_splits({"A+B -> D": (train, test)}, "Func-33", holdout_fraction=0.25, seed=0,
                                   n_members=3, max_clusters=3)
    # the same as fitting the hold-out split by hand (the fixture)
    import pandas as pd
    pd.testing.assert_frame_equal(results["A+B -> D"].structures, expected.structures)
    rates = scoring.by_split(results | {"again": expected}, scoring.clusterwise_rates)
    assert list(rates.columns[:2]) == ["split", "set"] and len(rates) == 4
    detection = scoring.by_split(results, scoring.detection_table)
    assert set(detection["split"]) == {"A+B -> D"}
    assert len(detection) == len(scoring.detection_table(expected))
    with pytest.raises(ValueError, match="empty test set"):
        scoring.score_splits({"none": (train, test.iloc[:0])}, "Func-33", holdout_fraction=0.25, seed=0)
