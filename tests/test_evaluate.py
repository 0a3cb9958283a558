"""Evaluation through the criterion interface: thresholds, rho, rates, the ladder and K sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uqlib import ace, ensemble, evaluation, metrics, tables
from uqlib.criteria import Criterion, DOptimality, EnsembleCriterion, Signal, featurize
from uqlib.paper import data, studies
from uqlib.tables import per_structure_max


@pytest.fixture(scope="module")
def sets():
    train = tables.subsample(data.load_subsets("A+B"), 6, seed=0)
    test = tables.subsample(data.load_subsets("C+E"), 3, seed=0)
    return featurize(train, "Func-33", progress=False), featurize(test, "Func-33", progress=False)


class Coordination(Criterion):
    """A toy criterion in a few lines: fewer neighbours than any training atom is 'uncertain'."""

    name = "coordination"
    signals = (Signal("missing neighbours", "atom", "missing", "err_F", threshold=0.0),)

    def fit(self, train):
        self.fewest_ = min(self._neighbours(a).min() for a in train.table["atoms"])
        return self

    @staticmethod
    def _neighbours(atoms):
        from ase.neighborlist import neighbor_list
        return np.bincount(neighbor_list("i", atoms, 3.3), minlength=len(atoms))

    def uncertainties(self, fs):
        missing = np.concatenate([np.maximum(self.fewest_ - self._neighbours(a), 0) for a in fs.table["atoms"]])
        return {}, {"missing": missing.astype(float)}


def test_a_toy_criterion_runs_through_evaluation(sets):
    train, test = sets
    ev = evaluation.evaluate(Coordination(), train, test)
    row = ev.summary.loc["missing neighbours"]
    # no model: no errors, so rho is NaN, but the rates are computed against the fixed threshold
    assert row["threshold"] == 0.0 and row["train_rate"] == 0.0 and 0 < row["selection_rate"] < 1
    assert np.isnan(ev.rmse_test["F_rmse"])


def test_ensemble_evaluation_thresholds_rates_and_rule(sets):
    train, test = sets
    ev = evaluation.evaluate(EnsembleCriterion(4, seed=0), train, test)
    for signal in ("CBE", "CBF", "ABF"):
        u_tr, e_tr = ev.values("train", signal)
        u_te, e_te = ev.values("test", signal)
        row = ev.summary.loc[signal]
        assert row["threshold"] == metrics.tukey_threshold(e_tr)
        assert row["selection_rate"] == metrics.selection_rate(u_te, row["threshold"])
        assert row["rho_test"] == metrics.spearman(u_te, e_te)
    either = ((ev.test.configs["U_E"] > ev.summary.loc["CBE", "threshold"])
              | (ev.test.configs["U_F"] > ev.summary.loc["CBF", "threshold"])).mean()
    assert ev.summary.loc["CBE or CBF", "selection_rate"] == either
    assert ev.rmse_train["F_rmse"] > 0 and ev.rmse_test["F_rmse"] > ev.rmse_train["F_rmse"]
    assert sum(ev.outcomes("CBF").values()) == pytest.approx(1.0)


def test_dopt_evaluation_uses_gamma_one_and_eq7_for_high_error(sets):
    train, test = sets
    ev = evaluation.evaluate(DOptimality(), train, test)
    assert ev.summary.loc["gamma_atom", "threshold"] == 1.0
    gamma, error = ev.values("test", "gamma_atom")
    expected = metrics.confusion(gamma, error, 1.0, metrics.tukey_threshold(ev.values("train", "gamma_atom")[1]))
    assert ev.outcomes("gamma_atom") == expected


def test_ladder_table_and_fixed_thresholds(sets):
    train, test = sets
    evaluations = {"a": evaluation.evaluate(EnsembleCriterion(3, seed=0), train, test),
                   "b": evaluation.evaluate(EnsembleCriterion(3, seed=1), train, test)}
    table = studies.ladder_table(evaluations)
    assert list(table.index) == ["a", "b"] and table.loc["a", "eps CBF"] == 1e3 * evaluations["a"].summary.loc[
        "CBF", "threshold"]
    rates, fixed = studies.fixed_threshold_rates(evaluations)
    assert fixed["CBF"] == pytest.approx(np.mean([ev.summary.loc["CBF", "threshold"] for ev in evaluations.values()]))
    u = evaluations["a"].test.configs["U_F"]
    assert rates.loc["a", "CBF"] == pytest.approx(100 * np.mean(u > fixed["CBF"]))
    outcomes = studies.outcome_table(evaluations, ["CBF"])
    assert outcomes.sum(axis=1).to_numpy() == pytest.approx(100)


def test_ensemble_size_sweep_uses_disjoint_repeats_and_settling(sets):
    train, test = sets
    pool = EnsembleCriterion(8, seed=0).fit(train)
    sweep = studies.ensemble_size_sweep(pool, train, test, [2, 4], n_repeats=2)
    assert set(sweep["K"]) == {2, 4} and set(sweep["repeat"]) == {0, 1}
    second = EnsembleCriterion.from_ensemble(pool.ensemble_.members(slice(4, 6)))
    expected = evaluation.evaluate(second, train, test, fit=False).summary.loc["CBF", "selection_rate"]
    got = sweep.query("repeat == 1 and K == 2 and criterion == 'CBF'")["selection_rate"].item()
    assert got == expected
    with pytest.raises(ValueError, match="repeats are needed"):
        studies.ensemble_size_sweep(pool, train, test, [2, 4], n_repeats=3)


def test_rank_by_takes_the_largest_atom_value_for_atom_signals(sets):
    train, test = sets
    criterion = DOptimality().fit(train)
    np.testing.assert_allclose(evaluation.rank_by(criterion, test, "gamma_atom"),
                               per_structure_max(criterion.score(test).atoms["gamma"].to_numpy(), test.dm.n_atoms))


# -- heterogeneous training (notebook 04) -------------------------------------------------------------

def test_flagged_fractions_are_the_summary_rates_in_percent(sets):
    train, test = sets
    pool = EnsembleCriterion(4, seed=0).fit(train)
    evaluations = {f"K = {k}": evaluation.evaluate(EnsembleCriterion.from_ensemble(pool.ensemble_.members(slice(0, k))),
                                                 train, test, fit=False) for k in (2, 4)}
    table = studies.flagged_fractions(evaluations)
    assert list(table.columns) == ["K = 2", "K = 4"]
    u, _ = evaluations["K = 2"].values("test", "ABF")
    eps = evaluations["K = 2"].summary.loc["ABF", "threshold"]
    assert table.loc["atoms flagged (%)", "K = 2"] == pytest.approx(100 * np.mean(u > eps))
    assert table.loc["configurations flagged (%)", "K = 4"] >= table.loc["  by CBF (%)", "K = 4"]


def test_gamma_summary_counts_grades_above_one(sets):
    train, test = sets
    ev = evaluation.evaluate(DOptimality(outliers="global"), train, test)
    table = studies.gamma_summary({"A+B": ev})
    gamma = ev.criterion.score(test).atoms["gamma"].to_numpy()
    assert table.loc["atoms flagged (%)", "A+B"] == pytest.approx(100 * np.mean(gamma > 1))
    assert table.loc["gamma_atom test max", "A+B"] == pytest.approx(gamma.max())
    assert table.loc["outliers excluded", "A+B"] + table.loc["active-set candidates", "A+B"] == len(train.projections)
    assert table.loc["outliers excluded", "A+B"] > 0  # the global policy drops some outlier atoms


def test_errors_by_subset_splits_every_atom_once(sets):
    train, test = sets
    ev = evaluation.evaluate(EnsembleCriterion(3, seed=0), train, test)
    samples = studies.errors_by_subset(ev, "ABF")
    assert {"train A", "train B", "test C", "test E"} <= set(samples)
    assert sum(len(v) for k, v in samples.items() if k.startswith("test")) == len(ev.test.atoms)
    np.testing.assert_allclose(np.sort(np.concatenate([samples["train A"], samples["train B"]])),
                               np.sort(ev.train.atoms["err_F"].to_numpy()))


def test_points_are_in_mev_except_dimensionless_grades(sets):
    train, test = sets
    ensemble = evaluation.evaluate(EnsembleCriterion(3, seed=0), train, test)
    u, e = ensemble.values("test", "CBF")
    np.testing.assert_allclose(ensemble.points("CBF")["test"][0], 1e3 * u)
    np.testing.assert_allclose(ensemble.points("CBF")["test"][1], 1e3 * e)
    dopt = evaluation.evaluate(DOptimality(), train, test)
    gamma, error = dopt.values("train", "gamma_atom")
    points = dopt.points("gamma_atom")["train"]
    np.testing.assert_allclose(points[0], gamma)
    np.testing.assert_allclose(points[1], 1e3 * error)


def test_member_diagnostics_redraw_the_members_bootstrap_weights(sets):
    train, _ = sets
    fitted = ensemble.fit_ensemble(train.dm, 4, seed=2, alpha=1e-6, progress=False)
    table = studies.member_diagnostics(train.dm, fitted, kappa=0.01, alpha=1e-6)
    weights = studies.member_structure_weights(train.dm, fitted)
    for k in range(4):  # each member is the fit on its redrawn weights, and the table reports that fit
        refit = ace.fit_coefficients(train.dm, alpha=1e-6, structure_weights=weights[k])
        np.testing.assert_allclose(refit, fitted.coefficients[k], rtol=1e-6, atol=1e-9)
        assert table.loc[k, "F_rmse"] == pytest.approx(ace.rmse(train.dm, refit)["F_rmse"], rel=1e-6)
    assert (table["distinct_structures"] == (weights > 0).sum(axis=1)).all()
    assert (table["distinct_structures"] < train.dm.n_configs).any()  # a bootstrap leaves structures out
    assert (table["rank"] <= train.dm.n_functions).all()


def test_member_diagnostics_of_every_construction_read_the_members_grams(sets, monkeypatch):
    train, _ = sets
    for construction in ensemble.CONSTRUCTIONS:
        fitted = ensemble.fit_ensemble(train.dm, 3, construction=construction, seed=1, alpha=1e-6, maxiter=20,
                                       progress=False)
        recorded = ensemble.fit_ensemble(train.dm, 3, construction=construction, seed=1, alpha=1e-6, maxiter=20,
                                         progress=False, gram_spectra=True)
        computed = studies.member_diagnostics(train.dm, fitted, kappa=0.01, alpha=1e-6)
        weights = studies.member_structure_weights(train.dm, fitted)
        for k in range(3):  # the rank and cond of each member's own G, however its eigenvalues were obtained
            gram, _ = ace.normal_equations(train.dm, structure_weights=weights[k])
            assert computed.loc[k, "rank"] == np.linalg.matrix_rank(gram, hermitian=True)
            eigenvalues = np.linalg.eigvalsh(gram)
            assert computed.loc[k, "n_below_alpha"] == (eigenvalues < 1e-6).sum()
        # recorded at fit time: the diagnostics make no pass over the rows at all
        monkeypatch.setattr(ace, "stacked_normal_equations", None)
        monkeypatch.setattr(ace, "normal_equations", None)
        from_fit = studies.member_diagnostics(train.dm, recorded, kappa=0.01, alpha=1e-6)
        monkeypatch.undo()
        pd.testing.assert_frame_equal(from_fit[["rank", "n_below_alpha"]], computed[["rank", "n_below_alpha"]])
        np.testing.assert_allclose(from_fit["cond"], computed["cond"], rtol=1e-6)
    posterior = ensemble.fit_ensemble(train.dm, 3, construction="posterior", alpha=1e-6)
    table = studies.member_diagnostics(train.dm, posterior, kappa=0.01, alpha=1e-6)
    assert (table["distinct_structures"] == train.dm.n_configs).all() and table["rank"].nunique() == 1
    with pytest.raises(ValueError, match="functions"):
        studies.member_diagnostics(train.dm, ensemble.Ensemble("x", "bootstrap", 0, np.zeros((2, 5)), 0, 0),
                                    kappa=0.01, alpha=1e-6)


def test_ensemble_stability_table(sets):
    train, _ = sets
    pools = {"bootstrap": ensemble.fit_ensemble(train.dm, 4, seed=0, alpha=1e-6, progress=False),
             "posterior": ensemble.fit_ensemble(train.dm, 4, construction="posterior", alpha=1e-6)}
    table = studies.ensemble_stability(train.dm, pools, [2, 4], kappa=0.01, alpha=1e-6)
    assert list(table.index) == [("bootstrap", 2), ("bootstrap", 4), ("posterior", 2), ("posterior", 4)]
    single = ace.rmse(train.dm, ace.fit_coefficients(train.dm, alpha=1e-6))["F_rmse"]
    np.testing.assert_allclose(table["single F_rmse"], single)
    mean4 = ace.rmse(train.dm, pools["bootstrap"].coefficients.mean(axis=0))["F_rmse"]
    assert table.loc[("bootstrap", 4), "mean F_rmse"] == pytest.approx(mean4)
    assert (table["members F_rmse max"] >= table["members F_rmse median"]).all()


def test_ensemble_study_chooses_alpha_by_cv_and_compares_with_the_given_one(sets):
    train, _ = sets
    study = studies.ensemble_study(train, [2, 3], seed=0, kappa=0.01, alpha=1e-8, cv_alphas=[1e-8, 1e-2], cv_folds=3)
    assert study.alpha == study.cv_curve.loc[study.cv_curve["cv_loss"].idxmin(), "alpha"]
    assert study.criterion.alpha == study.alpha and study.criterion.ensemble_.n_members == 3
    alphas = set(study.stability.index.get_level_values("alpha"))
    assert alphas == ({study.alpha} if study.alpha == 1e-8 else {study.alpha, 1e-8})
    given = studies.ensemble_study(train, [2], seed=0, kappa=0.01, alpha=1e-6)
    assert given.cv_curve.empty and given.alpha == 1e-6
    assert list(given.stability.index) == [(1e-6, c, 2) for c in ensemble.CONSTRUCTIONS]


def test_ensemble_study_uses_the_chosen_pool_and_evaluates_nested_ensembles(sets):
    train, test = sets
    study = studies.ensemble_study(train, [2, 3], seed=0, kappa=0.01, alpha=1e-6, construction="posterior")
    assert study.criterion is study.pools["posterior"] and study.criterion.ensemble_.construction == "posterior"
    assert list(study.pools) == list(ensemble.CONSTRUCTIONS)  # every construction, the chosen one among them
    for construction, pool in study.pools.items():
        evaluations = study.evaluations(train, test, [3, 2], construction)
        assert list(evaluations) == ["K = 2", "K = 3"]
        first_two = evaluations["K = 2"].criterion.ensemble_.coefficients
        np.testing.assert_array_equal(first_two, pool.ensemble_.coefficients[:2])  # nested: the pool's first K
    with pytest.raises(ValueError, match="Unknown member construction"):
        studies.ensemble_study(train, [2], seed=0, kappa=0.01, alpha=1e-6, construction="dropout")
    paced = studies.ensemble_study(train, [2], seed=0, kappa=0.01, alpha=1e-6, construction="pacemaker",
                                   pool_constructions=("bootstrap", "posterior"))
    assert list(paced.pools) == ["bootstrap", "posterior", "pacemaker"]
    assert paced.criterion.ensemble_.construction == "pacemaker"
    assert set(paced.stability.index.get_level_values("ensemble")) == {"bootstrap", "posterior", "pacemaker"}


def test_dopt_ladder_records_a_preset_without_an_active_set_and_judges_the_others(monkeypatch):
    from uqlib.criteria import doptimality

    train, test = tables.subsample(data.load_subsets("A+B"), 4, 0), tables.subsample(data.load_subsets("C+E"), 2, 0)
    real_build = doptimality.activeset.build_active_set

    def build(projections, keep=None):
        if projections.shape[1] > 40:  # as if the data could not span the larger preset
            raise doptimality.activeset.ActiveSetError("The active set is singular (condition number 1e+15): ...")
        return real_build(projections, keep=keep)

    monkeypatch.setattr(doptimality.activeset, "build_active_set", build)
    runs = studies.dopt_ladder(train, test, ["Func-33", "Func-72"], ensemble_sizes=[2, 3])
    assert runs["Func-72"].dopt is None and runs["Func-72"].problem.startswith("The active set is singular")
    table = studies.dopt_ladder_table(runs)
    assert table.loc["Func-33", "active set"] == "built" and np.isnan(table.loc["Func-72", "D-opt atoms"])
    assert table.loc["Func-72", "F_RMSE train"] > 0


def test_a_variant_without_an_active_set_is_left_out_with_a_warning_and_p35_not_tested(sets):
    train, test = sets
    with pytest.warns(UserWarning, match="core atoms only"):
        variants = studies.dopt_variants(train, test, surface_coordination=99)  # no atom is 'core'
    assert set(variants) == {"outlier filter", "keep all"}
    records = {r.pid: r for r in studies.heterogeneity_claims(
        {"K = 3": studies.evaluate(EnsembleCriterion(3, seed=0), train, test)}, variants,
        {"novel_rate_union": 0.5, "novel_rate_min": 0.8, "known_rate_single": 1.0, "known_rate_union": 0.1,
         "known_rate_min": 0.1}, _toy_geometries(5))}
    assert records["P35"].verdict == "not testable here" and records["P27"].verdict == "not testable here"
    assert records["P29"].verdict == "not testable here"  # 5 geometries: fewer than the rule needs


def _toy_geometries(n: int, under: float = 0.2, over: float = 0.01) -> pd.DataFrame:
    return pd.DataFrame({"underestimated share": np.full(n, under), "overestimated share": np.full(n, over)})


def test_heterogeneity_claims_read_the_ab_test_maximum_and_every_toy_geometry(sets):
    train, test = sets
    variants = studies.dopt_variants(train, test)
    reference = studies.evaluate(DOptimality(), train, test)
    variants["A+B -> C+E"] = reference
    shares = {"novel_rate_union": 0.5, "novel_rate_min": 0.8, "known_rate_single": 1.0, "known_rate_union": 0.05,
              "known_rate_min": 0.3}
    records = {r.pid: r for r in studies.heterogeneity_claims(
        {"K = 3": studies.evaluate(EnsembleCriterion(3, seed=0), train, test)}, variants, shares, _toy_geometries(20))}
    test_max, train_max = (reference.values(w, "gamma_atom")[0].max() for w in ("test", "train"))
    assert test_max != train_max  # the two readings differ on these sets, so the test below can tell them apart
    assert f"A+B test up to {test_max:.3g} (Func-33)" in records["P27"].ours
    assert studies.fitted_preset(reference) == "Func-33"
    assert records["P29"].verdict == "reproduced" and "of 20 random geometries" in records["P29"].ours
    # P30 part (b): the minimum flags known points far more often than the union's set here
    assert records["P30"].verdict == "partly" and "(b) False" in records["P30"].why


def test_heterogeneity_claims_refuse_a_reference_at_another_preset(sets):
    train, test = sets
    variants = studies.dopt_variants(train, test)
    other = studies.evaluate(DOptimality(), train, test)
    other.criterion.model_.preset = ace.get_preset("Func-72")  # as if fitted at another preset
    variants["A+B -> C+E"] = other
    records = {r.pid: r for r in studies.heterogeneity_claims(
        {"K = 3": studies.evaluate(EnsembleCriterion(3, seed=0), train, test)}, variants,
        {"novel_rate_union": 0.5, "novel_rate_min": 0.8}, _toy_geometries(20))}
    assert records["P27"].verdict == "not testable here" and "one preset" in records["P27"].why


# -- the ensemble ladder's new inputs (P2, P10, rho without subset A) -----------------------------------------

def test_ladder_table_has_the_atomic_fence_and_rho_without_subset_a(sets):
    train, test = sets
    ev = studies.evaluate(EnsembleCriterion(4, seed=0), train, test)
    row = studies.ladder_table({"a": ev}).loc["a"]
    atomic_eps = metrics.tukey_threshold(ev.train.atoms["err_F"].to_numpy())
    assert row["eps CBF atomic fence"] == pytest.approx(1e3 * atomic_eps)
    assert row["eps CBF atomic fence"] != pytest.approx(row["eps CBF"])  # atoms' fence is not the maxima's
    assert row["rate CBF atomic fence (%)"] == pytest.approx(100 * np.mean(ev.test.configs["U_F"] > atomic_eps))
    not_a = (ev.train.configs["subset"] != "A").to_numpy()
    assert row["rho CBF train without A"] == pytest.approx(
        metrics.spearman(ev.train.configs["U_F"][not_a], ev.train.configs["err_F"][not_a]))
    atoms_not_a = (ev.train.atoms["subset"] != "A").to_numpy()
    assert row["rho ABF train without A"] == pytest.approx(
        metrics.spearman(ev.train.atoms["U_F"][atoms_not_a], ev.train.atoms["err_F"][atoms_not_a]))
    assert row["rho ABF train without A"] != pytest.approx(row["rho ABF train"])  # A's atoms change the rho


def _ladder(rates_cbf_atomic: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A three-step ladder table as ladder_table writes it (least accurate first), and fixed-threshold rates."""
    presets = ["p1", "p2", "p3"]
    table = pd.DataFrame({"F_RMSE train": [180.0, 100.0, 50.0], "E_RMSE train": [9.0, 4.0, 1.5],
                          "F_RMSE test": [300.0, 290.0, 280.0], "E_RMSE test": [20.0, 19.0, 18.0],
                          "rate CBF atomic fence (%)": rates_cbf_atomic}, index=pd.Index(presets, name="preset"))
    for c, (rho_tr, rho_te, rate) in {"CBE": (0.2, 0.3, [10.0, 20.0, 30.0]), "CBF": (0.6, 0.7, [20.0, 30.0, 40.0]),
                                      "ABF": (0.5, 0.6, [5.0, 10.0, 15.0])}.items():
        table[f"rho {c} train"], table[f"rho {c} test"], table[f"rate {c} (%)"] = rho_tr, rho_te, rate
    fixed = pd.DataFrame({c: [20.0, 20.0, 20.0] for c in ("CBE", "CBF", "ABF")}, index=presets)
    return table, fixed


