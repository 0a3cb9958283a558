"""The ensemble criteria CBE, CBF and ABF (paper eqs 1-3), errors of the ensemble mean (eqs 4-6)."""

from __future__ import annotations

from typing import Self

import numpy as np

from uqlib import ace, ensemble
from uqlib.criteria.base import Columns, Criterion, FeaturizedSet, Signal


class EnsembleCriterion(Criterion):
    """K linear ACE members fitted on one design matrix by a member ``construction`` (see :mod:`uqlib.ensemble`).

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

    def __init__(self, n_members: int = 6, *, construction: str = "bootstrap", seed: int = 0,
                 kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA, progress: bool = False,
                 sigma: float = ensemble.PACEMAKER_SIGMA, maxiter: int = ensemble.PACEMAKER_MAXITER,
                 fraction: float = ensemble.SUBSAMPLE_FRACTION, gram_spectra: bool = False) -> None:
        self.n_members = n_members
        self.construction = construction
        self.seed = seed
        self.kappa = kappa
        self.alpha = alpha
        self.progress = progress
        self.sigma = sigma
        self.maxiter = maxiter
        self.fraction = fraction
        self.gram_spectra = gram_spectra

    def fit(self, train: FeaturizedSet) -> Self:
        self.ensemble_ = ensemble.fit_ensemble(train.dm, self.n_members, construction=self.construction,
                                               seed=self.seed, kappa=self.kappa, alpha=self.alpha,
                                               progress=self.progress, sigma=self.sigma, maxiter=self.maxiter,
                                               fraction=self.fraction, gram_spectra=self.gram_spectra)
        return self

    @classmethod
    def from_ensemble(cls, fitted: ensemble.Ensemble) -> EnsembleCriterion:
        """The criterion of an already fitted ensemble, e.g. ``pool.members(slice(0, 10))`` in a K sweep."""
        criterion = cls(fitted.n_members, construction=fitted.construction, seed=fitted.seed)
        criterion.ensemble_ = fitted
        return criterion

    def _member_predictions(self, data: FeaturizedSet) -> tuple[np.ndarray, np.ndarray]:
        coefficients = self.ensemble_.coefficients
        return ace.predict_energy_per_atom(data.dm, coefficients), ace.predict_forces(data.dm, coefficients)

    def uncertainties(self, data: FeaturizedSet) -> tuple[Columns, Columns]:
        if self.ensemble_.preset != data.dm.preset:
            raise ValueError(f"The ensemble is for {self.ensemble_.preset}, the data for {data.dm.preset}")
        # eqs 1-3 a chunk of structures at a time: member predictions never exist for the whole set
        u = ensemble.ensemble_uncertainties(data.dm, self.ensemble_.coefficients)
        return {"U_E": u["U_E"], "U_F": u["U_F_cfg"]}, {"U_F": u["U_F_atom"]}

    def predictions(self, data: FeaturizedSet) -> tuple[np.ndarray, np.ndarray]:
        # the ensemble mean of a linear model is the model of the mean coefficients
        mean = self.ensemble_.coefficients.mean(axis=0)
        return ace.predict_energy_per_atom(data.dm, mean), ace.predict_forces(data.dm, mean)

    def force_spread(self, data: FeaturizedSet) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble-mean force components and their member standard deviation, each ``(n_atom * 3,)`` (eV/Å)."""
        _, forces = self._member_predictions(data)
        flat = forces.reshape(len(forces), -1)
        return flat.mean(axis=0), flat.std(axis=0, ddof=1)
