from __future__ import annotations

import numpy as np
import pytest
from synthetic import random_design_matrix

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




def test_bootstrap_members_equal_brute_force_refits_on_the_resampled_rows():
    dm = random_design_matrix()
    ens = ensemble.fit_ensemble(dm, 5, construction="bootstrap", seed=5, kappa=0.2, alpha=1e-6, progress=False,
                                chunk_bytes=8 * 9 * 9 * 4)  # 4 structures per chunk
    counts = ensemble.bootstrap_weights(dm.n_configs, 5, seed=5)
    np.testing.assert_array_equal(ens.structure_weights, counts)
    for member, w in zip(ens.coefficients, counts, strict=True):
        # every row of structure s repeated w_s times, fitted from scratch
        resampled = dm.subset(np.repeat(np.arange(dm.n_configs), w.astype(int)))
        direct = ace.fit_coefficients(resampled, kappa=0.2, alpha=1e-6)
        np.testing.assert_allclose(member, direct, rtol=1e-8, atol=1e-12)
    assert (counts == 0).any(axis=1).all()  # each member leaves some structures out


def test_bootstrap_members_equal_fits_on_the_resampled_structures(dm33):
    ens = ensemble.fit_ensemble(dm33, 3, seed=5, progress=False)
    counts = ensemble.bootstrap_weights(dm33.n_configs, 3, seed=5)
    for member, w in zip(ens.coefficients, counts, strict=True):
        resampled = dm33.subset(np.repeat(np.arange(dm33.n_configs), w.astype(int)))
        direct = ace.fit_coefficients(resampled)
        np.testing.assert_allclose(dm33.force_rows @ member, dm33.force_rows @ direct, atol=1e-6)


@pytest.mark.parametrize(("n_configs", "fraction", "size"), [(30, 0.9, 27), (25, 0.9, 23), (25, 0.5, 13), (3, 0.1, 1)])
def test_subsample_members_see_the_rounded_fraction_of_structures(n_configs, fraction, size):
    # fraction * n_configs rounded half up (22.5 -> 23, 12.5 -> 13), at least one structure
    assert ensemble.subsample_size(n_configs, fraction) == size
    weights = ensemble.subsample_weights(n_configs, 6, seed=2, fraction=fraction)
    assert set(np.unique(weights)) <= {0.0, 1.0} and (weights.sum(axis=1) == size).all()


def test_subsample_members_are_fits_on_their_structures():
    dm = random_design_matrix(n_configs=25)
    ens = ensemble.fit_ensemble(dm, 4, construction="subsample", seed=3, alpha=1e-6, progress=False)
    assert (ens.structure_weights.sum(axis=1) == 23).all()  # 90 % of 25, rounded half up
    assert len({tuple(w) for w in ens.structure_weights}) == 4  # different draws
    for member, w in zip(ens.coefficients, ens.structure_weights, strict=True):
        direct = ace.fit_coefficients(dm.subset(np.flatnonzero(w)), alpha=1e-6)
        np.testing.assert_allclose(member, direct, rtol=1e-8, atol=1e-12)
    half = ensemble.fit_ensemble(dm, 2, construction="subsample", fraction=0.5, progress=False)
    assert (half.structure_weights.sum(axis=1) == 13).all()
    for bad in (0.0, 1.2):
        with pytest.raises(ValueError, match="fraction"):
            ensemble.fit_ensemble(dm, 2, construction="subsample", fraction=bad, progress=False)


def test_pacemaker_members_start_from_the_stated_normal_draws():
    dm = random_design_matrix()
    sigma, n_members = 2e-3, 300
    # with maxiter = 0 BFGS takes no step: the members are their start coefficients
    starts = ensemble.fit_ensemble(dm, n_members, construction="pacemaker", seed=4, sigma=sigma, maxiter=0,
                                   progress=False)
    np.testing.assert_array_equal(starts.coefficients, ensemble.pacemaker_starts(n_members, dm.n_functions, 4, sigma))
    draws = starts.coefficients.ravel()  # 2,700 independent N(0, sigma^2) values
    assert abs(draws.mean()) < 4 * sigma / np.sqrt(draws.size)
    assert abs(draws.std() / sigma - 1) < 4 / np.sqrt(2 * draws.size)
    assert (starts.optimizer["iterations"] == 0).all() and (starts.optimizer["status"] == 1).all()
    with pytest.raises(ValueError, match="sigma"):
        ensemble.pacemaker_starts(2, 3, 0, sigma=0.0)