def test_ensemble_ladder_claims_judge_p10_under_both_readings_and_p2_against_the_force_rho():
    table, fixed = _ladder([30.0, 40.0, 50.0])  # the atomic fence: CBF above CBE everywhere, as the maxima's
    records = {r.pid: r for r in studies.ensemble_ladder_claims(table, fixed)}
    p10 = records["P10"]
    assert list(p10.verdicts_by_reading) == list(studies.claims.EPS_F_CFG_READINGS)
    assert set(p10.verdicts_by_reading.values()) == {"reproduced"} and not p10.reading_dependent
    assert "rho_CBE below rho_CBF and rho_ABF for every model and set: True" in records["P2"].why
    table, fixed = _ladder([5.0, 10.0, 15.0])  # the atomic fence flags fewer than CBE: the reading matters
    p10 = {r.pid: r for r in studies.ensemble_ladder_claims(table, fixed)}["P10"]
    assert p10.verdicts_by_reading[studies.claims.EPS_F_CFG_READINGS[1]] == "not reproduced"
    assert p10.verdict == "reproduced" and p10.reading_dependent
    table.loc["p3", "rho ABF test"] = 0.1  # below CBE's at the most accurate model: not weak relative to ABF
    p2 = {r.pid: r for r in studies.ensemble_ladder_claims(table, fixed)}["P2"]
    assert "for every model and set: False" in p2.why


