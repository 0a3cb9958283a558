"""A criterion judged on a training and a test set: thresholds (eq 7), Spearman rho, selection rates.

Everything here goes through the criterion interface (:mod:`uqlib.criteria`) and the
pure metrics (:mod:`uqlib.metrics`), and returns tidy tables. Thresholds follow the
paper: a signal with a fixed threshold (gamma > 1, dH > 0) uses it; any other uses eq 7
on its training errors, eps = Q3 + 1.5 IQR. Uncertainties, errors and thresholds are in
eV/atom and eV/Å.

>>> result = evaluate(EnsembleCriterion("Func-33", n_members=6), train_set, test_set)
>>> result.summary[["threshold", "rho_test", "selection_rate"]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from uqlib import metrics
from uqlib.criteria import Criterion, FeaturizedSet, Scores, Signal
from uqlib.tables import per_structure_max

__all__ = ["Evaluation", "evaluate", "flagged", "model_rmse", "rank_by", "rmse_from_scores", "summarize",
           "thresholds"]


@dataclass
class Evaluation:
    """A criterion judged on a training and a test set.

    ``summary`` has one row per signal (and per combining rule such as "CBE or CBF"):
    ``threshold``, ``rho_train``, ``rho_test``, ``selection_rate`` (test), ``train_rate``,
    and the means of uncertainty and error on each set. RMSEs are those of the
    criterion's model: ``E_rmse`` (meV/atom) and ``F_rmse`` (per component, meV/Å).
    """

    criterion: Criterion
    train: Scores
    test: Scores
    summary: pd.DataFrame
    rmse_train: dict[str, float]
    rmse_test: dict[str, float]

    def values(self, which: str, signal: str) -> tuple[np.ndarray, np.ndarray]:
        """``(uncertainty, error)`` of a signal on the ``"train"`` or ``"test"`` set."""
        return getattr(self, which).values(self.criterion.signal(signal))

    def points(self, signal: str, scale: float = 1e3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{"train": (uncertainty, error), "test": ...}`` of a signal, errors times ``scale`` (eV -> meV).

        Uncertainties with a unit (CBE, CBF, ABF) are scaled too; dimensionless ones (gamma) are not.
        """
        u_scale = scale if self.criterion.signal(signal).unit.startswith("eV") else 1.0
        return {which: (u_scale * u, scale * e) for which in ("train", "test")
                for u, e in [self.values(which, signal)]}

    def outcomes(self, signal: str) -> dict[str, float]:
        """The four outcomes of flagging the test set (:func:`uqlib.metrics.confusion`).

        High error means above eq 7 of the training errors; a signal with a fixed
        threshold (gamma) is flagged above it, one without (CBF) above its eq 7 threshold.
        """
        spec = self.criterion.signal(signal)
        _, train_error = self.values("train", signal)
        u, e = self.values("test", signal)
        return metrics.confusion(u, e, self.summary.loc[signal, "threshold"],
                                 error_threshold=metrics.tukey_threshold(train_error) if spec.threshold is not None
                                 else None)

    def on_test_subsets(self, subsets: list[str] | tuple[str, ...]) -> Evaluation:
        """The same fit judged on the test configurations of some subsets only (e.g. C of C+E).

        Thresholds stay those of the training set; rho, rates and the test RMSEs are recomputed
        on the kept configurations and their atoms. RMSEs come from the scores' errors: energy
        per atom (meV/atom) and force components, ``|e_F,atom|^2 / 3`` averaged (meV/Å).
        """
        keep_cfg = self.test.configs["subset"].isin(subsets).to_numpy()
        if not keep_cfg.any():
            raise ValueError(f"No test configuration belongs to {list(subsets)}; the test set holds "
                             f"{sorted(set(self.test.configs['subset']))}")
        keep_atom = self.test.atoms["subset"].isin(subsets).to_numpy()
        test = Scores(self.test.configs[keep_cfg].reset_index(drop=True),
                      self.test.atoms[keep_atom].reset_index(drop=True))
        eps = self.summary["threshold"].dropna().to_dict()
        return Evaluation(self.criterion, self.train, test, summarize(self.criterion, self.train, test, eps),
                          self.rmse_train, rmse_from_scores(test))


def thresholds(criterion: Criterion, train: Scores) -> dict[str, float]:
    """Each signal's threshold: its fixed one, or eq 7 on its training errors."""
    return {s.name: s.threshold if s.threshold is not None else metrics.tukey_threshold(train.values(s)[1])
            for s in criterion.signals}