def test_pacemaker_members_reach_the_ridge_optimum_within_the_gradient_tolerance_or_stop_at_maxiter():
    dm = random_design_matrix()
    kappa, alpha, gtol = 0.2, 1e-6, 1e-8
    ens = ensemble.fit_ensemble(dm, 4, construction="pacemaker", seed=1, kappa=kappa, alpha=alpha, gtol=gtol,
                                progress=False)
    gram, rhs = ace.normal_equations(dm, kappa=kappa)
    optimum = ace.solve_ridge(gram, rhs, alpha)
    regularised = gram + alpha * np.eye(dm.n_functions)
    # Stopped with max |g| <= gtol, g = 2 A (c - c*): the excess loss (c - c*)^T A (c - c*) = g^T A^-1 g / 4
    # is at most p gtol^2 / (4 lambda_min(A)). It is the bound the optimiser's stopping rule gives.
    bound = dm.n_functions * gtol**2 / (4 * np.linalg.eigvalsh(regularised).min())
    record = ens.optimizer
    assert (record["status"] == 0).all() and (record["gradient_norm"] <= gtol).all()
    assert (record["iterations"] > 0).all() and (record["iterations"] < ensemble.PACEMAKER_MAXITER).all()
    for member, excess in zip(ens.coefficients, record["excess_loss"], strict=True):
        gap = member - optimum
        assert excess == pytest.approx(gap @ regularised @ gap) and 0 <= excess <= bound
    assert (ens.structure_weights == 1).all()  # every member fits every structure
    capped = ensemble.fit_ensemble(dm, 3, construction="pacemaker", seed=1, kappa=kappa, alpha=alpha, maxiter=3,
                                   progress=False)
    assert (capped.optimizer["iterations"] == 3).all() and (capped.optimizer["status"] == 1).all()
    assert (capped.optimizer["excess_loss"] > bound).all()  # three steps do not reach the optimum


@pytest.mark.parametrize("centred", [False, True])
@pytest.mark.parametrize("maxiter", [2, 6, 2000])
def test_our_bfgs_follows_scipys_on_a_small_random_quadratic(maxiter, centred):
    from scipy.optimize import minimize

    rng = np.random.default_rng(7)
    rows = rng.normal(size=(40, 12))
    gram, rhs, alpha = rows.T @ rows / 40, rng.normal(size=12), 1e-3
    x0 = ensemble.pacemaker_starts(1, 12, seed=0)[0]
    # centred: the same loss written around its minimiser, plus the constant L(c*) = 0.3
    optimum, level = (np.linalg.solve(gram + alpha * np.eye(12), rhs), 0.3) if centred else (None, 0.0)
    ours = ensemble.minimize_quadratic_bfgs(gram, rhs, x0, alpha=alpha, maxiter=maxiter, gtol=1e-8, optimum=optimum,
                                            optimum_loss=level)
    loss = ensemble._Quadratic(gram, rhs, alpha, optimum, level)
    ref = minimize(loss.fun_and_grad, x0, jac=True, method="BFGS", options={"maxiter": maxiter, "gtol": 1e-8})
    assert ours.nit == ref.nit and ours.status == ref.status and ours.nfev == ref.nfev
    np.testing.assert_allclose(ours.x, ref.x, rtol=0, atol=1e-8)
    assert ours.fun == pytest.approx(ref.fun, rel=1e-12)
    if maxiter == 2000:
        assert ours.status == 0 and ours.nit < 2000  # converged, by the gradient rule
        np.testing.assert_allclose(ours.x, np.linalg.solve(gram + alpha * np.eye(12), rhs), atol=1e-6)


def test_the_centred_loss_is_the_expanded_loss_plus_its_constant():
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(30, 6))
    gram, rhs, alpha = rows.T @ rows, rng.normal(size=6), 0.1
    optimum = np.linalg.solve(gram + alpha * np.eye(6), rhs)
    expanded = ensemble._Quadratic(gram, rhs, alpha)
    centred = ensemble._Quadratic(gram, rhs, alpha, optimum, optimum_loss=2.0)
    shift = 2.0 - expanded.fun(optimum)  # L(c*) = 2 fixes the constant
    for x in rng.normal(size=(5, 6)):
        assert centred.fun(x) == pytest.approx(expanded.fun(x) + shift, rel=1e-12)
        np.testing.assert_allclose(centred.grad(x), expanded.grad(x), rtol=1e-10, atol=1e-12)


def test_ensembles_are_deterministic_under_a_seed():
    dm = random_design_matrix()
    for construction in ensemble.CONSTRUCTIONS:
        a = ensemble.fit_ensemble(dm, 4, construction=construction, seed=1, progress=False)
        b = ensemble.fit_ensemble(dm, 4, construction=construction, seed=1, progress=False)
        c = ensemble.fit_ensemble(dm, 4, construction=construction, seed=2, progress=False)
        np.testing.assert_array_equal(a.coefficients, b.coefficients)
        np.testing.assert_array_equal(a.structure_weights, b.structure_weights)
        assert a.construction == construction and a.structure_weights.shape == (4, dm.n_configs)
        # another seed, other members (pacemaker's differ only by where BFGS stopped on this well-posed loss)
        assert not np.array_equal(a.coefficients, c.coefficients)


