"""Ensembles of linear ACE models and their uncertainties (paper eqs 1-6).

Two ways to make K members that share one cached design matrix:

- ``"bootstrap"`` (default): member *k* is fitted on a seeded bootstrap resample of
  the training *structures* (all atoms of a drawn structure come with it). The
  per-structure pieces of the normal equations are computed once, so a member
  costs a weighted sum and a Cholesky solve, not a pass over the design matrix.
- ``"posterior"``: K samples from the Gaussian posterior of the ridge fit,
  ``N(c_hat, s2 (G + alpha I)^-1)``, with ``s2`` the weighted residual sum of
  squares over ``(n_rows - n_functions)``. One fit, then K cheap draws.

The paper's members differed by pacemaker's random initialisation, which a
closed-form linear fit does not have; the book says which method a figure uses.

Energies are **per atom** throughout (eV/atom): the energy uncertainty U_E,cfg,
the energy error and its threshold all use the energy per atom, as the paper's
code does. Forces are in eV/Å.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from uqlib import ace
from uqlib.ace import DesignMatrix
from uqlib.data import per_structure_max
from uqlib.progress import progress_bar

ENERGY_UNIT = "eV/atom"  # CBE works with energies per atom (see module docstring)
METHODS = ("bootstrap", "posterior")


@dataclass
class Ensemble:
    """K linear ACE members: ``coefficients`` has shape ``(K, n_functions)``."""

    preset: str
    method: str
    seed: int
    coefficients: np.ndarray
    setup_seconds: float  # shared work: per-structure normal equations (bootstrap) or the one fit
    member_seconds: float  # mean wall time per member after the shared work

    @property
    def n_members(self) -> int:
        return len(self.coefficients)

    def members(self, indices: np.ndarray | slice) -> Ensemble:
        """The ensemble of some of the members (nested or disjoint sub-ensembles for K sweeps)."""
        coefficients = self.coefficients[indices]
        if coefficients.ndim != 2 or len(coefficients) < 2:
            raise ValueError(f"A sub-ensemble needs at least 2 of the {self.n_members} members, got {indices}")
        return Ensemble(self.preset, self.method, self.seed, coefficients, self.setup_seconds, self.member_seconds)


class StructureNormalEquations:
    """Per-structure terms of the normal equations of :mod:`uqlib.ace`.

    With them, the Gram matrix for any structure weights ``w`` is a weighted sum,
    ``O(n_cfg p^2)``, instead of a pass over all ``3 n_atom`` force rows.
    """

    def __init__(self, dm: DesignMatrix) -> None:
        p = dm.n_functions
        self.dm = dm
        self.force_gram = np.empty((dm.n_configs, p, p))
        self.force_rhs = np.empty((dm.n_configs, p))
        bounds = 3 * np.concatenate([[0], np.cumsum(dm.n_atoms)])
        targets = dm.forces.ravel()
        for s in range(dm.n_configs):
            rows = dm.force_rows[bounds[s]:bounds[s + 1]]
            self.force_gram[s] = rows.T @ rows
            self.force_rhs[s] = rows.T @ targets[bounds[s]:bounds[s + 1]]

    def normal_equations(self, structure_weights: np.ndarray, kappa: float) -> tuple[np.ndarray, np.ndarray]:
        """``G`` and ``b`` of :func:`uqlib.ace.normal_equations` for these weights."""
        dm, w = self.dm, np.asarray(structure_weights, dtype=float)
        energy_w = (1.0 - kappa) / w.sum() * w
        force_scale = kappa / (w @ dm.n_atoms)
        weighted_e = dm.energy_rows * energy_w[:, None]
        gram = weighted_e.T @ dm.energy_rows + force_scale * np.tensordot(w, self.force_gram, axes=1)
        rhs = weighted_e.T @ dm.energy_per_atom + force_scale * (w @ self.force_rhs)
        return gram, rhs


def bootstrap_weights(n_configs: int, n_members: int, seed: int) -> np.ndarray:
    """Counts of each structure in each member's bootstrap resample, shape ``(K, n_configs)``."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_configs, size=(n_members, n_configs))
    return np.stack([np.bincount(d, minlength=n_configs) for d in draws]).astype(float)


