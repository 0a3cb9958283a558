"""How well an uncertainty tracks error: arrays in, numbers out.

Pure functions on numpy arrays (no other uqlib module is imported): the paper's
threshold (eq 7), Spearman's rho, selection rates and the four outcomes of flagging,
and, beyond the paper, detection scores (ROC-AUC, average precision), calibration of
error bars (miscalibration area, Gaussian NLL, ENCE) and cluster-wise thresholds.
Units are whatever the arrays carry (eV/atom, eV/Å); nothing is converted here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats
import uncertainty_toolbox as uct
from sklearn.metrics import average_precision_score, roc_auc_score

OUTCOMES = ("detected", "missed", "false alarm", "quiet")


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
    """Fractions of the four outcomes of flagging (uncertainty > ``threshold``) against high error.

    High error means error > ``error_threshold`` (default: the same ``threshold``, as for an
    ensemble criterion, whose uncertainty and error share a unit; for gamma pass 1 and the
    eq 7 threshold of the training errors). ``detected`` (high error, flagged), ``missed``
    (high error, not flagged: over-confident), ``false alarm`` (low error, flagged:
    under-confident), ``quiet`` (low error, not flagged).
    """
    flagged = np.asarray(uncertainty) > threshold
    high = np.asarray(error) > (threshold if error_threshold is None else error_threshold)
    cases = (high & flagged, high & ~flagged, ~high & flagged, ~high & ~flagged)
    return {name: float(np.mean(case)) for name, case in zip(OUTCOMES, cases, strict=True)}


def trend(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho of ``y`` against ``x`` over every point (for example a rate along the accuracy ladder).

    Unlike :func:`spearman` it accepts two points (rho is then +-1) and returns NaN for fewer.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return float("nan")
    return float(scipy.stats.spearmanr(x, y).statistic)


# -- detection and calibration (beyond the paper) --------------------------------------------------

def detection_scores(score: np.ndarray, is_novel: np.ndarray) -> dict[str, float]:
    """ROC-AUC and average precision of ``score`` for labels ``is_novel`` (NaN if one class is absent)."""
    score, is_novel = np.asarray(score, dtype=float), np.asarray(is_novel, dtype=bool)
    if len(score) != len(is_novel) or len(score) == 0:
        raise ValueError(f"Need as many labels as scores, and some: {len(score)} scores, {len(is_novel)} labels")
    if is_novel.all() or not is_novel.any():
        return {"roc_auc": float("nan"), "average_precision": float("nan"), "positives": float(is_novel.mean())}
    return {"roc_auc": float(roc_auc_score(is_novel, score)),
            "average_precision": float(average_precision_score(is_novel, score)),
            "positives": float(is_novel.mean())}


def ence(predicted_std: np.ndarray, error: np.ndarray, n_bins: int = 20) -> float:
    """Expected normalised calibration error (Levi et al. 2022).

    The mean over equal-count bins of the predicted std of |RMV - RMSE| / RMV, with RMV
    the root mean predicted variance of the bin.
    """
    predicted_std, error = np.asarray(predicted_std, dtype=float), np.asarray(error, dtype=float)
    terms = []
    for members in np.array_split(np.argsort(predicted_std), n_bins):
        if len(members):
            rmv = np.sqrt(np.mean(predicted_std[members] ** 2))
            terms.append(abs(rmv - np.sqrt(np.mean(error[members] ** 2))) / rmv)
    return float(np.mean(terms))


def calibration(calibration_set: tuple[np.ndarray, np.ndarray, np.ndarray],
                test_set: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, float]:
    """Calibration of predicted standard deviations, before and after one fitted scale factor.

    Each set is ``(prediction, predicted_std, reference)`` of one quantity (for example force
    components, eV/Å). The scale is fitted on ``calibration_set`` by uncertainty-toolbox
    (minimum miscalibration area) and applied to ``test_set``.
    """
    pred_c, std_c, ref_c = (np.asarray(a, dtype=float) for a in calibration_set)
    pred_t, std_t, ref_t = (np.asarray(a, dtype=float) for a in test_set)
    if (std_c <= 0).any() or (std_t <= 0).any():
        raise ValueError("Predicted standard deviations must be positive")
    scale = float(uct.recalibration.optimize_recalibration_ratio(pred_c, std_c, ref_c, criterion="miscal"))
    out = {"scale": scale}
    for label, s in (("raw", 1.0), ("recalibrated", scale)):
        out[f"miscalibration_area_{label}"] = float(uct.miscalibration_area(pred_t, s * std_t, ref_t))
        out[f"nll_{label}"] = float(uct.nll_gaussian(pred_t, s * std_t, ref_t))
        out[f"ence_{label}"] = ence(s * std_t, pred_t - ref_t)
    return out


# -- groups of structures --------------------------------------------------------------------------

def clusterwise_thresholds(training_errors: np.ndarray, training_clusters: np.ndarray) -> pd.Series:
    """Eq 7 on the training errors of each cluster separately: one threshold per cluster."""
    frame = pd.DataFrame({"error": training_errors, "cluster": training_clusters})
    return frame.groupby("cluster")["error"].apply(lambda e: tukey_threshold(e.to_numpy()))


def nearest_centroid(points: np.ndarray, reference: np.ndarray, reference_labels: np.ndarray) -> np.ndarray:
    """For each row of ``points``, the label whose centroid (mean of its ``reference`` rows) is nearest."""
    names = np.unique(reference_labels)
    centres = np.stack([reference[reference_labels == n].mean(axis=0) for n in names])
    distance = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2)
    return names[np.argmin(distance, axis=1)]


def centroid_distances(descriptors: np.ndarray, labels: np.ndarray, reference: np.ndarray) -> pd.Series:
    """Distance of each label's centroid from the centroid of the ``reference`` rows (a boolean mask).

    In units of the mean distance of the reference rows from their own centroid (so 1 is
    "as far as a typical reference structure").
    """
    labels, reference = np.asarray(labels), np.asarray(reference, dtype=bool)
    if not reference.any():
        raise ValueError("The reference mask selects no rows")
    centre = descriptors[reference].mean(axis=0)
    spread = np.linalg.norm(descriptors[reference] - centre, axis=1).mean()
    return pd.Series({name: float(np.linalg.norm(descriptors[labels == name].mean(axis=0) - centre) / spread)
                      for name in dict.fromkeys(labels)}, name="centroid distance")
