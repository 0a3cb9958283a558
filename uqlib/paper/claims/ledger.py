"""The ledger: claim records written by notebooks, collected, tallied and compared between builds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

import pandas as pd

from uqlib.paper.claims.records import CLAIMS_LIST_PATH, CONSTRUCTIONS, VERDICTS, ClaimInputError, ClaimRecord, Finding

__all__ = ["CLAIM_COLUMNS", "FINDING_COLUMNS", "ROBUSTNESS_COLUMNS", "collect", "duplicate_pids", "findings_table",
           "missing_pids", "parse_claims_list", "record_from_dict", "records_table", "tally", "tally_by_construction",
           "tally_by_robustness", "tally_change", "tally_note", "verdict_marks", "write_records"]


# -- the ledger --------------------------------------------------------------------------------------


def write_records(directory: Path, notebook: str, records: Sequence[ClaimRecord],
                  findings: Sequence[Finding] = ()) -> Path:
    """Write a notebook's claim records and findings to ``directory/claims.json``."""
    for r in records:
        if not isinstance(r, ClaimRecord):
            raise ClaimInputError(f"{notebook}: records must be ClaimRecord objects from uqlib.paper.claims, got {r!r}")
    path = Path(directory) / "claims.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"notebook": notebook, "claims": [asdict(r) for r in records],
                                "findings": [asdict(f) for f in findings]}, indent=2, ensure_ascii=False))
    return path


def _pid_number(pid: str) -> int:
    return int(pid.lstrip("P"))


