"""The ensemble criteria CBE, CBF and ABF (paper eqs 1-3), errors of the ensemble mean (eqs 4-6)."""

from __future__ import annotations

from typing import Self

import numpy as np

from uqlib import ace, ensemble
from uqlib.criteria.base import Columns, Criterion, FeaturizedSet, Signal


class EnsembleCriterion(Criterion):
    """K linear ACE members fitted on one design matrix (see :mod:`uqlib.ensemble`).

    Signals: CBE (U_E,cfg, eq 1, energies per atom), CBF (U_F,cfg, eq 3) and ABF
    (U_F,atom, eq 2), each judged against eq 7 on the training errors of the ensemble
    mean; the paper's configuration rule "CBE or CBF" flags a configuration when either
    does. Fitted attribute: ``ensemble_``.
    """

    name = "ensemble"
    signals = (Signal("CBE", "config", "U_E", "err_E", unit="eV/atom"),
               Signal("CBF", "config", "U_F", "err_F", unit="eV/Å"),
               Signal("ABF", "atom", "U_F", "err_F", unit="eV/Å"))
    rules = {"CBE or CBF": ("CBE", "CBF")}

    def __init__(self, n_members: int = 6, *, method: str = "bootstrap", seed: int = 0,
                 kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA, progress: bool = False) -> None:
        self.n_members = n_members
        self.method = method
        self.seed = seed
        self.kappa = kappa
        self.alpha = alpha
        self.progress = progress

    def fit(self, train: FeaturizedSet) -> Self:
        self.ensemble_ = ensemble.fit_ensemble(train.dm, self.n_members, method=self.method, seed=self.seed,
                                               kappa=self.kappa, alpha=self.alpha, progress=self.progress)
        return self

    @classmethod
    def from_ensemble(cls, fitted: ensemble.Ensemble) -> EnsembleCriterion:
        """The criterion of an already fitted ensemble, e.g. ``pool.members(slice(0, 10))`` in a K sweep."""
        criterion = cls(fitted.n_members, method=fitted.method, seed=fitted.seed)
        criterion.ensemble_ = fitted
        return criterion

    def _member_predictions(self, data: FeaturizedSet) -> tuple[np.ndarray, np.ndarray]:
        coefficients = self.ensemble_.coefficients
        return ace.predict_energy_per_atom(data.dm, coefficients), ace.predict_forces(data.dm, coefficients)

    def uncertainties(self, data: FeaturizedSet) -> tuple[Columns, Columns]:
        if self.ensemble_.preset != data.dm.preset:
            raise ValueError(f"The ensemble is for {self.ensemble_.preset}, the data for {data.dm.preset}")
        energies, forces = self._member_predictions(data)
        atom_u = ensemble.atom_force_uncertainty(forces)
        return ({"U_E": ensemble.energy_uncertainty(energies), "U_F": ensemble.config_force_uncertainty(
                    forces, data.dm.n_atoms)},
                {"U_F": atom_u})

    def predictions(self, data: FeaturizedSet) -> tuple[np.ndarray, np.ndarray]:
        # the ensemble mean of a linear model is the model of the mean coefficients
        mean = self.ensemble_.coefficients.mean(axis=0)
        return ace.predict_energy_per_atom(data.dm, mean), ace.predict_forces(data.dm, mean)

    def force_spread(self, data: FeaturizedSet) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble-mean force components and their member standard deviation, each ``(n_atom * 3,)`` (eV/Å)."""
        _, forces = self._member_predictions(data)
        flat = forces.reshape(len(forces), -1)
        return flat.mean(axis=0), flat.std(axis=0, ddof=1)
