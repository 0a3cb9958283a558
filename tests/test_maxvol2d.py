from __future__ import annotations

import numpy as np
import pytest

from uqlib import activeset
from uqlib.paper import maxvol2d, plots
from uqlib.paper.maxvol2d import ToyExampleError

# The notebook's defaults (three groups around these centres).
CENTRES = [[3.0, 0.6], [1.6, 2.4], [-1.2, 2.2]]


@pytest.fixture(scope="module")
def example():
    groups = maxvol2d.make_groups(CENTRES, spread=0.25, points_per_group=25, seed=0)
    sets = maxvol2d.union_vs_groups(groups)
    scan = maxvol2d.scan_plane(sets, half_width=7.0, n_grid=201)  # 6 clips group a's parallelogram
    return sets, scan, maxvol2d.find_points(sets, scan)


def test_maxvol_picks_the_extreme_vectors_of_a_hand_built_set():
    # |det| of (2, 0.1), (0.2, 1.5) is 2.98; every other pair here has |det| <= 1.5.
    points = np.array([[0.5, 0.5], [2.0, 0.1], [0.3, -0.2], [0.2, 1.5], [-0.4, 0.6], [1.0, 0.7]])
    indices, vectors = maxvol2d.active_set_2d(points)
    assert sorted(indices) == [1, 3]
    np.testing.assert_array_equal(vectors, points[indices])
    assert maxvol2d.grade(points, vectors).max() == pytest.approx(1.0)


def test_grade_is_one_on_active_vectors_below_one_inside_and_max_coefficient_outside():
    vectors = np.array([[2.0, 0.1], [0.2, 1.5]])
    np.testing.assert_allclose(maxvol2d.grade(vectors, vectors), [1.0, 1.0])
    inside = np.array([[0.9, -0.5], [0.0, 0.99], [-0.3, 0.3]]) @ vectors  # coefficients in (-1, 1)
    assert (maxvol2d.grade(inside, vectors) < 1).all()
    np.testing.assert_allclose(maxvol2d.grade(np.array([[2.5, -0.4]]) @ vectors, vectors), [2.5])


def test_minimum_rule_never_exceeds_any_single_group(example):
    sets, scan, _ = example
    per_group = scan.table[[f"gamma {n}" for n in sets.names]].to_numpy()
    assert len(sets.names) == 3 and (scan.table["gamma min"].to_numpy()[:, None] <= per_group).all()
    picked = per_group[np.arange(len(per_group)), [sets.names.index(g) for g in scan.table["argmin group"]]]
    np.testing.assert_array_equal(picked, scan.table["gamma min"])


def test_training_vectors_are_in_distribution_for_their_own_and_the_union_set(example):
    sets, _, _ = example
    union = maxvol2d.grades_table(np.vstack(sets.groups), sets)
    assert union["gamma union"].max() <= activeset.MAXVOL_TOLERANCE
    for name, group in zip(sets.names, sets.groups, strict=True):
        assert maxvol2d.grades_table(group, sets)[f"gamma {name}"].max() <= 1.01


def test_point_a_lies_between_groups_missed_by_the_union_and_flagged_by_the_minimum(example):
    sets, _, points = example
    a = points.loc["A"]
    assert a["gamma union"] <= 1 < a["gamma min"]
    assert all(a[f"gamma {n}"] > 1 for n in sets.names)
    angles = [np.angle(complex(*g.mean(0))) for g in sets.groups]
    assert min(angles) < np.angle(complex(a["x1"], a["x2"])) < max(angles)  # between groups, not a mirror image


def test_point_b_lies_inside_a_groups_data_and_only_its_own_group_calls_it_in_distribution(example):
    sets, _, points = example
    b = points.loc["B"]
    own = sets.groups[sets.names.index(b["group"])]
    assert maxvol2d.mahalanobis(np.array([[b["x1"], b["x2"]]]), own)[0] <= 2.0
    assert b["gamma min"] <= 1 and b[f"gamma {b['group']}"] == b["gamma min"]
    assert all(b[f"gamma {n}"] > 1 for n in sets.names if n != b["group"])


def test_scan_areas_sum_to_the_square_and_union_mostly_under_estimates(example):
    _, scan, _ = example
    assert list(maxvol2d.CATEGORIES) == list(plots.REGION_COLORS)
    assert scan.areas.sum() == pytest.approx(14.0**2) and scan.covers_all_sets
    assert scan.image().shape == (201, 201)
    missed, false = scan.areas.iloc[2], scan.areas.iloc[3]
    assert missed > false > 0  # claim P29 on the notebook's default groups
    cat, table = scan.table["category"].to_numpy(), scan.table
    assert (table["gamma union"].to_numpy()[cat == 2] <= 1).all() and (table["gamma min"][cat == 3] <= 1).all()
    assert not maxvol2d.scan_plane(scan.sets, half_width=6.0, n_grid=11).covers_all_sets


def test_paper_comparison_reports_which_side_of_one_each_grade_falls(example):
    _, _, points = example
    comparison = maxvol2d.paper_comparison(points)
    assert len(comparison) == 6 and comparison["same side of 1"].all()
    flipped = points.copy()
    flipped.loc["A", "gamma union"] = 1.5
    assert not maxvol2d.paper_comparison(flipped).set_index(["point", "grade"]).loc[("A", "union"), "same side of 1"]


