from __future__ import annotations

import numpy as np
import pytest

from uqlib import ace, ensemble


def test_energy_uncertainty_by_hand():
    # three members, two configurations (eV/atom); means 2 and 0
    energies = np.array([[1.0, 0.0], [2.0, -3.0], [3.0, 3.0]])
    np.testing.assert_allclose(ensemble.energy_uncertainty(energies), [1.0, 3.0])


def test_force_uncertainties_use_the_vector_norm_and_per_structure_max():
    # two members, three atoms; member forces differ by +-(3, 4, 0) on atom 1 only
    forces = np.zeros((2, 3, 3))
    forces[0, 1] = [3.0, 4.0, 0.0]
    forces[1, 1] = [-3.0, -4.0, 0.0]
    forces[:, 2] = [[1, 0, 0], [0, 0, 0]]
    atom = ensemble.atom_force_uncertainty(forces)
    np.testing.assert_allclose(atom, [0.0, 5.0, 0.5])
    np.testing.assert_allclose(ensemble.config_force_uncertainty(forces, np.array([1, 2])), [0.0, 5.0])


@pytest.fixture(scope="module")
def dm33(small_table):
    # the smallest ladder preset, sliced from a featurization at the next one (fast)
    return ace.design_matrix(small_table, ace.LADDER[0].name, largest=ace.LADDER[1].name, use_cache=False,
                             progress=False)


def test_bootstrap_members_equal_fits_on_the_resampled_structures(dm33):
    ens = ensemble.fit_ensemble(dm33, 3, seed=5, progress=False)
    counts = ensemble.bootstrap_weights(dm33.n_configs, 3, seed=5)
    for member, w in zip(ens.coefficients, counts, strict=True):
        resampled = dm33.subset(np.repeat(np.arange(dm33.n_configs), w.astype(int)))
        direct = ace.fit_coefficients(resampled)
        np.testing.assert_allclose(dm33.force_rows @ member, dm33.force_rows @ direct, atol=1e-6)


def test_group_bootstrap_members_equal_fits_on_the_drawn_groups_structures(dm33):
    ens = ensemble.fit_ensemble(dm33, 4, seed=3, n_units=3, progress=False)
    assert ens.bootstrap_units == 3
    groups = ensemble.random_groups(dm33.n_configs, 3, seed=3)
    assert sorted(np.bincount(groups)) == [2, 3, 3]  # near-equal random groups of whole structures
    counts = ensemble.bootstrap_weights(3, 4, seed=3)
    for member, group_counts in zip(ens.coefficients, counts, strict=True):
        direct = ace.fit_coefficients(dm33, structure_weights=group_counts[groups])
        np.testing.assert_allclose(dm33.force_rows @ member, dm33.force_rows @ direct, atol=1e-6)


def test_units_are_structures_when_their_grams_fit_and_groups_otherwise(dm33):
    p = dm33.n_functions
    assert ensemble.bootstrap_units(dm33.n_configs, p) == dm33.n_configs
    assert ensemble.bootstrap_units(dm33.n_configs, p, gram_memory=3.5 * 16 * p**2) == 3
    assert ensemble.bootstrap_units(678, 1561) == 41  # Func-1561 on A+B: 41 groups in 1.5 GiB, not 678
    ens = ensemble.fit_ensemble(dm33, 3, seed=0, gram_memory=4.5 * 16 * p**2, progress=False)
    assert ens.bootstrap_units == 4 and ens.members([0, 2]).bootstrap_units == 4
    with pytest.raises(ValueError, match="fewer than 2 units"):
        ensemble.fit_ensemble(dm33, 3, gram_memory=16 * p**2, progress=False)
    with pytest.raises(ValueError, match="n_groups"):
        ensemble.fit_ensemble(dm33, 3, n_units=dm33.n_configs + 1, progress=False)