def flagged(criterion: Criterion, scores: Scores, eps: dict[str, float], name: str) -> np.ndarray:
    """Which rows a signal, or a rule combining configuration signals, flags."""
    if name in criterion.rules:
        return np.logical_or.reduce([flagged(criterion, scores, eps, part) for part in criterion.rules[name]])
    return scores.values(criterion.signal(name))[0] > eps[name]


def _signal_row(signal: Signal, train: Scores, test: Scores, eps: float) -> dict[str, float]:
    u_tr, e_tr = train.values(signal)
    u_te, e_te = test.values(signal)
    labelled_test = np.isfinite(e_te).all() and len(e_te) > 2
    return {"threshold": eps, "rho_train": metrics.spearman(u_tr, e_tr),
            "rho_test": metrics.spearman(u_te, e_te) if labelled_test else np.nan,
            "selection_rate": metrics.selection_rate(u_te, eps), "train_rate": metrics.selection_rate(u_tr, eps),
            "mean_U_train": float(np.mean(u_tr)), "mean_U_test": float(np.mean(u_te)),
            "mean_err_train": float(np.mean(e_tr)), "mean_err_test": float(np.mean(e_te))}


def summarize(criterion: Criterion, train: Scores, test: Scores,
              eps: dict[str, float] | None = None) -> pd.DataFrame:
    """The summary table of :class:`Evaluation` (thresholds from the training set unless given)."""
    eps = thresholds(criterion, train) if eps is None else eps
    rows = {s.name: _signal_row(s, train, test, eps[s.name]) for s in criterion.signals}
    for rule in criterion.rules:
        rows[rule] = {"selection_rate": float(flagged(criterion, test, eps, rule).mean()),
                      "train_rate": float(flagged(criterion, train, eps, rule).mean())}
    return pd.DataFrame.from_dict(rows, orient="index")


def model_rmse(scores: Scores, data: FeaturizedSet, criterion: Criterion) -> dict[str, float]:
    """RMSE of the criterion's model: energy (meV/atom) and force components (meV/Å), as pacemaker reports."""
    predicted = criterion.predictions(data)
    if predicted is None or not data.labelled:
        return {"E_rmse": np.nan, "F_rmse": np.nan}
    energy, forces = predicted
    return {"E_rmse": 1e3 * float(np.sqrt(np.mean((energy - data.dm.energy_per_atom) ** 2))),
            "F_rmse": 1e3 * float(np.sqrt(np.mean((forces - data.dm.forces) ** 2)))}


def rmse_from_scores(scores: Scores) -> dict[str, float]:
    """RMSEs from a criterion's errors: ``E_rmse`` of ``err_E`` (meV/atom) and ``F_rmse`` per force component
    from ``err_F`` of the atoms (eq 5 norms: ``sqrt(mean(e^2) / 3)``, meV/Å); NaN without labels."""
    e_cfg = scores.configs["err_E"].to_numpy() if "err_E" in scores.configs else np.array([np.nan])
    e_atom = scores.atoms["err_F"].to_numpy() if "err_F" in scores.atoms else np.array([np.nan])
    return {"E_rmse": 1e3 * float(np.sqrt(np.mean(e_cfg**2))), "F_rmse": 1e3 * float(np.sqrt(np.mean(e_atom**2) / 3))}


def evaluate(criterion: Criterion, train: FeaturizedSet, test: FeaturizedSet, *,
             eps: dict[str, float] | None = None, fit: bool = True) -> Evaluation:
    """Fit ``criterion`` on ``train`` (unless ``fit=False``: already fitted) and judge it on ``test``."""
    if len(test.table) == 0:
        raise ValueError("The test set is empty: nothing to evaluate")
    if fit:
        criterion.fit(train)
    train_scores, test_scores = criterion.score(train), criterion.score(test)
    return Evaluation(criterion, train_scores, test_scores, summarize(criterion, train_scores, test_scores, eps),
                      model_rmse(train_scores, train, criterion), model_rmse(test_scores, test, criterion))


def rank_by(criterion: Criterion, data: FeaturizedSet, signal: str) -> np.ndarray:
    """A configuration score from any signal: the configuration value, or the largest atom value."""
    spec = criterion.signal(signal)
    scores = criterion.score(data)
    values = scores.values(spec)[0]
    return values if spec.level == "config" else per_structure_max(values, data.dm.n_atoms)
