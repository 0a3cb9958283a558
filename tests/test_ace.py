from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyace import PyACECalculator
from pyace.activelearning import compute_B_projections
from pyace.linearacefit import LinearACEDataset
from synthetic import random_design_matrix

from uqlib import ace, cache
from uqlib.exceptions import NotFittedError


@pytest.mark.parametrize("name", list(ace.PRESETS))
def test_preset_name_matches_the_function_count_pyace_computes(name):
    assert name == f"Func-{ace.PRESETS[name].n_functions}"


def test_presets_form_a_nested_ladder_of_six():
    counts = [p.n_functions for p in ace.LADDER]
    assert len(counts) == 6 and counts == sorted(counts) and ace.LADDER[-1].name == ace.LARGEST
    for small, large in zip(ace.LADDER[:-1], ace.LADDER[1:], strict=True):
        assert ace.nesting_problem(small, large) is None
        columns = ace.column_map(small, large)
        assert len(np.unique(columns)) == small.n_functions  # distinct columns of the larger basis
    # only the two models the paper names, at the ends of the ladder
    assert {ace.LADDER[0].name: "Func-15", ace.LADDER[-1].name: "Func-945"} == ace.PAPER_MODELS


def test_presets_that_are_not_nested_are_refused():
    wider_l = ace.BasisPreset("wide-l", (15, 3), (0, 6))  # lmax 6 at order 2 exceeds the largest preset's 4
    other_radial = ace.BasisPreset("r", (12, 3), (0, 2))  # fewer rank-1 radial functions: another radial basis
    assert "lmax 6 > 4" in ace.nesting_problem(wider_l, ace.LARGEST)
    assert "nradmax of order 1" in ace.nesting_problem(other_radial, ace.LARGEST)
    with pytest.raises(ValueError, match="not nested"):
        ace.column_map(ace.LARGEST, ace.LADDER[0])


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(KeyError, match=", ".join(list(ace.PRESETS)[:2])):
        ace.get_preset("Func-16")


@pytest.fixture(scope="module")
def dm_largest(small_table):
    return ace.design_matrix(small_table, ace.LARGEST, use_cache=False, progress=False)


def _pyace_design_matrix(table, preset):
    """The design matrix pyace's own LinearACEDataset builds for ``preset`` (the reference)."""
    frame = pd.DataFrame({"ase_atoms": table["atoms"].to_numpy(), "energy": table["energy"].to_numpy(),
                          "forces": table["forces"].to_numpy()})
    matrix = LinearACEDataset(ace.get_preset(preset).basis_set(), frame).get_design_matrix(max_workers=1)
    return matrix[:len(table)], matrix[len(table):]


@pytest.mark.parametrize("name", [ace.LADDER[1].name, ace.LADDER[2].name])
def test_selected_columns_equal_a_direct_pyace_computation(small_table, dm_largest, name):
    selected = dm_largest.select(name)
    energy_rows, force_rows = _pyace_design_matrix(small_table, name)
    assert selected.preset == name and selected.n_functions == ace.PRESETS[name].n_functions
    np.testing.assert_allclose(selected.energy_rows, energy_rows, rtol=0, atol=1e-12)
    np.testing.assert_allclose(selected.force_rows, force_rows, rtol=0, atol=1e-12)


def test_projections_come_from_the_same_pass(small_table, dm_largest):
    starts = np.concatenate([[0], np.cumsum(dm_largest.n_atoms)[:-1]])
    means = np.add.reduceat(dm_largest.projections, starts, axis=0) / dm_largest.n_atoms[:, None]
    np.testing.assert_allclose(dm_largest.energy_rows, means, rtol=0, atol=1e-12)
    one_structure = small_table.iloc[[4]]
    direct = compute_B_projections(ace.get_preset(ace.LARGEST).basis_set(), list(one_structure["atoms"]))[0]
    np.testing.assert_allclose(dm_largest.subset([4]).projections, direct, rtol=0, atol=1e-12)


def test_select_refuses_a_preset_that_is_not_nested(dm_largest):
    small = dm_largest.select(ace.LADDER[0].name)
    with pytest.raises(ValueError, match="not nested"):
        small.select(ace.LADDER[2].name)
    with pytest.raises(ValueError, match="not nested"):
        dm_largest.select(ace.BasisPreset("wide", (15, 3), (0, 6)))
    assert dm_largest.select(ace.LARGEST) is dm_largest


