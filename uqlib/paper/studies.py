"""The paper's studies: criteria judged the paper's way along the accuracy ladder, over K, on A+D.

Each study runs :func:`uqlib.evaluation.evaluate` (a criterion fitted on a training set
and judged on a test set) over presets, ensemble sizes or splits, returns tidy tables
that notebooks plot, and turns them into claim records (:mod:`uqlib.paper.claims`).
Uncertainties, errors and thresholds are in eV/atom and eV/Å; tables meant for reading
say when they show meV.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uqlib import ace, ensemble, metrics, tables
from uqlib.criteria import Criterion, DOptimality, EnsembleCriterion, FeaturizedSet, featurize
from uqlib.evaluation import Evaluation, evaluate, summarize
from uqlib.exceptions import ActiveSetError
from uqlib.paper import claims, data

# -- tables across the accuracy ladder ---------------------------------------------------------------

def evaluate_ladder(make_criterion: Callable[[], Criterion], train: pd.DataFrame, test: pd.DataFrame,
                    presets: list[str]) -> dict[str, Evaluation]:
    """One criterion per basis preset, fitted on ``train`` and judged on ``test`` (structure tables)."""
    train_set, test_set = _featurize_largest(train, test, presets)  # read once, then column selections
    return {preset: evaluate(make_criterion(), train_set.select(preset), test_set.select(preset))
            for preset in presets}


def _featurize_largest(train: pd.DataFrame, test: pd.DataFrame, presets: list[str]
                       ) -> tuple[FeaturizedSet, FeaturizedSet]:
    largest = max(presets, key=lambda name: ace.get_preset(name).n_functions)
    return featurize(train, largest), featurize(test, largest)


# the subset whose zero-force cells sit at U ~ e ~ 0 (2-atom strained BCC cells: forces vanish by symmetry)
ZERO_FORCE_SUBSET = "A"
ATOMIC_FENCE = "CBF atomic fence"  # column stem of CBF with eps_F,cfg = eq 7 on the training e_F,atom


def training_rho_without(ev: Evaluation, signal: str, subset: str = ZERO_FORCE_SUBSET) -> float:
    """Training Spearman rho of a signal over the training rows NOT from ``subset``.

    Subset A's 121 two-atom cells have zero forces by symmetry, so their force uncertainty
    and error both sit near 0 and add a block of concordant pairs at the origin; rho
    without them says how much of the training rho they make (issue 21, item 5). Equals
    the full training rho when no row is from ``subset``.
    """
    spec = ev.criterion.signal(signal)
    u, e = ev.values("train", signal)
    keep = ev.train.level(spec.level)["subset"].to_numpy() != subset
    return metrics.spearman(u[keep], e[keep]) if keep.sum() > 2 else np.nan


def cbf_atomic_fence(ev: Evaluation) -> tuple[float, float]:
    """The second reading of eps_F,cfg (P10, :data:`uqlib.paper.claims.EPS_F_CFG_READINGS`): eq 7 on the
    TRAINING ATOMIC force errors e_F,atom (eq 5, eV/Å), and the share of test configurations whose
    U_F,cfg (eq 3, the max over a configuration's atoms of U_F,atom) lies above it.

    Returns ``(eps, test selection rate)``; the first reading, eq 7 on the configurations'
    e_F,cfg (eq 6), is the summary's CBF threshold.
    """
    _, atomic_errors = ev.values("train", "ABF")
    eps = metrics.tukey_threshold(atomic_errors)
    u_cfg, _ = ev.values("test", "CBF")
    return eps, metrics.selection_rate(u_cfg, eps)


def ladder_table(evaluations: dict[str, Evaluation]) -> pd.DataFrame:
    """One row per preset: model RMSEs, and per signal rho (train, test), threshold and test rate.

    RMSEs in meV/atom and meV/Å, thresholds in meV/atom or meV/Å (gamma: as is), rates in %.
    For criteria with CBF and ABF (ensembles) also: CBF's threshold and test rate under the
    atomic reading of eps_F,cfg (``eps CBF atomic fence``, ``rate CBF atomic fence (%)``,
    :func:`cbf_atomic_fence`), and each signal's training rho without subset A
    (``rho <signal> train without A``, :func:`training_rho_without`).
    """
    rows = []
    for preset, ev in evaluations.items():
        row = {"preset": preset, "F_RMSE train": ev.rmse_train["F_rmse"], "E_RMSE train": ev.rmse_train["E_rmse"],
               "F_RMSE test": ev.rmse_test["F_rmse"], "E_RMSE test": ev.rmse_test["E_rmse"]}
        names = [signal.name for signal in ev.criterion.signals]
        for signal in ev.criterion.signals:
            s = ev.summary.loc[signal.name]
            scale = 1e3 if signal.threshold is None else 1.0
            row |= {f"rho {signal.name} train": s.rho_train, f"rho {signal.name} test": s.rho_test,
                    f"eps {signal.name}": scale * s.threshold, f"rate {signal.name} (%)": 100 * s.selection_rate}
            if "subset" in ev.train.level(signal.level):
                row[f"rho {signal.name} train without {ZERO_FORCE_SUBSET}"] = training_rho_without(ev, signal.name)
        for rule in ev.criterion.rules:
            row[f"rate {rule} (%)"] = 100 * ev.summary.loc[rule, "selection_rate"]
        if {"CBF", "ABF"} <= set(names):
            eps, rate = cbf_atomic_fence(ev)
            row |= {f"eps {ATOMIC_FENCE}": 1e3 * eps, f"rate {ATOMIC_FENCE} (%)": 100 * rate}
        rows.append(row)
    return pd.DataFrame(rows).set_index("preset")


def fixed_threshold_rates(evaluations: dict[str, Evaluation]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Test selection rates (%) with one fixed threshold per signal for every preset, as Fig. 3f.

    The fixed threshold of a signal is the mean of its adaptive (eq 7) thresholds over the
    presets. Returns the rates (rows: presets, columns: signals and rules) and the thresholds.
    """
    first = next(iter(evaluations.values())).criterion
    fixed = {s.name: float(np.mean([ev.summary.loc[s.name, "threshold"] for ev in evaluations.values()]))
             for s in first.signals}
    rates = {preset: 100 * summarize(ev.criterion, ev.train, ev.test, fixed)["selection_rate"]
             for preset, ev in evaluations.items()}
    return pd.DataFrame(rates).T.rename_axis("preset"), fixed


def outcome_table(evaluations: dict[str, Evaluation], signals: list[str]) -> pd.DataFrame:
    """The four outcomes (%) of each signal on each evaluation's test set: rows (name, signal)."""
    rows = {(name, signal): {k: 100 * v for k, v in ev.outcomes(signal).items()}
            for name, ev in evaluations.items() for signal in signals}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["model", "signal"])