def _check(dm: DesignMatrix, n_members: int, method: str) -> None:
    if not isinstance(n_members, int | np.integer) or n_members < 2:
        raise ValueError(f"An ensemble needs at least 2 members (n_members), got {n_members!r}")
    if method not in METHODS:
        raise ValueError(f"Unknown ensemble method {method!r}; choose one of {METHODS}")
    if dm.n_configs < 2:
        raise ValueError("An ensemble needs at least 2 training structures")


def fit_ensemble(dm: DesignMatrix, n_members: int, *, method: str = "bootstrap", seed: int = 0,
                 kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA,
                 progress: bool = True) -> Ensemble:
    """Fit ``n_members`` linear ACE models on one design matrix (see module docstring)."""
    _check(dm, n_members, method)
    start = time.perf_counter()
    if method == "posterior":
        gram, rhs = ace.normal_equations(dm, kappa=kappa)
        regularised = gram + alpha * np.eye(len(gram))
        centre = scipy.linalg.solve(regularised, rhs, assume_a="pos")
        energy_w, force_w = 1.0 - kappa, kappa  # normalised weights: the loss without alpha
        de = dm.energy_rows @ centre - dm.energy_per_atom
        df = dm.force_rows @ centre - dm.forces.ravel()
        weighted_ssr = energy_w * np.mean(de**2) + force_w * np.mean(df**2) * 3
        n_rows = dm.n_configs + df.size
        s2 = weighted_ssr / max(n_rows - dm.n_functions, 1)
        # Cholesky of the precision: draws are centre + s * L^-T z.
        chol = scipy.linalg.cholesky(regularised, lower=True)
        setup = time.perf_counter() - start
        z = np.random.default_rng(seed).standard_normal((dm.n_functions, n_members))
        draws = scipy.linalg.solve_triangular(chol.T, z, lower=False)
        coefficients = centre[None, :] + np.sqrt(s2) * draws.T
        per_member = (time.perf_counter() - start - setup) / n_members
        return Ensemble(dm.preset, method, seed, coefficients, setup, per_member)
    pieces = StructureNormalEquations(dm)
    setup = time.perf_counter() - start
    weights = bootstrap_weights(dm.n_configs, n_members, seed)
    members = []
    for w in progress_bar(weights, desc=f"ensemble {dm.preset}", disable=not progress, unit="member"):
        gram, rhs = pieces.normal_equations(w, kappa)
        members.append(ace.solve_ridge(gram, rhs, alpha))
    per_member = (time.perf_counter() - start - setup) / n_members
    return Ensemble(dm.preset, method, seed, np.array(members), setup, per_member)


# -- uncertainties (paper eqs 1-3); the errors of eqs 4-6 are in uqlib.criteria.ensemble ----------

def energy_uncertainty(member_energies: np.ndarray) -> np.ndarray:
    """Eq 1, U_E,cfg = max_k |E_k - <E>|, from ``(K, n_cfg)`` energies per atom (eV/atom)."""
    return np.abs(member_energies - member_energies.mean(axis=0)).max(axis=0)


def atom_force_uncertainty(member_forces: np.ndarray) -> np.ndarray:
    """Eq 2, U_F,atom = max_k |F_i,k - <F_i>| (Euclidean norm), from ``(K, n_atom, 3)`` forces (eV/Å)."""
    return np.linalg.norm(member_forces - member_forces.mean(axis=0), axis=-1).max(axis=0)


def config_force_uncertainty(member_forces: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Eq 3, U_F,cfg = max over a configuration's atoms of U_F,atom (eV/Å), shape ``(n_cfg,)``."""
    return per_structure_max(atom_force_uncertainty(member_forces), n_atoms)


def ensemble_rmse(dm: DesignMatrix, ensemble: Ensemble) -> dict[str, float]:
    """RMSE of the ensemble-mean model (meV/atom, meV/Å), which for a linear model is the mean coefficient."""
    return ace.rmse(dm, ensemble.coefficients.mean(axis=0))
