from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list

from uqlib import cache, io, neighbours, tables
from uqlib.paper import data, structures


def test_polycrystal_is_seeded_tungsten_without_close_pairs():
    first = structures.voronoi_polycrystal(30.0, 2, seed=4)
    again = structures.voronoi_polycrystal(30.0, 2, seed=4)
    other = structures.voronoi_polycrystal(30.0, 2, seed=5)
    np.testing.assert_array_equal(first.positions, again.positions)
    assert len(first) != len(other) or not np.allclose(first.positions, other.positions)
    assert set(first.get_chemical_symbols()) == {"W"} and first.pbc.all()
    # density close to BCC W (2 atoms per a^3); grain boundaries in so small a box cost some
    density = len(first) / first.get_volume() * structures.LATTICE_CONSTANT**3
    assert 1.7 < density < 2.15
    assert len(neighbor_list("i", first, structures.MIN_DISTANCE)) == 0
    with pytest.raises(ValueError, match="n_grains"):
        structures.voronoi_polycrystal(5.0, 2, seed=0)


def test_bulk_coordination_and_crack():
    crystal = bulk("W", "bcc", a=structures.LATTICE_CONSTANT, cubic=True).repeat(5)
    assert (neighbours.coordination(crystal) == 14).all()
    cracked = structures.open_crack(crystal, length=8.0, opening=3.0)
    assert 0 < len(crystal) - len(cracked) < len(crystal) / 5
    assert (neighbours.coordination(cracked) < 14).any()


def test_relaxation_with_the_eam_potential_lowers_forces():
    crystal = bulk("W", "bcc", a=structures.LATTICE_CONSTANT, cubic=True).repeat(3)
    crystal.positions += np.random.default_rng(0).normal(scale=0.05, size=crystal.positions.shape)
    calc = structures.eam_calculator()
    probe = crystal.copy()
    probe.calc = calc
    before = np.abs(probe.get_forces()).max()
    relaxed, report = structures.relax(crystal, fmax=0.01, steps=200, calculator=calc)
    assert report["max_force"] < before / 5 and report["converged"]


def test_nep_labels_match_the_calculator_and_are_cached(compute_cache):
    table = tables.subsample(data.load_subsets("D+E"), 1, seed=0)
    labelled = structures.label_with_nep(table, progress=False)
    atoms = table["atoms"].iloc[1].copy()
    atoms.calc = structures.nep_calculator()
    assert labelled["energy"].iloc[1] == pytest.approx(atoms.get_potential_energy())
    np.testing.assert_allclose(labelled["forces"].iloc[1], atoms.get_forces())
    assert labelled["energy_per_atom"].iloc[0] == pytest.approx(labelled["energy"].iloc[0] / table["n_atoms"].iloc[0])
    entries = sorted(p.name for p in (compute_cache / "labels").iterdir())
    assert len(entries) == 3 and sum("-stack-" in name for name in entries) == 1  # D, E and their stack
    again = structures.label_with_nep(table, progress=False)
    np.testing.assert_array_equal(again["forces"].iloc[0], labelled["forces"].iloc[0])


def _layers(atoms):
    z = atoms.positions[:, 2]
    return np.round(z - z.min(), 1)


def test_a_slab_has_free_surface_atoms_only_in_its_outer_layers():
    from ase.build import bcc100, bcc110

    for build in (bcc100, bcc110):
        slab = build("W", (3, 3, 8), a=structures.LATTICE_CONSTANT, vacuum=8.0, periodic=True)
        table = structures.classify_atoms(slab)
        layer = _layers(slab)
        outer = (layer == layer.min()) | (layer == layer.max())
        np.testing.assert_array_equal(table["kind"] == "free_surface", outer)
        assert (table.loc[~outer, "kind"] == "bulk").all()  # the under-coordinated second layer is no boundary
        assert set(table.columns) >= {"atom", "grain", "coordination", "density", "asymmetry", "kind"}


