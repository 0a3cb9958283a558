from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from pyace import ACEBBasisSet, PyACECalculator

from uqlib import ace, dopt, io, tables
from uqlib.dopt import ActiveSetError
from uqlib.paper import data


def test_maxvol_finds_the_known_maximum_volume_rows():
    # Three scaled unit vectors (|det| = 8) among points of the cube [-1, 1]^3, whose
    # triples have |det| <= 4: the active set must be exactly the scaled vectors.
    rng = np.random.default_rng(0)
    points = np.vstack([rng.uniform(-1, 1, size=(20, 3)), 2 * np.eye(3), rng.uniform(-1, 1, size=(20, 3))])
    active = dopt.build_active_set(points)
    assert sorted(active.atoms) == [20, 21, 22]
    np.testing.assert_allclose(active.inverse, np.eye(3) / 2)
    gamma = active.grade(points)
    assert gamma.max() == pytest.approx(1.0) and (gamma[:20] <= 0.5).all()
    assert active.grade(np.array([[3.0, 0, 0]])) == pytest.approx([1.5])


def test_outliers_are_excluded_before_maxvol_and_counted():
    reference = np.zeros((40, 3))
    predicted = np.random.default_rng(1).normal(scale=0.1, size=(40, 3))
    predicted[7] = [5.0, 0, 0]
    keep = dopt.force_outlier_mask(predicted, reference)
    assert not keep[7] and keep.sum() >= 35
    points = np.vstack([np.eye(3)] * 13 + [np.ones((1, 3))])
    points[7] = [100.0, 0, 0]  # would dominate the volume if it were kept
    active = dopt.build_active_set(points, keep=keep)
    assert 7 not in active.atoms and active.n_excluded == int((~keep).sum()) and active.n_candidates == keep.sum()


def test_under_determined_and_singular_active_sets_are_errors():
    with pytest.raises(ActiveSetError, match=r"Under-determined active set: 2 training atoms for 3 basis functions"):
        dopt.build_active_set(np.ones((2, 3)))
    rank_deficient = np.random.default_rng(2).normal(size=(30, 3))
    rank_deficient[:, 2] = rank_deficient[:, 0] + rank_deficient[:, 1]
    with pytest.raises(ActiveSetError, match="singular"):
        dopt.build_active_set(rank_deficient)


def test_asi_round_trip(tmp_path):
    active = dopt.build_active_set(np.vstack([np.eye(4), 0.3 * np.ones((5, 4))]))
    loaded = dopt.ActiveSet.load(active.save(tmp_path / "x.asi"))
    np.testing.assert_array_equal(loaded.inverse, active.inverse)


def test_structure_grade_is_the_largest_atom_grade():
    np.testing.assert_array_equal(dopt.structure_grade(np.array([0.5, 2.0, 0.1, 0.3]), np.array([1, 3])),
                                  [0.5, 2.0])


def test_non_tungsten_structures_cannot_be_graded():
    table = io.tidy_table(data.load_subsets("A").iloc[:1][["atoms", "energy", "forces"]]
                            .rename(columns={"atoms": "ase_atoms"}), "A")
    table.at[0, "atoms"] = Atoms("Mo2", positions=[[0, 0, 0], [1.6, 1.6, 1.6]], cell=[3.2] * 3, pbc=True)
    with pytest.raises(ActiveSetError, match=r"A-0000 contains \['Mo'\]"):
        dopt.atom_projections(table, "Func-33", use_cache=False, progress=False)
    with pytest.raises(ActiveSetError, match="empty"):
        dopt.atom_projections(table.iloc[:0], "Func-33", use_cache=False, progress=False)


@pytest.fixture(scope="module")
def graded_tables():
    train = tables.subsample(data.load_subsets("A+B"), 12, seed=0)
    test = tables.subsample(data.load_subsets("C+E"), 2, seed=0)
    return train, test


def test_gamma_agrees_with_pyace_calculator_for_a_fitted_linear_model(tmp_path, graded_tables):
    train, test = graded_tables
    dm = ace.design_matrix(train, "Func-33", use_cache=False, progress=False)
    model = ace.LinearACE("Func-33").fit(dm)
    keep = dopt.force_outlier_mask(model.predict_forces(dm), dm.forces)
    active = dopt.build_active_set(dopt.atom_projections(train, "Func-33", use_cache=False, progress=False), keep=keep)
    calc = PyACECalculator(str(model.to_yaml(tmp_path / "m.yaml")))
    calc.set_active_set(str(active.save(tmp_path / "m.asi")))
    ours = active.grade(dopt.atom_projections(test, "Func-33", use_cache=False, progress=False))
    np.testing.assert_allclose(ours, dopt.calculator_gammas(calc, test["atoms"]), rtol=1e-6)
    assert ours.max() > 1  # the test set really extrapolates, so the comparison is not all zeros


def test_gamma_agrees_with_pyace_calculator_for_the_reference_potential(graded_tables):
    _, test = graded_tables
    yaml, asi = str(data.resolve("reference_ace_yaml")), str(data.resolve("reference_ace_asi"))
    calc = PyACECalculator(yaml)
    calc.set_active_set(asi)
    ours = dopt.ActiveSet.load(asi).grade(dopt.atom_projections(test, ACEBBasisSet(yaml), progress=False))
    np.testing.assert_allclose(ours, dopt.calculator_gammas(calc, test["atoms"]), rtol=1e-6)


def test_uncached_projections_skip_the_force_rows_and_equal_the_design_matrix_projections():
    table = tables.subsample(data.load_subsets("A+B"), 2, seed=1)
    before = ace.pyace_passes()
    alone = dopt.atom_projections(table, "Func-33", use_cache=False, progress=False, workers=1)
    assert ace.pyace_passes() == before  # pyace's projections only, not a featurization pass
    full = ace.design_matrix(table, "Func-33", use_cache=False, progress=False, workers=1).projections
    np.testing.assert_allclose(alone, full, rtol=1e-10, atol=1e-12)
