"""What a page found, in words: one short block per claim, built from its claim records.

Each analysis notebook ends with the blocks of the claims it judged, glued with myst-nb
(:func:`glue_findings`, shown in the page by ``{glue:md}`` with ``:format: myst``), so that
the prose of a summary is computed, never typed: the paper's words and value, ours (with the
seed mean and its interval when the notebook gives one), the verdict and how robust it is to
the member construction, the test set and the seeds (:class:`uqlib.paper.claims.ClaimRecord`).

The landing page shows the ledger's tally with robust and construction-dependent verdicts
apart and the robust disagreements with their one-line causes (:func:`robust_disagreements`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

from uqlib.paper.claims import ENSEMBLE_CLAIMS, VERDICTS, ClaimRecord, Finding, SeedSummary, verdict_marks

__all__ = ["FINDINGS_KEY", "claim_block", "compact_table", "finding_block", "findings_markdown", "glue_findings",
           "robust_disagreements", "robust_disagreements_table", "summary_table_html", "verdict_class", "verdict_html"]

FINDINGS_KEY = "findings"  # the glue key every analysis notebook uses for its blocks
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_$<>\[\]{}|#])")


def _plain(text: object) -> str:
    """``text`` with the characters Markdown (and MyST's dollar math and roles) would interpret escaped, and no
    full stop at its end (the blocks add their own)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()).rstrip("."))


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict's colour: ``verdict-reproduced``, ``verdict-not-reproduced``, ..."""
    return "verdict-" + re.sub(r"[^a-z]+", "-", verdict.lower()).strip("-")


def _robustness_text(record: ClaimRecord) -> str:
    by = ", ".join(f"{k}: {v}" for k, v in record.verdicts_by_construction.items())
    if record.robustness == "robust":
        return f"robust: the same verdict under every member construction judged ({by})"
    if record.robustness == "construction-dependent":
        return f"construction-dependent: the verdict changes with how the members are built ({by})"
    if by:
        return f"judged under one member construction only ({by})"
    if record.pid in ENSEMBLE_CLAIMS:
        return "judged under this run's member construction only (no other construction was judged)"
    return "no ensemble involved: the member construction cannot change it"


def _seed_text(record: ClaimRecord, seeds: SeedSummary | None) -> str:
    parts = []
    if seeds is not None:
        parts.append(f"seed mean {seeds.mean:.3g}" + (f", 95 % interval [{seeds.low:.3g}, {seeds.high:.3g}]"
                                                      if seeds.n_seeds > 1 else "") + f" over {seeds.n_seeds} seeds")
    if record.n_seeds:
        parts.append(f"the rule holds in {record.seeds_holding} of {record.n_seeds} seeds judged alone")
    return "; ".join(parts)


def claim_block(record: ClaimRecord, seeds: SeedSummary | None = None) -> str:
    """One claim as a short MyST block: the paper's words and value, ours, the verdict and its robustness.

    ``seeds``: the seed mean and 95 % interval (:func:`uqlib.paper.claims.seed_summary`) of the
    claim's headline quantity, when the notebook measured it over several seeds.
    """
    if not isinstance(record, ClaimRecord):
        raise TypeError(f"claim_block takes a ClaimRecord from uqlib.paper.claims, got {type(record).__name__}")
    marks = verdict_marks(record)
    title = f"{record.pid} ({_plain(record.figure)}): {record.verdict}" + (f", {marks}" if marks else "")
    lines = [f"**The paper:** {_plain(record.claim)}; *{_plain(record.paper)}*.",
             f"**Ours:** {_plain(record.ours)}."]
    if seed_text := _seed_text(record, seeds):
        lines.append(f"**Over seeds:** {_plain(seed_text)}.")
    lines.append(f"**Verdict:** {record.verdict}; {_plain(_robustness_text(record))}.")
    if record.composition:
        lines.append("**By test set:** " + _plain(", ".join(f"{k}: {v}" for k, v in record.composition.items()))
                     + ".")
    lines.append(f"**Why:** {_plain(record.why)}.")
    body = "\n\n".join(lines)
    return (f":::{{admonition}} {title}\n:class: finding-block {verdict_class(record.verdict)}\n\n{body}\n:::\n")


def finding_block(finding: Finding) -> str:
    """One result beyond the paper as a short MyST block: the statement, ours, the verdict and why."""
    if not isinstance(finding, Finding):
        raise TypeError(f"finding_block takes a Finding from uqlib.paper.claims, got {type(finding).__name__}")
    body = "\n\n".join([f"**Statement:** {_plain(finding.statement)}.", f"**Ours:** {_plain(finding.ours)}.",
                        f"**Verdict:** {finding.verdict}.", f"**Why:** {_plain(finding.why)}."])
    return (f":::{{admonition}} {_plain(finding.key)}: {finding.verdict}\n"
            f":class: finding-block {verdict_class(finding.verdict)}\n\n{body}\n:::\n")


def findings_markdown(records: Sequence[ClaimRecord], findings: Sequence[Finding] = (),
                      seeds: Mapping[str, SeedSummary] | None = None) -> str:
    """Every claim's block (P-number order) then every finding's, as one MyST text.

    ``seeds`` maps a P-number to its seed summary (see :func:`claim_block`).
    """
    seeds = seeds or {}
    unknown = sorted(set(seeds) - {r.pid for r in records})
    if unknown:
        raise KeyError(f"seed summaries for claims without a record on this page: {unknown}")
    ordered = sorted(records, key=lambda r: int(r.pid.lstrip("P")))
    blocks = [claim_block(r, seeds.get(r.pid)) for r in ordered] + [finding_block(f) for f in findings]
    if not blocks:
        raise ValueError("no claim records or findings to write: pass the records the notebook judged")
    return "\n".join(blocks)


