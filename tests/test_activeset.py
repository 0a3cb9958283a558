from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from pyace import ACEBBasisSet, PyACECalculator

from uqlib import ace, activeset, io, tables
from uqlib.activeset import ActiveSetError, ActiveSetFileError, NonFiniteGammaError
from uqlib.paper import data


def test_maxvol_finds_the_known_maximum_volume_rows():
    # Three scaled unit vectors (|det| = 8) among points of the cube [-1, 1]^3, whose
    # triples have |det| <= 4: the active set must be exactly the scaled vectors.
    rng = np.random.default_rng(0)
    points = np.vstack([rng.uniform(-1, 1, size=(20, 3)), 2 * np.eye(3), rng.uniform(-1, 1, size=(20, 3))])
    active = activeset.build_active_set(points)
    assert sorted(active.atoms["W"]) == [20, 21, 22]  # a bare array is the one-species (W) case
    np.testing.assert_allclose(active.inverse, np.eye(3) / 2)
    gamma = active.grade(points)
    assert gamma.max() == pytest.approx(1.0) and (gamma[:20] <= 0.5).all()
    assert active.grade(np.array([[3.0, 0, 0]])) == pytest.approx([1.5])


def test_outliers_are_excluded_before_maxvol_and_counted():
    reference = np.zeros((40, 3))
    predicted = np.random.default_rng(1).normal(scale=0.1, size=(40, 3))
    predicted[7] = [5.0, 0, 0]
    keep = activeset.force_outlier_mask(predicted, reference)
    assert not keep[7] and keep.sum() >= 35
    points = np.vstack([np.eye(3)] * 13 + [np.ones((1, 3))])
    points[7] = [100.0, 0, 0]  # would dominate the volume if it were kept
    active = activeset.build_active_set(points, keep=keep)
    assert 7 not in active.atoms["W"] and active.n_excluded == int((~keep).sum()) and active.n_candidates == keep.sum()


def test_under_determined_and_singular_active_sets_are_errors():
    with pytest.raises(ActiveSetError, match=r"Under-determined active set: 2 training atoms for 3 basis functions"):
        activeset.build_active_set(np.ones((2, 3)))
    rank_deficient = np.random.default_rng(2).normal(size=(30, 3))
    rank_deficient[:, 2] = rank_deficient[:, 0] + rank_deficient[:, 1]
    with pytest.raises(ActiveSetError, match="singular"):
        activeset.build_active_set(rank_deficient)


def test_asi_round_trip(tmp_path):
    active = activeset.build_active_set(np.vstack([np.eye(4), 0.3 * np.ones((5, 4))]))
    loaded = activeset.ActiveSet.load(active.save(tmp_path / "x.asi"))
    np.testing.assert_array_equal(loaded.inverse, active.inverse)


def test_non_tungsten_structures_cannot_be_graded():
    table = io.tidy_table(data.load_subsets("A").iloc[:1][["atoms", "energy", "forces"]]
                            .rename(columns={"atoms": "ase_atoms"}), "A")
    table.at[0, "atoms"] = Atoms("Mo2", positions=[[0, 0, 0], [1.6, 1.6, 1.6]], cell=[3.2] * 3, pbc=True)
    with pytest.raises(ActiveSetError, match=r"A-0000 contains \['Mo'\]"):
        activeset.atom_projections(table, "Func-33", use_cache=False, progress=False)
    with pytest.raises(ActiveSetError, match="empty"):
        activeset.atom_projections(table.iloc[:0], "Func-33", use_cache=False, progress=False)


@pytest.fixture(scope="module")
def graded_tables():
    train = tables.subsample(data.load_subsets("A+B"), 12, seed=0)
    test = tables.subsample(data.load_subsets("C+E"), 2, seed=0)
    return train, test


def test_gamma_agrees_with_pyace_calculator_for_a_fitted_linear_model(tmp_path, graded_tables):
    train, test = graded_tables
    dm = ace.design_matrix(train, "Func-33", use_cache=False, progress=False)
    model = ace.LinearACE("Func-33").fit(dm)
    keep = activeset.force_outlier_mask(model.predict_forces(dm), dm.forces)
    projections = activeset.atom_projections(train, "Func-33", use_cache=False, progress=False)
    active = activeset.build_active_set(projections, keep=keep)
    calc = PyACECalculator(str(model.to_yaml(tmp_path / "m.yaml")))
    calc.set_active_set(str(active.save(tmp_path / "m.asi")))
    ours = active.grade(activeset.atom_projections(test, "Func-33", use_cache=False, progress=False))
    np.testing.assert_allclose(ours, activeset.calculator_gammas(calc, test["atoms"]), rtol=1e-6)
    assert ours.max() > 1  # the test set really extrapolates, so the comparison is not all zeros