def test_shared_columns_are_identical_along_the_ladder(dm_largest):
    for small, large in zip(ace.LADDER[:-1], ace.LADDER[1:], strict=True):
        via_next = dm_largest.select(large).select(small)
        direct = dm_largest.select(small)
        for name in ("energy_rows", "force_rows", "projections"):
            np.testing.assert_array_equal(getattr(via_next, name), getattr(direct, name))


def test_every_preset_is_one_featurization_pass(small_table, compute_cache):
    table = small_table.iloc[[0, 1, 4]]  # one run of A, one of B
    before = ace.pyace_passes()
    ace.design_matrix(table, ace.LADDER[0].name, largest=ace.LARGEST, progress=False)
    # later calls find the cached featurization at the largest preset and select columns of it
    matrices = [ace.design_matrix(table, name, progress=False) for name in ace.PRESETS]
    assert ace.pyace_passes() - before == len(table)  # once per structure, at the largest preset
    # one entry per subset run (A, B) and their stack, all at the largest preset
    names = [p.parent.name for p in _entries(compute_cache)]
    assert len(names) == 3 and all(name.startswith(f"{ace.LARGEST}-") for name in names)
    assert all(dm.n_functions == ace.PRESETS[dm.preset].n_functions for dm in matrices)


@pytest.fixture(scope="module")
def dm72(dm_largest):
    return dm_largest.select("Func-72")


def test_design_matrix_layout(small_table, dm72):
    n_atoms = small_table["n_atoms"].sum()
    assert dm72.energy_rows.shape == (8, 72) and dm72.force_rows.shape == (3 * n_atoms, 72)
    assert dm72.forces.shape == (n_atoms, 3)
    assert np.array_equal(dm72.atom_structure[: small_table["n_atoms"].iloc[0]], np.zeros(2, int))


SMALL, MID = ace.LADDER[0].name, ace.LADDER[1].name  # cache tests featurize at MID (largest=MID): fast


def _entries(compute_cache, pattern: str = "*") -> list:
    """The sidecars of the design-matrix entries (uqlib.cache: one folder per entry)."""
    return sorted((compute_cache / "design").glob(f"{pattern}/{cache.SIDECAR}"))


def _replace_bytes(file, edit) -> None:
    """Damage ``file`` as a crash or a bad disk would, but by a new file: never the pages a map holds."""
    damaged = file.with_name(file.name + ".damaged")
    damaged.write_bytes(edit(bytearray(file.read_bytes())))
    damaged.replace(file)


def _nan_in_data(data: bytearray) -> bytes:
    data[-8:] = np.array([np.nan]).tobytes()
    return bytes(data)


def _other_shape(data: bytearray) -> bytes:
    header = bytes(data[:128])
    start = header.index(b"'shape': (") + len(b"'shape': (")
    rows = header[start:header.index(b",", start)]  # (rows, p) -> (rows - 1, p): a header that claims less
    return bytes(data).replace(b"(" + rows + b",", b"(" + str(int(rows) - 1).encode() + b",", 1)


ENTRY_DAMAGE = {
    "truncated": lambda entry: _replace_bytes(entry / "force_rows.npy", lambda d: bytes(d[:1000])),
    "nan": lambda entry: _replace_bytes(entry / "force_rows.npy", _nan_in_data),
    "shape": lambda entry: _replace_bytes(entry / "projections.npy", _other_shape),
    "missing": lambda entry: (entry / "projections.npy").unlink(),
    "sidecar": lambda entry: (entry / cache.SIDECAR).unlink(),
}


def test_design_matrix_is_cached_and_a_damaged_entry_is_recomputed(small_table, compute_cache):
    first = ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    assert first.seconds > 0
    second = ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    assert second.seconds == 0.0
    np.testing.assert_array_equal(first.force_rows, second.force_rows)
    entries = [p.parent for p in _entries(compute_cache, f"{MID}-*")]
    assert len(entries) == 3  # one entry per subset run, A and B, and their stack
    for entry in entries:
        ENTRY_DAMAGE["truncated"](entry)  # as if a write had been cut short
    with pytest.warns(UserWarning, match="not what it claims"):
        third = ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    assert third.seconds > 0
    np.testing.assert_array_equal(first.energy_rows, third.energy_rows)


@pytest.mark.parametrize("damage", sorted(ENTRY_DAMAGE))
def test_a_cache_entry_is_checked_before_it_is_trusted(small_table, compute_cache, damage):
    first = ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    for sidecar in _entries(compute_cache, f"{MID}-*"):  # the runs' entries and their stack
        ENTRY_DAMAGE[damage](sidecar.parent)
    with pytest.warns(UserWarning, match="not what it claims"):
        again = ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    assert again.seconds > 0
    np.testing.assert_array_equal(first.force_rows, again.force_rows)


