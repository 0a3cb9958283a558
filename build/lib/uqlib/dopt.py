"""D-optimality: per-atom B projections, MaxVol active sets, extrapolation grades gamma.

For a linear ACE model, the B projections of an atom, ``B(i)`` (one value per basis
function), are the rows of the per-atom design matrix. The active set ``A`` is the
square submatrix of training projections of (locally) maximal volume, found by
MaxVol; an atom's extrapolation grade is

    gamma_atom(i) = max_j |(B(i) A^-1)_j|,

and a configuration's ``gamma_cfg`` is the largest ``gamma_atom`` of its atoms.
``gamma <= 1`` means ``B(i)`` is a combination of the active set's rows with
coefficients of magnitude at most one (interpolation); ``gamma > 1`` means
extrapolation. This is pacemaker's linear active-set mode (``pace_activeset``):
the projections, MaxVol and ``.asi`` files are pyace's.

An atom with no neighbour within the cutoff has ``B = 0`` and so ``gamma = 0``:
D-optimality cannot flag an isolated atom (subset E holds one).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyace import ACEBBasisSet
from pyace.activelearning import (
    compute_active_set,
    compute_B_projections,
    load_active_inverse_set,
    save_active_inverse_set,
)

from uqlib import ace
from uqlib.ace import BasisPreset
from uqlib.config import ELEMENT
from uqlib.exceptions import ActiveSetError
from uqlib.metrics import tukey_threshold
from uqlib.progress import progress_bar
from uqlib.tables import per_structure_max

MAXVOL_TOLERANCE = 1.01  # pace_activeset's default: MaxVol stops when no candidate has gamma above it
MAXVOL_ITERATIONS = 300  # pace_activeset's default
SINGULAR_CONDITION = 1e14  # an active set this ill-conditioned is treated as singular



def _check_tungsten(table: pd.DataFrame) -> None:
    for sid, atoms in zip(table["structure_id"], table["atoms"], strict=True):
        other = set(atoms.get_chemical_symbols()) - {ELEMENT}
        if other:
            raise ActiveSetError(f"Structure {sid} contains {sorted(other)}: the W basis cannot grade it")


_WORKER_BASIS: ACEBBasisSet | None = None  # set before forking; workers inherit it


def _project_chunk(atoms_list: list) -> np.ndarray:
    return compute_B_projections(_WORKER_BASIS, atoms_list)[0]  # species type 0: W


def _compute_projections(table: pd.DataFrame, basis: ACEBBasisSet, progress: bool, workers: int) -> np.ndarray:
    global _WORKER_BASIS
    atoms = table["atoms"].tolist()
    chunks = [atoms[s:s + 20] for s in range(0, len(atoms), 20)]
    _WORKER_BASIS = basis
    blocks = []
    with progress_bar(total=len(atoms), unit="structure", desc="B projections", disable=not progress) as bar:
        if workers > 1 and len(chunks) > 1:
            # fork, like pyace's own LinearACEDataset: the workers inherit the basis unpickled
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for chunk, block in zip(chunks, pool.imap(_project_chunk, chunks), strict=True):
                    blocks.append(block)
                    bar.update(len(chunk))
        else:
            for chunk in chunks:
                blocks.append(_project_chunk(chunk))
                bar.update(len(chunk))
    return np.concatenate(blocks)


def atom_projections(table: pd.DataFrame, basis: str | BasisPreset | ACEBBasisSet, *, workers: int = 2,
                     use_cache: bool = True, progress: bool = True) -> np.ndarray:
    """Per-atom B projections ``(n_atom, n_func)`` of ``table``, atoms in table order.

    ``basis`` is a preset (the projections are then those of the cached featurization pass,
    :func:`uqlib.ace.design_matrix`, never a second pyace pass) or any pyace
    ``ACEBBasisSet`` (for example a loaded pacemaker potential; computed here, in
    ``workers`` forked processes, not cached). With ``use_cache=False`` a preset's projections
    are computed alone, without the force rows a design matrix also holds: nothing will reuse
    them, so the B gradients would be wasted work (about six times the cost of the projections).
    """
    if len(table) == 0:
        raise ActiveSetError("The structure table is empty: there is nothing to project")
    _check_tungsten(table)
    if not use_cache and not isinstance(basis, ACEBBasisSet):
        basis = ace.get_preset(basis).basis_set()
    if isinstance(basis, ACEBBasisSet):
        return _compute_projections(table, basis, progress, workers)
    return ace.design_matrix(table, basis, workers=workers, use_cache=use_cache, progress=progress).projections


def force_outlier_mask(predicted_forces: np.ndarray, reference_forces: np.ndarray) -> np.ndarray:
    """``True`` for atoms to keep: force error at most Q3 + 1.5 IQR, as ``pace_activeset`` does.

    The error of atom *i* is ``|F_i^pred - F_i^ref| / sqrt(3)`` (eV/Å per component).
    """
    error = np.linalg.norm(np.asarray(predicted_forces) - np.asarray(reference_forces), axis=1) / np.sqrt(3)
    return error <= tukey_threshold(error)


@dataclass
class ActiveSet:
    """A MaxVol active set of one species: its inverse is what grades atoms."""

    inverse: np.ndarray  # A_active^-1, (n_func, n_func)
    atoms: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))  # training rows selected
    candidates: np.ndarray = field(default_factory=lambda: np.array([], dtype=bool))  # rows offered to MaxVol

    @property
    def n_candidates(self) -> int:
        """Training atoms offered to MaxVol."""
        return int(self.candidates.sum())

    @property
    def n_excluded(self) -> int:
        """Training atoms dropped as force outliers before MaxVol."""
        return int((~self.candidates).sum())

    @property
    def n_functions(self) -> int:
        return len(self.inverse)

    def grade(self, projections: np.ndarray, block: int = 20000) -> np.ndarray:
        """gamma_atom of each row of ``projections`` (see :func:`extrapolation_grade`)."""
        return extrapolation_grade(projections, self.inverse, block)

    def save(self, path: str | Path) -> Path:
        """Write pacemaker's ``.asi`` (``numpy.savez`` of the inverse, keyed by element)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_active_inverse_set(str(path), {0: self.inverse}, elements_name=[ELEMENT])
        return path

    @classmethod
    def load(cls, path: str | Path) -> ActiveSet:
        """Read a single-species (W) ``.asi`` file."""
        inverses = load_active_inverse_set(str(path))
        if len(inverses) != 1:
            raise ActiveSetError(f"{path} holds {len(inverses)} species; uqlib grades W only")
        return cls(inverse=inverses[0])


