"""One record per claim from constructions x seeds x test compositions (uqlib.paper.protocol)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uqlib.paper import claims, protocol

PRESETS = ["Func-33", "Func-72", "Func-222"]


def ladder(rho_cbf_test: list[float], rate_cbe: float = 5.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ladder table of three presets (least to most accurate) and its fixed-threshold rates."""
    f = [180.0, 100.0, 60.0]
    table = pd.DataFrame({
        "F_RMSE train": f, "E_RMSE train": [9.0, 4.0, 1.5], "F_RMSE test": [400.0, 390.0, 395.0],
        "E_RMSE test": [30.0, 29.0, 31.0],
        **{f"rho {c} train": [0.2, 0.3, 0.4] for c in ("CBE", "CBF", "ABF")},
        "rho CBE test": [0.1, 0.15, 0.2], "rho CBF test": rho_cbf_test, "rho ABF test": [0.5, 0.6, 0.7],
        **{f"eps {c}": [1.0, 1.0, 1.0] for c in ("CBE", "CBF", "ABF")},
        "rate CBE (%)": [rate_cbe] * 3, "rate CBF (%)": [10.0, 20.0, 30.0], "rate ABF (%)": [3.0, 6.0, 9.0],
        "rate CBE or CBF (%)": [12.0, 22.0, 32.0], "rate CBF atomic fence (%)": [11.0, 21.0, 31.0]},
        index=pd.Index(PRESETS, name="preset"))
    fixed = pd.DataFrame({"CBE": [5.0] * 3, "CBF": [20.0] * 3, "ABF": [6.0] * 3, "CBE or CBF": [22.0] * 3},
                         index=pd.Index(PRESETS, name="preset"))
    return table, fixed


def fake_protocol(per_cell) -> protocol.LadderProtocol:
    tables, rates = [], []
    for (construction, seed, composition), (table, fixed) in per_cell.items():
        tables.append(protocol._long(table, construction, seed, composition))
        rates.append(protocol._long(fixed, construction, seed, composition))
    return protocol.LadderProtocol(pd.concat(tables, ignore_index=True), pd.concat(rates, ignore_index=True), {},
                                   "pacemaker", "C+E")


def test_seed_means_are_of_the_tables_and_keep_the_ladder_order():
    cells = {("pacemaker", s, "C+E"): ladder([0.7 + 0.01 * s, 0.8, 0.9]) for s in range(3)}
    run = fake_protocol(cells)
    table, fixed = run.mean_tables("pacemaker", "C+E")
    assert list(table.index) == PRESETS
    assert table.loc["Func-33", "rho CBF test"] == pytest.approx(0.71)
    intervals = run.intervals(["rho CBF test"])
    row = intervals.loc[("pacemaker", "C+E", "Func-33")]
    assert row[("rho CBF test", "n_seeds")] == 3 and row[("rho CBF test", "low")] < 0.71 < row[("rho CBF test", "high")]


def test_robust_and_construction_dependent_verdicts_and_seed_counts():
    rising, falling = [0.5, 0.7, 0.9], [0.9, 0.7, 0.5]
    cells = {}
    for seed in range(5):
        # pacemaker rises in four seeds out of five; bootstrap falls in every seed
        cells[("pacemaker", seed, "C+E")] = ladder(falling if seed == 4 else rising)
        cells[("pacemaker", seed, "C")] = ladder(rising)
        cells[("pacemaker", seed, "E")] = ladder(falling)
        cells[("bootstrap", seed, "C+E")] = ladder(falling)
    records = {r.pid: r for r in protocol.judge(fake_protocol(cells))}
    assert len(records) == 11 and set(records) == {f"P{i}" for i in range(1, 12)}
    p7 = records["P7"]  # CBF ranks better than ABF: rho_CBF > rho_ABF on train and test
    assert set(p7.verdicts_by_construction) == {"pacemaker", "bootstrap"}
    assert p7.n_seeds == 5 and 0 <= p7.seeds_holding <= 5
    assert p7.composition.keys() == {"C", "E", "C+E"}
    headline_rho = pd.Series(p7.verdicts_by_construction)
    assert (headline_rho["pacemaker"] != headline_rho["bootstrap"]) == (p7.robustness == "construction-dependent")
    assert p7.provisional_no_f  # a test-set claim: our test set lacks subset F
    assert records["P1"].verdicts_by_construction == {} and records["P1"].robustness == ""
    # a claim judged only on training quantities does not change with the test composition
    assert not records["P6"].composition_dependent


