"""How well an uncertainty tracks error: thresholds (eq 7), Spearman rho, selection rates, claims.

A claim record states one of the paper's claims, the paper's value, ours, a
verdict (``reproduced``, ``partly``, ``not reproduced``) and one line of why.
Notebooks write their records with :func:`write_claims`; the reproduction page
collects them with :func:`collect_claims`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from uqlib.ace import DesignMatrix
from uqlib.ensemble import Ensemble, ensemble_rmse, ensemble_uq

VERDICTS = ("reproduced", "partly", "not reproduced")


def tukey_threshold(training_errors: np.ndarray) -> float:
    """Eq 7: eps = Q3 + 1.5 IQR of the training errors (same units as the errors)."""
    errors = np.asarray(training_errors, dtype=float)
    if errors.size == 0 or not np.isfinite(errors).all():
        raise ValueError("A threshold needs a non-empty array of finite training errors")
    q1, q3 = np.percentile(errors, [25, 75])
    return float(q3 + 1.5 * (q3 - q1))


def spearman(uncertainty: np.ndarray, error: np.ndarray) -> float:
    """Spearman rank correlation between uncertainty and error (scipy)."""
    if len(uncertainty) < 3:
        raise ValueError(f"Spearman rho needs at least 3 points, got {len(uncertainty)}")
    return float(scipy.stats.spearmanr(uncertainty, error).statistic)


def selection_rate(uncertainty: np.ndarray, threshold: float) -> float:
    """Fraction flagged as novel: uncertainty above the threshold."""
    uncertainty = np.asarray(uncertainty)
    if uncertainty.size == 0:
        raise ValueError("A selection rate of an empty test set is undefined")
    return float(np.mean(uncertainty > threshold))


def confusion(uncertainty: np.ndarray, error: np.ndarray, threshold: float,
              error_threshold: float | None = None) -> dict[str, float]:
    """Fractions of the four cases of flagging (uncertainty > ``threshold``) against high error.

    High error means error > ``error_threshold`` (default: the same ``threshold``, as for an
    ensemble criterion; for gamma, pass 1 and the criterion's eq 7 error threshold).
    ``detected`` (high error, flagged), ``missed`` (high error, not flagged: over-confident),
    ``false alarm`` (low error, flagged: under-confident), ``quiet`` (low error, not flagged).
    """
    flagged = np.asarray(uncertainty) > threshold
    high = np.asarray(error) > (threshold if error_threshold is None else error_threshold)
    return {"detected": float(np.mean(high & flagged)), "missed": float(np.mean(high & ~flagged)),
            "false alarm": float(np.mean(~high & flagged)), "quiet": float(np.mean(~high & ~flagged))}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper checked against this compendium's numbers."""

    claim: str
    paper: str
    ours: str
    verdict: str
    why: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def verdict(holds: bool, partly: bool = False) -> str:
    """``reproduced`` if the claim holds, ``partly`` if it holds in part, else ``not reproduced``."""
    return VERDICTS[0] if holds else VERDICTS[1] if partly else VERDICTS[2]


def write_claims(directory: Path, notebook: str, claims: list[Claim]) -> Path:
    """Write a notebook's claim records to ``directory/claims.json``."""
    path = Path(directory) / "claims.json"
    path.write_text(json.dumps({"notebook": notebook, "claims": [asdict(c) for c in claims]}, indent=2))
    return path


def collect_claims(results_root: Path, notebooks: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """All claim records under ``results_root`` as one table, and the notebooks with none."""
    rows, missing = [], []
    for name in notebooks:
        path = Path(results_root) / name / "claims.json"
        if not path.is_file():
            missing.append(name)
            continue
        rows += [{"notebook": name, **c} for c in json.loads(path.read_text())["claims"]]
    return pd.DataFrame(rows, columns=["notebook", *Claim.__dataclass_fields__]), missing


# -- ensemble criteria ---------------------------------------------------------------------------

# criterion -> (table, uncertainty column, error column, factor to display units)
CRITERIA = {"CBE": ("configs", "U_E", "err_E"), "CBF": ("configs", "U_F", "err_F"), "ABF": ("atoms", "U_F", "err_F")}


def criterion_values(configs: pd.DataFrame, atoms: pd.DataFrame, criterion: str) -> tuple[np.ndarray, np.ndarray]:
    """(uncertainty, error) arrays of a criterion from the tables of :func:`uqlib.ensemble.ensemble_uq`."""
    table, u, e = CRITERIA[criterion]
    frame = configs if table == "configs" else atoms
    return frame[u].to_numpy(), frame[e].to_numpy()


def uq_summary(train: tuple[pd.DataFrame, pd.DataFrame], test: tuple[pd.DataFrame, pd.DataFrame],
               thresholds: dict[str, float] | None = None) -> pd.DataFrame:
    """Per criterion: threshold (eq 7 on training errors, or given), rho train/test, test selection rate.

    ``train`` and ``test`` are ``(configs, atoms)`` tables. Row ``CBE or CBF`` is the
    paper's configuration rule: novel when U_E > eps_E or U_F,cfg > eps_F,cfg.
    Values in eV/atom and eV/Å.
    """
    rows = {}
    for criterion in CRITERIA:
        u_tr, e_tr = criterion_values(*train, criterion)
        u_te, e_te = criterion_values(*test, criterion)
        eps = tukey_threshold(e_tr) if thresholds is None else thresholds[criterion]
        rows[criterion] = {
            "threshold": eps, "rho_train": spearman(u_tr, e_tr), "rho_test": spearman(u_te, e_te),
            "selection_rate": selection_rate(u_te, eps), "train_rate": selection_rate(u_tr, eps),
            "mean_U_test": float(np.mean(u_te)), "mean_err_test": float(np.mean(e_te)),
            "mean_U_train": float(np.mean(u_tr)), "mean_err_train": float(np.mean(e_tr)),
        }
    configs = test[0]
    either = (configs["U_E"] > rows["CBE"]["threshold"]) | (configs["U_F"] > rows["CBF"]["threshold"])
    rows["CBE or CBF"] = {"selection_rate": float(either.mean())}
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass
class EnsembleEvaluation:
    """An ensemble judged on a training and a test design matrix."""

    summary: pd.DataFrame  # uq_summary
    train: tuple[pd.DataFrame, pd.DataFrame]  # (configs, atoms) of ensemble_uq
    test: tuple[pd.DataFrame, pd.DataFrame]
    rmse_train: dict[str, float]  # meV/atom, meV/Å
    rmse_test: dict[str, float]


def evaluate_ensemble(train_dm: DesignMatrix, test_dm: DesignMatrix, ensemble: Ensemble,
                      thresholds: dict[str, float] | None = None) -> EnsembleEvaluation:
    """Uncertainties, errors, thresholds, rho, selection rates and RMSEs of an ensemble."""
    if test_dm.n_configs == 0:
        raise ValueError("The test set is empty: nothing to evaluate")
    train, test = ensemble_uq(train_dm, ensemble), ensemble_uq(test_dm, ensemble)
    return EnsembleEvaluation(uq_summary(train, test, thresholds), train, test,
                              ensemble_rmse(train_dm, ensemble), ensemble_rmse(test_dm, ensemble))
