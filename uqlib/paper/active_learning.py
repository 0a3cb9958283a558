"""A simulated active-learning race: which novelty criterion buys the most accuracy per label?

Start from a training set, keep a pool of unlabelled structures (whose reference labels
the simulation reveals only when a structure is picked) and a held-out test set. Each
round, a criterion ranks the pool, the top ``budget`` structures join the training set,
the model is refitted, and its test RMSE is recorded. The design matrix, B projections
and QUESTS descriptors of all structures are computed once; a round costs fits and
scores only. Every informed criterion is a :class:`uqlib.criteria.Criterion`, fitted on
the current training set and read through one configuration signal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from uqlib import ace, metrics
from uqlib.criteria import (
    ClusteredDOptimality,
    Criterion,
    DOptimality,
    EnsembleCriterion,
    FeaturizedSet,
    QuestsEntropy,
    featurize,
)
from uqlib.evaluation import rank_by
from uqlib.paper import claims
from uqlib.progress import progress_bar
from uqlib.tables import holdout_split, per_structure_max, subsample

CRITERIA = ("random", "CBF", "gamma", "clustered gamma", "QUESTS")


def informed_criteria(*, n_members: int = 6, kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA,
                      quests_bandwidth: float = 0.015, outliers: str = "per-cluster"
                      ) -> dict[str, tuple[Callable[[int], Criterion], str]]:
    """The race's informed criteria: name -> (a factory taking a seed, the configuration signal ranked by)."""
    return {
        "CBF": (lambda seed: EnsembleCriterion(n_members, construction=claims.PAPER_CONSTRUCTION,
                                                     seed=seed, kappa=kappa, alpha=alpha), "CBF"),
        "gamma": (lambda seed: DOptimality(kappa=kappa, alpha=alpha), "gamma_cfg"),
        "clustered gamma": (lambda seed: ClusteredDOptimality("kmeans", seed=seed, max_clusters=6, outliers=outliers,
                                                              kappa=kappa, alpha=alpha), "gamma_cfg"),
        "QUESTS": (lambda seed: QuestsEntropy(bandwidth=quests_bandwidth, kappa=kappa, alpha=alpha), "dH_cfg"),
    }


