"""Each claim rule, on synthetic inputs, produces each of its verdicts; the ledger and the race test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uqlib.paper import claims
from uqlib.paper.claims import ClaimInputError

R, PART, NOT = "reproduced", "partly", "not reproduced"
F = [170.0, 140.0, 110.0, 90.0, 70.0, 50.0]  # training F_RMSE (meV/Å), least to most accurate
UP = np.linspace(0.1, 0.6, 6)  # rises with accuracy along the ladder
K = [3, 5, 10, 15, 20, 30]
rng = np.random.default_rng(0)


def crit(cbe, cbf, abf):
    return {"CBE": np.asarray(cbe, float), "CBF": np.asarray(cbf, float), "ABF": np.asarray(abf, float)}


def const(x, n=6):
    return np.full(n, float(x))


def one_off(x, at=2, value=0.95, n=6):
    arr = const(x, n)
    arr[at] = value
    return arr


def hockey(flat_above=False, n=200):
    below = rng.uniform(0.01, 1, n)
    above = np.logspace(0.01, 3, n)
    gamma = np.concatenate([below, above])
    err_above = rng.uniform(0, 1, n) if flat_above else np.log10(above) + rng.normal(0, 0.1, n)
    return gamma, np.concatenate([rng.uniform(0, 1, n), err_above])


def split_errors(modes, n=400):
    return 10 ** np.concatenate([rng.normal(modes[0], 0.3, n), rng.normal(modes[1], 0.3, n)])


ERRS = np.concatenate([np.full(100, 1.0), np.full(100, 0.01)])  # 100 high-error, 100 low-error atoms
HALF = np.tile([True, False], 100)  # flags half of each group
PERFECT = np.arange(200) < 100  # flags exactly the high-error atoms

LOW_CBE = {"Func-15": 0.1, "Func-945": 0.3}

CASES = {
    "P1": [(dict(f_rmse_func15=171, e_rmse_func15=9, f_rmse_func945=51, e_rmse_func945=1.5), R),
           (dict(f_rmse_func15=250, e_rmse_func15=12, f_rmse_func945=100, e_rmse_func945=3), PART),
           (dict(f_rmse_func15=100, e_rmse_func15=5, f_rmse_func945=120, e_rmse_func945=6), NOT)],
    "P2": [(dict(rho_cbe_train={"Func-15": 0.2, "Func-945": 0.3}, rho_cbe_test=LOW_CBE), R),
           (dict(rho_cbe_train={"Func-15": 0.5, "Func-945": 0.3}, rho_cbe_test=LOW_CBE), PART),
           (dict(rho_cbe_train={"Func-15": 0.2, "Func-945": 0.7}, rho_cbe_test=LOW_CBE), NOT)],
    "P3": [(dict(f_rmse_train_func15=170, f_rmse_train_func945=51, f_rmse_test_func15=200, f_rmse_test_func945=210), R),
           (dict(f_rmse_train_func15=170, f_rmse_train_func945=51, f_rmse_test_func15=300, f_rmse_test_func945=200),
            PART),
           (dict(f_rmse_train_func15=170, f_rmse_train_func945=51, f_rmse_test_func15=300, f_rmse_test_func945=100),
            NOT)],
    "P4": [(dict(rho_train=crit(const(0.1), const(0.8), const(0.5)), rho_test=crit(const(0.1), const(0.8), const(0.5))),
            R),
           (dict(rho_train=crit(const(0.1), const(0.8), const(0.5)),
                 rho_test=crit(one_off(0.1), const(0.8), const(0.5))), PART),
           (dict(rho_train=crit(const(0.9), const(0.8), const(0.5)), rho_test=crit(const(0.9), const(0.8), const(0.5))),
            NOT)],
    "P5": [(dict(f_rmse_train=F, rho_train=crit(0.5 * UP, 0.3 + 0.5 * UP, const(0.5)),
                 rho_test=crit(UP, 0.2 + UP, UP)), R),
           (dict(f_rmse_train=F, rho_train=crit(UP, 0.2 + UP, UP), rho_test=crit(0.5 * UP, 0.3 + 0.5 * UP, 0.5 * UP)),
            PART),
           (dict(f_rmse_train=F, rho_train=crit(UP, UP, UP), rho_test=crit(UP[::-1], UP, UP)), NOT)],
    "P6": [(dict(f_rmse_train=F, rho_train_abf=[0.5, 0.4, 0.55, 0.45, 0.5, 0.42]), R),
           (dict(f_rmse_train=F, rho_train_abf=UP), PART),
           (dict(f_rmse_train=F, rho_train_abf=[0.5, 0.4, 0.75, 0.45, 0.5, 0.42]), NOT)],
    "P7": [(dict(rho_train=crit(0, const(0.8), const(0.5)), rho_test=crit(0, const(0.8), const(0.5))), R),
           (dict(rho_train=crit(0, const(0.8), const(0.5)), rho_test=crit(0, const(0.8), one_off(0.5))), PART),
           (dict(rho_train=crit(0, const(0.4), const(0.5)), rho_test=crit(0, const(0.4), const(0.5))), NOT)],
    "P8": [(dict(rho_train=crit(const(0.1), const(0.2), const(0.3)), rho_test=crit(const(0.4), const(0.5), const(0.6))),
            R),
           (dict(rho_train=crit(one_off(0.1), const(0.2), const(0.3)),
                 rho_test=crit(const(0.4), const(0.5), const(0.6))), PART),
           (dict(rho_train=crit(const(0.7), const(0.8), const(0.9)),
                 rho_test=crit(const(0.4), const(0.5), const(0.6))), NOT)],
    "P9": [(dict(f_rmse_train=F, rate_adaptive=crit(UP, UP, UP)), R),
           (dict(f_rmse_train=F, rate_adaptive=crit(UP, UP, [0.1, 0.3, 0.2, 0.1, 0.4, 0.35])), PART),
           (dict(f_rmse_train=F, rate_adaptive=crit(UP, UP, UP[::-1])), NOT)],
    "P10": [(dict(f_rmse_train=F, rate_cbe=0.5 * UP, rate_cbf=UP), R),
            (dict(f_rmse_train=F, rate_cbe=one_off(0.1, at=0, value=0.5), rate_cbf=UP), PART),
            (dict(f_rmse_train=F, rate_cbe=UP, rate_cbf=0.5 * UP), NOT)],
    "P11": [(dict(f_rmse_train=F, rate_adaptive=crit(UP[::-1], UP[::-1], UP[::-1]),
                  rate_fixed=crit(const(0.35), const(0.35), const(0.35))), R),
            (dict(f_rmse_train=F, rate_adaptive=crit(UP[::-1], UP[::-1], UP[::-1]),
                  rate_fixed=crit(*[[0.25, 0.3, 0.35, 0.35, 0.4, 0.45]] * 3)), PART),
            (dict(f_rmse_train=F, rate_adaptive=crit(UP[::-1], UP[::-1], UP[::-1]),
                  rate_fixed=crit(UP[::-1] + 0.1, UP[::-1] + 0.1, UP[::-1] + 0.1)), NOT)],
    "P12": [(dict(k_values=K, rate_mean=crit(const(0.3), *[[0.1, 0.2, 0.4, 0.41, 0.4, 0.4]] * 2),
                  rate_std=crit(*[const(0.005)] * 3)), R),
            (dict(k_values=K, rate_mean=crit([0.1, 0.2, 0.3, 0.3, 0.3, 0.3], *[[0.1, 0.2, 0.4, 0.41, 0.4, 0.4]] * 2),
                  rate_std=crit(*[const(0.005)] * 3)), PART),
            (dict(k_values=K, rate_mean=crit([0.1, 0.2, 0.3, 0.3, 0.3, 0.3], const(0.4), const(0.4)),
                  rate_std=crit(*[const(0.005)] * 3)), NOT)],
    "P13": [(dict(k_values=K, rho_train=crit(*[[0.5, 0.52, 0.49, 0.51, 0.48, 0.5]] * 3),
                  rho_test=crit(*[[0.6, 0.58, 0.61, 0.59, 0.6, 0.6]] * 3), err_train=crit(*[UP[::-1]] * 3),
                  err_test=crit(*[UP] * 3), mean_u_test_cbf=UP), R),
            (dict(k_values=K, rho_train=crit(*[UP] * 3), rho_test=crit(*[UP] * 3), err_train=crit(*[UP[::-1]] * 3),
                  err_test=crit(*[UP] * 3), mean_u_test_cbf=UP), PART),
            (dict(k_values=K, rho_train=crit(*[UP] * 3), rho_test=crit(*[UP] * 3), err_train=crit(*[const(1)] * 3),
                  err_test=crit(*[const(1)] * 3), mean_u_test_cbf=UP[::-1]), NOT)],
    "P14": [(dict(k_values=K, eps=crit(const(0.01), UP[::-1], UP[::-1])), R),
            (dict(k_values=K, eps=crit(UP[::-1], UP[::-1], UP[::-1])), PART),
            (dict(k_values=K, eps=crit(const(0.01), UP, UP[::-1])), NOT)],
    "P15": [(dict(gamma_max_func15=150, gamma_max_func945=2e6), R),
            (dict(gamma_max_func15=10, gamma_max_func945=1e4), PART),
            (dict(gamma_max_func15=10, gamma_max_func945=50), NOT)],
    "P16": [(dict(rho_force_func15=0.3, rho_force_func945=0.6, rho_energy_func15=0.1, rho_energy_func945=0.4), R),
            (dict(rho_force_func15=0.3, rho_force_func945=0.6, rho_energy_func15=0.1, rho_energy_func945=0.05), PART),
            (dict(rho_force_func15=0.6, rho_force_func945=0.3, rho_energy_func15=0.7, rho_energy_func945=0.5), NOT)],
    "P17": [(dict(panels={f"p{i}": hockey() for i in range(4)}), R),
            (dict(panels={**{f"p{i}": hockey() for i in range(2)}, **{f"q{i}": hockey(True) for i in range(2)}}), PART),
            (dict(panels={f"p{i}": hockey(True) for i in range(4)}), NOT)],
    "P18": [(dict(gamma_atom={"Func-15": np.linspace(0.1, 3, 100), "Func-945": np.linspace(0.1, 3, 100)},
                  err_f_atom={"Func-15": rng.uniform(0, 0.1, 100), "Func-945": rng.uniform(0, 0.1, 100)},
                  low_error=0.05), R),
            (dict(gamma_atom={"Func-15": np.linspace(0.1, 3, 100), "Func-945": np.linspace(0.1, 3, 100)},
                  err_f_atom={"Func-15": np.linspace(0.001, 0.03, 100), "Func-945": np.linspace(0.001, 0.03, 100)},
                  low_error=0.05), PART),
            (dict(gamma_atom={"Func-15": np.linspace(0.1, 3, 100), "Func-945": np.linspace(0.1, 3, 100)},
                  err_f_atom={"Func-15": np.linspace(0.01, 0.3, 100), "Func-945": np.linspace(0.01, 0.3, 100)},
                  low_error=0.02), NOT)],
    "P19": [(dict(cfg_rate=[0.95, 0.99]), R), (dict(cfg_rate=[0.85, 0.95]), PART), (dict(cfg_rate=[0.5, 0.95]), NOT)],
    "P20": [(dict(f_rmse_train=F, atom_rate=np.linspace(0.05, 0.7, 6)), R),
            (dict(f_rmse_train=F, atom_rate=np.linspace(0.2, 0.4, 6)), PART),
            (dict(f_rmse_train=F, atom_rate=np.linspace(0.7, 0.05, 6)), NOT)],
    "P21": [(dict(dopt_cfg_rate=0.995, dopt_atom_rate=0.64, ens_cfg_rate={"CBE": 0.67, "CBF": 0.84},
                  ens_atom_rate=0.55, ensemble_size=6), R),
            (dict(dopt_cfg_rate=0.9, dopt_atom_rate=0.3, ens_cfg_rate={"CBE": 0.2, "CBF": 0.3},
                  ens_atom_rate=0.1, ensemble_size=6), PART),
            (dict(dopt_cfg_rate=0.5, dopt_atom_rate=0.64, ens_cfg_rate={"CBE": 0.67, "CBF": 0.84},
                  ens_atom_rate=0.55, ensemble_size=6), NOT)],
    "P22": [(dict(flagged={"D-opt": HALF, "ABF": HALF}, err_f_atom={"D-opt": ERRS, "ABF": ERRS}), R),
            (dict(flagged={"D-opt": HALF, "ABF": PERFECT}, err_f_atom={"D-opt": ERRS, "ABF": ERRS}), PART),
            (dict(flagged={"D-opt": PERFECT, "ABF": PERFECT}, err_f_atom={"D-opt": ERRS, "ABF": ERRS}), NOT)],
    "P23": [(dict(cfg_rate_cbf=0.0005, atom_rate_abf=0.002), R), (dict(cfg_rate_cbf=0.03, atom_rate_abf=0.04), PART),
            (dict(cfg_rate_cbf=0.2, atom_rate_abf=0.01, cfg_rate_rule=0.7), NOT)],
    "P24": [(dict(err_f_atom_train=split_errors((-4, -1)), err_f_atom_test=split_errors((-4.2, -1.1))), R),
            (dict(err_f_atom_train=split_errors((-4, -1)), err_f_atom_test=split_errors((-6, -2.5))), PART),
            (dict(err_f_atom_train=10 ** rng.normal(-2, 0.5, 800), err_f_atom_test=split_errors((-4, -1))), NOT)],
    "P25": [(dict(dopt_cfg_rate=0.75, dopt_atom_rate=0.10, ens_cfg_rule_rate=0.5, ens_atom_rate=0.01), R),
            (dict(dopt_cfg_rate=0.6, dopt_atom_rate=0.3, ens_cfg_rule_rate=0.5, ens_atom_rate=0.01), PART),
            (dict(dopt_cfg_rate=0.3, dopt_atom_rate=0.1, ens_cfg_rule_rate=0.5, ens_atom_rate=0.01), NOT)],
    "P26": [(dict(rho_gamma_cfg=0.3, rho_cbf=0.8, rho_gamma_atom=0.2, rho_abf=0.6), R),
            (dict(rho_gamma_cfg=0.3, rho_cbf=0.8, rho_gamma_atom=0.7, rho_abf=0.6), PART),
            (dict(rho_gamma_cfg=0.9, rho_cbf=0.8, rho_gamma_atom=0.7, rho_abf=0.6), NOT)],
    "P27": [(dict(gamma_ad=np.logspace(-1, 1, 20), gamma_max_ab=1e6), R),
            (dict(gamma_ad=np.logspace(-0.3, 3, 20), gamma_max_ab=1e5), PART),
            (dict(gamma_ad=np.logspace(-1, 5, 20), gamma_max_ab=1e5), NOT)],
    "P29": [(dict(underestimated_share=0.3, overestimated_share=0.02), R),
            (dict(underestimated_share=0.3, overestimated_share=0.1), PART),
            (dict(underestimated_share=0.1, overestimated_share=0.3), NOT)],
    "P30": [(dict(novel_rate_union=0.3, novel_rate_min=0.9, known_rate_single=0.8, known_rate_min=0.05), R),
            (dict(novel_rate_union=0.3, novel_rate_min=0.9, known_rate_single=0.05, known_rate_min=0.1), PART),
            (dict(novel_rate_union=0.9, novel_rate_min=0.3, known_rate_single=0.05, known_rate_min=0.1), NOT)],
    "P31": [(dict(surface_rate_global=0.1, surface_rate_clustered=0.5), R),
            (dict(surface_rate_global=0.1, surface_rate_clustered=0.15), PART),
            (dict(surface_rate_global=0.3, surface_rate_clustered=0.2), NOT)],
    "P32": [(dict(gamma_global=const(0.5, 100), err_f_atom=const(1.0, 100), high_error=0.5), R),
            (dict(gamma_global=np.where(np.arange(100) < 30, 0.5, 2.0), err_f_atom=const(1.0, 100), high_error=0.5),
             PART),
            (dict(gamma_global=const(2.0, 100), err_f_atom=const(1.0, 100), high_error=0.5), NOT)],
    "P33": [(dict(err_new=1 + rng.uniform(0, 1, 50), err_rest=rng.uniform(0, 0.5, 500)), R),
            (dict(err_new=rng.normal(0.25, 1, 3000), err_rest=rng.normal(0, 1, 3000)), PART),
            (dict(err_new=rng.uniform(0, 0.5, 50), err_rest=1 + rng.uniform(0, 1, 500)), NOT)],
    "P34": [(dict(cfg_rate_filtered=0.8, cfg_rate_keep_all=0.6, atom_rate_filtered=0.3, atom_rate_keep_all=0.2), R),
            (dict(cfg_rate_filtered=0.62, cfg_rate_keep_all=0.6, atom_rate_filtered=0.3, atom_rate_keep_all=0.2), PART),
            (dict(cfg_rate_filtered=0.5, cfg_rate_keep_all=0.6, atom_rate_filtered=0.1, atom_rate_keep_all=0.2), NOT)],
    "P35": [(dict(gamma_test_all_atoms_set=const(0.5, 10), gamma_test_core_set=const(2.0, 10)), R),
            (dict(gamma_test_all_atoms_set=const(0.5, 10), gamma_test_core_set=const(0.7, 10)), PART),
            (dict(gamma_test_all_atoms_set=const(0.5, 10), gamma_test_core_set=const(0.3, 10)), NOT)],
    "P36": [(dict(detected_global=0.2, detected_clustered=0.6), R),
            (dict(detected_global=0.2, detected_clustered=0.3), PART),
            (dict(detected_global=0.3, detected_clustered=0.2), NOT)],
}


@pytest.mark.parametrize(("pid", "kwargs", "expected"),
                         [(pid, kw, v) for pid, cases in CASES.items() for kw, v in cases],
                         ids=[f"{pid}-{v}" for pid, cases in CASES.items() for _, v in cases])
def test_each_rule_gives_each_verdict(pid, kwargs, expected):
    record = claims.RULES[pid](**kwargs)
    assert record.pid == pid and record.verdict == expected, record.why
    assert record.rule and record.ours and record.paper == claims.CLAIMS[pid][2]


def test_every_testable_rule_has_cases_for_all_three_verdicts():
    untestable = {"P28"}
    for pid in set(claims.RULES) - untestable:
        assert {v for _, v in CASES.get(pid, [])} == {R, PART, NOT}, pid


def test_p28_is_not_testable_with_a_reason():
    record = claims.RULES["P28"]()
    assert record.verdict == "not testable here" and "coordinates" in record.why


def test_rules_with_too_little_data_say_not_testable():
    assert claims.p32_global_misses(const(0.5, 5), const(1.0, 5), 0.5).verdict == "not testable here"
    assert claims.p33_new_atoms_error([1.0, 2.0], const(0.1, 20)).verdict == "not testable here"


def test_every_listed_claim_has_a_rule_and_an_entry():
    listed = claims.parse_claims_list(claims.FIXTURE_PATH)
    assert list(listed) == [f"P{i}" for i in range(1, 37)]
    assert set(claims.RULES) == set(claims.CLAIMS) == set(listed)


def test_trend_uses_every_step_not_the_endpoints():
    # same endpoints, but the middle goes the other way: no monotone rise
    zigzag = [0.1, 0.5, 0.4, 0.3, 0.2, 0.6]
    assert claims.trend(UP, F) == pytest.approx(-1.0)
    assert claims.trend(zigzag, F) > -claims.TREND_RHO


@pytest.mark.parametrize(("call", "message"), [
    (lambda: claims.p9_rate_rises(F, crit(UP, UP, UP[:4])), "expected 6"),
    (lambda: claims.p19_dopt_configurations([0.5, 95.0]), "fraction"),
    (lambda: claims.p4_force_beats_energy({"CBE": UP}, {"CBE": UP}), "lacks the criteria"),
    (lambda: claims.p6_abf_train_low(F, [0.1, np.nan, 0.2, 0.3, 0.1, 0.2]), "finite"),
])
def test_bad_inputs_are_clear_errors(call, message):
    with pytest.raises(ClaimInputError, match=message):
        call()


def test_record_rejects_unknown_pid_and_verdict():
    with pytest.raises(ClaimInputError, match="P37"):
        claims.ClaimRecord("P37", "", "", "", "", "reproduced", "", "")
    with pytest.raises(ClaimInputError, match="verdict"):
        claims.ClaimRecord("P1", "", "", "", "", "supported", "", "")
    with pytest.raises(ClaimInputError, match="finding verdict"):
        claims.Finding("k", "s", "o", "reproduced", "r", "w")


def test_ledger_round_trip_sorted_by_number_with_missing_pids(tmp_path):
    first = [claims.RULES["P15"](**CASES["P15"][0][0]), claims.RULES["P28"]()]
    second = [claims.RULES["P2"](**CASES["P2"][2][0])]
    finding = claims.Finding("race A+B: CBF vs random", "s", "o", "inconclusive", "r", "w")
    claims.write_records(tmp_path / "03_x", "03_x", first, findings=[finding])
    claims.write_records(tmp_path / "01_x", "01_x", second)
    table, findings, missing_nb, missing = claims.collect(tmp_path, ["01_x", "03_x", "09_none"])
    assert list(table["pid"]) == ["P2", "P15", "P28"]  # numeric order, not text order
    assert list(findings["key"]) == ["race A+B: CBF vs random"] and missing_nb == ["09_none"]
    assert "P1" in missing and "P2" not in missing and len(missing) == 33
    counts = claims.tally(table)
    assert counts.to_dict() == {"reproduced": 1, "partly": 0, "not reproduced": 1, "not testable here": 1}
    assert claims.tally(findings, claims.FINDING_VERDICTS)["inconclusive"] == 1


def test_missing_pids_against_a_fixture_copy(tmp_path):
    fixture = tmp_path / "list.md"
    fixture.write_text("| # | fig | claim |\n|---|---|---|\n| P1 | Fig 2 | a |\n| P36 | Abstract | b |\n")
    record = claims.RULES["P1"](**CASES["P1"][0][0])
    assert claims.missing_pids([record], fixture) == ["P36"]
    assert claims.missing_pids(pd.DataFrame({"pid": ["P1", "P36"]}), fixture) == []


def test_holm_matches_the_textbook_example():
    np.testing.assert_allclose(claims.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


def test_race_supported_only_with_a_significant_paired_difference():
    random = np.array([100.0, 104.0, 98.0, 101.0, 103.0])
    race = {"random": random, "CBF": random - 10 + np.array([0.5, -0.5, 0.2, 0.0, -0.3]),
            "gamma": random + np.array([1.0, -2.0, 1.5, -1.0, 0.5]), "CBE": random + 5}
    table, findings = claims.race_comparison(race, label="A+B")
    verdicts = {f.key.split(": ")[1].split(" vs")[0]: f.verdict for f in findings}
    assert verdicts == {"CBF": "supported", "gamma": "not supported", "CBE": "not supported"}
    assert (table["p Holm"] >= table["p (paired t)"]).all() and "std diff (meV/Å)" in table


def test_race_with_two_seeds_is_inconclusive():
    _, findings = claims.race_comparison({"random": [100.0, 101.0], "CBF": [80.0, 82.0]})
    assert findings[0].verdict == "inconclusive" and "2 seeds" in findings[0].why


def test_race_better_on_average_but_noisy_is_inconclusive():
    random = np.array([100.0, 100.0, 100.0, 100.0])
    _, findings = claims.race_comparison({"random": random, "ABF": random + np.array([-20.0, 15.0, -10.0, 5.0])})
    assert findings[0].verdict == "inconclusive"


def test_judge_records_a_run_too_small_for_a_rule_as_not_testable():
    record = claims.judge("P14", claims.p14_thresholds_fall, [3, 5], {"CBE": [1, 2], "CBF": [1, 2], "ABF": [1, 2]})
    assert record.verdict == "not testable here" and "not judged in this run" in record.why + record.ours + record.rule
    judged = claims.judge("P14", claims.p14_thresholds_fall, [3, 5, 10],
                          {"CBE": [1, 1, 1], "CBF": [3, 2, 1], "ABF": [3, 2, 1]})
    assert judged.verdict != "not testable here"