def test_ensembles_are_deterministic_under_a_seed(dm33):
    for method in ensemble.METHODS:
        a = ensemble.fit_ensemble(dm33, 4, method=method, seed=1, progress=False)
        b = ensemble.fit_ensemble(dm33, 4, method=method, seed=1, progress=False)
        c = ensemble.fit_ensemble(dm33, 4, method=method, seed=2, progress=False)
        np.testing.assert_array_equal(a.coefficients, b.coefficients)
        assert not np.allclose(a.coefficients, c.coefficients)


def test_posterior_committee_is_centred_on_the_ridge_fit(dm33):
    ens = ensemble.fit_ensemble(dm33, 400, method="posterior", seed=0, progress=False)
    centre = ace.fit_coefficients(dm33)
    spread = ens.coefficients.std(axis=0)
    assert (spread > 0).all()
    # the mean of 400 draws lies within a few standard errors of the ridge solution
    assert np.all(np.abs(ens.coefficients.mean(axis=0) - centre) < 5 * spread / np.sqrt(400))


def test_sub_ensembles(dm33):
    ens = ensemble.fit_ensemble(dm33, 4, seed=0, progress=False)
    assert ens.members(slice(1, 3)).n_members == 2
    with pytest.raises(ValueError, match="at least 2"):
        ens.members(slice(0, 1))


def test_bad_ensemble_requests(dm33):
    with pytest.raises(ValueError, match="at least 2 members"):
        ensemble.fit_ensemble(dm33, 1)
    with pytest.raises(ValueError, match="Unknown ensemble method"):
        ensemble.fit_ensemble(dm33, 3, method="dropout")
    for method in ensemble.METHODS:
        with pytest.raises(ValueError, match=r"kappa must lie in \[0, 1\], got 1.5"):
            ensemble.fit_ensemble(dm33, 3, method=method, kappa=1.5, progress=False)
    pieces = ensemble.StructureNormalEquations(dm33)
    with pytest.raises(ValueError, match="kappa"):
        pieces.normal_equations(np.ones(dm33.n_configs), kappa=-0.1)


def _synthetic_dm(rng, truth, sigma, kappa, n_configs=60, atoms_per_config=3):
    """A design matrix of random features with noise of variance sigma^2 / w_r on each row (w_r: the loss weights)."""
    p = len(truth)
    n_atoms = np.full(n_configs, atoms_per_config)
    energy_rows = rng.normal(size=(n_configs, p))
    force_rows = rng.normal(size=(3 * n_atoms.sum(), p))
    w_energy, w_force = (1 - kappa) / n_configs, kappa / n_atoms.sum()
    energy = energy_rows @ truth + sigma / np.sqrt(w_energy) * rng.normal(size=n_configs)
    forces = force_rows @ truth + sigma / np.sqrt(w_force) * rng.normal(size=len(force_rows))
    return ace.DesignMatrix("synthetic", np.arange(n_configs).astype(str), n_atoms, energy_rows, force_rows, energy,
                            forces.reshape(-1, 3), np.zeros((n_atoms.sum(), p)))


def test_posterior_committee_spread_has_the_scale_of_the_coefficient_error():
    # Over many noise draws, the true coefficients fall within one posterior standard deviation
    # of the fit about 68 % of the time only if the spread s^2 (G + alpha I)^-1 has the right scale.
    rng = np.random.default_rng(0)
    truth, kappa = np.array([1.0, -2.0, 0.5, 3.0]), 0.3
    inside = []
    for _ in range(300):
        dm = _synthetic_dm(rng, truth, sigma=0.05, kappa=kappa)
        members = ensemble.fit_ensemble(dm, 400, method="posterior", seed=int(rng.integers(1e9)), kappa=kappa,
                                        alpha=1e-12, progress=False).coefficients
        inside.append(np.abs(members.mean(axis=0) - truth) <= members.std(axis=0))
    assert np.mean(inside) == pytest.approx(0.683, abs=0.04)