def glue_findings(records: Sequence[ClaimRecord], findings: Sequence[Finding] = (),
                  seeds: Mapping[str, SeedSummary] | None = None, key: str = FINDINGS_KEY) -> None:
    """Glue :func:`findings_markdown` under ``key`` for the page's summary (nothing is shown in the cell).

    The page shows it with::

        ```{glue:md} findings
        :format: myst
        ```
    """
    from IPython.display import Markdown
    from myst_nb import glue

    glue(key, Markdown(findings_markdown(records, findings, seeds)), display=False)


def verdict_html(verdict: str, robustness: str = "") -> str:
    """A verdict as coloured HTML (the word always shown), with its robustness under it when there is one."""
    import html

    extra = f"<br><small>{html.escape(robustness)}</small>" if robustness else ""
    return f'<span class="verdict {verdict_class(verdict)}">{html.escape(verdict)}</span>{extra}'


def compact_table(records: Sequence[ClaimRecord], caption: str):
    """The page's claims as one short row each: P-number, claim, the paper's value, ours, verdict (coloured).

    The full rule, reason and per-construction verdicts are in the summary's blocks
    (:func:`glue_findings`) and on the reproduction summary page. Returns a pandas Styler.
    """
    from uqlib.paper import book

    rows = [{"P": r.pid, "claim": r.claim, "paper": r.paper, "ours": r.ours,
             "verdict": verdict_html(r.verdict, verdict_marks(r))}
            for r in sorted(records, key=lambda r: int(r.pid.lstrip("P")))]
    return book.table(pd.DataFrame(rows, columns=["P", "claim", "paper", "ours", "verdict"]), caption, index=False)


def robust_disagreements(table: pd.DataFrame) -> list[str]:
    """The ledger's disagreements that no protocol choice explains, one MyST line each with its cause.

    ``table``: :func:`uqlib.paper.claims.collect`'s claim table. A disagreement is a "not
    reproduced" headline verdict; it is robust when the member construction cannot explain it
    (``robustness`` "robust": the same verdict under every construction judged, or a claim
    that involves no ensemble) and it depends neither on the test set nor on the reading of a
    definition. An ensemble claim judged under one construction only is not robust.
    """
    chosen = _robust_disagreement_rows(table)
    return [f"**{row.pid}** ({_plain(row.figure)}): {_plain(row.claim)}. *Cause:* {_plain(row.why)}."
            for row in chosen.itertuples()]


def _robust_disagreement_rows(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table
    get = table.get
    robustness = get("robustness", pd.Series("", index=table.index)).fillna("")
    robust = (robustness == "robust") | ((robustness == "") & ~table["pid"].isin(ENSEMBLE_CLAIMS))
    robust &= ~get("composition_dependent", pd.Series(False, index=table.index)).fillna(False).astype(bool)
    robust &= ~get("reading_dependent", pd.Series(False, index=table.index)).fillna(False).astype(bool)
    return table[(table["verdict"] == VERDICTS[2]) & robust]


def robust_disagreements_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`robust_disagreements` as a table (P, figure, the paper's claim, the measured cause), for pages
    that show another page's glued output (a ``{glue}`` directive with ``:doc:``)."""
    rows = _robust_disagreement_rows(table)
    return pd.DataFrame({"P": rows["pid"], "figure": rows["figure"], "claim": rows["claim"], "cause": rows["why"]}
                        ).reset_index(drop=True)


def summary_table_html(table: pd.DataFrame) -> str:
    """The reproduction summary as one compact HTML table: P-number, claim, paper, ours, verdict (coloured, with
    its robustness); each row's rule and reason open on demand (``<details>``) under the claim.

    ``table``: :func:`uqlib.paper.claims.collect`'s claim table. Fixed column widths keep it
    inside the text column (CSS class ``claims-summary`` in ``book/_static/wide.css``).
    """
    import html

    def cell(value: object) -> str:
        text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
        return html.escape(text) if text.strip() else "–"

    rows = []
    for r in table.itertuples():
        marks = verdict_marks(r._asdict())
        robustness = r.robustness or ("" if not getattr(r, "verdicts_by_construction", None) else "one construction")
        note = ", ".join(x for x in (robustness if robustness != "construction-dependent" else "", marks) if x)
        rows.append(
            f"<tr><td>{cell(r.pid)}</td>"
            f"<td>{cell(r.claim)}<details><summary>rule and reason</summary><p><b>Rule:</b> {cell(r.rule)}</p>"
            f"<p><b>Why:</b> {cell(r.why)}</p><p><small>{cell(r.figure)}; notebook {cell(r.notebook)}</small></p>"
            f"</details></td><td>{cell(r.paper)}</td><td>{cell(r.ours)}</td>"
            f"<td>{verdict_html(r.verdict, note)}</td></tr>")
    colgroup = ('<colgroup><col style="width:4em"><col style="width:30%"><col style="width:17%">'
                '<col style="width:auto"><col style="width:9.5em"></colgroup>')
    head = "<thead><tr><th>P</th><th>claim</th><th>paper</th><th>ours</th><th>verdict</th></tr></thead>"
    return f'<table class="claims-summary">{colgroup}{head}<tbody>{"".join(rows)}</tbody></table>'
