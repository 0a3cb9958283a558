"""The summary blocks of a page are built from its claim records, never typed."""

from __future__ import annotations

from dataclasses import asdict, replace

import pandas as pd
import pytest

from uqlib.paper import claims, findings
from uqlib.paper.claims.records import _record as claim_record


def _record(**changes) -> claims.ClaimRecord:
    base = claim_record("P23", "CBF 0.100% of configurations, ABF 0.200% of atoms", "reproduced",
                        "reproduced if both are within a factor 10", "largest 0.20%")
    return replace(base, **changes)


def test_the_block_states_the_papers_words_and_value_ours_the_verdict_and_why():
    block = findings.claim_block(_record())
    assert block.startswith(":::{admonition} P23 (Fig 6a-b): reproduced")
    assert ":class: finding-block verdict-reproduced" in block
    assert "0.076 % configurations" in block  # the paper's value, from claims.CLAIMS
    assert "CBF 0.100% of configurations" in block and "largest 0.20%" in block
    assert "member construction only" in block  # an ensemble claim, no other construction judged


def test_changing_a_record_changes_its_block():
    before = findings.claim_block(_record())
    after = findings.claim_block(_record(ours="CBF 9.900% of configurations", verdict="not reproduced",
                                         why="largest 9.90%"))
    assert before != after
    assert "9.900%" in after and "0.100%" not in after
    assert "verdict-not-reproduced" in after and "not reproduced" in after.splitlines()[0]


def test_robustness_seeds_and_test_sets_are_said():
    record = _record(verdicts_by_construction={"pacemaker": "reproduced", "bootstrap": "partly"},
                     robustness="construction-dependent", n_seeds=5, seeds_holding=3,
                     composition={"C": "reproduced", "C+E": "partly"}, composition_dependent=True)
    block = findings.claim_block(record, claims.SeedSummary(0.012, 0.010, 0.014, 5))
    assert "construction-dependent: the verdict changes" in block and "bootstrap: partly" in block
    assert "holds in 3 of 5 seeds" in block
    assert "seed mean 0.012, 95 % interval \\[0.01, 0.014\\] over 5 seeds" in block
    assert "By test set:** C: reproduced, C+E: partly" in block
    robust = findings.claim_block(_record(verdicts_by_construction={"pacemaker": "reproduced",
                                                                   "bootstrap": "reproduced"}, robustness="robust"))
    assert "robust: the same verdict under every member construction" in robust


def test_markdown_and_dollar_signs_in_records_are_escaped():
    block = findings.claim_block(_record(ours="cost $5 *per* atom_i <b>"))
    assert "\\$5 \\*per\\* atom\\_i \\<b\\>" in block


def test_findings_markdown_orders_claims_and_rejects_seeds_for_claims_not_on_the_page():
    records = [_record(), claims.not_testable("P4", "no test set")]
    text = findings.findings_markdown(records)
    assert text.index("P4 (") < text.index("P23 (")
    with pytest.raises(KeyError, match="P5"):
        findings.findings_markdown(records, seeds={"P5": claims.SeedSummary(1, 0, 2, 3)})
    with pytest.raises(ValueError, match="no claim records"):
        findings.findings_markdown([])
    with pytest.raises(TypeError, match="ClaimRecord"):
        findings.claim_block({"pid": "P23"})


def test_findings_beyond_the_paper_get_their_own_block():
    finding = claims.Finding("race A+B: CBF vs random", "CBF beats random", "RMSE 10 vs 12", "supported",
                             "paired test", "p = 0.01")
    text = findings.findings_markdown([], [finding])
    assert "race A+B: CBF vs random: supported" in text and "verdict-supported" in text


def test_glue_findings_glues_markdown(monkeypatch):
    glued = {}
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display=True: glued.update({key: value}))
    assert findings.glue_findings([_record()]) is None  # nothing shown under the cell
    assert glued["findings"].data == findings.findings_markdown([_record()])


def test_compact_table_shows_one_short_row_per_claim_with_a_coloured_verdict():
    html = findings.compact_table([_record(), claims.not_testable("P4", "no test set")], "Claims").to_html()
    assert html.index(">P4<") < html.index(">P23<")
    assert 'class="verdict verdict-reproduced"' in html and "verdict-not-testable-here" in html
    assert "<caption>Claims</caption>" in html and "rule" not in html


def test_robust_disagreements_leave_out_verdicts_a_protocol_choice_explains():
    rows = [replace(_record(), verdict="not reproduced", why="flags 5 %", robustness="robust"),
            replace(claim_record("P21", "-", "not reproduced", "-", "one construction"), robustness=""),
            replace(claim_record("P11", "-", "not reproduced", "-", "crossing at 60 meV/Å"),
                    robustness="construction-dependent"),
            replace(claim_record("P15", "-", "not reproduced", "-", "3 decades"), robustness=""),
            claim_record("P19", "-", "reproduced", "-", "all above 90 %")]
    table = pd.DataFrame([asdict(r) for r in rows])
    lines = findings.robust_disagreements(table)
    assert len(lines) == 2 and lines[0].startswith("**P23**") and "flags 5 %" in lines[0]
    assert lines[1].startswith("**P15**")
    assert findings.robust_disagreements(table.iloc[:0]) == []
    shown = findings.robust_disagreements_table(table)
    assert list(shown["P"]) == ["P23", "P15"] and list(shown["cause"]) == ["flags 5 %", "3 decades"]


def test_an_ensemble_claim_judged_under_one_construction_says_so():
    p23 = findings.claim_block(_record())  # P23 is an ensemble claim (Fig 6a-b)
    assert "judged under this run's member construction only" in p23
    p15 = findings.claim_block(claim_record("P15", "up to 1e3", "partly", "-", "1 decade."))
    assert "no ensemble involved" in p15 and "1 decade.." not in p15