class Campaign:
    """Everything a race needs, computed once: the featurized start + pool + test structures."""

    def __init__(self, start: pd.DataFrame, pool: pd.DataFrame, test: pd.DataFrame, preset: str, *,
                 kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA, n_members: int = 6,
                 quests_bandwidth: float = 0.015) -> None:
        if len(pool) == 0 or len(test) == 0:
            raise ValueError("The pool and the test set must not be empty")
        self.preset, self.kappa, self.alpha = preset, kappa, alpha
        self.data: FeaturizedSet = featurize(pd.concat([start, pool, test], ignore_index=True), preset)
        self.criteria = informed_criteria(n_members=n_members, kappa=kappa, alpha=alpha,
                                          quests_bandwidth=quests_bandwidth)
        self.start = np.arange(len(start))
        self.pool = np.arange(len(start), len(start) + len(pool))
        self.test = np.arange(len(start) + len(pool), len(start) + len(pool) + len(test))

    def fit(self, train: np.ndarray) -> ace.LinearACE:
        return ace.LinearACE(self.preset, kappa=self.kappa, alpha=self.alpha).fit(self.data.dm.subset(train))

    def scores(self, criterion: str, train: np.ndarray, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Novelty score of each candidate structure under ``criterion`` (larger: pick first)."""
        if criterion == "random":
            return rng.random(len(candidates))
        if criterion not in self.criteria:
            raise ValueError(f"Unknown criterion {criterion!r}; choose one of {CRITERIA}")
        make, signal = self.criteria[criterion]
        fitted = make(int(rng.integers(2**31))).fit(self.data.subset(train))
        return rank_by(fitted, self.data.subset(candidates), signal)

    def errors(self, model: ace.LinearACE, structures: np.ndarray) -> np.ndarray:
        """Largest atomic force error (eq 6, eV/Å) of each structure under ``model``."""
        dm = self.data.dm.subset(structures)
        return per_structure_max(np.linalg.norm(model.predict_forces(dm) - dm.forces, axis=1), dm.n_atoms)

    def round_zero_rho(self, seed: int) -> pd.DataFrame:
        """How well each criterion's score ranks the pool's errors before any pick (Spearman rho)."""
        model, rng = self.fit(self.start), np.random.default_rng(seed)
        errors = self.errors(model, self.pool)
        return pd.DataFrame([{"criterion": c, "seed": seed,
                              "rho": metrics.spearman(self.scores(c, self.start, self.pool, rng), errors)}
                             for c in CRITERIA])

    def race(self, criterion: str, *, budget: int, rounds: int, seed: int) -> pd.DataFrame:
        """RMSE on the test set after each round (meV/atom, meV/Å), with the labels used so far."""
        if budget < 1 or rounds < 1:
            raise ValueError(f"budget and rounds must be at least 1, got {budget}, {rounds}")
        rng = np.random.default_rng(seed)
        train, candidates = self.start.copy(), self.pool.copy()
        test_dm, rows = self.data.dm.subset(self.test), []
        for r in progress_bar(range(rounds + 1), desc=f"race {criterion}", unit="round"):
            model = self.fit(train)
            rows.append({"criterion": criterion, "seed": seed, "round": r, "labels": len(train) - len(self.start),
                         **model.rmse(test_dm)})
            if r == rounds or len(candidates) == 0:
                break
            order = np.argsort(-self.scores(criterion, train, candidates, rng), kind="stable")
            picked = candidates[order[:budget]]
            train = np.concatenate([train, picked])
            candidates = np.setdiff1d(candidates, picked)
        return pd.DataFrame(rows)


def labels_to_reach(curves: pd.DataFrame, target: float, column: str = "F_rmse") -> pd.Series:
    """Fewest labels at which each criterion's mean curve (over seeds) reaches ``target`` (NaN: never)."""
    mean = curves.groupby(["criterion", "labels"])[column].mean().reset_index()
    reached = mean[mean[column] <= target]
    return reached.groupby("criterion")["labels"].min().reindex(mean["criterion"].unique())


def race_table(curves: pd.DataFrame, round_zero: pd.DataFrame) -> pd.DataFrame:
    """Per start and criterion: the target (random's final F_RMSE), labels to reach it, final F_RMSE, round-0 rho."""
    rows = []
    for start, part in curves.groupby("start", sort=False):
        final = part[part["labels"] == part["labels"].max()].groupby("criterion")["F_rmse"].mean()
        reach = labels_to_reach(part, final["random"])
        rho = round_zero[round_zero["start"] == start].groupby("criterion")["rho"].mean()
        rows += [{"start": start, "criterion": c, "target F_RMSE (meV/Å)": final["random"],
                  "labels to target": reach.get(c), "final F_RMSE (meV/Å)": final[c],
                  "round-0 rho(score, error)": rho.get(c)} for c in CRITERIA]
    return pd.DataFrame(rows)


def run_races(starts: dict[str, pd.DataFrame], candidates: pd.DataFrame, preset: str, *, per_subset: int | None,
              test_fraction: float, budget: int, rounds: int, seeds: list[int], **campaign_options
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every criterion's race from every start, once per seed; returns (curves, round-0 rho).

    For each seed the candidate structures are subsampled (``per_subset`` per subset) and
    split into the pool and the test set (``test_fraction`` held out); the seed also drives
    the random picks and the criteria.
    """
    curves, round_zero = [], []
    for start_name, start in starts.items():
        for seed in seeds:
            pool, test = holdout_split(subsample(candidates, per_subset, seed), test_fraction, seed)
            campaign = Campaign(start, pool, test, preset, **campaign_options)
            round_zero.append(campaign.round_zero_rho(seed).assign(start=start_name))
            curves += [campaign.race(c, budget=budget, rounds=rounds, seed=seed).assign(start=start_name)
                       for c in CRITERIA]
    return pd.concat(curves, ignore_index=True), pd.concat(round_zero, ignore_index=True)


def mean_curves(curves: pd.DataFrame, start: str, column: str = "F_rmse") -> dict[str, object]:
    """One start's learning curves for :func:`uqlib.paper.plots.metric_vs_x`: mean and standard deviation over seeds.

    Returns ``x`` (labels used, sorted), ``series`` and ``spread`` (criterion -> array over ``x``
    of the mean and the standard deviation of ``column``, e.g. F_rmse in meV/Å; a single
    seed has zero spread), criteria in the order of :data:`CRITERIA`.
    """
    part = curves[curves["start"] == start]
    if part.empty:
        raise ValueError(f"No curves for start {start!r}; starts: {sorted(curves['start'].unique())}")
    stats = part.groupby(["criterion", "labels"])[column].agg(["mean", "std"]).fillna(0.0)
    x = np.sort(part["labels"].unique())
    present = [c for c in CRITERIA if c in stats.index.get_level_values("criterion")]
    return {"x": x, "series": {c: stats.loc[c, "mean"].reindex(x).to_numpy() for c in present},
            "spread": {c: stats.loc[c, "std"].reindex(x).to_numpy() for c in present}}


def race_findings(curves: pd.DataFrame) -> tuple[pd.DataFrame, list[claims.Finding]]:
    """Does each criterion end below random picking? A paired test across seeds, per start.

    :func:`uqlib.paper.claims.race_comparison` on the final test F_RMSE of every seed; returns its
    tables (one ``start`` column) and its findings.
    """
    tables, found = [], []
    for start, part in curves.groupby("start", sort=False):
        final = part[part["labels"] == part["labels"].max()].sort_values("seed")
        table, start_findings = claims.race_comparison(
            {c: final[final["criterion"] == c]["F_rmse"].to_numpy() for c in CRITERIA}, label=f"start {start}")
        tables.append(table.assign(start=start))
        found += start_findings
    return pd.concat(tables, ignore_index=True), found
