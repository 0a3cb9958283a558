"""Small synthetic data shared by several test modules (imported as ``synthetic``; tests/ is on sys.path)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from uqlib import ace


def random_design_matrix(seed: int = 0, n_configs: int = 30, p: int = 9) -> ace.DesignMatrix:
    """Random rows, 1 to 5 atoms per structure, labels of unit scale: well conditioned, so coefficients
    can be compared to 1e-8. Projections are zeros (nothing here grades)."""
    rng = np.random.default_rng(seed)
    n_atoms = rng.integers(1, 6, n_configs)
    n_atom = int(n_atoms.sum())
    return ace.DesignMatrix("synthetic", np.arange(n_configs).astype(str), n_atoms, rng.normal(size=(n_configs, p)),
                            rng.normal(size=(3 * n_atom, p)), rng.normal(size=n_configs), rng.normal(size=(n_atom, 3)),
                            np.zeros((n_atom, p)))


def alloy_cell(host: str, guest: str, *, a: float, guest_fraction: float, rattle: float, seed: int,
               labelled: bool = True) -> Atoms:
    """A 32-atom fcc cell of ``host`` with a random ``guest_fraction`` of ``guest``, rattled by ``rattle`` Å;
    labelled by ase's EMT (eV, eV/Å) unless ``labelled`` is False."""
    rng = np.random.default_rng(seed)
    atoms = bulk(host, "fcc", a=a, cubic=True).repeat(2)
    atoms.symbols[rng.random(len(atoms)) < guest_fraction] = guest
    atoms.rattle(rattle, seed=seed)
    if labelled:
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms
