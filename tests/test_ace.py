from __future__ import annotations

import numpy as np
import pytest
from pyace import PyACECalculator

from uqlib import ace, cache


@pytest.mark.parametrize("name", list(ace.PRESETS))
def test_preset_name_matches_the_function_count_pyace_computes(name):
    assert name == f"Func-{ace.PRESETS[name].n_functions}"


def test_presets_grow_and_span_the_papers_range():
    counts = [p.n_functions for p in ace.PRESETS.values()]
    assert counts == sorted(counts) and counts[0] == 15 and counts[-1] == 945 and len(counts) == 6


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(KeyError, match="Func-15, Func-33"):
        ace.get_preset("Func-16")


@pytest.fixture(scope="module")
def dm72(small_table):
    return ace.design_matrix(small_table, "Func-72", use_cache=False, progress=False)


def test_design_matrix_layout(small_table, dm72):
    n_atoms = small_table["n_atoms"].sum()
    assert dm72.energy_rows.shape == (8, 72) and dm72.force_rows.shape == (3 * n_atoms, 72)
    assert dm72.forces.shape == (n_atoms, 3)
    assert np.array_equal(dm72.atom_structure[: small_table["n_atoms"].iloc[0]], np.zeros(2, int))


def test_design_matrix_is_cached_and_a_damaged_entry_is_recomputed(small_table, compute_cache):
    first = ace.design_matrix(small_table, "Func-15", progress=False)
    assert first.seconds > 0
    second = ace.design_matrix(small_table, "Func-15", progress=False)
    assert second.seconds == 0.0
    np.testing.assert_array_equal(first.force_rows, second.force_rows)
    entries = sorted((compute_cache / "design").glob("Func-15-*.npz"))
    assert len(entries) == 2  # one entry per subset run: A and B
    entries[0].write_bytes(entries[0].read_bytes()[:1000])  # as if a write had been cut short
    third = ace.design_matrix(small_table, "Func-15", progress=False)
    assert third.seconds > 0
    np.testing.assert_array_equal(first.energy_rows, third.energy_rows)


def test_tables_sharing_a_subset_share_its_cache_entry(small_table, compute_cache):
    ace.design_matrix(small_table, "Func-15", progress=False)
    only_b = small_table[small_table["subset"] == "B"].reset_index(drop=True)
    assert ace.design_matrix(only_b, "Func-15", progress=False).seconds == 0.0


def test_an_interrupted_design_matrix_write_is_recomputed_next_time(small_table, compute_cache, monkeypatch):
    real_savez = np.savez

    def interrupted(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")  # some bytes reach the temporary file, then the run stops
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ace.design_matrix(small_table, "Func-15", progress=False)
    assert not list((compute_cache / "design").glob("*.npz")), "no entry a later run could trust"
    monkeypatch.setattr(np, "savez", real_savez)
    again = ace.design_matrix(small_table, "Func-15", progress=False)
    assert again.seconds > 0 and len(list((compute_cache / "design").glob("*.npz"))) == 2


def test_interrupted_cache_write_leaves_no_entry(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(KeyboardInterrupt):
        cache.save_arrays(tmp_path / "x.npz", a=np.ones(3))
    assert list(tmp_path.iterdir()) == []


def test_fit_minimises_the_documented_weighted_loss(dm72):
    kappa, alpha = 0.3, 1e-6
    coef = ace.fit_coefficients(dm72, kappa=kappa, alpha=alpha)
    # Normal equations of (1-k)/N_cfg sum de^2 + k/N_atom sum |dF|^2 + alpha |c|^2, solved directly.
    we = (1 - kappa) / dm72.n_configs
    wf = kappa / dm72.n_atoms.sum()
    lhs = we * dm72.energy_rows.T @ dm72.energy_rows + wf * dm72.force_rows.T @ dm72.force_rows + alpha * np.eye(72)
    rhs = we * dm72.energy_rows.T @ dm72.energy_per_atom + wf * dm72.force_rows.T @ dm72.forces.ravel()
    direct = np.linalg.solve(lhs, rhs)

    def loss(c):
        de = dm72.energy_rows @ c - dm72.energy_per_atom
        df = dm72.force_rows @ c - dm72.forces.ravel()
        return we * de @ de + wf * df @ df + alpha * c @ c

    # The Gram matrix is ill-conditioned, so compare what the fit is for: loss and predictions.
    assert loss(coef) == pytest.approx(loss(direct), rel=1e-8)
    np.testing.assert_allclose(dm72.force_rows @ coef, dm72.force_rows @ direct, atol=1e-6)
    assert loss(coef) < loss(1.01 * coef) and loss(coef) < loss(0.99 * coef)


def test_structure_weights_act_like_repeated_structures(dm72):
    weights = np.array([2, 1, 1, 0, 1, 1, 3, 1], dtype=float)
    repeated = dm72.subset(np.repeat(np.arange(8), weights.astype(int)))
    direct = ace.fit_coefficients(dm72, structure_weights=weights)
    np.testing.assert_allclose(dm72.force_rows @ direct, dm72.force_rows @ ace.fit_coefficients(repeated), atol=1e-6)


def test_predictions_agree_with_pyace_calculator(tmp_path, small_table, dm72):
    model = ace.LinearACE("Func-72").fit(dm72)
    calc = PyACECalculator(str(model.to_yaml(tmp_path / "model.yaml")))
    energies = model.predict_energy_per_atom(dm72)
    forces = model.predict_forces(dm72)
    start = 0
    for s, atoms in enumerate(small_table["atoms"]):
        atoms = atoms.copy()
        atoms.calc = calc
        assert atoms.get_potential_energy() / len(atoms) == pytest.approx(energies[s], abs=1e-9)
        np.testing.assert_allclose(atoms.get_forces(), forces[start:start + len(atoms)], atol=1e-8)
        start += len(atoms)


def test_rmse_units_and_ensemble_shaped_coefficients(dm72):
    model = ace.LinearACE("Func-72").fit(dm72)
    errors = model.rmse(dm72)
    de = model.predict_energy_per_atom(dm72) - dm72.energy_per_atom
    assert errors["E_rmse"] == pytest.approx(1e3 * np.sqrt(np.mean(de**2)))
    stacked = np.vstack([model.coef_, 2 * model.coef_])
    assert ace.predict_forces(dm72, stacked).shape == (2, dm72.forces.shape[0], 3)
    np.testing.assert_allclose(ace.predict_energy_per_atom(dm72, stacked)[1], 2 * de + 2 * dm72.energy_per_atom)


def test_subset_selects_matching_rows(dm72):
    part = dm72.subset(np.array([5, 2]))
    assert list(part.structure_ids) == [dm72.structure_ids[5], dm72.structure_ids[2]]
    start = dm72.n_atoms[:5].sum()
    np.testing.assert_array_equal(part.forces[: dm72.n_atoms[5]], dm72.forces[start:start + dm72.n_atoms[5]])
    np.testing.assert_array_equal(part.force_rows[:3], dm72.force_rows[3 * start:3 * start + 3])


def test_bad_use_is_a_clear_error(small_table, dm72):
    with pytest.raises(RuntimeError, match="not fitted"):
        ace.LinearACE("Func-72").predict_forces(dm72)
    with pytest.raises(ValueError, match="for Func-72, the model for Func-15"):
        ace.LinearACE("Func-15").fit(dm72)
    with pytest.raises(ValueError, match="kappa"):
        ace.fit_coefficients(dm72, kappa=1.5)
    with pytest.raises(ValueError, match="empty"):
        ace.design_matrix(small_table.iloc[:0], "Func-15")
