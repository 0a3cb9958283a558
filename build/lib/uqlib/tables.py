"""Structure tables: atom offsets, per-atom <-> per-structure maps, subsamples and splits.

Per-atom arrays store atoms structure by structure, in table order; the helpers here
map between them and per-configuration values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uqlib.io import DataError


def subsample(table: pd.DataFrame, max_per_subset: int | None, seed: int, by: str = "subset") -> pd.DataFrame:
    """At most ``max_per_subset`` configurations of each value of column ``by``, chosen with ``seed``; order kept."""
    if max_per_subset is None:
        return table
    if max_per_subset < 1:
        raise DataError(f"max_per_subset must be at least 1 (or None for all), got {max_per_subset}")
    rng = np.random.default_rng(seed)
    keep = []
    for _, group in table.groupby(by, sort=False):
        idx = group.index.to_numpy()
        keep.extend(rng.choice(idx, size=min(max_per_subset, len(idx)), replace=False))
    return table.loc[sorted(keep)].reset_index(drop=True)


def subset_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per subset: configurations, atoms, energy-per-atom range (eV/atom), largest |F| (eV/Å)."""
    max_force = table["forces"].map(lambda f: float(np.linalg.norm(f, axis=1).max()))
    return (
        table.assign(max_force=max_force)
        .groupby("subset", sort=False)
        .agg(configs=("structure_id", "size"), atoms=("n_atoms", "sum"),
             atoms_min=("n_atoms", "min"), atoms_max=("n_atoms", "max"),
             e_min=("energy_per_atom", "min"), e_max=("energy_per_atom", "max"),
             max_abs_force=("max_force", "max"))
    )


def holdout_split(table: pd.DataFrame, holdout_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a table into the structures fitted on and a held-out, in-distribution part.

    Each subset gives up ``round(holdout_fraction * size)`` structures, but always keeps at
    least one, so every subset stays represented in the fitted part.
    """
    if not 0 < holdout_fraction < 1:
        raise DataError(f"holdout_fraction must lie in (0, 1), got {holdout_fraction}")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(table), bool)
    for _, group in table.groupby("subset", sort=False):
        n_out = int(round(holdout_fraction * len(group)))
        held[rng.choice(np.flatnonzero(table.index.isin(group.index)), size=min(n_out, len(group) - 1),
                        replace=False)] = True
    return table[~held].reset_index(drop=True), table[held].reset_index(drop=True)


def atom_offsets(n_atoms: np.ndarray) -> np.ndarray:
    """Where each configuration's atoms start in the per-atom arrays, and where the last ends.

    Shape ``(n_cfg + 1,)``: atoms of configuration *s* are ``offsets[s]:offsets[s + 1]``.
    """
    return np.concatenate([[0], np.cumsum(np.asarray(n_atoms, dtype=int))])


def atoms_of(configs: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Indices of the atoms of the configurations ``configs`` (in that order) in the per-atom arrays."""
    offsets = atom_offsets(n_atoms)
    configs = np.asarray(configs, dtype=int)
    if len(configs) == 0:
        return np.array([], dtype=int)
    return np.concatenate([np.arange(offsets[s], offsets[s + 1]) for s in configs])


def per_structure_max(per_atom: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Largest per-atom value of each configuration; atoms are stored structure by structure."""
    n_atoms = np.asarray(n_atoms)
    if len(per_atom) != n_atoms.sum() or (n_atoms < 1).any():
        raise ValueError(f"{len(per_atom)} per-atom values do not match structures of {n_atoms.sum()} atoms")
    return np.maximum.reduceat(per_atom, atom_offsets(n_atoms)[:-1])


def per_atom(per_structure: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Each configuration's value repeated for its atoms (the inverse of :func:`per_structure_max`)."""
    per_structure, n_atoms = np.asarray(per_structure), np.asarray(n_atoms)
    if len(per_structure) != len(n_atoms):
        raise ValueError(f"{len(per_structure)} values for {len(n_atoms)} configurations")
    return np.repeat(per_structure, n_atoms)


def subset_runs(table: pd.DataFrame) -> list[slice]:
    """Row ranges of consecutive configurations from the same subset (the units of the caches)."""
    subsets = table["subset"].to_numpy()
    cuts = [0, *(np.flatnonzero(subsets[1:] != subsets[:-1]) + 1), len(subsets)]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
