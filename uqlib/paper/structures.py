"""Structures to grade and their reference labels: a cracked W polycrystal, NEP labels.

The paper grades a fractured W polycrystal labelled with NEP89; neither is
available, so this module builds a seeded Voronoi polycrystal of BCC W with a
crack (pulled apart in LAMMPS by :mod:`uqlib.paper.fracture`), relaxes structures with the
Zhou (2004) EAM potential through matscipy, classifies the atoms of a fractured
polycrystal (bulk, grain boundary, free surface) and labels structures with the
UNEP-v1 NEP model through calorine's ``CPUNEP``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from ase.optimize import FIRE
from scipy.spatial.transform import Rotation

from uqlib import cache
from uqlib.config import ELEMENT
from uqlib.io import TABLE_COLUMNS, tidy_table
from uqlib.neighbours import coordination, fast_neighbour_list
from uqlib.paper.data import load_manifest, resolve
from uqlib.progress import progress_bar

LATTICE_CONSTANT = 3.165  # Å, BCC W
MIN_DISTANCE = 2.2  # Å: closer pairs at grain boundaries lose one atom (nearest neighbours are 2.74 Å)
LABELS_VERSION = 1


def box_lengths(box: float | Sequence[float]) -> np.ndarray:
    """Edge lengths (Å) of an orthorhombic box given as one number (a cube) or three."""
    lengths = np.broadcast_to(np.asarray(box, dtype=float), (3,)).copy()
    if not np.all(np.isfinite(lengths)) or (lengths <= 0).any():
        raise ValueError(f"Box lengths must be three positive numbers (Å), got {box}")
    return lengths


def voronoi_polycrystal(box: float | Sequence[float], n_grains: int, seed: int, *,
                        lattice_constant: float = LATTICE_CONSTANT, min_distance: float = MIN_DISTANCE) -> Atoms:
    """A periodic orthorhombic box (side ``box`` or sides ``(L_x, L_y, L_z)``, Å) of randomly oriented BCC W grains.

    Each grain fills the periodic Voronoi cell of a random seed point with a randomly
    rotated BCC lattice, built in unwrapped space around its seed and then wrapped
    into the box, so a grain that crosses the box boundary stays one perfect crystal.
    Of any two atoms closer than ``min_distance`` one is removed. The grain of each
    atom is kept in ``atoms.arrays["grain"]`` (the grain boundaries are known by construction).
    """
    lengths = box_lengths(box)
    if n_grains < 1 or lengths.min() < 4 * lattice_constant:
        raise ValueError(f"Need n_grains >= 1 and box >= {4 * lattice_constant:.1f} Å, got {n_grains}, {box}")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, lengths, size=(n_grains, 3))
    rotations = Rotation.random(n_grains, random_state=seed)
    shifts = lengths * np.stack(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    unit = bulk(ELEMENT, "bcc", a=lattice_constant, cubic=True).positions
    # A kept point is nearer its own seed than any periodic image of it, so it lies within
    # half a box length of the seed along each axis; there the images within one box shift suffice.
    half_diagonal = np.linalg.norm(lengths) / 2
    reach = int(np.ceil(half_diagonal / lattice_constant)) + 1
    cells = np.stack(np.meshgrid(*[np.arange(-reach, reach)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    lattice = (cells[:, None, :] * lattice_constant + unit[None]).reshape(-1, 3)
    lattice = lattice[np.linalg.norm(lattice, axis=1) < half_diagonal + lattice_constant]
    kept = []
    for g in range(n_grains):
        offsets = rotations[g].apply(lattice)
        points = offsets[(np.abs(offsets) <= lengths / 2 + 1e-9).all(axis=1)] + centres[g]
        own = np.linalg.norm(points - centres[g], axis=1)
        nearest_other = np.full(len(points), np.inf)
        for h in range(n_grains):
            for shift in shifts:
                if h == g and not shift.any():
                    continue
                nearest_other = np.minimum(nearest_other, np.linalg.norm(points - centres[h] - shift, axis=1))
        kept.append(points[own < nearest_other] % lengths)
    atoms = Atoms(ELEMENT * sum(len(k) for k in kept), positions=np.vstack(kept), cell=lengths, pbc=True)
    atoms.arrays["grain"] = np.repeat(np.arange(n_grains), [len(k) for k in kept])
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
    with progress_bar(total=steps, desc="relaxation", unit="step") as bar:
        optimizer.attach(lambda: bar.update(1), interval=1)
        converged = optimizer.run(fmax=fmax, steps=steps)
    largest = float(np.linalg.norm(relaxed.get_forces(), axis=1).max())
    report = {"steps": optimizer.get_number_of_steps(), "converged": bool(converged), "max_force": largest}
    relaxed.calc = None
    return relaxed, report


# -- reference labels -----------------------------------------------------------------------------

def nep_calculator(model_key: str = "unep_v1"):
    """calorine's CPU NEP calculator for a NEP model file of the manifest."""
    from calorine.calculators import CPUNEP

    return CPUNEP(str(resolve(model_key)))