# -- D-optimality along the ladder: P17/P18 pooled, P21 one record -------------------------------------------

@pytest.fixture(scope="module")
def small_dopt_ladder():
    train, test = tables.subsample(data.load_subsets("A+B"), 4, 0), tables.subsample(data.load_subsets("C+E"), 2, 0)
    runs = studies.dopt_ladder(train, test, ["Func-33", "Func-49", "Func-72"], ensemble_sizes=[2, 6])
    return runs, studies.dopt_ladder_table(runs)


def test_dopt_ladder_claims_pool_training_and_test_and_record_p21_once(small_dopt_ladder):
    runs, table = small_dopt_ladder
    assert (table["active set"] == "built").all()
    records = studies.dopt_ladder_claims(runs, table)
    pids = [r.pid for r in records]
    assert pids.count("P21") == 1 and pids == ["P15", "P16", "P17", "P18", "P19", "P20", "P21", "P22"]
    by_pid = {r.pid: r for r in records}
    assert "K = 2 ensemble" in by_pid["P21"].ours and "K = 6 ensemble" in by_pid["P21"].ours
    # P18 pools both sets: its rho is that of the training and test atoms together
    best = table["F_RMSE train"].idxmin()
    (g_tr, e_tr), (g_te, e_te) = (runs[best].dopt.values(w, "gamma_atom") for w in ("train", "test"))
    pooled = metrics.spearman(np.concatenate([g_tr, g_te]), np.concatenate([e_tr, e_te]))
    assert f"{best} rho {pooled:.2f}" in by_pid["P18"].ours.split(" | ")[0]
    assert by_pid["P17"].ours.startswith("pooled:") and "test only (secondary)" in by_pid["P17"].ours