def test_recorded_gram_spectra_are_the_members_normal_equations():
    dm = random_design_matrix()
    for construction in ensemble.CONSTRUCTIONS:
        ens = ensemble.fit_ensemble(dm, 3, construction=construction, seed=0, kappa=0.1, gram_spectra=True,
                                    maxiter=5, progress=False)
        for w, eigenvalues in zip(ens.structure_weights, ens.gram_eigenvalues, strict=True):
            gram, _ = ace.normal_equations(dm, kappa=0.1, structure_weights=w)
            np.testing.assert_allclose(eigenvalues, np.linalg.eigvalsh(gram), atol=1e-12)
        assert ens.members([0, 2]).gram_eigenvalues.shape == (2, dm.n_functions)


def test_chunked_uncertainties_equal_eqs_1_to_3_on_the_whole_set(tmp_path):
    dm = random_design_matrix()
    coefficients = np.random.default_rng(0).normal(size=(5, dm.n_functions))
    for name in ("energy_rows", "force_rows"):
        np.save(tmp_path / f"{name}.npy", getattr(dm, name))
        setattr(dm, name, np.load(tmp_path / f"{name}.npy", mmap_mode="r"))
    chunked = ensemble.ensemble_uncertainties(dm, coefficients, structures_per_chunk=4)
    forces = ace.predict_forces(dm, coefficients)
    energies = ace.predict_energy_per_atom(dm, coefficients)
    np.testing.assert_allclose(chunked["U_E"], ensemble.energy_uncertainty(energies))
    np.testing.assert_allclose(chunked["U_F_atom"], ensemble.atom_force_uncertainty(forces))
    np.testing.assert_allclose(chunked["U_F_cfg"], ensemble.config_force_uncertainty(forces, dm.n_atoms))


def test_posterior_committee_is_centred_on_the_ridge_fit(dm33):
    ens = ensemble.fit_ensemble(dm33, 400, construction="posterior", seed=0, progress=False)
    centre = ace.fit_coefficients(dm33)
    spread = ens.coefficients.std(axis=0)
    assert (spread > 0).all()
    # the mean of 400 draws lies within a few standard errors of the ridge solution
    assert np.all(np.abs(ens.coefficients.mean(axis=0) - centre) < 5 * spread / np.sqrt(400))


def test_sub_ensembles(dm33):
    ens = ensemble.fit_ensemble(dm33, 4, seed=0, progress=False)
    part = ens.members(slice(1, 3))
    assert part.n_members == 2
    np.testing.assert_array_equal(part.structure_weights, ens.structure_weights[1:3])
    with pytest.raises(ValueError, match="at least 2"):
        ens.members(slice(0, 1))
    paced = ensemble.fit_ensemble(dm33, 4, construction="pacemaker", maxiter=3, progress=False).members([3, 1])
    assert list(paced.optimizer.index) == [0, 1] and paced.optimizer["iterations"].tolist() == [3, 3]


def test_bad_ensemble_requests(dm33):
    with pytest.raises(ValueError, match="at least 2 members"):
        ensemble.fit_ensemble(dm33, 1)
    with pytest.raises(ValueError, match="Unknown member construction 'dropout'"):
        ensemble.fit_ensemble(dm33, 3, construction="dropout")
    for construction in ensemble.CONSTRUCTIONS:
        with pytest.raises(ValueError, match=r"kappa must lie in \[0, 1\], got 1.5"):
            ensemble.fit_ensemble(dm33, 3, construction=construction, kappa=1.5, progress=False)
    with pytest.raises(ValueError, match="maxiter"):
        ensemble.fit_ensemble(dm33, 3, construction="pacemaker", maxiter=-1, progress=False)


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
        members = ensemble.fit_ensemble(dm, 400, construction="posterior", seed=int(rng.integers(1e9)), kappa=kappa,
                                        alpha=1e-12, progress=False).coefficients
        inside.append(np.abs(members.mean(axis=0) - truth) <= members.std(axis=0))
    assert np.mean(inside) == pytest.approx(0.683, abs=0.04)


@pytest.fixture(scope="module")
def dm72(small_table):
    return ace.design_matrix(small_table, "Func-72", use_cache=False, progress=False)


@pytest.mark.parametrize("construction", ensemble.CONSTRUCTIONS)
def test_one_pass_at_the_top_fits_every_nested_preset_as_a_fit_of_its_own_columns(dm72, construction):
    presets = ["Func-33", "Func-49", "Func-72"]
    options = {"construction": construction, "seed": 3, "alpha": 1e-6, "maxiter": 6, "progress": False}
    nested = ensemble.fit_nested_ensembles(dm72, presets, 4, **options)
    assert list(nested) == presets
    for preset in presets:
        own = ensemble.fit_ensemble(dm72.select(preset), 4, **options)
        dm = dm72.select(preset)
        assert nested[preset].preset == preset and nested[preset].coefficients.shape == own.coefficients.shape
        np.testing.assert_array_equal(nested[preset].structure_weights, own.structure_weights)
        # the same fits up to rounding of G (summed in another order): compare what they predict, in eV/Å
        np.testing.assert_allclose(ace.predict_forces(dm, nested[preset].coefficients),
                                   ace.predict_forces(dm, own.coefficients), atol=1e-6)
        if construction == "pacemaker":
            assert nested[preset].optimizer["iterations"].tolist() == own.optimizer["iterations"].tolist()
