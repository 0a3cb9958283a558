"""Scores beyond the paper: detection quality, calibration, a model-free baseline, cluster-wise thresholds.

- Detection: ROC-AUC and average precision (scikit-learn) of any novelty score
  (U_E, U_F,cfg, U_F,atom, gamma, clustered gamma, QUESTS) against labels of what is
  novel: known out-of-distribution membership, or an error above the training fence.
- Calibration of the ensemble as an error bar, per force component: the member spread
  (standard deviation, eV/Å) is rescaled by one factor fitted on held-out training data
  (uncertainty-toolbox), then scored on the test set by miscalibration area, Gaussian
  NLL and ENCE (expected normalised calibration error, Levi et al. 2022).
- QUESTS (Schwalbe-Koda et al. 2025): the differential entropy dH of each test atom's
  environment against the training environments, a score that needs no model.
- Cluster-wise ensemble thresholds: one eq 7 threshold per training cluster; a test
  structure is judged by the threshold of its nearest cluster in descriptor space.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import uncertainty_toolbox as uct
from sklearn.metrics import average_precision_score, roc_auc_score

from uqlib.data import per_atom
from uqlib.metrics import tukey_threshold


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
    """Expected normalised calibration error: mean over equal-count bins of the predicted std
    of |RMV - RMSE| / RMV (RMV: root mean predicted variance of the bin)."""
    order = np.argsort(predicted_std)
    bins = np.array_split(order, n_bins)
    terms = []
    for b in bins:
        if len(b) == 0:
            continue
        rmv = np.sqrt(np.mean(predicted_std[b] ** 2))
        rmse = np.sqrt(np.mean(error[b] ** 2))
        terms.append(abs(rmv - rmse) / rmv)
    return float(np.mean(terms))


def calibration(calibration_set: tuple[np.ndarray, np.ndarray, np.ndarray],
                test_set: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, float]:
    """Calibration of predicted standard deviations, before and after one fitted scale factor.

    Each set is ``(prediction, predicted_std, reference)`` of the same quantity (here force
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


# -- the model-free baseline ----------------------------------------------------------------------

def quests_descriptors(structures, *, k: int = 32, cutoff: float = 5.0) -> np.ndarray:
    """QUESTS descriptors of every atom of ``structures`` (a list of ase.Atoms), atoms in order."""
    from quests.descriptor import get_descriptors

    structures = list(structures)
    if not structures:
        raise ValueError("No structures to describe")
    return get_descriptors(structures, k=k, cutoff=cutoff)


def quests_delta_entropy(test: np.ndarray, train: np.ndarray, *, bandwidth: float = 0.015) -> np.ndarray:
    """dH of each test environment against the training environments (QUESTS, nats); larger is more novel."""
    from quests.entropy import delta_entropy

    return np.asarray(delta_entropy(test, train, h=bandwidth))


# -- cluster-wise ensemble thresholds -------------------------------------------------------------

def clusterwise_thresholds(training_errors: np.ndarray, training_clusters: np.ndarray) -> pd.Series:
    """Eq 7 on the training errors of each cluster separately: one threshold per cluster."""
    frame = pd.DataFrame({"error": training_errors, "cluster": training_clusters})
    return frame.groupby("cluster")["error"].apply(lambda e: tukey_threshold(e.to_numpy()))


def nearest_cluster(descriptors: np.ndarray, train_descriptors: np.ndarray, train_clusters: np.ndarray) -> np.ndarray:
    """The cluster of the nearest cluster centre (mean training descriptor) of each row."""
    names = np.unique(train_clusters)
    centres = np.stack([train_descriptors[train_clusters == n].mean(axis=0) for n in names])
    distance = np.linalg.norm(descriptors[:, None, :] - centres[None, :, :], axis=2)
    return names[np.argmin(distance, axis=1)]


# -- every criterion on one split ------------------------------------------------------------------

def split_for_scoring(train: pd.DataFrame, holdout_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a training table into the structures fitted on and a held-out, in-distribution part."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must lie in (0, 1), got {holdout_fraction}")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(train), bool)
    for _, group in train.groupby("subset", sort=False):  # every subset keeps fitted structures
        n_out = int(round(holdout_fraction * len(group)))
        held[rng.choice(group.index.to_numpy(), size=min(n_out, len(group) - 1), replace=False)] = True
    return train[~held].reset_index(drop=True), train[held].reset_index(drop=True)