def test_grain_boundary_atoms_are_the_neighbours_of_another_grain():
    crystal = bulk("W", "bcc", a=structures.LATTICE_CONSTANT, cubic=True).repeat((3, 3, 6))
    z = crystal.positions[:, 2]
    crystal.arrays["grain"] = (z >= crystal.cell[2, 2] / 2).astype(int)  # two grains, boundaries at z=0 and z=L/2
    table = structures.classify_atoms(crystal)
    grain = crystal.arrays["grain"]
    distances = crystal.get_all_distances(mic=True)
    near = ((distances < structures.SHELL_CUTOFF) & (grain[:, None] != grain[None, :])).any(axis=1)
    assert 0 < near.sum() < len(crystal)
    assert (table["kind"] != "free_surface").all()
    np.testing.assert_array_equal(table["kind"] == "grain_boundary", near)
    np.testing.assert_array_equal(table["at_grain_boundary"], near)
    # without grain ids a perfect crystal has no boundary at all
    del crystal.arrays["grain"]
    assert (structures.classify_atoms(crystal)["kind"] == "bulk").all()


def test_grain_boundaries_of_a_polycrystal_without_grain_ids_are_found_by_coordination():
    poly = structures.voronoi_polycrystal(30.0, 3, seed=2)
    assert set(np.unique(poly.arrays["grain"])) == {0, 1, 2}
    with_ids = structures.classify_atoms(poly)
    del poly.arrays["grain"]
    without = structures.classify_atoms(poly)
    boundary = with_ids["kind"] == "grain_boundary"
    # most atoms the coordination rule calls boundary lie at a true boundary
    assert ((without["kind"] == "grain_boundary") & boundary).sum() > 0.6 * (without["kind"] == "grain_boundary").sum()


