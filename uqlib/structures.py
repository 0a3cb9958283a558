"""Structures to grade and their reference labels: a cracked W polycrystal, NEP labels.

The paper grades a fractured W polycrystal labelled with NEP89; neither is
available, so this module builds a seeded Voronoi polycrystal of BCC W with a
crack, relaxes it with the Zhou (2004) EAM potential through matscipy, and labels
structures with the UNEP-v1 NEP model through calorine's ``CPUNEP``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from ase.optimize import FIRE
from scipy.spatial.transform import Rotation

from uqlib import cache
from uqlib.data import ELEMENT, load_manifest, resolve, tidy_table
from uqlib.progress import progress_bar

LATTICE_CONSTANT = 3.165  # Å, BCC W
MIN_DISTANCE = 2.2  # Å: closer pairs at grain boundaries lose one atom (nearest neighbours are 2.74 Å)
LABELS_VERSION = 1


def voronoi_polycrystal(box: float, n_grains: int, seed: int, *, lattice_constant: float = LATTICE_CONSTANT,
                        min_distance: float = MIN_DISTANCE) -> Atoms:
    """A periodic cubic box (side ``box``, Å) of BCC W grains with random orientations.

    Each grain fills the periodic Voronoi cell of a random seed point with a randomly
    rotated BCC lattice, built in unwrapped space around its seed and then wrapped
    into the box, so a grain that crosses the box boundary stays one perfect crystal.
    Of any two atoms closer than ``min_distance`` one is removed.
    """
    if n_grains < 1 or box < 4 * lattice_constant:
        raise ValueError(f"Need n_grains >= 1 and box >= {4 * lattice_constant:.1f} Å, got {n_grains}, {box}")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, box, size=(n_grains, 3))
    rotations = Rotation.random(n_grains, random_state=seed)
    shifts = box * np.stack(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    unit = bulk(ELEMENT, "bcc", a=lattice_constant, cubic=True).positions
    reach = int(np.ceil(box / lattice_constant)) + 1
    cells = np.stack(np.meshgrid(*[np.arange(-reach, reach)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    lattice = (cells[:, None, :] * lattice_constant + unit[None]).reshape(-1, 3)
    lattice = lattice[np.linalg.norm(lattice, axis=1) < box]  # a Voronoi cell fits in this ball
    kept = []
    for g in range(n_grains):
        points = rotations[g].apply(lattice) + centres[g]
        own = np.linalg.norm(points - centres[g], axis=1)
        nearest_other = np.full(len(points), np.inf)
        for h in range(n_grains):
            for shift in shifts:
                if h == g and not shift.any():
                    continue
                nearest_other = np.minimum(nearest_other, np.linalg.norm(points - centres[h] - shift, axis=1))
        kept.append(points[own < nearest_other] % box)
    atoms = Atoms(ELEMENT * sum(len(k) for k in kept), positions=np.vstack(kept), cell=[box] * 3, pbc=True)
    return remove_close_atoms(atoms, min_distance)


def remove_close_atoms(atoms: Atoms, min_distance: float) -> Atoms:
    """Remove one atom of every pair closer than ``min_distance``, closest pairs first.

    A pair is resolved only if both its atoms are still there, so no more atoms go than needed.
    """
    i, j, d = neighbor_list("ijd", atoms, min_distance)
    removed = np.zeros(len(atoms), bool)
    for a, b in zip(i[np.argsort(d)], j[np.argsort(d)], strict=True):
        if a < b and not removed[a] and not removed[b]:
            removed[b] = True
    del atoms[np.flatnonzero(removed)]
    return atoms


def open_crack(atoms: Atoms, length: float, opening: float) -> Atoms:
    """Remove a through-thickness slit: atoms with x < ``length`` and |y - L_y/2| < ``opening``/2.

    The slit runs along z through the periodic box, a crack of length ``length`` (Å)
    with a blunt tip.
    """
    y_mid = atoms.cell[1, 1] / 2
    inside = (atoms.positions[:, 0] < length) & (np.abs(atoms.positions[:, 1] - y_mid) < opening / 2)
    cracked = atoms.copy()
    del cracked[np.flatnonzero(inside)]
    return cracked


def eam_calculator():
    """matscipy's EAM calculator with the Zhou (2004) W potential from the data manifest."""
    from matscipy.calculators.eam import EAM

    return EAM(str(resolve("eam_zhou04")))


