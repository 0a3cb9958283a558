"""Grading of any species against pyace's own PyACECalculator: a Cu-Au alloy labelled by ase's EMT."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pyace import ACEBBasisSet, PyACECalculator
from pyace.linearacefit import LinearACEDataset
from pyace.multispecies_basisextension import create_multispecies_basis_config
from synthetic import alloy_cell

from uqlib import activeset, grading
from uqlib.activeset import ActiveSet
from uqlib.io import DataError

# A two-species linear ACE basis, built with pyace directly (uqlib's presets are W only).
ALLOY_BASIS = {
    "deltaSplineBins": 0.001, "elements": ["Cu", "Au"],
    "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
    "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 4.5, "dcut": 0.01}},
    "functions": {"ALL": {"nradmax_by_orders": [6, 2], "lmax_by_orders": [0, 1]}},
}


def alloy(seed: int, rattle: float = 0.1, gold: float = 0.4):
    """A 32-atom fcc Cu-Au cell with random occupation, labelled by EMT (eV, eV/Å)."""
    return alloy_cell("Cu", "Au", a=3.75, guest_fraction=gold, rattle=rattle, seed=seed)


@pytest.fixture(scope="module")
def alloy_model(tmp_path_factory):
    """Training cells, a linear fit (pyace design matrix + numpy lstsq) saved as YAML, and its active set."""
    folder = tmp_path_factory.mktemp("alloy")
    train = [alloy(seed) for seed in range(12)]
    basis = ACEBBasisSet(create_multispecies_basis_config(ALLOY_BASIS))
    frame = pd.DataFrame({"ase_atoms": train, "energy": [a.get_potential_energy() for a in train],
                          "forces": [a.get_forces() for a in train]})
    dataset = LinearACEDataset(basis, frame)
    X, y = dataset.get_design_matrix(max_workers=1), dataset.get_target_vector()
    ridge = 1e-3 * np.eye(X.shape[1])
    basis.basis_coeffs = np.linalg.lstsq(np.vstack([X, ridge]), np.concatenate([y, np.zeros(len(ridge))]),
                                         rcond=None)[0]
    yaml = folder / "alloy.yaml"
    basis.to_BBasisConfiguration().save(str(yaml))
    potential = grading.load_potential(yaml)
    projections = grading.species_projections(potential, train)
    owners = grading.structure_indices(train, projections)
    asi = activeset.build_active_set(projections).save(folder / "alloy.asi")
    clusters = np.array([s % 2 for s in range(len(train))])  # two clusters of six cells
    clustered = activeset.fit_clustered_active_set(projections, grading.species_labels(clusters, owners),
                                                   progress=False).save(folder / "clusters")
    return {"yaml": yaml, "asi": asi, "clusters": clustered, "train": train, "basis": potential}


def pyace_gammas(yaml, asi, structures) -> np.ndarray:
    """pacemaker's own gamma of every atom: PyACECalculator with the potential and the active set."""
    calc = PyACECalculator(str(yaml))
    calc.set_active_set(str(asi))
    return activeset.calculator_gammas(calc, structures)


def grade_structures(structures, basis, active_set, chunk_size=50) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-configuration (frame, gamma) and per-atom (frame, gamma, cluster name) tables from iter_grades."""
    graded = list(grading.iter_grades(structures, basis, active_set, chunk_size=chunk_size, progress=False))
    configs = pd.DataFrame({"frame": [g.frame for g in graded], "gamma": [g.gamma_max for g in graded]})
    atoms = pd.DataFrame({"frame": np.concatenate([np.full(len(g.gamma), g.frame) for g in graded]),
                          "gamma": np.concatenate([g.gamma for g in graded]),
                          "cluster": np.asarray(active_set.clusters)[np.concatenate([g.cluster for g in graded])]})
    return configs, atoms


@pytest.fixture(scope="module")
def test_cells():
    return [alloy(100 + s, rattle=0.15 + 0.05 * s, gold=0.2 + 0.2 * s) for s in range(3)]


def test_projections_are_keyed_by_species(alloy_model):
    projections = grading.species_projections(alloy_model["basis"], alloy_model["train"])
    n_gold = sum(a.get_chemical_symbols().count("Au") for a in alloy_model["train"])
    assert set(projections) == {"Cu", "Au"} and len(projections["Au"]) == n_gold
    assert np.abs(projections["Au"]).sum() > 0 and np.abs(projections["Cu"]).sum() > 0


def test_alloy_gamma_equals_pyace_calculator(alloy_model, test_cells):
    grading_set = activeset.load_active_set(alloy_model["asi"])
    assert grading_set.elements == ["Au", "Cu"]
    configs, atoms = grade_structures(test_cells, alloy_model["basis"], grading_set)
    assert grading_set.sets[0].n_candidates == 0  # read from disk: only the inverses
    reference = pyace_gammas(alloy_model["yaml"], alloy_model["asi"], test_cells)
    np.testing.assert_allclose(atoms["gamma"], reference, rtol=1e-6)
    assert (atoms["gamma"] > 1).any(), "the rattled cells should extrapolate somewhere"
    np.testing.assert_allclose(configs["gamma"], atoms.groupby("frame")["gamma"].max())


def test_clustered_gamma_is_the_minimum_over_each_clusters_pyace_gamma(alloy_model, test_cells):
    grading_set = activeset.load_active_set(alloy_model["clusters"])
    assert len(grading_set.clusters) == 2
    _, atoms = grade_structures(test_cells, alloy_model["basis"], grading_set)
    per_cluster = np.stack([pyace_gammas(alloy_model["yaml"], alloy_model["clusters"] / f"cluster-{name}.asi",
                                         test_cells) for name in grading_set.clusters], axis=1)
    np.testing.assert_allclose(atoms["gamma"], per_cluster.min(axis=1), rtol=1e-6)
    chosen = np.asarray(grading_set.clusters)[per_cluster.argmin(axis=1)]
    assert (atoms["cluster"].to_numpy() == chosen).all()


def test_calculator_returns_pyace_energy_forces_and_clustered_gamma(alloy_model, test_cells):
    atoms = test_cells[0].copy()
    atoms.calc = grading.ClusteredGammaCalculator(alloy_model["yaml"], alloy_model["clusters"])
    forces, energy = atoms.get_forces(), atoms.get_potential_energy()
    reference = test_cells[0].copy()
    reference.calc = PyACECalculator(str(alloy_model["yaml"]))
    np.testing.assert_allclose(forces, reference.get_forces(), atol=1e-10)
    assert energy == pytest.approx(reference.get_potential_energy())
    _, table = grade_structures([test_cells[0]], alloy_model["basis"],
                                        activeset.load_active_set(alloy_model["clusters"]))
    np.testing.assert_allclose(atoms.calc.results["gamma"], table["gamma"], rtol=1e-12)


def test_chunked_grading_of_a_generator_matches_one_block(alloy_model, test_cells):
    grading_set = activeset.load_active_set(alloy_model["clusters"])
    whole = grade_structures(test_cells, alloy_model["basis"], grading_set, chunk_size=50)[1]
    chunks = list(grading.iter_grades((a for a in test_cells), alloy_model["basis"], grading_set, chunk_size=1,
                                      progress=False))
    assert [g.frame for g in chunks] == [0, 1, 2]
    np.testing.assert_allclose(np.concatenate([g.gamma for g in chunks]), whole["gamma"])


def test_an_old_clustered_folder_without_species_still_loads(tmp_path):
    """Folders written before index.json listed the species of each cluster read the same way."""
    rng = np.random.default_rng(0)
    inverses = [rng.normal(size=(4, 4)) + 4 * np.eye(4) for _ in range(2)]
    (tmp_path / "set").mkdir()
    for name, inverse in zip("ab", inverses, strict=True):
        with open(tmp_path / "set" / f"cluster-{name}.asi", "wb") as fh:
            np.savez(fh, W=inverse)
    (tmp_path / "set" / "index.json").write_text(json.dumps({"rule": "gamma = min over clusters", "merged": {"c": "a"},
                                                             "files": {"a": "cluster-a.asi", "b": "cluster-b.asi"}}))
    loaded = activeset.load_active_set(tmp_path / "set")
    rows = rng.normal(size=(5, 4))
    assert loaded.clusters == ["a", "b"] and loaded.merged == {"c": "a"}
    np.testing.assert_allclose(loaded.grade(rows), np.min([np.abs(rows @ inv).max(axis=1) for inv in inverses], axis=0))
    (tmp_path / "set" / "index.json").write_text("{}")
    with pytest.raises(activeset.ActiveSetFileError, match="is not a clustered active set index"):
        activeset.load_active_set(tmp_path / "set")


def test_an_active_set_of_another_potential_is_refused(alloy_model, tmp_path):
    ActiveSet({"Au": np.eye(3), "Cu": np.eye(3)}).save(tmp_path / "small.asi")
    with pytest.raises(ValueError, match="belongs to another potential"):
        grade_structures(alloy_model["train"][:1], alloy_model["basis"],
                                 activeset.load_active_set(tmp_path / "small.asi"))


@pytest.mark.parametrize("spoil, message", [
    (lambda a: a.positions.__setitem__((2, 0), np.nan), r"frame 1 has non-finite .* atom\(s\) \[2\]"),
    (lambda a: setattr(a, "pbc", [True, True, False]), "frame 1 is periodic in only some directions"),
    (lambda a: a.symbols.__setitem__(0, "Ni"), r"frame 1 contains \['Ni'\], which the potential does not cover"),
])
def test_bad_frames_are_named_before_pyace_sees_them(alloy_model, spoil, message):
    frames = [alloy_model["train"][0].copy(), alloy_model["train"][1].copy()]
    spoil(frames[1])
    with pytest.raises(DataError, match=f"md.extxyz, {message}"):
        grading.species_projections(alloy_model["basis"], frames, source="md.extxyz")


def test_no_frames_is_an_error(alloy_model):
    with pytest.raises(DataError, match="no frames"):
        list(grading.iter_grades(iter([]), alloy_model["basis"], activeset.load_active_set(alloy_model["asi"]),
                                 source="md.extxyz", progress=False))


def test_selection_skips_near_duplicates(alloy_model):
    distinct = [alloy(200 + s, rattle=0.3) for s in range(4)]
    candidates = [*distinct, distinct[0].copy(), distinct[1].copy()]  # two exact repeats
    picked = grading.select_frames(candidates, alloy_model["basis"], activeset.load_active_set(alloy_model["asi"]), 5)
    positions = [tuple(candidates[i].positions.ravel().round(8)) for i in picked]
    assert len(picked) >= 2 and len(set(positions)) == len(positions), picked


def test_bands():
    assert grading.band(np.array([0.5, 1.0, 10.0, 11.0]), 1.0, 10.0).tolist() == ["below", "between", "between",
                                                                                   "above"]
    with pytest.raises(DataError, match="gamma-lo <= gamma-hi"):
        grading.band(np.array([1.0]), 5.0, 2.0)


def test_swap_maxvol_grows_a_set_until_every_row_interpolates():
    rng = np.random.default_rng(0)
    start, rows = rng.normal(size=(6, 6)), 2 * rng.normal(size=(40, 6))
    grown = grading._swap_maxvol(start, rows, 1.01, 300)
    assert np.abs(np.vstack([start, rows]) @ np.linalg.inv(grown)).max() <= 1.01 + 1e-9
    assert abs(np.linalg.det(grown)) > abs(np.linalg.det(start))
    assert all(np.isclose(np.vstack([start, rows]), r).all(axis=1).any() for r in grown)  # rows of the pool