def test_gamma_agrees_with_pyace_calculator_for_the_reference_potential(graded_tables):
    _, test = graded_tables
    yaml, asi = str(data.resolve("reference_ace_yaml")), str(data.resolve("reference_ace_asi"))
    calc = PyACECalculator(yaml)
    calc.set_active_set(asi)
    ours = activeset.ActiveSet.load(asi).grade(activeset.atom_projections(test, ACEBBasisSet(yaml), progress=False))
    np.testing.assert_allclose(ours, activeset.calculator_gammas(calc, test["atoms"]), rtol=1e-6)


def test_uncached_projections_skip_the_force_rows_and_equal_the_design_matrix_projections():
    table = tables.subsample(data.load_subsets("A+B"), 2, seed=1)
    before = ace.pyace_passes()
    alone = activeset.atom_projections(table, "Func-33", use_cache=False, progress=False, workers=1)
    assert ace.pyace_passes() == before  # pyace's projections only, not a featurization pass
    full = ace.design_matrix(table, "Func-33", use_cache=False, progress=False, workers=1).projections
    np.testing.assert_allclose(alone, full, rtol=1e-10, atol=1e-12)


def test_outliers_are_filtered_per_species_by_default_and_globally_on_request():
    # species "a" has errors ~1, species "b" ~0.01: one global threshold keeps every "b" atom and drops
    # good "a" atoms; per species, the one "b" atom at 0.5 (an outlier among its own) is dropped.
    rng = np.random.default_rng(0)
    errors = np.concatenate([1 + 0.3 * rng.random(40), 0.01 + 0.005 * rng.random(40)])
    errors[45] = 0.5
    predicted, reference = np.column_stack([errors * np.sqrt(3), np.zeros(80), np.zeros(80)]), np.zeros((80, 3))
    species = np.repeat(["a", "b"], 40)
    per_species = activeset.force_outlier_mask(predicted, reference, species)
    assert not per_species[45] and per_species[:40].all()
    everyone = activeset.force_outlier_mask(predicted, reference, species, rule="global")
    assert everyone[45]
    np.testing.assert_array_equal(activeset.force_outlier_mask(predicted, reference, rule="global"), everyone)
    with pytest.raises(ActiveSetError, match="outlier rule 'median'"):
        activeset.force_outlier_mask(predicted, reference, species, rule="median")


@pytest.mark.parametrize("inverse, message", [
    (np.full((4, 4), np.nan), r"bad\.asi, species W holds non-finite values"),
    (np.zeros((4, 4)), r"bad\.asi, species W is singular .*all-zero"),
    (np.ones((4, 3)), r"bad\.asi, species W is \(4, 3\), not a square matrix"),
])
def test_damaged_asi_files_are_named_errors(tmp_path, inverse, message):
    path = tmp_path / "bad.asi"
    with open(path, "wb") as fh:
        np.savez(fh, W=inverse)
    with pytest.raises(ActiveSetFileError, match=message):
        activeset.ActiveSet.load(path)
    with pytest.raises(ActiveSetFileError, match=message):
        activeset.load_active_set(path)
    path.write_text("not an npz")
    with pytest.raises(ActiveSetFileError, match=r"Cannot read .*bad\.asi as a pacemaker active set"):
        activeset.ActiveSet.load(path)


def test_non_finite_gamma_is_an_error_never_a_band():
    from uqlib import grading

    with pytest.raises(NonFiniteGammaError, match="not finite"):
        grading.band(np.array([0.5, np.nan]), 1.0, 10.0)
    with pytest.raises(NonFiniteGammaError, match=r"md\.extxyz, frame 3: gamma of atom\(s\) \[1\]"):
        activeset.check_finite_gamma(np.array([0.1, np.inf]), "md.extxyz, frame 3")


def test_outlier_threshold_is_eq_7s_rule():
    from uqlib.metrics import tukey_threshold

    errors = np.random.default_rng(5).gamma(2.0, size=301)
    assert activeset.outlier_threshold(errors) == pytest.approx(tukey_threshold(errors), rel=1e-12)
    with pytest.raises(ActiveSetError, match="finite force errors"):
        activeset.outlier_threshold(np.array([1.0, np.nan]))
