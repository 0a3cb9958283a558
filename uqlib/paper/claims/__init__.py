"""The paper's claims P1-P36: rules fixed in advance, records, and the ledger.

Every checkable claim of arXiv:2508.03405 has a number (``P1`` .. ``P36``, the list in
``uqlib/paper/claims_list.md``), an entry in :data:`CLAIMS` (figure, the paper's words,
the paper's value) and a rule in :data:`RULES`: one function per claim that takes plainly
named measured numbers and returns a :class:`ClaimRecord` with the verdict and the rule
that produced it. The rules were written from the paper's wording before any of this
compendium's numbers were looked at; notebooks call them and hold no verdict logic.

Conventions shared by the rules (each rule's text repeats the ones it uses):

- *Accuracy* is the training force RMSE ``f_rmse_train`` (meV/Å) of each model on the
  basis ladder; "rises with accuracy" means Spearman's rho of the quantity against
  ``f_rmse_train`` over every ladder step is at most ``-TREND_RHO`` (-0.8), never a
  comparison of two endpoints. With six models, -0.8 allows one adjacent swap.
- "no trend" means ``|rho| < TREND_RHO``; a "weak" correlation is ``rho < WEAK_RHO`` (0.4,
  the usual weak/moderate boundary).
- "at every accuracy" / "consistently" is judged over every comparison: all hold →
  reproduced; at least ``PARTLY_FRACTION`` (75 %) → partly.
- A claim made of independent parts (listed together in one line of the claim list) is
  reproduced when every part holds and partly when at least half of them hold; where a
  claim has one main statement and a qualifier, "partly" requires the main statement.
- Numbers are judged within a band chosen from the paper's precision: points of
  percentage for rates, decades for grades ("about 1e2" = within one decade).
- Rates are fractions in [0, 1] (shown as %), errors in eV/Å unless a name says meV.

Verdicts that survive the protocol (issue 21). A record's headline verdict is the paper's
member construction (``pacemaker``) on the headline test set; :func:`judge_protocol` judges a
rule under every member construction (:data:`CONSTRUCTIONS`), seed and test composition given
and fills the record's ``verdicts_by_construction`` / ``robustness``, ``composition`` /
``composition_dependent`` and ``seeds_holding`` / ``n_seeds``; rules are judged on seed
means (:func:`seed_mean_inputs`; per-item rules on pooled seeds, :func:`seed_pooled_inputs`),
and :func:`seed_summary` gives a seed mean with its 95 % t-interval. A verdict that depends on
the test set (:data:`TEST_SET_CLAIMS`) is marked ``provisional_no_f``: the paper's test set
holds subset F, ours cannot. :func:`judge_readings` judges a rule under two readings of an
ambiguous definition (eps_F,cfg, P10). Old ``claims.json`` files load with default fields.

A :class:`Finding` is a result of this compendium beyond the paper (scoring, the
active-learning race, clustering on the A+D split); it has its own verdict words and its
own table. :func:`race_comparison` judges the active-learning race by a paired test
across seeds with a Holm correction over criteria.
"""

from __future__ import annotations

from uqlib.paper.claims import findings, ledger, records, robustness, rules
from uqlib.paper.claims.findings import holm, race_comparison  # noqa: F401  (re-exported)
from uqlib.paper.claims.ledger import (  # noqa: F401  (re-exported)
    CLAIM_COLUMNS,
    FINDING_COLUMNS,
    ROBUSTNESS_COLUMNS,
    collect,
    duplicate_pids,
    findings_table,
    missing_pids,
    parse_claims_list,
    record_from_dict,
    records_table,
    tally,
    tally_by_construction,
    tally_by_robustness,
    tally_change,
    tally_note,
    verdict_marks,
    write_records,
)
from uqlib.paper.claims.records import (  # noqa: F401  (re-exported)
    CLAIMS,
    CLAIMS_LIST_PATH,
    CONSTRUCTIONS,
    ENSEMBLE_CLAIMS,
    FINDING_VERDICTS,
    NO_COMPOSITION,
    NO_CONSTRUCTION,
    PAPER_CONSTRUCTION,
    PAPER_CROSSOVER,
    PAPER_E_RMSE,
    PAPER_F_RMSE,
    PAPER_SELF_CONTRADICTIONS,
    PARTLY_FRACTION,
    ROBUSTNESS,
    TEST_SET_CLAIMS,
    TREND_RHO,
    VERDICTS,
    WEAK_RHO,
    ClaimInputError,
    ClaimRecord,
    Finding,
    judge,
    not_testable,
    trend,
)
from uqlib.paper.claims.robustness import (  # noqa: F401  (re-exported)
    SEED_MEAN,
    ProtocolKey,
    SeedSummary,
    judge_protocol,
    merge_protocol_records,
    seed_mean_inputs,
    seed_pooled_inputs,
    seed_summary,
    seed_table,
)
from uqlib.paper.claims.rules import (  # noqa: F401  (re-exported)
    DOPT_CFG_FLOOR,
    EPS_F_CFG_READINGS,
    MIN_TOY_GEOMETRIES,
    RULES,
    _crossings,
    judge_readings,
    p1_training_rmse,
    p2_cbe_weak,
    p3_test_unaffected,
    p4_force_beats_energy,
    p5_rho_rises,
    p6_abf_train_low,
    p7_cbf_beats_abf,
    p8_test_above_train,
    p9_rate_rises,
    p10_cbf_flags_more,
    p11_fixed_thresholds,
    p12_rates_settle,
    p13_ensemble_size_effects,
    p14_thresholds_fall,
    p15_gamma_range,
    p16_gamma_correlations,
    p17_flat_below_one,
    p18_atom_weak,
    p19_dopt_configurations,
    p20_dopt_atoms_rise,
    p21_dopt_vs_ensemble,
    p22_misclassified_atoms,
    p23_ensemble_ad,
    p24_bimodal_errors,
    p25_dopt_ad,
    p26_gamma_weaker,
    p27_gamma_collapse,
    p28_toy_grades,
    p29_union_underestimates,
    p30_minimum_grade,
    p31_surface_atoms,
    p32_global_misses,
    p33_new_atoms_error,
    p34_outlier_filter,
    p35_core_active_set,
    p36_clustered_improves,
    settling_k,
)

# every public name of the five modules (each lists its own)
__all__ = sorted({*records.__all__, *rules.__all__, *robustness.__all__, *findings.__all__, *ledger.__all__})
