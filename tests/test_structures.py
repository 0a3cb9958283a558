from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from uqlib import data, structures


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
    assert (structures.coordination(crystal) == 14).all()
    cracked = structures.open_crack(crystal, length=8.0, opening=3.0)
    assert 0 < len(crystal) - len(cracked) < len(crystal) / 5
    assert (structures.coordination(cracked) < 14).any()


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
    table = data.subsample(data.load_subsets("D+E"), 1, seed=0)
    labelled = structures.label_with_nep(table, progress=False)
    atoms = table["atoms"].iloc[1].copy()
    atoms.calc = structures.nep_calculator()
    assert labelled["energy"].iloc[1] == pytest.approx(atoms.get_potential_energy())
    np.testing.assert_allclose(labelled["forces"].iloc[1], atoms.get_forces())
    assert labelled["energy_per_atom"].iloc[0] == pytest.approx(labelled["energy"].iloc[0] / table["n_atoms"].iloc[0])
    assert len(list((compute_cache / "labels").glob("unep_v1-*.npz"))) == 2
    again = structures.label_with_nep(table, progress=False)
    np.testing.assert_array_equal(again["forces"].iloc[0], labelled["forces"].iloc[0])
