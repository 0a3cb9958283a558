"""Ensembles of linear ACE models and their uncertainties (paper eqs 1-6).

Two ways to make K members that share one cached design matrix:

- ``"bootstrap"`` (default): member *k* is fitted on a seeded bootstrap resample of
  the training structures (all atoms of a drawn structure come with it). The force
  terms of the normal equations are summed once per *bootstrap unit*, so a member costs
  a weighted sum of ``G`` Gram matrices and a Cholesky solve, not a pass over the
  ``3 n_atom`` force rows.

  The units are the structures themselves when their ``2 n_cfg`` Gram matrices (energy
  and force) fit in ``gram_memory`` bytes (``2 n_cfg p^2 8 B``): the ordinary bootstrap
  over structures.
  When they do not (Func-1561 on A+B would need 678 x 1561^2 x 8 B = 13 GB), the
  structures are dealt at random (seeded) into ``G`` groups of nearly equal size and
  the bootstrap draws groups: a *random-group block bootstrap*. Each member is still an
  exact fit on a multiset of whole structures (every structure of a drawn group counts
  as many times as its group is drawn). Because the groups are random, the expected
  bootstrap variance of a per-structure mean is the same as with structures as units;
  what changes is that members are built from ``G`` (not ``n_cfg``) independent
  draws, so the spread between members is itself estimated from ``G`` units and is
  noisier, and structures of one group are always drawn together. The number of units
  is recorded in :attr:`Ensemble.bootstrap_units`.
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
from uqlib.progress import progress_bar
from uqlib.tables import per_structure_max

ENERGY_UNIT = "eV/atom"  # CBE works with energies per atom (see module docstring)
METHODS = ("bootstrap", "posterior")
GRAM_MEMORY = 1.5 * 2**30  # bytes for the bootstrap units' energy and force Gram matrices (module docstring)


@dataclass
class Ensemble:
    """K linear ACE members: ``coefficients`` has shape ``(K, n_functions)``."""

    preset: str
    method: str
    seed: int
    coefficients: np.ndarray
    setup_seconds: float  # shared work: the units' normal equations (bootstrap) or the one fit
    member_seconds: float  # mean wall time per member after the shared work
    bootstrap_units: int = 0  # structures or random groups drawn by the bootstrap (0: posterior)
    # (K, n_cfg): how often each training structure counts in each member's fit (None: posterior, all once)
    structure_weights: np.ndarray | None = None

    @property
    def n_members(self) -> int:
        return len(self.coefficients)

    def members(self, indices: np.ndarray | slice) -> Ensemble:
        """The ensemble of some of the members (nested or disjoint sub-ensembles for K sweeps)."""
        coefficients = self.coefficients[indices]
        if coefficients.ndim != 2 or len(coefficients) < 2:
            raise ValueError(f"A sub-ensemble needs at least 2 of the {self.n_members} members, got {indices}")
        weights = None if self.structure_weights is None else self.structure_weights[indices]
        return Ensemble(self.preset, self.method, self.seed, coefficients, self.setup_seconds, self.member_seconds,
                        self.bootstrap_units, weights)


def random_groups(n_configs: int, n_groups: int, seed: int) -> np.ndarray:
    """Group label ``(n_configs,)`` of each structure: a seeded random deal into ``n_groups`` near-equal groups."""
    if not 1 <= n_groups <= n_configs:
        raise ValueError(f"n_groups must lie in [1, {n_configs}] (the number of structures), got {n_groups}")
    return ace.random_deal(n_configs, n_groups, seed)


class StructureNormalEquations:
    """Energy and force terms of the normal equations of :mod:`uqlib.ace`, summed per bootstrap unit.

    ``groups[s]`` is the unit of structure *s* (default: each structure its own unit).
    With them, the Gram matrix for unit weights ``w`` (``(G,)``) is two weighted sums of
    ``G`` matrices, ``O(G p^2)``, instead of a pass over the ``n_cfg + 3 n_atom`` rows
    (the energy rows alone would cost ``n_cfg p^2`` per member). Memory: ``2 G p^2`` doubles.
    """

    def __init__(self, dm: DesignMatrix, groups: np.ndarray | None = None, progress: bool = False) -> None:
        p = dm.n_functions
        self.dm = dm
        self.groups = np.arange(dm.n_configs) if groups is None else np.asarray(groups, dtype=int)
        if self.groups.shape != (dm.n_configs,) or self.groups.min() < 0:
            raise ValueError(f"groups must give a non-negative unit to each of the {dm.n_configs} structures")
        self.n_units = int(self.groups.max()) + 1
        self.force_gram = np.empty((self.n_units, p, p))
        self.force_rhs = np.empty((self.n_units, p))
        self.energy_gram = np.empty((self.n_units, p, p))
        self.energy_rhs = np.empty((self.n_units, p))
        atom_unit = np.repeat(self.groups, dm.n_atoms)
        row_unit = np.repeat(atom_unit, 3)
        targets = dm.forces.ravel()
        for g in progress_bar(range(self.n_units), desc="bootstrap units", unit="unit", disable=not progress):
            rows = np.flatnonzero(row_unit == g)
            self.force_gram[g], self.force_rhs[g] = ace.weighted_gram(
                dm.force_rows[rows], np.ones(len(rows)), targets[rows])
            configs = np.flatnonzero(self.groups == g)
            self.energy_gram[g], self.energy_rhs[g] = ace.weighted_gram(
                dm.energy_rows[configs], np.ones(len(configs)), dm.energy_per_atom[configs])

    def structure_weights(self, unit_weights: np.ndarray) -> np.ndarray:
        """Weight ``(n_cfg,)`` of each structure: the weight of its unit."""
        return np.asarray(unit_weights, dtype=float)[self.groups]

    def normal_equations(self, unit_weights: np.ndarray, kappa: float) -> tuple[np.ndarray, np.ndarray]:
        """``G`` and ``b`` of :func:`uqlib.ace.normal_equations` for these unit weights ``(G,)``."""
        ace.check_kappa(kappa)
        dm, u = self.dm, np.asarray(unit_weights, dtype=float)
        if u.shape != (self.n_units,):
            raise ValueError(f"unit_weights must have {self.n_units} entries, got shape {u.shape}")
        w = self.structure_weights(u)
        energy_scale = (1.0 - kappa) / w.sum()
        force_scale = kappa / (w @ dm.n_atoms)
        gram = energy_scale * np.tensordot(u, self.energy_gram, axes=1)
        gram += force_scale * np.tensordot(u, self.force_gram, axes=1)
        rhs = energy_scale * (u @ self.energy_rhs) + force_scale * (u @ self.force_rhs)
        return gram, rhs


def bootstrap_weights(n_configs: int, n_members: int, seed: int) -> np.ndarray:
    """Counts of each unit (structure or group) in each member's bootstrap resample, shape ``(K, n_configs)``."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_configs, size=(n_members, n_configs))
    return np.stack([np.bincount(d, minlength=n_configs) for d in draws]).astype(float)