def test_a_failure_inside_a_pyace_worker_raises_and_caches_nothing(small_table, compute_cache, monkeypatch):
    def broken(atoms_list):
        raise RuntimeError("pyace worker died")

    monkeypatch.setattr(ace, "_featurize_chunk", broken)  # forked workers inherit the patched module
    with pytest.raises(RuntimeError, match="worker died"):
        ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    assert not list(compute_cache.rglob("*.npy"))


def test_non_finite_features_are_refused_not_cached(small_table, compute_cache, monkeypatch):
    real = ace._featurize_chunk

    def poisoned(atoms_list):
        return [(proj, np.full_like(forces, np.nan)) for proj, forces in real(atoms_list)]

    monkeypatch.setattr(ace, "_featurize_chunk", poisoned)
    with pytest.raises(ace.FeaturizationError, match="non-finite"):
        ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    assert not list(compute_cache.rglob("*.npy"))


def test_tables_sharing_a_subset_share_its_cache_entry(small_table, compute_cache):
    ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    only_b = small_table[small_table["subset"] == "B"].reset_index(drop=True)
    assert ace.design_matrix(only_b, SMALL, largest=MID, progress=False).seconds == 0.0


def test_an_interrupted_design_matrix_write_is_recomputed_next_time(small_table, compute_cache, monkeypatch):
    real_write = cache._write_npy

    def interrupted(file, blocks):
        file.write_bytes(b"\x93NUMPY half an array")  # some bytes reach the temporary folder, then the run stops
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "_write_npy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    assert not list(compute_cache.rglob("*.npy")), "no entry a later run could trust"
    monkeypatch.setattr(cache, "_write_npy", real_write)
    again = ace.design_matrix(small_table, SMALL, largest=MID, progress=False)
    assert again.seconds > 0 and len(_entries(compute_cache)) == 3


def test_interrupted_cache_write_leaves_no_entry(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "_write_npy", fail)
    with pytest.raises(KeyboardInterrupt):
        cache.write_entry(tmp_path / "x", {"a": np.ones(3)})
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
    with pytest.raises(NotFittedError, match="not fitted"):
        ace.LinearACE("Func-72").predict_forces(dm72)
    with pytest.raises(ValueError, match=f"for Func-72, the model for {SMALL}"):
        ace.LinearACE(SMALL).fit(dm72)
    with pytest.raises(ValueError, match="kappa"):
        ace.fit_coefficients(dm72, kappa=1.5)
    with pytest.raises(ValueError, match="empty"):
        ace.design_matrix(small_table.iloc[:0], SMALL)


def test_training_force_error_falls_along_the_ladder():
    # 8 structures per subset of A+B: 817 atoms, 2451 force rows, more than the 1561 functions of the
    # largest preset, so no preset can interpolate the forces. Nested least squares cannot fit worse
    # with more functions; a broken nesting (old Func-945 vs Func-724) or column map would.
    from uqlib import tables
    from uqlib.paper import data

    table = tables.subsample(data.load_subsets("A+B"), 8, seed=0)
    assert 3 * table["n_atoms"].sum() > ace.get_preset(ace.LARGEST).n_functions
    full = ace.design_matrix(table, ace.LARGEST, use_cache=False, progress=False)
    errors = [ace.LinearACE(name).fit(full.select(name)).rmse(full.select(name))["F_rmse"] for name in ace.PRESETS]
    assert all(np.diff(errors) < 0), errors
    assert errors[-1] > 1.0  # meV/Å: still a fit, not an interpolation of the training forces


def test_without_largest_a_preset_is_featurized_on_its_own_unless_a_superset_is_cached(small_table, compute_cache):
    table = small_table.iloc[[0, 4]]
    assert ace.cached_superset(table, "Func-33") is None
    assert ace.design_matrix(table, "Func-33", progress=False).seconds > 0  # featurized at Func-33 itself
    ace.design_matrix(table, "Func-72", largest="Func-222", progress=False)
    assert ace.cached_superset(table, "Func-33").name == "Func-222"
    before = ace.pyace_passes()
    assert ace.design_matrix(table, "Func-72", progress=False).seconds == 0.0
    assert ace.pyace_passes() == before