def test_a_rule_that_differs_between_constructions_is_construction_dependent():
    def one_rule(table, fixed):
        holds = table["rho CBF test"].iloc[-1] > table["rho CBF test"].iloc[0]
        return [claims.ClaimRecord("P5", "Fig 3", "rise", "rise", f"{holds}",
                                   "reproduced" if holds else "not reproduced", "rule", "why")]

    cells = {("pacemaker", s, "C+E"): ladder([0.5, 0.7, 0.9]) for s in range(2)}
    cells |= {("bootstrap", s, "C+E"): ladder([0.9, 0.7, 0.5]) for s in range(2)}
    (record,) = protocol.judge(fake_protocol(cells), one_rule)
    assert record.verdict == "reproduced" and record.robustness == "construction-dependent"
    assert record.verdicts_by_construction == {"pacemaker": "reproduced", "bootstrap": "not reproduced"}
    assert record.seeds_holding == 2 and "seed means over 2 seeds" in record.ours
    cells = {k: v for k, v in cells.items() if k[0] == "pacemaker"} | {
        ("subsample", s, "C+E"): ladder([0.5, 0.6, 0.95]) for s in range(2)}
    (record,) = protocol.judge(fake_protocol(cells), one_rule)
    assert record.robustness == "robust"


def test_the_headline_must_have_been_run():
    cells = {("bootstrap", 0, "C+E"): ladder([0.5, 0.7, 0.9])}
    with pytest.raises(ValueError, match="headline"):
        protocol.judge(fake_protocol(cells))
    assert np.isfinite(fake_protocol(cells).tables["rho CBF test"]).all()


def sweep_rows(construction: str, composition: str, repeat: int, threshold_slope: float) -> list[dict]:
    rows = []
    for k in (3, 6, 10, 15, 20):
        for criterion in ("CBE", "CBF", "ABF", "CBE or CBF"):
            falls = criterion != "CBE"
            rows.append({"construction": construction, "composition": composition, "repeat": repeat, "K": k,
                         "criterion": criterion, "threshold": 1.0 - (threshold_slope * k if falls else 0.0),
                         "rho_train": 0.5, "rho_test": 0.6, "selection_rate": 0.1, "train_rate": 0.05,
                         "mean_U_train": 0.1, "mean_U_test": 0.2 + 0.001 * k, "mean_err_train": 0.3 - 0.001 * k,
                         "mean_err_test": 0.4 + 0.001 * k})
    return rows


def test_the_size_sweep_gives_one_record_per_claim_with_repeats_as_seeds():
    rows = []
    for repeat in range(3):
        rows += sweep_rows("pacemaker", "C+E", repeat, 0.01)
        rows += sweep_rows("pacemaker", "C", repeat, 0.01)
        rows += sweep_rows("bootstrap", "C+E", repeat, -0.01)  # thresholds rise with K: P14 fails
    records = {r.pid: r for r in protocol.judge_size_sweep(pd.DataFrame(rows))}
    assert set(records) == {"P12", "P13", "P14"}
    p14 = records["P14"]
    assert p14.verdicts_by_construction["pacemaker"] == "reproduced"
    assert p14.verdicts_by_construction["bootstrap"] != "reproduced"
    assert p14.robustness == "construction-dependent" and p14.n_seeds == 3 and p14.seeds_holding == 3