def labels_problem(run: pd.DataFrame, labels: dict[str, np.ndarray]) -> str | None:
    """What is wrong with the labels of the structures ``run`` (``None`` if nothing).

    ``energy`` must be ``(n_structures,)`` (eV) and ``forces`` ``(n_atoms_total, 3)`` (eV/Å);
    the cache checks that all values are finite (:func:`uqlib.cache.write_entry`).
    """
    expected = {"energy": (len(run),), "forces": (int(run["n_atoms"].sum()), 3)}
    for name, shape in expected.items():
        if name not in labels:
            return f"{name} missing"
        if labels[name].shape != shape:
            return f"{name} has shape {labels[name].shape}, expected {shape}"
    return None


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
    labels, _ = cache.cached_per_subset(table, "labels", model_key, key, compute, use_cache=use_cache,
                                        validate=labels_problem)
    starts = np.concatenate([[0], np.cumsum(table["n_atoms"].to_numpy())])
    out = table.copy()
    out["energy"] = labels["energy"]
    out["energy_per_atom"] = labels["energy"] / table["n_atoms"].to_numpy()
    out["forces"] = [labels["forces"][starts[s]:starts[s + 1]] for s in range(len(table))]
    return out


def label_frames(frames: list[Atoms], subset: str = "fracture", model_key: str = "unep_v1", *,
                 progress: bool = True, use_cache: bool = True) -> pd.DataFrame:
    """A structure table of simulation frames (e.g. a fracture run) labelled by a NEP model (cached).

    ``structure_id`` is ``"<subset>-<frame>"``; per-atom arrays of the frames (such as
    ``grain``) stay on the ``atoms``. Energies in eV, forces ``(n_atoms, 3)`` in eV/Å.
    """
    if not frames:
        raise ValueError("label_frames needs at least one frame")
    raw = pd.DataFrame({"structure_id": [f"{subset}-{k:04d}" for k in range(len(frames))], "subset": subset,
                        "atoms": list(frames), "n_atoms": [len(f) for f in frames]})
    return label_with_nep(raw, model_key, progress=progress, use_cache=use_cache)[TABLE_COLUMNS]


def structure_table(atoms_list: list[Atoms], subset: str, energies: np.ndarray, forces: list[np.ndarray]
                    ) -> pd.DataFrame:
    """A structure table (see :mod:`uqlib.paper.data`) of new structures, e.g. a built polycrystal."""
    frame = pd.DataFrame({"ase_atoms": atoms_list, "energy": energies, "forces": forces})
    return tidy_table(frame, subset)



# -- atoms of a fractured polycrystal: bulk, grain boundary, free surface -------------------------

SHELL_CUTOFF = 3.8  # Å, between the 2nd (3.17 Å) and 3rd (4.48 Å) BCC W shells: 14 neighbours in the bulk
DENSITY_CUTOFF = 4.9  # Å, between the 3rd (4.48 Å) and 4th (5.25 Å) shells: 26 neighbours in the bulk
BULK_COORDINATION = 14
BULK_DENSITY = 26
ATOM_CLASSES = ("bulk", "grain_boundary", "free_surface")