def relax(atoms: Atoms, *, fmax: float = 0.05, steps: int = 200, calculator=None) -> tuple[Atoms, dict]:
    """Relax positions at fixed cell with FIRE; returns the structure and a small report."""
    relaxed = atoms.copy()
    relaxed.calc = calculator or eam_calculator()
    optimizer = FIRE(relaxed, logfile=None)
    converged = optimizer.run(fmax=fmax, steps=steps)
    largest = float(np.linalg.norm(relaxed.get_forces(), axis=1).max())
    report = {"steps": optimizer.get_number_of_steps(), "converged": bool(converged), "max_force": largest}
    relaxed.calc = None
    return relaxed, report


def coordination(atoms: Atoms, cutoff: float = 3.3) -> np.ndarray:
    """Neighbours within ``cutoff`` Å (14 for bulk BCC W at 3.3 Å: 8 first and 6 second neighbours)."""
    return np.bincount(neighbor_list("i", atoms, cutoff), minlength=len(atoms))


# -- reference labels -----------------------------------------------------------------------------

def nep_calculator(model_key: str = "unep_v1"):
    """calorine's CPU NEP calculator for a NEP model file of the manifest."""
    from calorine.calculators import CPUNEP

    return CPUNEP(str(resolve(model_key)))


def label_with_nep(table: pd.DataFrame, model_key: str = "unep_v1", *, progress: bool = True,
                   use_cache: bool = True) -> pd.DataFrame:
    """A copy of ``table`` with energies and forces computed by a NEP model (cached per subset run)."""
    calc = nep_calculator(model_key)

    def compute(run: pd.DataFrame) -> dict[str, np.ndarray]:
        energies, forces = [], []
        for atoms in progress_bar(run["atoms"], desc=f"{model_key} labels", unit="structure", disable=not progress):
            atoms = atoms.copy()
            atoms.calc = calc
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
        return {"energy": np.array(energies), "forces": np.concatenate(forces)}

    key = {"model": load_manifest()[model_key].sha256, "version": LABELS_VERSION}
    labels, _ = cache.cached_per_subset(table, "labels", model_key, key, compute, use_cache=use_cache)
    starts = np.concatenate([[0], np.cumsum(table["n_atoms"].to_numpy())])
    out = table.copy()
    out["energy"] = labels["energy"]
    out["energy_per_atom"] = labels["energy"] / table["n_atoms"].to_numpy()
    out["forces"] = [labels["forces"][starts[s]:starts[s + 1]] for s in range(len(table))]
    return out


def structure_table(atoms_list: list[Atoms], subset: str, energies: np.ndarray, forces: list[np.ndarray]
                    ) -> pd.DataFrame:
    """A structure table (see :mod:`uqlib.data`) of new structures, e.g. a built polycrystal."""
    frame = pd.DataFrame({"ase_atoms": atoms_list, "energy": energies, "forces": forces})
    return tidy_table(frame, subset)



def cracked_polycrystal(box: float, n_grains: int, seed: int, *, crack_length: float, crack_opening: float,
                        relax_steps: int = 200, fmax: float = 0.05, use_cache: bool = True) -> tuple[Atoms, dict]:
    """A relaxed, cracked Voronoi polycrystal (cached on disk: building and relaxing take minutes).

    The report holds the atom counts, the relaxation steps, whether it converged and
    the largest remaining force (EAM, eV/Å).
    """
    key = cache.cache_key(box=box, grains=n_grains, seed=seed, crack=(crack_length, crack_opening),
                          steps=relax_steps, fmax=fmax, eam=load_manifest()["eam_zhou04"].sha256,
                          version=LABELS_VERSION)
    path = cache.cache_root() / "structures" / f"polycrystal-{key}.npz"
    stored = cache.load_arrays(path) if use_cache else None
    if stored is not None:
        atoms = Atoms(ELEMENT * len(stored["positions"]), positions=stored["positions"], cell=[box] * 3, pbc=True)
        return atoms, json.loads(str(stored["report"]))
    grains = voronoi_polycrystal(box, n_grains, seed)
    cracked = open_crack(grains, crack_length, crack_opening)
    relaxed, report = relax(cracked, fmax=fmax, steps=relax_steps)
    report = {"atoms_grains": len(grains), "atoms_removed_by_crack": len(grains) - len(cracked), **report}
    if use_cache:
        cache.save_arrays(path, positions=relaxed.positions, report=np.array(json.dumps(report)))
    return relaxed, report