def spans_basis(rows: np.ndarray, n_functions: int | None = None) -> bool:
    """Whether ``rows`` (projections, ``(n, p)``) have full column rank: a MaxVol active set of them exists.

    At least ``n_functions`` (default: the number of columns) rows, and a smallest singular
    value above the largest / :data:`SINGULAR_CONDITION`, the test :func:`build_active_set` applies.
    """
    n_functions = rows.shape[1] if n_functions is None else n_functions
    if len(rows) < n_functions:
        return False
    singular_values = np.linalg.svd(rows, compute_uv=False)
    return bool(singular_values[-1] > singular_values[0] / SINGULAR_CONDITION)


def build_active_set(projections: np.ndarray, *, keep: np.ndarray | None = None,
                     tolerance: float = MAXVOL_TOLERANCE, max_iterations: int = MAXVOL_ITERATIONS) -> ActiveSet:
    """MaxVol active set of the training projections (rows where ``keep`` is true).

    Raises :class:`ActiveSetError` when fewer atoms than basis functions remain (the
    active set would be under-determined) or when the selected matrix is singular;
    it never falls back to a pseudo-inverse.
    """
    keep = np.ones(len(projections), bool) if keep is None else np.asarray(keep, bool)
    candidates = np.array(projections[keep], dtype=float)  # a copy: pyace edits it in place
    n_atoms, n_functions = candidates.shape
    if n_atoms < n_functions:
        excluded = f" ({int((~keep).sum())} excluded as force outliers)" if (~keep).any() else ""
        raise ActiveSetError(
            f"Under-determined active set: {n_atoms} training atoms for {n_functions} basis functions{excluded}. "
            f"Use a smaller basis preset or more training structures.")
    active, selected = compute_active_set({0: candidates}, {0: np.arange(n_atoms)},
                                          tol=tolerance, max_iters=max_iterations)
    return ActiveSet(inverse=active_inverse(active[0]), atoms=np.flatnonzero(keep)[selected[0]], candidates=keep)


def active_inverse(matrix: np.ndarray) -> np.ndarray:
    """``A_active^-1`` of a MaxVol active set ``(n_func, n_func)``; raises :class:`ActiveSetError` when
    the set is not square or is singular (condition number above :data:`SINGULAR_CONDITION`)."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ActiveSetError(f"Under-determined active set: {len(matrix)} training atoms for "
                             f"{matrix.shape[-1]} basis functions. Use a smaller basis preset or more structures.")
    condition = np.linalg.cond(matrix)
    if not np.isfinite(condition) or condition > SINGULAR_CONDITION:
        raise ActiveSetError(
            f"The active set is singular (condition number {condition:.1e}): the training projections do not "
            f"span all {len(matrix)} basis functions. Use a smaller basis preset or more varied structures.")
    return np.linalg.inv(matrix)


def extrapolation_grade(projections: np.ndarray, inverse: np.ndarray, block: int = 20000) -> np.ndarray:
    """gamma_atom = max_j |(B A^-1)_j| for each row ``B`` of ``projections`` (blocked to bound memory)."""
    if projections.shape[1] != len(inverse):
        raise ActiveSetError(f"Projections have {projections.shape[1]} functions, the active set {len(inverse)}")
    return np.concatenate([np.abs(projections[s:s + block] @ inverse).max(axis=1)
                           for s in range(0, len(projections), block)] or [np.empty(0)])


def structure_grade(gamma_atom: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """gamma_cfg: the largest gamma_atom of each configuration."""
    return per_structure_max(gamma_atom, n_atoms)


def calculator_gammas(calculator, structures) -> np.ndarray:
    """gamma_atom of every atom of ``structures`` from a pyace ``PyACECalculator`` with an active set.

    The reference that :meth:`ActiveSet.grade` is tested and benchmarked against; atoms in order.
    """
    gammas = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calculator
        atoms.get_potential_energy()
        gammas.append(np.array(calculator.results["gamma"]))
    return np.concatenate(gammas)
