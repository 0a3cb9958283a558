"""The criterion interface: every criterion fits, scores and reports what its signals declare."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uqlib import ace, activeset, ensemble, tables
from uqlib.criteria import (
    ClusteredDOptimality,
    DOptimality,
    EnsembleCriterion,
    QuestsEntropy,
    featurize,
)
from uqlib.exceptions import NotFittedError
from uqlib.paper import data


@pytest.fixture(scope="module")
def sets():
    train = tables.subsample(data.load_subsets("A+B"), 6, seed=0)
    test = tables.subsample(data.load_subsets("C+E"), 2, seed=0)
    return featurize(train, "Func-33", progress=False), featurize(test, "Func-33", progress=False)


def _check_tables(criterion, scored, fs):
    assert len(scored.configs) == len(fs.table) and len(scored.atoms) == fs.dm.n_atoms.sum()
    for signal in criterion.signals:
        u, e = scored.values(signal)
        assert np.isfinite(u).all() and np.isfinite(e).all()
    assert (scored.atoms.groupby("config")["err_F"].max().to_numpy() == scored.configs["err_F"].to_numpy()).all()


@pytest.mark.parametrize("make", [lambda: EnsembleCriterion(3, seed=1), lambda: DOptimality(),
                                  lambda: ClusteredDOptimality("column:subset", outliers="global"),
                                  lambda: QuestsEntropy()], ids=["ensemble", "dopt", "clustered", "quests"])
def test_every_criterion_scores_through_the_interface(sets, make):
    train, test = sets
    criterion = make().fit(train)
    for fs in (train, test):
        _check_tables(criterion, criterion.score(fs), fs)


def test_unfitted_criterion_and_unknown_signal_are_clear_errors(sets):
    with pytest.raises(NotFittedError, match="not fitted"):
        DOptimality().score(sets[0])
    with pytest.raises(KeyError, match="no signal 'gamma'"):
        DOptimality().signal("gamma")
    with pytest.raises(ValueError, match="outliers must be one of"):
        DOptimality(outliers="per-cluster")


def test_ensemble_criterion_follows_eqs_1_to_6(sets):
    train, test = sets
    criterion = EnsembleCriterion(4, seed=0).fit(train)
    scored = criterion.score(test)
    energies = ace.predict_energy_per_atom(test.dm, criterion.ensemble_.coefficients)
    forces = ace.predict_forces(test.dm, criterion.ensemble_.coefficients)
    np.testing.assert_allclose(scored.configs["U_E"], ensemble.energy_uncertainty(energies))
    np.testing.assert_allclose(scored.atoms["U_F"], ensemble.atom_force_uncertainty(forces))
    np.testing.assert_allclose(scored.configs["U_F"], scored.atoms.groupby("config")["U_F"].max())
    mean = forces.mean(axis=0)
    np.testing.assert_allclose(scored.atoms["err_F"], np.linalg.norm(mean - test.dm.forces, axis=1))
    np.testing.assert_allclose(scored.configs["err_E"], np.abs(energies.mean(axis=0) - test.dm.energy_per_atom))


def test_dopt_criterion_is_the_active_set_of_its_outlier_filtered_model(sets):
    train, test = sets
    criterion = DOptimality().fit(train)
    keep = activeset.force_outlier_mask(criterion.model_.predict_forces(train.dm), train.dm.forces)
    np.testing.assert_array_equal(criterion.keep_, keep)
    expected = activeset.build_active_set(train.projections, keep=keep).grade(test.projections)
    np.testing.assert_allclose(criterion.score(test).atoms["gamma"], expected)
    assert DOptimality(outliers="none").fit(train).keep_.all()


def test_clustered_grade_is_the_minimum_and_names_the_cluster(sets):
    train, test = sets
    labels = train.table["subset"].to_numpy()
    criterion = ClusteredDOptimality(labels, outliers="none").fit(train)
    per_cluster = criterion.active_set_.grade_per_cluster(test.projections)
    scored = criterion.score(test)
    np.testing.assert_allclose(scored.atoms["gamma"], per_cluster.min(axis=1))
    names = np.asarray(criterion.active_set_.clusters)
    assert (scored.atoms["cluster"].to_numpy() == names[per_cluster.argmin(axis=1)]).all()
    with pytest.raises(ValueError, match="cluster labels for"):
        ClusteredDOptimality(labels[:2]).fit(train)
    with pytest.raises(ValueError, match="no column 'group'"):
        ClusteredDOptimality("column:group").fit(train)


def test_per_cluster_outlier_policy_uses_each_clusters_own_model(sets):
    train, _ = sets
    criterion = ClusteredDOptimality("column:subset", outliers="per-cluster").fit(train)
    keep = np.ones(train.dm.n_atoms.sum(), bool)
    atom_subset = tables.per_atom(train.table["subset"], train.dm.n_atoms)
    for name in ("A", "B"):
        part = train.dm.subset(np.flatnonzero(train.table["subset"] == name))
        model = ace.LinearACE("Func-33").fit(part)
        keep[atom_subset == name] = activeset.force_outlier_mask(model.predict_forces(part), part.forces)
    np.testing.assert_array_equal(criterion.keep_, keep)


def test_unlabelled_structures_are_scored_without_errors(sets):
    train, test = sets
    unlabelled = featurize(test.table.assign(energy=np.nan, energy_per_atom=np.nan), "Func-33", progress=False)
    scored = DOptimality().fit(train).score(unlabelled)
    assert "err_F" not in scored.atoms and "err_E" not in scored.configs
    assert np.isnan(scored.values(DOptimality.signals[0])[1]).all()


def test_subset_keeps_rows_projections_and_per_atom_arrays_together(sets):
    train, _ = sets
    train.per_atom_arrays["marker"] = np.arange(train.dm.n_atoms.sum())
    part = train.subset(np.array([3, 1]))
    assert list(part.table["structure_id"]) == list(train.table["structure_id"].iloc[[3, 1]])
    atoms = tables.atoms_of(np.array([3, 1]), train.dm.n_atoms)
    np.testing.assert_array_equal(part.projections, train.projections[atoms])
    np.testing.assert_array_equal(part.per_atom_arrays["marker"], atoms)
    del train.per_atom_arrays["marker"]
    assert isinstance(part.table, pd.DataFrame)
