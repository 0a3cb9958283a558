"""Neighbour counts of atoms (matscipy's neighbour list: ase's interface, an order of magnitude faster)."""

from __future__ import annotations

import numpy as np
from ase import Atoms


def fast_neighbour_list(quantities: str, atoms: Atoms, cutoff: float):
    """matscipy's neighbour list (same interface as ase's ``neighbor_list``, an order of magnitude faster)."""
    from matscipy.neighbours import neighbour_list

    return neighbour_list(quantities, atoms, cutoff)


def coordination(atoms: Atoms, cutoff: float = 3.3) -> np.ndarray:
    """Neighbours within ``cutoff`` Å (14 for bulk BCC W at 3.3 Å: 8 first and 6 second neighbours)."""
    return np.bincount(fast_neighbour_list("i", atoms, cutoff), minlength=len(atoms))