def _grain_boundary_atoms(atoms: Atoms, grain: np.ndarray | None, cutoff: float, free: np.ndarray) -> np.ndarray:
    """Atoms with a neighbour of another grain within ``cutoff``.

    Without grain ids: atoms that are not 14-coordinated and have no free-surface
    neighbour (the layer under a surface is under-coordinated too, but is no boundary).
    """
    i, j = fast_neighbour_list("ij", atoms, cutoff)
    if grain is None:
        near_surface = np.bincount(i, weights=free[j], minlength=len(atoms)) > 0
        return (np.bincount(i, minlength=len(atoms)) != BULK_COORDINATION) & ~near_surface & ~free
    return np.bincount(i, weights=grain[i] != grain[j], minlength=len(atoms)) > 0


def _free_surface_atoms(atoms: Atoms, density_cutoff: float, surface_density: float,
                        surface_asymmetry: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free-surface flags, relative densities and asymmetries (see :func:`classify_atoms`)."""
    i, vectors = fast_neighbour_list("iD", atoms, density_cutoff)
    count = np.bincount(i, minlength=len(atoms))
    units = vectors / np.linalg.norm(vectors, axis=1)[:, None]
    summed = np.stack([np.bincount(i, weights=units[:, k], minlength=len(atoms)) for k in range(3)], axis=1)
    asymmetry = np.linalg.norm(summed, axis=1) / np.maximum(count, 1)
    density = count / BULK_DENSITY
    return (density < surface_density) | (asymmetry > surface_asymmetry), density, asymmetry


def classify_atoms(atoms: Atoms, *, reference: Atoms | None = None, shell_cutoff: float = SHELL_CUTOFF,
                   density_cutoff: float = DENSITY_CUTOFF, surface_density: float = 0.75,
                   surface_asymmetry: float = 0.25) -> pd.DataFrame:
    """Each atom of a (fractured) polycrystal as bulk, grain boundary or free surface; a tidy table.

    Rule, in this order:

    * **free surface**: a half-empty neighbourhood. The atom has fewer than
      ``surface_density`` × 26 neighbours within ``density_cutoff`` (4.9 Å, the first
      three BCC shells), or its neighbours are lopsided: the length of the mean unit
      vector to them (``asymmetry``; 0 in the bulk and at grain boundaries, about 0.4
      on a flat surface) exceeds ``surface_asymmetry``. Grain boundaries lose a few
      percent of density and stay nearly symmetric, so they fail both tests.
    * **grain boundary**: otherwise, an atom with a neighbour of another grain within
      ``shell_cutoff`` (3.8 Å: 14 neighbours in bulk BCC). Grains are read from
      ``atoms.arrays["grain"]`` (set by :func:`voronoi_polycrystal` and kept by the
      fracture run); without them, an atom whose coordination is not 14 and that has
      no free-surface neighbour.
    * **bulk**: the rest.

    ``at_grain_boundary`` tells whether the atom sat at a grain boundary in
    ``reference`` (the unloaded structure, same atom order; default ``atoms``): a
    free-surface atom there lies on an intergranular crack face, else on a transgranular one.
    Columns: ``atom, grain, coordination, density, asymmetry, at_grain_boundary, kind``.
    """
    reference = atoms if reference is None else reference
    if len(reference) != len(atoms):
        raise ValueError(f"reference has {len(reference)} atoms, the structure {len(atoms)}: "
                         f"pass the unloaded frame of the same run")
    grain = atoms.arrays.get("grain")
    free, density, asymmetry = _free_surface_atoms(atoms, density_cutoff, surface_density, surface_asymmetry)
    free_before = free if reference is atoms else _free_surface_atoms(reference, density_cutoff, surface_density,
                                                                      surface_asymmetry)[0]
    at_boundary = _grain_boundary_atoms(reference, grain, shell_cutoff, free_before)
    boundary_now = _grain_boundary_atoms(atoms, grain, shell_cutoff, free)
    kind = np.where(free, "free_surface", np.where(boundary_now, "grain_boundary", "bulk"))
    return pd.DataFrame({
        "atom": np.arange(len(atoms)),
        "grain": grain if grain is not None else np.full(len(atoms), -1),
        "coordination": coordination(atoms, shell_cutoff),
        "density": density,
        "asymmetry": asymmetry,
        "at_grain_boundary": at_boundary,
        "kind": pd.Categorical(kind, categories=ATOM_CLASSES),
    })


GRAIN_DISTANCE_CAP = 8.0  # Å: distances to another grain are looked up to here (inf beyond)


def distance_to_other_grain(atoms: Atoms, cap: float = GRAIN_DISTANCE_CAP) -> np.ndarray:
    """Each atom's distance (Å) to the nearest atom of another grain (``arrays["grain"]``), inf beyond ``cap``."""
    if "grain" not in atoms.arrays:
        raise ValueError("The structure has no per-atom grain ids (atoms.arrays['grain']): build it with "
                         "voronoi_polycrystal or fracture.run_fracture, which keep them")
    grain = atoms.arrays["grain"]
    i, j, d = fast_neighbour_list("ijd", atoms, cap)
    other = grain[i] != grain[j]
    nearest = np.full(len(atoms), np.inf)
    np.minimum.at(nearest, i[other], d[other])
    return nearest


def fracture_atom_table(initial: Atoms, final: Atoms, *, intergranular_distance: float = 6.0,
                        **options) -> pd.DataFrame:
    """:func:`classify_atoms` of ``final`` plus what fracture made of each atom; a tidy per-atom table.

    Extra columns: ``new_free_surface`` (free surface in ``final``, not in ``initial``:
    the pre-crack's faces are left out), ``distance_to_other_grain`` (Å, in ``initial``)
    and ``fracture_mode``: ``"intergranular"`` for a new free-surface atom that sat within
    ``intergranular_distance`` (6 Å, about two atomic layers) of another grain before
    loading, ``"transgranular"`` for one farther inside its grain, ``""`` otherwise.
    Needs grain ids on both structures (same atom order).
    """
    before = classify_atoms(initial, **options)
    table = classify_atoms(final, reference=initial, **options)
    new = (table["kind"] == "free_surface").to_numpy() & (before["kind"] != "free_surface").to_numpy()
    distance = distance_to_other_grain(initial)
    table["new_free_surface"] = new
    table["distance_to_other_grain"] = distance
    table["fracture_mode"] = np.where(new, np.where(distance < intergranular_distance, "intergranular",
                                                    "transgranular"), "")
    return table


def hot_md_frames(*, repeat: int = 3, vacancy: bool = True, temperature: float = 3000.0, steps: int = 120,
                  every: int = 10, seed: int = 0) -> list[Atoms]:
    """Frames of a Langevin MD run (1 fs steps, Zhou EAM through matscipy) of a BCC W supercell.

    ``repeat`` cubic cells per side, one atom removed when ``vacancy``; a frame every
    ``every`` steps, positions only (no labels): an unlabelled trajectory to grade.
    """
    from ase import units
    from ase.md.langevin import Langevin

    md = bulk(ELEMENT, "bcc", a=LATTICE_CONSTANT, cubic=True).repeat(repeat)
    if vacancy:
        del md[0]
    md.calc = eam_calculator()
    dynamics = Langevin(md, 1.0 * units.fs, temperature_K=temperature, friction=0.02, fixcm=False,
                        rng=np.random.default_rng(seed))
    frames: list[Atoms] = []
    dynamics.attach(lambda: frames.append(Atoms(md.get_chemical_symbols(), md.positions, cell=md.cell, pbc=True)),
                    interval=every)
    with progress_bar(total=steps, desc="MD", unit="step") as bar:
        dynamics.attach(lambda: bar.update(1), interval=1)
        dynamics.run(steps)
    return frames