def test_p21_without_the_six_member_ensemble_is_not_judged(small_dopt_ladder):
    runs, table = small_dopt_ladder
    trimmed = {p: studies.DoptRun(r.dopt, {2: r.ensembles[2]}, r.rmse_train, r.problem) for p, r in runs.items()}
    p21 = {r.pid: r for r in studies.dopt_ladder_claims(trimmed, table)}["P21"]
    assert p21.verdict == "not testable here" and "K = 6" in p21.why


def test_judging_on_test_subsets_equals_judging_the_subset_alone(sets):
    train, test = sets
    criterion = EnsembleCriterion(4, seed=0)
    full = evaluation.evaluate(criterion, train, test)
    eps = full.summary["threshold"].dropna().to_dict()
    for subsets in (["C"], ["E"], ["C", "E"]):
        restricted = full.on_test_subsets(subsets)
        alone = test.subset(np.flatnonzero(test.table["subset"].isin(subsets)))
        expected = evaluation.evaluate(criterion, train, alone, eps=eps, fit=False)
        pd.testing.assert_frame_equal(restricted.summary, expected.summary)
        for key in ("E_rmse", "F_rmse"):
            assert restricted.rmse_test[key] == pytest.approx(expected.rmse_test[key], rel=1e-10)
    with pytest.raises(ValueError, match="No test configuration belongs to"):
        full.on_test_subsets(["F"])