# -- ensemble size (Fig. S2) -------------------------------------------------------------------------

def ensemble_size_sweep(pool: EnsembleCriterion, train: FeaturizedSet, test: FeaturizedSet,
                        member_counts: list[int], n_repeats: int,
                        compositions: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Every summary quantity for K members, over disjoint repeats of one fitted pool of members.

    The pool holds ``max(K) * n_repeats`` members; repeat *r* uses members
    ``r * max(K) ... r * max(K) + K``. Tidy: one row per (repeat, K, signal or rule).
    ``compositions`` (name -> test subsets, e.g. ``{"C": ["C"], "C+E": ["C", "E"]}``) judges each
    sub-ensemble on those parts of ``test`` too (scored once, then restricted:
    :meth:`uqlib.evaluation.Evaluation.on_test_subsets`) and adds a ``composition`` column.
    """
    k_max = max(member_counts)
    if min(member_counts) < 2 or n_repeats < 1:
        raise ValueError("member_counts must all be at least 2 and n_repeats at least 1")
    if pool.ensemble_.n_members < k_max * n_repeats:
        raise ValueError(f"The pool has {pool.ensemble_.n_members} members; {k_max} x {n_repeats} repeats are needed")
    rows = []
    for repeat in range(n_repeats):
        for k in member_counts:
            members = EnsembleCriterion.from_ensemble(pool.ensemble_.members(slice(repeat * k_max, repeat * k_max + k)))
            ev = evaluate(members, train, test, fit=False)
            judged = {None: ev} if compositions is None else {
                name: ev.on_test_subsets(list(subsets)) for name, subsets in compositions.items()}
            for name, part in judged.items():
                where = {} if name is None else {"composition": name}
                rows += [{"repeat": repeat, "K": k, "criterion": criterion, **where, **row.to_dict()}
                         for criterion, row in part.summary.iterrows()]
    return pd.DataFrame(rows)


# -- the paper's claims from these tables (rules in uqlib.paper.claims) ---------------------------------------

ENSEMBLE_SIGNALS = ("CBE", "CBF", "ABF")


def ensemble_ladder_claims(table: pd.DataFrame, fixed_rates: pd.DataFrame) -> list[claims.ClaimRecord]:
    """P1-P11 from :func:`ladder_table` and :func:`fixed_threshold_rates` of ensembles along the ladder.

    The least and most accurate presets (by training F_RMSE) stand for the paper's Func-15 and Func-945.
    P2 also gets the force criteria's rho of those two models (weak relative to them); P10 is
    judged under both readings of eps_F,cfg (the table's ``rate CBF`` and ``rate CBF atomic fence``).
    """
    table = table.sort_values("F_RMSE train", ascending=False)  # least to most accurate
    f = table["F_RMSE train"].to_numpy()
    rho = {which: {c: table[f"rho {c} {which}"].to_numpy() for c in ENSEMBLE_SIGNALS} for which in ("train", "test")}
    adaptive = {c: table[f"rate {c} (%)"].to_numpy() / 100 for c in ENSEMBLE_SIGNALS}
    fixed = {c: fixed_rates.loc[table.index, c].to_numpy() / 100 for c in ENSEMBLE_SIGNALS}
    worst, best = table.iloc[0], table.iloc[-1]
    ends = (worst.name, best.name)
    rho_force = {which: {c: {n: table.loc[n, f"rho {c} {which}"] for n in ends} for c in ("CBF", "ABF")}
                 for which in ("train", "test")}
    # P10 under both readings of eps_F,cfg (EPS_F_CFG_READINGS order: the compendium's current one first)
    rate_cbf = dict(zip(claims.EPS_F_CFG_READINGS,
                        (adaptive["CBF"], table[f"rate {ATOMIC_FENCE} (%)"].to_numpy() / 100), strict=True))
    return [
        claims.p1_training_rmse(worst["F_RMSE train"], worst["E_RMSE train"], best["F_RMSE train"],
                                best["E_RMSE train"]),
        claims.p2_cbe_weak({n: table.loc[n, "rho CBE train"] for n in ends},
                           {n: table.loc[n, "rho CBE test"] for n in ends},
                           rho_force_train=rho_force["train"], rho_force_test=rho_force["test"]),
        claims.p3_test_unaffected(worst["F_RMSE train"], best["F_RMSE train"], worst["F_RMSE test"],
                                  best["F_RMSE test"]),
        claims.p4_force_beats_energy(rho["train"], rho["test"]),
        claims.p5_rho_rises(f, rho["train"], rho["test"]),
        claims.p6_abf_train_low(f, rho["train"]["ABF"]),
        claims.p7_cbf_beats_abf(rho["train"], rho["test"]),
        claims.p8_test_above_train(rho["train"], rho["test"]),
        claims.p9_rate_rises(f, adaptive),
        claims.p10_cbf_flags_more(f, adaptive["CBE"], rate_cbf),
        claims.p11_fixed_thresholds(f, adaptive, fixed),
    ]


def sweep_statistics(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over repeats of every quantity of :func:`ensemble_size_sweep`.

    Columns ``(quantity, "mean" | "std")``, rows ``(criterion, K)``.
    """
    return sweep.drop(columns="repeat").groupby(["criterion", "K"]).agg(["mean", "std"])


def ensemble_size_claims(sweep: pd.DataFrame) -> list[claims.ClaimRecord]:
    """P12-P14 from :func:`ensemble_size_sweep` (means and spreads over repeats)."""
    stats = sweep_statistics(sweep)
    k = np.array(sorted(sweep["K"].unique()))

    def series(column: str, stat: str = "mean") -> dict[str, np.ndarray]:
        return {c: np.nan_to_num(stats.loc[c][(column, stat)].to_numpy()) for c in ENSEMBLE_SIGNALS}

    return [claims.judge("P12", claims.p12_rates_settle, k, series("selection_rate"), series("selection_rate", "std")),
            claims.judge("P13", claims.p13_ensemble_size_effects, k, series("rho_train"), series("rho_test"),
                         series("mean_err_train"), series("mean_err_test"), series("mean_U_test")["CBF"]),
            claims.judge("P14", claims.p14_thresholds_fall, k, series("threshold"))]


# -- D-optimality along the ladder, against ensembles (Figs 4, 5) -------------------------------------------

@dataclass
class DoptRun:
    """One preset: D-optimality and nested ensembles (K members each) on the same training set.

    ``dopt`` is ``None`` when the training projections cannot span the preset's functions
    (no active set exists); ``problem`` then says why and ``rmse_train`` is the single fit's.
    """

    dopt: Evaluation | None
    ensembles: dict[int, Evaluation]
    rmse_train: dict[str, float]
    problem: str = ""


def dopt_ladder(train: pd.DataFrame, test: pd.DataFrame, presets: list[str], *, ensemble_sizes: list[int],
                outliers: str = "global", seed: int = 0, kappa: float = 0.01, alpha: float = 1e-8
                ) -> dict[str, DoptRun]:
    """Per preset: a D-optimality criterion and ensembles of each size (nested: the first K of one pool)."""
    runs, (train_full, test_full) = {}, _featurize_largest(train, test, presets)
    for preset in presets:
        train_set, test_set = train_full.select(preset), test_full.select(preset)
        criterion, dopt, problem = DOptimality(outliers=outliers, kappa=kappa, alpha=alpha), None, ""
        try:
            dopt = evaluate(criterion, train_set, test_set)
        except ActiveSetError as err:  # a preset larger than the data can span: recorded, not fatal
            problem = str(err).split(":")[0]
        pool = EnsembleCriterion(max(ensemble_sizes), construction=claims.PAPER_CONSTRUCTION, seed=seed, kappa=kappa,
                                 alpha=alpha).fit(train_set)
        runs[preset] = DoptRun(dopt, {k: evaluate(EnsembleCriterion.from_ensemble(pool.ensemble_.members(
            slice(0, k))), train_set, test_set, fit=False) for k in ensemble_sizes},
            criterion.model_.rmse(train_set.dm), problem)
    return runs


def dopt_ladder_table(runs: dict[str, DoptRun]) -> pd.DataFrame:
    """Per preset: training RMSEs, outliers excluded, gamma ranges and test shares flagged (%) by each method."""
    rows = []
    for preset, run in runs.items():
        row = {"preset": preset, "F_RMSE train": run.rmse_train["F_rmse"], "E_RMSE train": run.rmse_train["E_rmse"],
               "active set": run.problem or "built"}
        if run.dopt is not None:
            criterion, gamma_train = run.dopt.criterion, run.dopt.train.atoms["gamma"].to_numpy()
            gamma_test = run.dopt.test.atoms["gamma"].to_numpy()
            row |= {"outliers excluded": criterion.active_set_.n_excluded,
                    "candidates": criterion.active_set_.n_candidates, "gamma_atom train max": gamma_train.max(),
                    "gamma_atom kept train max": gamma_train[criterion.keep_].max(),
                    "gamma_atom test min": gamma_test.min(), "gamma_atom test max": gamma_test.max(),
                    "D-opt configurations": 100 * run.dopt.summary.loc["gamma_cfg", "selection_rate"],
                    "D-opt atoms": 100 * run.dopt.summary.loc["gamma_atom", "selection_rate"]}
        for k, ev in run.ensembles.items():
            row[f"ensemble K={k} configurations"] = 100 * ev.summary.loc["CBE or CBF", "selection_rate"]
            row[f"ensemble K={k} atoms"] = 100 * ev.summary.loc["ABF", "selection_rate"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("preset")


def dopt_ladder_claims(runs: dict[str, DoptRun], table: pd.DataFrame) -> list[claims.ClaimRecord]:
    """P15-P22 from :func:`dopt_ladder` and its table; least and most accurate presets stand for Func-15/945.

    Only presets with an active set count: a preset whose training projections cannot span its
    functions has no gamma (its row in the table says so). P17 and P18 pool the training and
    test points as Fig 4 shows them (test-only beside, not judged); P21 is ONE record over every
    ensemble size, its numbers judged at K = 6 (not testable without a six-member ensemble).
    """
    order = table[table["active set"] == "built"].sort_values("F_RMSE train", ascending=False)
    worst, best = order.index[0], order.index[-1]
    f = order["F_RMSE train"].to_numpy()

    def rho(preset: str, signal: str) -> float:
        return metrics.spearman(*runs[preset].dopt.values("test", signal))

    # Fig 4 pools training and test points: both sets' (gamma, error) per panel and per model
    panels = {which: {f"{p} {kind}": runs[p].dopt.values(which, signal) for p in (worst, best)
                      for kind, signal in (("energy", "gamma_cfg (energy)"), ("force", "gamma_cfg"))}
              for which in ("train", "test")}
    atoms = {which: {p: runs[p].dopt.values(which, "gamma_atom") for p in (worst, best)} for which in ("train", "test")}
    low_error = metrics.tukey_threshold(runs[best].dopt.values("train", "gamma_atom")[1])
    small_ensemble = runs[best].ensembles[min(runs[best].ensembles)]
    rate = runs[best].dopt.summary["selection_rate"]
    ensembles = runs[best].ensembles
    return [
        claims.p15_gamma_range(table.loc[worst, "gamma_atom test max"], table.loc[best, "gamma_atom test max"]),
        claims.p16_gamma_correlations(rho(worst, "gamma_cfg"), rho(best, "gamma_cfg"),
                                      rho(worst, "gamma_cfg (energy)"), rho(best, "gamma_cfg (energy)")),
        claims.p17_flat_below_one(panels["train"], panels["test"]),
        claims.p18_atom_weak({p: g for p, (g, _) in atoms["train"].items()},
                             {p: e for p, (_, e) in atoms["train"].items()},
                             {p: g for p, (g, _) in atoms["test"].items()},
                             {p: e for p, (_, e) in atoms["test"].items()}, low_error, accurate_model=best),
        claims.p19_dopt_configurations(order["D-opt configurations"].to_numpy() / 100),
        claims.p20_dopt_atoms_rise(f, order["D-opt atoms"].to_numpy() / 100),
        # one record for every ensemble size; the paper's numbers are judged at its six-member ensemble
        claims.judge("P21", claims.p21_dopt_vs_ensemble, rate["gamma_cfg"], rate["gamma_atom"],
                     {k: {c: ev.summary.loc[c, "selection_rate"] for c in ("CBE", "CBF")}
                      for k, ev in ensembles.items()},
                     {k: ev.summary.loc["ABF", "selection_rate"] for k, ev in ensembles.items()}, band_size=6),
        claims.p22_misclassified_atoms(
            {"D-opt": runs[best].dopt.values("test", "gamma_atom")[0] > 1,
             "ABF": small_ensemble.values("test", "ABF")[0] > small_ensemble.summary.loc["ABF", "threshold"]},
            {"D-opt": runs[best].dopt.values("test", "gamma_atom")[1],
             "ABF": small_ensemble.values("test", "ABF")[1]}),
    ]


def paired_outcomes(evaluations: dict[str, Evaluation], signals: list[str]) -> pd.DataFrame:
    """Outcomes (%) of one signal per evaluation, paired in order: rows named by the evaluations."""
    return pd.DataFrame({name: {k: 100 * v for k, v in ev.outcomes(signal).items()}
                         for (name, ev), signal in zip(evaluations.items(), signals, strict=True)}).T


# -- heterogeneous training (notebook 04) -------------------------------------------------------------

def flagged_fractions(evaluations: dict[str, Evaluation]) -> pd.DataFrame:
    """What ensemble criteria flag of the test set, one column per ensemble (e.g. ``"K = 6"``), as Fig. 6.

    Rows: % of test configurations flagged by "CBE or CBF", by CBE and by CBF alone, % of test
    atoms flagged by ABF, test Spearman rho of CBF and ABF, and the ensemble-mean F_RMSE
    (per component, meV/Å) on the training and the test set.
    """
    columns = {}
    for name, ev in evaluations.items():
        s = ev.summary
        columns[name] = {"configurations flagged (%)": 100 * s.loc["CBE or CBF", "selection_rate"],
                         "  by CBE (%)": 100 * s.loc["CBE", "selection_rate"],
                         "  by CBF (%)": 100 * s.loc["CBF", "selection_rate"],
                         "atoms flagged (%)": 100 * s.loc["ABF", "selection_rate"],
                         "rho CBF test": s.loc["CBF", "rho_test"], "rho ABF test": s.loc["ABF", "rho_test"],
                         "F_RMSE train (meV/Å)": ev.rmse_train["F_rmse"], "F_RMSE test (meV/Å)": ev.rmse_test["F_rmse"]}
    return pd.DataFrame(columns)


def gamma_summary(evaluations: dict[str, Evaluation]) -> pd.DataFrame:
    """What D-optimality flags of the test set and the range of its grades, one column per evaluation (Fig. 7a-b).

    Rows: % of test configurations (gamma_cfg > 1) and atoms (gamma_atom > 1) flagged, the smallest
    and largest gamma_atom of the test set (dimensionless), and the training atoms excluded as force
    outliers and offered to MaxVol. Comparing the largest gamma of two trainings shows how
    heterogeneous training compresses the range of gamma.
    """
    columns = {}
    for name, ev in evaluations.items():
        gamma_atom, _ = ev.values("test", "gamma_atom")
        active = ev.criterion.active_set_
        columns[name] = {"configurations flagged (%)": 100 * ev.summary.loc["gamma_cfg", "selection_rate"],
                         "atoms flagged (%)": 100 * ev.summary.loc["gamma_atom", "selection_rate"],
                         "gamma_atom test min": float(gamma_atom.min()), "gamma_atom test max": float(gamma_atom.max()),
                         "outliers excluded": active.n_excluded, "active-set candidates": active.n_candidates}
    return pd.DataFrame(columns)


def errors_by_subset(evaluation: Evaluation, signal: str = "ABF") -> dict[str, np.ndarray]:
    """The errors a signal tracks (its level's error column, eV/Å or eV/atom), split by set and subset.

    Keys ``"train A"``, ``"test C"``, ...; for histograms of the per-atom force errors (Fig. 6c).
    """
    spec = evaluation.criterion.signal(signal)
    samples = {}
    for which in ("train", "test"):
        table = getattr(evaluation, which).level(spec.level)
        samples |= {f"{which} {subset}": part.to_numpy() for subset, part in table.groupby("subset")[spec.error]}
    return samples


def dopt_variants(train: FeaturizedSet, test: FeaturizedSet, *, kappa: float = 0.01, alpha: float = 1e-8,
                  surface_coordination: int = 12) -> dict[str, Evaluation]:
    """D-optimality three ways on one split: pacemaker's outlier filter, every atom kept (MTP's way), and the
    outlier filter with core (non-surface) training atoms only (claims P25, P34, P35).

    A variant whose candidate atoms cannot span the basis (too few core atoms for a large
    preset, say) has no active set: it is left out, and a warning names it and why.
    """
    variants = {"outlier filter": DOptimality(kappa=kappa, alpha=alpha),
                "keep all": DOptimality(outliers="none", kappa=kappa, alpha=alpha),
                "core atoms only": DOptimality(core_only=True, surface_coordination=surface_coordination,
                                               kappa=kappa, alpha=alpha)}
    evaluations = {}
    for name, criterion in variants.items():
        try:
            evaluations[name] = evaluate(criterion, train, test)
        except ActiveSetError as err:
            warnings.warn(f"D-optimality '{name}' has no active set on this split: {str(err).split('. ')[0]}",
                          stacklevel=2)
    return evaluations


def homogeneous_reference(preset: str, per_subset: int | None, seed: int, *, kappa: float = 0.01,
                          alpha: float = 1e-8) -> dict[str, Evaluation]:
    """D-optimality trained on A+B and graded on C+E, as in the MaxVol notebook: the gamma range to compare with.

    Returns ``{"A+B -> C+E": evaluation}``, or ``{}`` with a warning when the A+B projections
    cannot span the preset's functions (no active set: see the MaxVol notebook's table).
    """
    train, test = (featurize(tables.subsample(data.load_subsets(s), per_subset, seed), preset) for s in ("A+B", "C+E"))
    try:
        return {"A+B -> C+E": evaluate(DOptimality(kappa=kappa, alpha=alpha), train, test)}
    except ActiveSetError as err:
        warnings.warn(f"no A+B active set for {preset}: {str(err).split('. ')[0]}", stacklevel=2)
        return {}


def fitted_preset(evaluation: Evaluation) -> str | None:
    """The basis preset a D-optimality evaluation's model was fitted at (``None`` for a criterion without one)."""
    model = getattr(evaluation.criterion, "model_", None)
    return model.preset.name if model is not None else None


def heterogeneity_claims(ensembles: dict[str, Evaluation], variants: dict[str, Evaluation],
                         shares_2d: dict[str, float], toy_geometries: pd.DataFrame) -> list[claims.ClaimRecord]:
    """P23-P30, P34, P35 from the A+D split: the smallest ensemble, :func:`dopt_variants` (with the
    :func:`homogeneous_reference` under ``"A+B -> C+E"`` when it was run), the 2D example
    (:func:`uqlib.paper.maxvol2d.novelty_shares`) and the random 2D geometries of P29
    (:func:`uqlib.paper.maxvol2d.random_geometries`: columns ``underestimated share`` and
    ``overestimated share``, one row per geometry).

    P27 compares the A+D test grades with the largest A+B TEST grade (the paper's 1e6 is read
    off Fig 4, which grades the test set), both models fitted at one preset: the presets are
    read from the fitted models and passed to the rule, which refuses two different ones.
    """
    ens, dopt = next(iter(ensembles.values())), variants["outlier filter"]
    reference = variants.get("A+B -> C+E")
    rate = ens.summary["selection_rate"]
    d_rate, keep_rate = dopt.summary["selection_rate"], variants["keep all"].summary["selection_rate"]
    gamma_test = dopt.values("test", "gamma_atom")[0]
    return [
        claims.p23_ensemble_ad(rate["CBF"], rate["ABF"], rate["CBE or CBF"]),
        claims.p24_bimodal_errors(ens.values("train", "ABF")[1], ens.values("test", "ABF")[1]),
        claims.p25_dopt_ad(d_rate["gamma_cfg"], d_rate["gamma_atom"], rate["CBE or CBF"], rate["ABF"]),
        claims.p26_gamma_weaker(dopt.summary.loc["gamma_cfg", "rho_test"], ens.summary.loc["CBF", "rho_test"],
                                dopt.summary.loc["gamma_atom", "rho_test"], ens.summary.loc["ABF", "rho_test"]),
        claims.judge("P27", claims.p27_gamma_collapse, gamma_test, reference.values("test", "gamma_atom")[0].max(),
                     preset_ad=fitted_preset(dopt), preset_ab=fitted_preset(reference)) if reference is not None
        else claims.not_testable("P27", "no homogeneous A+B reference: not run (compare_homogeneous=False), or the "
                                        "A+B projections cannot span this preset's functions (no active set)"),
        claims.p28_toy_grades(),
        claims.p29_union_underestimates(toy_geometries["underestimated share"].to_numpy(),
                                        toy_geometries["overestimated share"].to_numpy()),
        claims.p30_minimum_grade(**shares_2d),
        claims.p34_outlier_filter(d_rate["gamma_cfg"], keep_rate["gamma_cfg"], d_rate["gamma_atom"],
                                  keep_rate["gamma_atom"]),
        claims.p35_core_active_set(gamma_test, variants["core atoms only"].values("test", "gamma_atom")[0])
        if "core atoms only" in variants else claims.not_testable(
            "P35", "the core (non-surface) training atoms cannot span this preset's functions: no active set"),
    ]


# -- are the ensemble members stable? (the A+D ensembles of notebook 04) -------------------------

def member_structure_weights(dm: ace.DesignMatrix, fitted: ensemble.Ensemble) -> np.ndarray:
    """Weight of each training structure in each member's fit, ``(K, n_cfg)``: what
    :func:`uqlib.ensemble.fit_ensemble` recorded (bootstrap counts, 0/1 subsamples, ones for the
    pacemaker and posterior members, which all see every structure); ones if nothing was recorded."""
    if fitted.structure_weights is None:
        return np.ones((fitted.n_members, dm.n_configs))
    return fitted.structure_weights


def member_gram_eigenvalues(dm: ace.DesignMatrix, fitted: ensemble.Ensemble, *, kappa: float) -> np.ndarray:
    """Eigenvalues ``(K, p)`` of each member's ``G`` (the loss without alpha, :func:`uqlib.ace.normal_equations`).

    The ones the fit recorded (``gram_spectra=True``) when it used this ``kappa``; otherwise
    from the members' Grams accumulated in one pass over the rows
    (:func:`uqlib.ace.stacked_normal_equations`; one shared ``G`` when every member saw the same
    weights), one ``eigvalsh`` per distinct ``G``.
    """
    if fitted.gram_eigenvalues is not None and fitted.kappa == kappa:
        return fitted.gram_eigenvalues
    weights = member_structure_weights(dm, fitted)
    if (weights == weights[0]).all():
        gram, _ = ace.normal_equations(dm, kappa=kappa, structure_weights=weights[0])
        return np.repeat(np.linalg.eigvalsh(gram)[None, :], len(weights), axis=0)
    grams, _ = ace.stacked_normal_equations(dm, weights, kappa=kappa)
    return np.stack([np.linalg.eigvalsh(gram) for gram in grams])


def _rank(eigenvalues: np.ndarray) -> int:
    """Numerical rank of a symmetric matrix from its eigenvalues, with numpy's ``matrix_rank`` tolerance."""
    magnitudes = np.abs(eigenvalues)
    return int((magnitudes > magnitudes.max() * len(magnitudes) * np.finfo(float).eps).sum())


def member_diagnostics(dm: ace.DesignMatrix, fitted: ensemble.Ensemble, *, kappa: float, alpha: float
                       ) -> pd.DataFrame:
    """One row per member: the training structures it saw, its normal equations and its training errors.

    Columns: ``member``, ``distinct_structures`` (weight > 0), ``rank`` of its ``G``
    (numerical, the tolerance of :func:`numpy.linalg.matrix_rank`), ``n_below_alpha`` (eigenvalues
    of ``G`` below ``alpha``: directions the ridge, not the data, sets), ``cond`` of ``G + alpha I``,
    ``E_rmse`` (meV/atom) and ``F_rmse`` (meV/Å) on the whole training set ``dm``, and
    ``coef_norm`` (|c|). ``dm`` must be the design matrix the ensemble was fitted on. The
    eigenvalues come from :func:`member_gram_eigenvalues` (no member's Gram is rebuilt from the rows).
    """
    if dm.n_functions != fitted.coefficients.shape[1]:
        raise ValueError(f"The ensemble has {fitted.coefficients.shape[1]} functions, the design matrix "
                         f"{dm.n_functions}: pass the training design matrix the ensemble was fitted on")
    spectra = member_gram_eigenvalues(dm, fitted, kappa=kappa)
    rows = []
    for k, (weights, eigenvalues) in enumerate(zip(member_structure_weights(dm, fitted), spectra, strict=True)):
        rows.append({"member": k, "distinct_structures": int((weights > 0).sum()), "rank": _rank(eigenvalues),
                     "n_below_alpha": int((eigenvalues < alpha).sum()),
                     "cond": float((eigenvalues.max() + alpha) / (max(eigenvalues.min(), 0.0) + alpha)),
                     **ace.rmse(dm, fitted.coefficients[k]),
                     "coef_norm": float(np.linalg.norm(fitted.coefficients[k]))})
    return pd.DataFrame(rows)


def ensemble_stability(dm: ace.DesignMatrix, pools: dict[str, ensemble.Ensemble], sizes: list[int], *,
                       kappa: float, alpha: float) -> pd.DataFrame:
    """Training errors of the single fit, of each pool's members and of its first-K ensemble means.

    One row per pool (e.g. ``{"bootstrap": ..., "posterior": ...}``, by construction) and ensemble size K:
    the single ridge fit's F/E RMSE, the members' median and largest F RMSE (meV/Å) and
    smallest distinct-structure count and rank (over the first K members, :func:`member_diagnostics`),
    the ensemble mean's F/E RMSE (a mean that fits worse than its members' median, or worse as
    K grows, marks unstable members). Columns in meV/Å and meV/atom.
    """
    single = ace.rmse(dm, ace.fit_coefficients(dm, kappa=kappa, alpha=alpha))
    rows = []
    for name, pool in pools.items():
        members = member_diagnostics(dm, pool, kappa=kappa, alpha=alpha)
        for k in sorted(sizes):
            first, mean = members.iloc[:k], ace.rmse(dm, pool.coefficients[:k].mean(axis=0))
            rows.append({"ensemble": name, "K": k, "single F_rmse": single["F_rmse"],
                         "members F_rmse median": first["F_rmse"].median(), "members F_rmse max": first["F_rmse"].max(),
                         "mean F_rmse": mean["F_rmse"], "single E_rmse": single["E_rmse"],
                         "mean E_rmse": mean["E_rmse"], "min distinct structures": first["distinct_structures"].min(),
                         "min rank": first["rank"].min(), "n_functions": dm.n_functions})
    return pd.DataFrame(rows).set_index(["ensemble", "K"])


@dataclass
class EnsembleStudy:
    """Ensemble pools on one training set, at a ridge strength chosen by CV (or given), with the
    stability table that says which of them to trust.

    ``pools`` holds one pool of ``max(sizes)`` members per member construction (by default a
    bootstrap pool and a posterior committee, :mod:`uqlib.ensemble`); ``construction`` names the one
    the figures use (:attr:`criterion`).
    """

    pools: dict[str, EnsembleCriterion]  # one per construction, each fitted at ``alpha``
    construction: str  # the pool the figures and claims use
    alpha: float  # the ensembles' ridge strength
    cv_curve: pd.DataFrame  # :func:`uqlib.ace.cross_validate_alpha` (empty when alpha was given)
    stability: pd.DataFrame  # :func:`ensemble_stability`, indexed by alpha, pool and K

    @property
    def criterion(self) -> EnsembleCriterion:
        """The pool of ``construction``."""
        return self.pools[self.construction]

    def evaluations(self, train: FeaturizedSet, test: FeaturizedSet, sizes: list[int],
                    construction: str | None = None) -> dict[str, Evaluation]:
        """``{"K = k": Evaluation}`` of the first ``k`` members of a pool (default: ``construction``), nested as
        in the paper: each smaller ensemble is the start of the larger one."""
        pool = self.pools[construction or self.construction].ensemble_
        return {f"K = {k}": evaluate(EnsembleCriterion.from_ensemble(pool.members(slice(0, k))), train, test,
                                     fit=False) for k in sorted(sizes)}


def ensemble_study(train: FeaturizedSet, sizes: list[int], seed: int, kappa: float, alpha: float,
                   cv_alphas: list[float] | None = None, cv_folds: int = 5,
                   construction: str = "bootstrap",
                   pool_constructions: tuple[str, ...] = ensemble.CONSTRUCTIONS) -> EnsembleStudy:
    """One pool of ``max(sizes)`` members per construction of ``pool_constructions`` (and ``construction``),
    at ``alpha`` or at the alpha of least K-fold CV loss among ``cv_alphas``
    (:func:`uqlib.ace.choose_alpha`); when the chosen alpha differs from ``alpha``, the stability
    table also has the bootstrap pool at ``alpha``. ``construction`` (one of
    :data:`uqlib.ensemble.CONSTRUCTIONS`) picks the pool the study's :attr:`~EnsembleStudy.criterion` is.
    """
    for name in (construction, *pool_constructions):
        if name not in ensemble.CONSTRUCTIONS:
            raise ValueError(f"Unknown member construction {name!r}; choose one of {ensemble.CONSTRUCTIONS}")
    chosen, curve = alpha, pd.DataFrame(columns=["alpha", "cv_E_rmse", "cv_F_rmse"])  # no CV: an empty curve
    if cv_alphas is not None:
        chosen, curve = ace.choose_alpha(train.dm, cv_alphas, n_folds=cv_folds, seed=seed, kappa=kappa)
    names = list(dict.fromkeys((*pool_constructions, construction)))
    pools = {m: EnsembleCriterion(max(sizes), construction=m, seed=seed, kappa=kappa, alpha=chosen,
                                  gram_spectra=True).fit(train) for m in names}
    tables = {chosen: ensemble_stability(train.dm, {m: c.ensemble_ for m, c in pools.items()}, sizes,
                                         kappa=kappa, alpha=chosen)}
    if chosen != alpha:
        before = ensemble.fit_ensemble(train.dm, max(sizes), construction="bootstrap", seed=seed, kappa=kappa,
                                       alpha=alpha, progress=False, gram_spectra=True)
        tables[alpha] = ensemble_stability(train.dm, {"bootstrap": before}, sizes, kappa=kappa, alpha=alpha)
    stability = pd.concat(tables.values(), keys=list(tables), names=["alpha"])
    return EnsembleStudy(pools, construction, chosen, curve, stability)