def parse_claims_list(path: Path = CLAIMS_LIST_PATH) -> dict[str, tuple[str, str]]:
    """P-number -> (figure, claim) from a markdown table such as ``uqlib/paper/claims_list.md``."""
    rows = {}
    for line in Path(path).read_text().splitlines():
        match = re.match(r"\|\s*(P\d+)\s*\|([^|]*)\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    if not rows:
        raise ClaimInputError(f"{path} holds no claim table rows like '| P1 | figure | claim |'")
    return rows


def missing_pids(records: Iterable[ClaimRecord] | pd.DataFrame, fixture_path: Path = CLAIMS_LIST_PATH) -> list[str]:
    """P-numbers of the claim list at ``fixture_path`` that have no record (in P-number order)."""
    have = set(records["pid"]) if isinstance(records, pd.DataFrame) else {r.pid for r in records}
    return sorted(set(parse_claims_list(fixture_path)) - have, key=_pid_number)


def _record_defaults() -> dict[str, Any]:
    """The robustness fields of :class:`ClaimRecord` and their defaults (what a record written before them holds)."""
    out = {}
    for f in fields(ClaimRecord):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


def record_from_dict(values: Mapping[str, Any]) -> ClaimRecord:
    """A :class:`ClaimRecord` from a ``claims.json`` entry; fields missing from older files take their defaults."""
    known = {f.name for f in fields(ClaimRecord)}
    return ClaimRecord(**{**_record_defaults(), **{k: v for k, v in values.items() if k in known}})


ROBUSTNESS_COLUMNS = list(_record_defaults())
CLAIM_COLUMNS = ["pid", "figure", "claim", "paper", "ours", "verdict", "rule", "why", *ROBUSTNESS_COLUMNS,
                 "notebook"]
FINDING_COLUMNS = ["key", "statement", "ours", "verdict", "rule", "why", "notebook"]


def collect(results_root: Path, notebooks: Sequence[str],
            fixture_path: Path = CLAIMS_LIST_PATH) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Every notebook's ``claims.json`` under ``results_root``.

    Returns (claims sorted by P-number, findings, notebooks without a ledger, P-numbers of
    the claim list without a record).
    """
    claims, findings, missing = [], [], []
    for name in notebooks:
        path = Path(results_root) / name / "claims.json"
        if not path.is_file():
            missing.append(name)
            continue
        content = json.loads(path.read_text())
        claims += [{**asdict(record_from_dict(c)), "notebook": name} for c in content.get("claims", [])]
        findings += [{**f, "notebook": name} for f in content.get("findings", [])]
    table = pd.DataFrame(claims, columns=CLAIM_COLUMNS)
    table = table.iloc[sorted(range(len(table)), key=lambda i: _pid_number(table["pid"].iloc[i]))]
    return (table.reset_index(drop=True), pd.DataFrame(findings, columns=FINDING_COLUMNS), missing,
            missing_pids(table, fixture_path))


def verdict_marks(record: ClaimRecord | Mapping[str, Any]) -> str:
    """The marks a verdict carries, comma-separated: "provisional (no F)", "construction-dependent",
    "composition-dependent", "reading-dependent" ("" for none)."""
    get = record.get if isinstance(record, Mapping) else lambda name, default=None: getattr(record, name, default)
    marks = []
    if get("provisional_no_f", False):
        marks.append("provisional (no F)")
    if get("robustness", "") == "construction-dependent":
        marks.append("construction-dependent")
    if get("composition_dependent", False):
        marks.append("composition-dependent")
    if get("reading_dependent", False):
        marks.append("reading-dependent")
    return ", ".join(marks)


def _by_text(verdicts: Mapping[str, str] | float | None) -> str:
    return ", ".join(f"{k}: {v}" for k, v in verdicts.items()) if isinstance(verdicts, Mapping) else ""


def records_table(records: Sequence[ClaimRecord]) -> pd.DataFrame:
    """Claim records as a table indexed by P-number: the paper's value and ours side by side, verdict, its
    marks (:func:`verdict_marks`), robustness, the verdict per construction and per test set, the seeds in
    which the rule holds, rule and why."""
    rows = []
    for r in records:
        rows.append({"pid": r.pid, "claim": r.claim, "paper": r.paper, "ours": r.ours, "verdict": r.verdict,
                     "marks": verdict_marks(r), "robustness": r.robustness,
                     "by construction": _by_text(r.verdicts_by_construction),
                     "by test set": _by_text(r.composition),
                     "seeds holding": f"{r.seeds_holding}/{r.n_seeds}" if r.n_seeds else "",
                     "rule": r.rule, "why": r.why})
    return pd.DataFrame(rows).set_index("pid")


def duplicate_pids(records: Iterable[ClaimRecord] | pd.DataFrame) -> list[str]:
    """P-numbers recorded more than once (each claim should have ONE record), in P-number order."""
    pids = list(records["pid"]) if isinstance(records, pd.DataFrame) else [r.pid for r in records]
    return sorted({p for p in pids if pids.count(p) > 1}, key=_pid_number)


def findings_table(findings: Sequence[Finding]) -> pd.DataFrame:
    """Findings as a table indexed by their key: statement, ours, verdict, rule."""
    return pd.DataFrame([asdict(f) for f in findings], columns=list(Finding.__dataclass_fields__)).set_index("key")


def tally(table: pd.DataFrame, verdicts: Sequence[str] = VERDICTS) -> pd.Series:
    """Count of each verdict (zeros included, in ``verdicts`` order); pass FINDING_VERDICTS for findings."""
    unknown = set(table["verdict"]) - set(verdicts)
    if unknown:
        raise ClaimInputError(f"unknown verdicts {sorted(unknown)}; expected {list(verdicts)}")
    return table["verdict"].value_counts().reindex(list(verdicts), fill_value=0).rename("count")


def tally_by_robustness(table: pd.DataFrame) -> pd.DataFrame:
    """Counts of each headline verdict (rows) split by robustness (columns "robust", "construction-dependent"
    and "one construction or no ensemble" for records judged under fewer than two constructions)."""
    robustness = table.get("robustness", pd.Series("", index=table.index)).fillna("").replace(
        "", "one construction or no ensemble")
    columns = ["robust", "construction-dependent", "one construction or no ensemble"]
    return (pd.crosstab(table["verdict"], robustness).reindex(index=list(VERDICTS), columns=columns, fill_value=0)
            .rename_axis(index="verdict", columns="robustness"))


def tally_by_construction(table: pd.DataFrame) -> pd.DataFrame:
    """Counts of each verdict (rows) under each member construction (columns, :data:`CONSTRUCTIONS`), from the
    records' ``verdicts_by_construction``; claims judged under no construction are not counted."""
    counts = pd.DataFrame(0, index=list(VERDICTS), columns=list(CONSTRUCTIONS))
    for verdicts in table.get("verdicts_by_construction", pd.Series(dtype=object)):
        if isinstance(verdicts, Mapping):
            for construction, verdict in verdicts.items():
                if construction not in counts.columns:
                    counts[construction] = 0
                counts.loc[verdict, construction] += 1
    return counts.rename_axis(index="verdict", columns="construction")


def _verdict_by_pid(table: pd.DataFrame) -> pd.Series:
    """One verdict text per P-number (several records of one P-number joined by " / ")."""
    return table.groupby("pid", sort=False)["verdict"].agg(" / ".join)


def tally_change(before: pd.DataFrame, after: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger before and after a change (two :func:`collect` tables).

    Returns (counts per verdict: "before", "after", "change"; and one row per P-number whose
    verdict changed, in P-number order: "before", "after", "why" (the new record's reason),
    "marks" (the new record's :func:`verdict_marks`)).
    """
    counts = pd.DataFrame({"before": tally(before), "after": tally(after)})
    counts["change"] = counts["after"] - counts["before"]
    old, new = _verdict_by_pid(before), _verdict_by_pid(after)
    rows = []
    for pid in sorted(set(old.index) | set(new.index), key=_pid_number):
        was, now = old.get(pid, "no record"), new.get(pid, "no record")
        if was != now:
            latest = after[after["pid"] == pid]
            rows.append({"pid": pid, "before": was, "after": now,
                         "why": " / ".join(latest["why"]) if len(latest) else "",
                         "marks": " / ".join(verdict_marks(r) for r in latest.to_dict("records"))})
    changed = pd.DataFrame(rows, columns=["pid", "before", "after", "why", "marks"]).set_index("pid")
    return counts, changed


def tally_note(before: pd.DataFrame, after: pd.DataFrame) -> str:
    """A markdown closing note: the full tally before and after, the tally per construction and by robustness
    (after), and each verdict that changed with its reason."""
    counts, changed = tally_change(before, after)
    lines = ["| verdict | before | after | change |", "|---|---|---|---|"]
    lines += [f"| {v} | {r.before} | {r.after} | {r.change:+d} |" for v, r in counts.iterrows()]
    per_construction = tally_by_construction(after)
    lines += ["", "| verdict | " + " | ".join(per_construction.columns) + " |",
              "|---|" + "---|" * len(per_construction.columns)]
    lines += [f"| {v} | " + " | ".join(str(int(x)) for x in row) + " |" for v, row in per_construction.iterrows()]
    robust = tally_by_robustness(after)
    lines += ["", "| verdict | " + " | ".join(robust.columns) + " |", "|---|" + "---|" * len(robust.columns)]
    lines += [f"| {v} | " + " | ".join(str(int(x)) for x in row) + " |" for v, row in robust.iterrows()]
    lines += ["", f"{len(changed)} verdicts changed:" if len(changed) else "No verdict changed."]
    lines += [f"- {pid}: {r.before} -> {r.after}" + (f" [{r.marks}]" if r.marks else "") + f". {r.why}"
              for pid, r in changed.iterrows()]
    return "\n".join(lines)