def bootstrap_units(n_configs: int, n_functions: int, gram_memory: float = GRAM_MEMORY) -> int:
    """How many bootstrap units fit: every structure if their Grams fit in ``gram_memory`` bytes, else fewer.

    A unit holds two ``(p, p)`` Gram matrices (energy and force), ``16 p^2`` bytes.
    """
    fit = int(gram_memory // (16 * n_functions**2))
    if fit < 2:
        raise ValueError(f"gram_memory={gram_memory:.3g} B holds fewer than 2 units' Gram matrices of "
                         f"{n_functions} functions ({16 * n_functions**2:.3g} B each)")
    return min(n_configs, fit)


def _check(dm: DesignMatrix, n_members: int, method: str, kappa: float) -> None:
    if not isinstance(n_members, int | np.integer) or n_members < 2:
        raise ValueError(f"An ensemble needs at least 2 members (n_members), got {n_members!r}")
    if method not in METHODS:
        raise ValueError(f"Unknown ensemble method {method!r}; choose one of {METHODS}")
    if dm.n_configs < 2:
        raise ValueError("An ensemble needs at least 2 training structures")
    ace.check_kappa(kappa)


def _posterior(dm: DesignMatrix, n_members: int, seed: int, kappa: float, alpha: float) -> Ensemble:
    start = time.perf_counter()
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
    return Ensemble(dm.preset, "posterior", seed, coefficients, setup, per_member)


def fit_ensemble(dm: DesignMatrix, n_members: int, *, method: str = "bootstrap", seed: int = 0,
                 kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA, progress: bool = True,
                 n_units: int | None = None, gram_memory: float = GRAM_MEMORY) -> Ensemble:
    """Fit ``n_members`` linear ACE models on one design matrix (see module docstring).

    ``n_units`` fixes the number of bootstrap units (default :func:`bootstrap_units`:
    all structures if their Grams fit in ``gram_memory`` bytes, else random groups).
    """
    _check(dm, n_members, method, kappa)
    if method == "posterior":
        return _posterior(dm, n_members, seed, kappa, alpha)
    start = time.perf_counter()
    units = bootstrap_units(dm.n_configs, dm.n_functions, gram_memory) if n_units is None else n_units
    groups = None if units == dm.n_configs else random_groups(dm.n_configs, units, seed)
    pieces = StructureNormalEquations(dm, groups, progress=progress)
    setup = time.perf_counter() - start
    weights = bootstrap_weights(pieces.n_units, n_members, seed)
    members = []
    for w in progress_bar(weights, desc=f"ensemble {dm.preset}", disable=not progress, unit="member"):
        gram, rhs = pieces.normal_equations(w, kappa)
        members.append(ace.solve_ridge(gram, rhs, alpha))
    per_member = (time.perf_counter() - start - setup) / n_members
    return Ensemble(dm.preset, method, seed, np.array(members), setup, per_member, pieces.n_units,
                    np.stack([pieces.structure_weights(w) for w in weights]))


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