def novelty_scores(fit: pd.DataFrame, holdout: pd.DataFrame, test: pd.DataFrame, preset: str, *,
                   n_members: int = 6, seed: int = 0, kappa: float = 0.01, alpha: float = 1e-8,
                   quests_bandwidth: float = 0.015, max_clusters: int = 6
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Every novelty score of held-out (in-distribution) and test structures and atoms.

    Fits a bootstrap ensemble, one model with its active set, a clustered active set
    (k-means on the fitted structures' descriptors) and the QUESTS baseline on ``fit``.
    Returns a structure table and an atom table, each with the scores (``CBE``, ``CBF``,
    ``gamma``, ``clustered gamma``, ``QUESTS``; atoms ``ABF`` instead of CBE/CBF), the
    ensemble-mean error (``err_F``, eV/Å; structures also ``err_E``, eV/atom), ``test``
    (True for test rows) and ``cluster`` (nearest training cluster); and a dict with the
    training thresholds, the clusters' merges and the calibration of the ensemble.
    """
    from uqlib import ace, clustering, dopt, ensemble

    dms = {name: ace.design_matrix(table, preset) for name, table in
           (("fit", fit), ("holdout", holdout), ("test", test))}
    ens = ensemble.fit_ensemble(dms["fit"], n_members, seed=seed, kappa=kappa, alpha=alpha)
    uq = {name: ensemble.ensemble_uq(dm, ens) for name, dm in dms.items()}
    model = ace.LinearACE(preset, kappa=kappa, alpha=alpha).fit(dms["fit"])
    projections = {name: dopt.atom_projections(table, preset) for name, table in
                   (("fit", fit), ("holdout", holdout), ("test", test))}
    keep = dopt.force_outlier_mask(model.predict_forces(dms["fit"]), dms["fit"].forces)
    active = dopt.build_active_set(projections["fit"], keep=keep)
    descriptors = clustering.structure_descriptors(dms["fit"])
    labels, _ = clustering.cluster_structures(descriptors, None, seed=seed, max_clusters=max_clusters)
    clustered = clustering.fit_clustered_active_set(
        projections["fit"], per_atom(labels, fit["n_atoms"]), keep=keep)
    quests = {name: quests_descriptors(table["atoms"]) for name, table in
              (("fit", fit), ("holdout", holdout), ("test", test))}

    # descriptors of new structures, standardised like the fitted ones, for the nearest cluster
    mean, std = dms["fit"].energy_rows.mean(axis=0), dms["fit"].energy_rows.std(axis=0)
    std[std == 0] = 1.0
    structures, atoms = [], []
    for name in ("holdout", "test"):
        configs, atom_table = uq[name]
        n_atoms = dms[name].n_atoms
        gamma = active.grade(projections[name])
        gamma_c = clustered.grade(projections[name])
        dh = quests_delta_entropy(quests[name], quests["fit"], bandwidth=quests_bandwidth)
        nearest = nearest_cluster((dms[name].energy_rows - mean) / std, descriptors, labels)
        structures.append(pd.DataFrame({
            "structure_id": configs["structure_id"], "test": name == "test", "cluster": nearest,
            "CBE": configs["U_E"], "CBF": configs["U_F"], "gamma": dopt.structure_grade(gamma, n_atoms),
            "clustered gamma": dopt.structure_grade(gamma_c, n_atoms),
            "QUESTS": dopt.structure_grade(dh, n_atoms), "err_E": configs["err_E"], "err_F": configs["err_F"]}))
        atoms.append(pd.DataFrame({
            "test": name == "test", "cluster": per_atom(nearest, n_atoms), "ABF": atom_table["U_F"],
            "gamma": gamma, "clustered gamma": gamma_c, "QUESTS": dh, "err_F": atom_table["err_F"]}))

    fit_configs, fit_atoms = uq["fit"]
    info = {
        "thresholds": {"CBE": tukey_threshold(fit_configs["err_E"]), "CBF": tukey_threshold(fit_configs["err_F"]),
                       "ABF": tukey_threshold(fit_atoms["err_F"])},
        "clusterwise_CBF": clusterwise_thresholds(fit_configs["err_F"].to_numpy(), labels),
        "clusters": len(set(labels)), "merged": clustered.merged, "outliers_excluded": active.n_excluded,
        "calibration": _force_calibration(dms, ens, seed),
    }
    return pd.concat(structures, ignore_index=True), pd.concat(atoms, ignore_index=True), info


def _force_calibration(dms: dict, ens, seed: int, max_points: int = 30000) -> dict[str, float]:
    """Calibration of the ensemble's force components: scale fitted on the held-out part, scored on test."""
    from uqlib import ace

    rng = np.random.default_rng(seed)
    sets = []
    for name in ("holdout", "test"):
        members = ace.predict_forces(dms[name], ens.coefficients).reshape(len(ens.coefficients), -1)
        pick = rng.choice(members.shape[1], size=min(max_points, members.shape[1]), replace=False)
        std = members[:, pick].std(axis=0, ddof=1)
        std = np.maximum(std, 1e-8)  # a symmetric atom has zero spread and zero force: keep it finite
        sets.append((members[:, pick].mean(axis=0), std, dms[name].forces.ravel()[pick]))
    return calibration(*sets)
