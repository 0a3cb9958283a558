"""A simulated active-learning race: which novelty criterion buys the most accuracy per label?

Start from a training set, keep a pool of unlabelled structures (whose reference labels
the simulation reveals only when a structure is picked) and a held-out test set. Each
round, a criterion ranks the pool, the top ``budget`` structures join the training set,
the model is refitted, and its test RMSE is recorded. Design matrices, B projections
and QUESTS descriptors of all structures are computed once; a round costs fits and
scores only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uqlib import ace, clustering, dopt, ensemble
from uqlib.data import per_atom, per_structure_max
from uqlib.scoring import quests_delta_entropy, quests_descriptors

CRITERIA = ("random", "CBF", "gamma", "clustered gamma", "QUESTS")


class Campaign:
    """Everything a race needs, computed once: one design matrix and projections of start + pool + test."""

    def __init__(self, start: pd.DataFrame, pool: pd.DataFrame, test: pd.DataFrame, preset: str, *,
                 kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA, n_members: int = 6,
                 quests_bandwidth: float = 0.015) -> None:
        if len(pool) == 0 or len(test) == 0:
            raise ValueError("The pool and the test set must not be empty")
        table = pd.concat([start, pool, test], ignore_index=True)
        self.preset, self.kappa, self.alpha, self.n_members = preset, kappa, alpha, n_members
        self.bandwidth = quests_bandwidth
        self.dm = ace.design_matrix(table, preset)
        self.projections = dopt.atom_projections(table, preset)
        self.quests = quests_descriptors(table["atoms"])
        self.start = np.arange(len(start))
        self.pool = np.arange(len(start), len(start) + len(pool))
        self.test = np.arange(len(start) + len(pool), len(table))
        bounds = np.concatenate([[0], np.cumsum(self.dm.n_atoms)])
        self._atoms = [np.arange(bounds[s], bounds[s + 1]) for s in range(len(table))]

    def atoms_of(self, structures: np.ndarray) -> np.ndarray:
        return np.concatenate([self._atoms[s] for s in structures])

    def fit(self, train: np.ndarray) -> ace.LinearACE:
        return ace.LinearACE(self.preset, kappa=self.kappa, alpha=self.alpha).fit(self.dm.subset(train))

    def scores(self, criterion: str, train: np.ndarray, candidates: np.ndarray, model: ace.LinearACE,
               rng: np.random.Generator) -> np.ndarray:
        """Novelty score of each candidate structure under ``criterion`` (larger: pick first)."""
        if criterion == "random":
            return rng.random(len(candidates))
        n_atoms = self.dm.n_atoms[candidates]
        if criterion == "CBF":
            members = ensemble.fit_ensemble(self.dm.subset(train), self.n_members, seed=int(rng.integers(2**31)),
                                            kappa=self.kappa, alpha=self.alpha, progress=False)
            configs, _ = ensemble.ensemble_uq(self.dm.subset(candidates), members)
            return configs["U_F"].to_numpy()
        train_atoms, cand_atoms = self.atoms_of(train), self.atoms_of(candidates)
        if criterion == "QUESTS":
            dh = quests_delta_entropy(self.quests[cand_atoms], self.quests[train_atoms], bandwidth=self.bandwidth)
            return per_structure_max(dh, n_atoms)
        train_dm = self.dm.subset(train)
        keep = dopt.force_outlier_mask(model.predict_forces(train_dm), train_dm.forces)
        if criterion == "gamma":
            grader = dopt.build_active_set(self.projections[train_atoms], keep=keep)
        elif criterion == "clustered gamma":
            labels, _ = clustering.cluster_structures(clustering.structure_descriptors(train_dm), None,
                                                      seed=int(rng.integers(2**31)), max_clusters=6)
            grader = clustering.fit_clustered_active_set(self.projections[train_atoms],
                                                         per_atom(labels, train_dm.n_atoms), keep=keep)
        else:
            raise ValueError(f"Unknown criterion {criterion!r}; choose one of {CRITERIA}")
        return per_structure_max(grader.grade(self.projections[cand_atoms]), n_atoms)

    def race(self, criterion: str, *, budget: int, rounds: int, seed: int) -> pd.DataFrame:
        """RMSE on the test set after each round (meV/atom, meV/Å), with the labels used so far."""
        if budget < 1 or rounds < 1:
            raise ValueError(f"budget and rounds must be at least 1, got {budget}, {rounds}")
        rng = np.random.default_rng(seed)
        train, candidates = self.start.copy(), self.pool.copy()
        test_dm, rows = self.dm.subset(self.test), []
        for r in range(rounds + 1):
            model = self.fit(train)
            rows.append({"criterion": criterion, "seed": seed, "round": r, "labels": len(train) - len(self.start),
                         **model.rmse(test_dm)})
            if r == rounds or len(candidates) == 0:
                break
            order = np.argsort(-self.scores(criterion, train, candidates, model, rng), kind="stable")
            picked = candidates[order[:budget]]
            train = np.concatenate([train, picked])
            candidates = np.setdiff1d(candidates, picked)
        return pd.DataFrame(rows)


def labels_to_reach(curves: pd.DataFrame, target: float, column: str = "F_rmse") -> pd.Series:
    """Fewest labels at which each criterion's mean curve (over seeds) reaches ``target`` (NaN: never)."""
    mean = curves.groupby(["criterion", "labels"])[column].mean().reset_index()
    reached = mean[mean[column] <= target]
    return reached.groupby("criterion")["labels"].min().reindex(mean["criterion"].unique())
