"""The protocol behind a verdict: member constructions x seeds x test compositions (issue 21).

A verdict of the paper's ensemble claims depends on how the members were built, on the
draw (seed) and on what the test set holds. This module runs a study over all three and
turns its tables into ONE record per claim:

- the **headline** verdict is the paper's construction (``"pacemaker"``) judged on the
  seed means of the tables on the headline test set (C+E for the A+B split);
- ``verdicts_by_construction`` judges every construction the same way (seed means), and
  ``robustness`` says whether they agree;
- ``composition`` judges the headline construction on each test composition (C alone,
  E alone, C+E), and ``composition_dependent`` says whether they agree;
- ``seeds_holding`` of ``n_seeds``: in how many single seeds the rule gives "reproduced".

Seed means are taken of the tables (rho, rates, thresholds, RMSEs per preset), so a
trend rule is judged on seed means and never on one draw. Intervals of those means are
:func:`uqlib.paper.claims.seed_table`'s 95 % t-intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from uqlib import ace
from uqlib.criteria import EnsembleCriterion, FeaturizedSet
from uqlib.evaluation import Evaluation, evaluate
from uqlib.paper import claims, studies
from uqlib.progress import progress_bar

MEAN = claims.SEED_MEAN  # the seed key of a verdict judged on seed means
COMPOSITIONS: dict[str, tuple[str, ...]] = {"C": ("C",), "E": ("E",), "C+E": ("C", "E")}  # test set -> subsets
KEYS = ["construction", "seed", "composition", "preset"]

ClaimsFromTables = Callable[[pd.DataFrame, pd.DataFrame], list[claims.ClaimRecord]]


@dataclass
class LadderProtocol:
    """Ensembles along the ladder under every (construction, seed), judged on every test composition.

    ``tables``: one row per (construction, seed, composition, preset) with the columns of
    :func:`uqlib.paper.studies.ladder_table`; ``fixed_rates``: the same keys with the rates of
    :func:`uqlib.paper.studies.fixed_threshold_rates` (%). ``figures``: the evaluations of the
    headline construction's first seed on the whole test set, for the page's figures.
    """

    tables: pd.DataFrame
    fixed_rates: pd.DataFrame
    figures: dict[str, Evaluation]
    headline_construction: str
    headline_composition: str

    @property
    def constructions(self) -> list[str]:
        return list(dict.fromkeys(self.tables["construction"]))

    @property
    def seeds(self) -> list[int]:
        return sorted(set(self.tables["seed"]))

    @property
    def compositions(self) -> list[str]:
        return list(dict.fromkeys(self.tables["composition"]))

    def mean_tables(self, construction: str, composition: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The seed means of the ladder table and of the fixed-threshold rates (index: preset, ladder order)."""
        return (_seed_mean(self.tables, construction, composition),
                _seed_mean(self.fixed_rates, construction, composition))

    def seed_tables(self, construction: str, composition: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The ladder table and fixed rates of one seed."""
        return (_one_seed(self.tables, construction, composition, seed),
                _one_seed(self.fixed_rates, construction, composition, seed))

    def intervals(self, columns: Sequence[str]) -> pd.DataFrame:
        """Seed mean and 95 % interval of ``columns`` per (construction, composition, preset)."""
        return claims.seed_table(self.tables, list(columns), by=["construction", "composition", "preset"])


def _select(frame: pd.DataFrame, construction: str, composition: str) -> pd.DataFrame:
    chosen = frame[(frame["construction"] == construction) & (frame["composition"] == composition)]
    if chosen.empty:
        raise ValueError(f"No runs for construction {construction!r} on test set {composition!r}")
    return chosen


def _seed_mean(frame: pd.DataFrame, construction: str, composition: str) -> pd.DataFrame:
    chosen = _select(frame, construction, composition)
    order = list(dict.fromkeys(chosen["preset"]))
    values = chosen.drop(columns=["construction", "seed", "composition"])
    return values.groupby("preset", sort=False).mean().loc[order]


def _one_seed(frame: pd.DataFrame, construction: str, composition: str, seed: int) -> pd.DataFrame:
    chosen = _select(frame, construction, composition)
    chosen = chosen[chosen["seed"] == seed]
    return chosen.drop(columns=["construction", "seed", "composition"]).set_index("preset")


def _long(table: pd.DataFrame, construction: str, seed: int, composition: str) -> pd.DataFrame:
    return table.rename_axis("preset").reset_index().assign(construction=construction, seed=seed,
                                                           composition=composition)


def run_ensemble_ladder(train: FeaturizedSet, test: FeaturizedSet, presets: Sequence[str], *,
                        constructions: Sequence[str] = claims.CONSTRUCTIONS, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                        n_members: int = 6, kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA,
                        compositions: Mapping[str, tuple[str, ...]] = COMPOSITIONS,
                        headline_composition: str = "C+E", progress: bool = True,
                        **construction_options) -> LadderProtocol:
    """K-member ensembles on ``train`` for every preset, construction and seed, judged on ``test``.

    ``train`` and ``test`` are featurized at the largest preset (smaller ones are column
    selections). Each fit is judged once on the whole test set; the compositions are the
    same fit judged on their subsets (:meth:`uqlib.evaluation.Evaluation.on_test_subsets`).
    ``construction_options`` go to every :class:`~uqlib.criteria.EnsembleCriterion`
    (e.g. ``sigma``, ``maxiter`` of the pacemaker construction).
    """
    if not constructions or not seeds:
        raise ValueError("Give at least one construction and one seed")
    if headline_composition not in compositions:
        raise ValueError(f"headline_composition {headline_composition!r} is not one of {list(compositions)}")
    held = set(test.table["subset"])
    compositions = {name: subsets for name, subsets in compositions.items() if set(subsets) <= held}
    tables, rates, figures = [], [], {}
    grid = [(c, s) for c in constructions for s in seeds]
    for construction, seed in progress_bar(grid, desc="constructions x seeds", disable=not progress):
        runs = {preset: evaluate(EnsembleCriterion(n_members, construction=construction, seed=seed, kappa=kappa,
                                                   alpha=alpha, **construction_options),
                                 train.select(preset), test.select(preset))
                for preset in presets}
        if construction == constructions[0] and seed == seeds[0]:
            figures = runs
        for name, subsets in compositions.items():
            judged = {p: ev.on_test_subsets(list(subsets)) for p, ev in runs.items()}
            tables.append(_long(studies.ladder_table(judged), construction, seed, name))
            rates.append(_long(studies.fixed_threshold_rates(judged)[0], construction, seed, name))
    return LadderProtocol(pd.concat(tables, ignore_index=True), pd.concat(rates, ignore_index=True), figures,
                          constructions[0], headline_composition)


def judge(protocol: LadderProtocol, claims_from_tables: ClaimsFromTables = studies.ensemble_ladder_claims
          ) -> list[claims.ClaimRecord]:
    """One record per claim that ``claims_from_tables`` judges, over the whole protocol (module docstring)."""
    cells = list(dict.fromkeys(zip(protocol.tables["construction"], protocol.tables["composition"], strict=True)))
    if (protocol.headline_construction, protocol.headline_composition) not in cells:
        raise ValueError(f"The headline ({protocol.headline_construction}, test set "
                         f"{protocol.headline_composition}) was not run; the protocol holds {cells}")
    records: dict[tuple[str, int | str, str], list[claims.ClaimRecord]] = {}
    for construction, composition in cells:
        means = protocol.mean_tables(construction, composition)
        records[(construction, MEAN, composition)] = claims_from_tables(*means)
    headline = _select(protocol.tables, protocol.headline_construction, protocol.headline_composition)
    for seed in sorted(set(headline["seed"])):
        key = (protocol.headline_construction, seed, protocol.headline_composition)
        records[key] = claims_from_tables(*protocol.seed_tables(key[0], key[2], seed))
    return claims.merge_protocol_records(records, protocol.headline_construction, protocol.headline_composition)


# -- the ensemble-size sweep (Fig S2): repeats are the seeds -----------------------------------------------------

def run_size_sweep(train: FeaturizedSet, test: FeaturizedSet, member_counts: Sequence[int], *,
                   n_repeats: int = 5, constructions: Sequence[str] = claims.CONSTRUCTIONS, seed: int = 0,
                   kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA,
                   compositions: Mapping[str, tuple[str, ...]] = COMPOSITIONS, progress: bool = True,
                   **construction_options) -> pd.DataFrame:
    """:func:`uqlib.paper.studies.ensemble_size_sweep` under every construction, on every test composition.

    Per construction, one pool of ``max(K) * n_repeats`` members (seeded with ``seed``); repeat *r*
    uses its own disjoint members, so repeats are independent draws. Tidy: one row per
    (construction, composition, repeat, K, signal or rule).
    """
    held = set(test.table["subset"])
    compositions = {name: subsets for name, subsets in compositions.items() if set(subsets) <= held}
    frames = []
    for construction in progress_bar(constructions, desc="constructions", disable=not progress):
        pool = EnsembleCriterion(max(member_counts) * n_repeats, construction=construction, seed=seed, kappa=kappa,
                                 alpha=alpha, **construction_options).fit(train)
        sweep = studies.ensemble_size_sweep(pool, train, test, sorted(member_counts), n_repeats, compositions)
        frames.append(sweep.assign(construction=construction))  # scored once, judged on every composition
    return pd.concat(frames, ignore_index=True)


def judge_size_sweep(sweep: pd.DataFrame, headline_construction: str = claims.CONSTRUCTIONS[0],
                     headline_composition: str = "C+E") -> list[claims.ClaimRecord]:
    """P12-P14, one record each: means over repeats per construction and composition; single repeats as seeds."""
    records: dict[tuple[str, int | str, str], list[claims.ClaimRecord]] = {}
    for (construction, composition), part in sweep.groupby(["construction", "composition"], sort=False):
        rows = part.drop(columns=["construction", "composition"])
        records[(construction, MEAN, composition)] = studies.ensemble_size_claims(rows)
        if (construction, composition) == (headline_construction, headline_composition):
            for repeat, single in rows.groupby("repeat"):
                records[(construction, int(repeat), composition)] = studies.ensemble_size_claims(single)
    return claims.merge_protocol_records(records, headline_construction, headline_composition)