def test_same_seed_same_output_and_another_seed_another():
    first = maxvol2d.make_groups(CENTRES, 0.25, 10, seed=3)
    np.testing.assert_array_equal(np.vstack(first), np.vstack(maxvol2d.make_groups(CENTRES, 0.25, 10, seed=3)))
    assert not np.allclose(np.vstack(first), np.vstack(maxvol2d.make_groups(CENTRES, 0.25, 10, seed=4)))


def test_bad_parameters_are_named():
    with pytest.raises(ToyExampleError, match="group_centres"):
        maxvol2d.make_groups([1.0, 2.0], 0.25, 10, seed=0)
    with pytest.raises(ToyExampleError, match="points_per_group"):
        maxvol2d.make_groups(CENTRES, 0.25, 1, seed=0)
    groups = maxvol2d.make_groups(CENTRES, 0.25, 10, seed=0)
    with pytest.raises(ToyExampleError, match="grid_points"):
        maxvol2d.scan_plane(maxvol2d.union_vs_groups(groups), 6.0, 1)


# -- P29: many seeded random geometries, P30: the union's set on known points ---------------------------------


def test_novelty_shares_report_the_union_on_known_cells(example):
    sets, scan, _ = example
    shares = maxvol2d.novelty_shares(sets, scan)
    xy = scan.table[["x1", "x2"]].to_numpy()
    known = np.any([maxvol2d.mahalanobis(xy, g) <= 2.0 for g in sets.groups], axis=0)
    assert shares["known_rate_union"] == pytest.approx(np.mean(scan.table["gamma union"].to_numpy()[known] > 1))
    # the union set's training vectors are in distribution, but it flags some known cells of a far group
    assert 0 <= shares["known_rate_union"] < 1


def test_random_geometry_gives_non_overlapping_groups_in_one_half_plane():
    groups = maxvol2d.random_geometry(np.random.default_rng(3), n_groups=4, points_per_group=30)
    assert len(groups) == 4 and all(g.shape == (30, 2) for g in groups)
    centres = np.array([g.mean(0) for g in groups])
    assert (centres[:, 1] > -0.5).all()  # directions drawn in [0, pi): centres on the upper side (up to noise)
    spreads = np.array([g.std(0).mean() for g in groups])
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.linalg.norm(centres[a] - centres[b]) > spreads[a] + spreads[b]  # apart, not overlapping


def test_random_geometries_are_seeded_and_their_shares_come_from_the_scan():
    table = maxvol2d.random_geometries(3, seed=5, n_grid=61)
    assert list(table["geometry"]) == [0, 1, 2] and table["covers all sets"].all()
    again = maxvol2d.random_geometries(4, seed=5, n_grid=61)
    np.testing.assert_array_equal(again.iloc[:3]["underestimated share"], table["underestimated share"])
    other = maxvol2d.random_geometries(3, seed=6, n_grid=61)
    assert not np.allclose(other["underestimated share"], table["underestimated share"])
    # geometry 1 recomputed by hand: the same groups, the same scan, the share of missed-OOD cells
    groups = maxvol2d.random_geometry(np.random.default_rng([5, 1]), 3, 25)
    sets = maxvol2d.union_vs_groups(groups)
    scan = maxvol2d.scan_plane(sets, table.loc[1, "half_width"], 61)
    category = scan.table["category"].to_numpy()
    assert table.loc[1, "underestimated share"] == pytest.approx(np.mean(category == 2))
    assert table.loc[1, "overestimated share"] == pytest.approx(np.mean(category == 3))
    assert ((table[["underestimated share", "overestimated share"]] >= 0)
            & (table[["underestimated share", "overestimated share"]] <= 1)).all().all()


def test_twenty_random_geometries_give_p29_a_verdict_and_fewer_do_not():
    from uqlib.paper import claims

    table = maxvol2d.random_geometries(claims.MIN_TOY_GEOMETRIES, seed=0, n_grid=81)
    record = claims.p29_union_underestimates(table["underestimated share"], table["overestimated share"])
    assert record.verdict != "not testable here" and f"of {claims.MIN_TOY_GEOMETRIES} random" in record.ours
    few = claims.p29_union_underestimates(table["underestimated share"][:5], table["overestimated share"][:5])
    assert few.verdict == "not testable here"


def test_random_geometries_refuse_bad_parameters():
    with pytest.raises(ToyExampleError, match="n_groups >= 2"):
        maxvol2d.random_geometries(3, seed=0, n_groups=1)
    with pytest.raises(ToyExampleError, match="non-overlapping"):
        maxvol2d.random_geometry(np.random.default_rng(0), 8, 10, radius=(1.0, 1.1), spread=(0.5, 0.6),
                                 max_tries=20)


def test_claim_inputs_are_the_example_shares_and_the_random_geometries(example):
    sets, scan, _ = example
    shares, geometries = maxvol2d.claim_inputs(sets, scan, 2, seed=4)
    assert shares == maxvol2d.novelty_shares(sets, scan)
    np.testing.assert_array_equal(geometries["underestimated share"],
                                  maxvol2d.random_geometries(2, seed=4)["underestimated share"])