def test_cv_folds_deal_every_structure_once_and_refuse_bad_counts():
    folds = ace.cv_folds(10, 3, seed=0)
    assert sorted(np.bincount(folds)) == [3, 3, 4]
    assert not np.array_equal(folds, ace.cv_folds(10, 3, seed=1))
    for bad in (1, 11, 2.5):
        with pytest.raises(ValueError, match="n_folds"):
            ace.cv_folds(10, bad, seed=0)


def test_cross_validation_scores_each_fold_by_a_fit_without_it(dm72):
    alphas = np.array([1e-8, 1e-4, 1.0])
    curve = ace.cross_validate_alpha(dm72, alphas, n_folds=4, seed=3)
    folds = ace.cv_folds(dm72.n_configs, 4, seed=3)
    mse_e = mse_f = 0.0
    for fold in range(4):  # the direct computation: a Cholesky fit on the other folds, errors on this one
        c = ace.fit_coefficients(dm72, alpha=1e-4, structure_weights=(folds != fold).astype(float))
        held = ace.rmse(dm72.subset(np.flatnonzero(folds == fold)), c)
        mse_e, mse_f = mse_e + held["E_rmse"] ** 2 / 4, mse_f + held["F_rmse"] ** 2 / 4
    row = curve.set_index("alpha").loc[1e-4]
    np.testing.assert_allclose([row["cv_E_rmse"], row["cv_F_rmse"]], np.sqrt([mse_e, mse_f]), rtol=1e-6)
    np.testing.assert_allclose(row["cv_loss"], 1e-6 * (0.99 * mse_e + 0.01 * 3 * mse_f), rtol=1e-6)
    # a huge ridge shrinks c to ~0: the held-out force error is then the reference forces' RMS
    huge = ace.cross_validate_alpha(dm72, [1e6], n_folds=4, seed=3)
    assert huge["cv_F_rmse"].iloc[0] > curve["cv_F_rmse"].min()


def test_choose_alpha_takes_the_least_cross_validated_loss(dm72):
    alpha, curve = ace.choose_alpha(dm72, [1e-10, 1e-6, 1e-2, 1e2], n_folds=4, seed=0)
    assert alpha == curve.loc[curve["cv_loss"].idxmin(), "alpha"]
    assert list(curve["alpha"]) == [1e-10, 1e-6, 1e-2, 1e2]
    with pytest.raises(ValueError, match="alphas"):
        ace.choose_alpha(dm72, [1e-3, 0.0])


# -- streamed normal equations -----------------------------------------------------------------------



def _memory_mapped(dm, folder):
    """The same design matrix with every array a read-only memory map of an .npy file."""
    arrays = {}
    for name in ("energy_rows", "force_rows", "energy_per_atom", "forces", "projections"):
        np.save(folder / f"{name}.npy", getattr(dm, name))
        arrays[name] = np.load(folder / f"{name}.npy", mmap_mode="r")
    return ace.DesignMatrix(dm.preset, dm.structure_ids, dm.n_atoms, **arrays)


def _in_memory_normal_equations(dm, w, kappa):
    """The normal equations written out with dense weighted products (the reference)."""
    we = (1 - kappa) / w.sum() * w
    wf = kappa / (w @ dm.n_atoms) * np.repeat(np.repeat(w, dm.n_atoms), 3)
    gram = dm.energy_rows.T @ (we[:, None] * dm.energy_rows) + dm.force_rows.T @ (wf[:, None] * dm.force_rows)
    rhs = dm.energy_rows.T @ (we * dm.energy_per_atom) + dm.force_rows.T @ (wf * dm.forces.ravel())
    return gram, rhs