def test_a_cleaved_crystal_counts_its_new_free_surface_atoms():
    crystal = bulk("W", "bcc", a=structures.LATTICE_CONSTANT, cubic=True).repeat((3, 3, 8))
    crystal.arrays["grain"] = np.zeros(len(crystal), int)
    cleaved = crystal.copy()
    upper = cleaved.positions[:, 2] > cleaved.cell[2, 2] / 2 - 0.1
    cleaved.positions[upper, 2] += 6.0  # open a 6 Å gap: two new (100) faces in the periodic cell
    cleaved.cell[2, 2] += 12.0  # and another at the periodic boundary
    table = structures.fracture_atom_table(crystal, cleaved)
    layer = _layers(cleaved)
    faces = np.unique(layer)[[0, len(np.unique(layer)) // 2 - 1, len(np.unique(layer)) // 2, -1]]
    assert (structures.classify_atoms(crystal)["kind"] != "free_surface").all()
    new = table["new_free_surface"].to_numpy()
    assert new.sum() == np.isin(layer, faces).sum() == 4 * 9 and (new == np.isin(layer, faces)).all()
    assert (table.loc[new, "fracture_mode"] == "transgranular").all() and (table.loc[~new, "fracture_mode"] == "").all()
    assert np.isinf(table["distance_to_other_grain"]).all()
    with pytest.raises(ValueError, match="reference has"):
        structures.classify_atoms(cleaved, reference=crystal[:-1])


def test_frames_get_nep_labels_in_a_structure_table(compute_cache):
    frames = [structures.voronoi_polycrystal(14.0, 2, seed=s) for s in (0, 1)]
    table = structures.label_frames(frames, progress=False)
    assert list(table.columns) == io.TABLE_COLUMNS
    assert list(table["structure_id"]) == ["fracture-0000", "fracture-0001"]
    probe = frames[1].copy()
    probe.calc = structures.nep_calculator()
    np.testing.assert_allclose(table["forces"].iloc[1], probe.get_forces())
    assert "grain" in table["atoms"].iloc[0].arrays
    with pytest.raises(ValueError, match="at least one frame"):
        structures.label_frames([])


def test_a_crack_along_a_grain_boundary_is_intergranular():
    crystal = bulk("W", "bcc", a=structures.LATTICE_CONSTANT, cubic=True).repeat((3, 3, 8))
    z = crystal.positions[:, 2]
    crystal.arrays["grain"] = (z > crystal.cell[2, 2] / 2 - 0.1).astype(int)  # boundaries at z = L/2 and z = 0
    cleaved = crystal.copy()
    cleaved.positions[z > crystal.cell[2, 2] / 2 - 0.1, 2] += 6.0  # open both boundaries
    cleaved.cell[2, 2] += 12.0
    modes = structures.fracture_atom_table(crystal, cleaved)["fracture_mode"].value_counts()
    assert modes.get("intergranular", 0) == 36 and modes.get("transgranular", 0) == 0
    assert modes.get("", 0) == len(crystal) - 36  # every other atom: no new surface, no mode
    near = structures.distance_to_other_grain(crystal)
    assert np.isclose(near.min(), structures.LATTICE_CONSTANT / 2 * np.sqrt(3)) and np.isinf(near).sum() == 0
    del crystal.arrays["grain"]
    with pytest.raises(ValueError, match="no per-atom grain ids"):
        structures.distance_to_other_grain(crystal)


class _CountingLabels(Calculator):
    """Energies and forces from the positions (or NaN forces), counting the structures it labels."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, forces: float | None = None):
        super().__init__()
        self.labelled, self.forces = 0, forces

    def check_state(self, atoms, tol=1e-15):
        return list(all_changes)  # never ASE's remembered result of the previous structure: count every call

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.labelled += "forces" in properties  # one get_forces call per structure labelled
        forces = atoms.positions * 0.1 if self.forces is None else np.full((len(atoms), 3), self.forces)
        self.results = {"energy": float(atoms.positions.sum()), "forces": forces}


def _two_subsets():
    rows = []
    for k, subset in enumerate(["D", "D", "E"]):
        atoms = bulk("W", "bcc", a=structures.LATTICE_CONSTANT, cubic=True)
        atoms.positions[0] += 0.01 * k
        rows.append({"structure_id": f"{subset}-{k}", "subset": subset, "atoms": atoms, "n_atoms": len(atoms)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("where", ["stack", "run"])
def test_a_damaged_label_entry_is_recomputed_not_trusted(compute_cache, monkeypatch, where):
    calculator = _CountingLabels()
    monkeypatch.setattr(structures, "nep_calculator", lambda key="unep_v1": calculator)
    table = _two_subsets()
    first = [np.array(f) for f in structures.label_with_nep(table, progress=False)["forces"]]  # off the maps
    assert calculator.labelled == 3
    for entry in (compute_cache / "labels").iterdir():
        if ("-stack-" in entry.name) == (where == "stack"):
            forces = entry / "forces.npy"
            forces.write_bytes(forces.read_bytes()[:-8])  # cut short
    table_of_e = table.iloc[2:]
    with pytest.warns(UserWarning, match="not what it claims"):
        again = structures.label_with_nep(table if where == "stack" else table_of_e, progress=False)
    # a damaged stack is rebuilt from the runs' sound entries; a damaged run is labelled again
    assert calculator.labelled == (3 if where == "stack" else 4)
    for mine, theirs in zip(again["forces"], first[-len(again):], strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_non_finite_labels_are_refused_and_not_cached(compute_cache, monkeypatch):
    monkeypatch.setattr(structures, "nep_calculator", lambda key="unep_v1": _CountingLabels(forces=np.nan))
    with pytest.raises(cache.CacheError, match="non-finite"):
        structures.label_with_nep(_two_subsets(), progress=False)
    assert not (compute_cache / "labels").exists() or not any((compute_cache / "labels").iterdir())


def test_labels_of_the_wrong_shape_are_refused():
    table = _two_subsets()
    n_atoms = int(table["n_atoms"].sum())
    assert structures.labels_problem(table, {"energy": np.zeros(3), "forces": np.zeros((n_atoms, 3))}) is None
    assert "forces has shape" in structures.labels_problem(table, {"energy": np.zeros(3),
                                                                   "forces": np.zeros((n_atoms - 1, 3))})
    assert "energy has shape" in structures.labels_problem(table, {"energy": np.zeros(2),
                                                                   "forces": np.zeros((n_atoms, 3))})
    assert "energy missing" in structures.labels_problem(table, {"forces": np.zeros((n_atoms, 3))})