@pytest.mark.parametrize("chunk_bytes", [8 * 9 * 9, 8 * 9 * 9 * 4, ace.CHUNK_BYTES])  # 1, 4 and all structures
def test_streamed_grams_of_k_weightings_equal_the_in_memory_ones(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(ace, "ENERGY_ROWS_PER_CHUNK", 7)  # energy rows read in several blocks too
    dm = random_design_matrix()
    mapped = _memory_mapped(dm, tmp_path)
    assert isinstance(mapped.force_rows, np.memmap)
    weights = np.random.default_rng(1).integers(0, 3, (4, dm.n_configs)).astype(float)
    weights[1] = 1.0
    grams, rhs = ace.stacked_normal_equations(mapped, weights, kappa=0.3, chunk_bytes=chunk_bytes)
    assert grams.shape == (4, 9, 9) and rhs.shape == (4, 9)
    for k, w in enumerate(weights):
        gram, b = _in_memory_normal_equations(dm, w, 0.3)
        np.testing.assert_allclose(grams[k], gram, rtol=0, atol=1e-10 * np.abs(gram).max())
        np.testing.assert_allclose(rhs[k], b, rtol=0, atol=1e-10 * np.abs(b).max())
        single, single_b = ace.normal_equations(mapped, kappa=0.3, structure_weights=w)  # the one-weighting pass
        np.testing.assert_allclose(single, gram, rtol=0, atol=1e-10 * np.abs(gram).max())
        np.testing.assert_allclose(single_b, b, rtol=0, atol=1e-10 * np.abs(b).max())


def test_stacked_normal_equations_refuse_bad_weights():
    dm = random_design_matrix()
    with pytest.raises(ValueError, match=r"structure_weights must be \(K, 30\)"):
        ace.stacked_normal_equations(dm, np.ones((2, 29)))
    with pytest.raises(ValueError, match="not all zero"):
        ace.stacked_normal_equations(dm, np.vstack([np.ones(30), np.zeros(30)]))
    with pytest.raises(ValueError, match="kappa"):
        ace.stacked_normal_equations(dm, np.ones(30), kappa=2.0)


def test_gram_of_a_nested_preset_is_a_sub_block_of_the_top_presets(small_table):
    top, small = ace.LADDER[2].name, ace.LADDER[0].name  # Func-72 holds Func-33
    dm_top = ace.design_matrix(small_table, top, use_cache=False, progress=False)
    weights = np.vstack([np.ones(dm_top.n_configs), np.arange(dm_top.n_configs) % 3])
    grams, rhs = ace.stacked_normal_equations(dm_top, weights)
    sub_grams, sub_rhs = ace.select_normal_equations(grams, rhs, small, top)
    direct_grams, direct_rhs = ace.stacked_normal_equations(dm_top.select(small), weights)
    assert sub_grams.shape == (2, 33, 33)
    np.testing.assert_allclose(sub_grams, direct_grams, rtol=0, atol=1e-10 * np.abs(direct_grams).max())
    np.testing.assert_allclose(sub_rhs, direct_rhs, rtol=0, atol=1e-10 * np.abs(direct_rhs).max())
    one, one_rhs = ace.select_normal_equations(grams[0], rhs[0], small, top)  # a single (p, p) Gram too
    np.testing.assert_allclose(one, direct_grams[0], rtol=0, atol=1e-10 * np.abs(direct_grams).max())
    with pytest.raises(ValueError, match="pass the normal equations of Func-72"):
        ace.select_normal_equations(sub_grams, sub_rhs, small, top)


def _cv_one_fold_at_a_time(dm, alphas, n_folds, seed, kappa):
    """The cross-validation as it was before the one-pass fold Grams: one normal_equations per fold."""
    folds = ace.cv_folds(dm.n_configs, n_folds, seed)
    mse_e, mse_f = np.zeros(len(alphas)), np.zeros(len(alphas))
    for fold in range(n_folds):
        gram, rhs = ace.normal_equations(dm, kappa=kappa, structure_weights=(folds != fold).astype(float))
        eigenvalues, vectors = np.linalg.eigh(gram)
        coefficients = ((vectors.T @ rhs)[None, :] / (eigenvalues[None, :] + alphas[:, None])) @ vectors.T
        held = dm.subset(np.flatnonzero(folds == fold))
        de = ace.predict_energy_per_atom(held, coefficients) - held.energy_per_atom
        df = ace.predict_forces(held, coefficients) - held.forces
        mse_e += np.mean(de**2, axis=-1) / n_folds
        mse_f += np.mean(df.reshape(len(alphas), -1) ** 2, axis=-1) / n_folds
    return (1 - kappa) * mse_e + kappa * 3 * mse_f


def test_cross_validation_from_the_one_pass_fold_grams_equals_the_fold_by_fold_one(dm72):
    alphas = np.array([1e-8, 1e-4, 1.0])
    curve = ace.cross_validate_alpha(dm72, alphas, n_folds=4, seed=3, kappa=0.05)
    old = _cv_one_fold_at_a_time(dm72, alphas, 4, 3, 0.05)
    # The fold Grams agree to rounding (~1e-16 relative, summed in another order); a fold of 6
    # structures cannot span 72 functions, so at alpha = 1e-8 the solve amplifies that rounding by
    # cond(G + alpha I) ~ 1e8: 1e-6 there, 1e-9 where the ridge makes the solve well conditioned.
    np.testing.assert_allclose(curve["cv_loss"], old, rtol=1e-6)
    np.testing.assert_allclose(curve["cv_loss"][1:], old[1:], rtol=1e-9)
