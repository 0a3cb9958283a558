"""Verdicts that survive the protocol: seed means with intervals, and a rule judged per construction,
seed and test composition (:func:`judge_protocol`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from uqlib.paper.claims.records import (
    CONSTRUCTIONS,
    ENSEMBLE_CLAIMS,
    NO_COMPOSITION,
    NO_CONSTRUCTION,
    TEST_SET_CLAIMS,
    VERDICTS,
    ClaimInputError,
    ClaimRecord,
    _array,
    judge,
)

__all__ = ["SEED_MEAN", "ProtocolKey", "SeedSummary", "judge_protocol", "merge_protocol_records", "seed_mean_inputs",
           "seed_pooled_inputs", "seed_summary", "seed_table"]


# -- verdicts that survive the protocol: seeds, member construction, test composition (issue 21) -----------


@dataclass(frozen=True)
class SeedSummary:
    """A quantity over ensemble seeds: the seed mean and its 95 % t-interval (NaN bounds for one seed)."""

    mean: float
    low: float
    high: float
    n_seeds: int

    def __str__(self) -> str:
        if self.n_seeds < 2:
            return f"{self.mean:.3g} (1 seed)"
        return f"{self.mean:.3g} [{self.low:.3g}, {self.high:.3g}] ({self.n_seeds} seeds)"


def seed_summary(values: Sequence[float], confidence: float = 0.95) -> SeedSummary:
    """Seed mean of ``values`` (one per seed, shape (n_seeds,)) with a ``confidence`` t-interval on the mean.

    Why a t-interval and not a percentile interval: with the 5-10 seeds a build affords, the 2.5 and
    97.5 percentiles of the seeds are their minimum and maximum, an interval for one seed's value
    rather than for the mean; mean ± t_(n-1) s / sqrt(n) is the interval on the mean and is exact
    for normally distributed seed values. One seed gives NaN bounds (no spread to measure).
    """
    x = _array(values, "values (one per seed)")
    if not 0 < confidence < 1:
        raise ClaimInputError(f"confidence must lie in (0, 1), got {confidence}")
    mean = float(x.mean())
    if x.size < 2:
        return SeedSummary(mean, float("nan"), float("nan"), 1)
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return SeedSummary(mean, mean - half, mean + half, int(x.size))


def seed_table(frame: pd.DataFrame, values: Sequence[str], by: Sequence[str], seed_column: str = "seed",
               confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``by`` columns, each of ``values`` as seed mean, interval bounds and seed count.

    ``frame`` has one row per (group, seed); returns columns ``(value, "mean" | "low" | "high" |
    "n_seeds")`` indexed by ``by``. Rates, rho and thresholds are reported this way.
    """
    missing = [c for c in [*values, *by, seed_column] if c not in frame.columns]
    if missing:
        raise ClaimInputError(f"the seed table lacks the columns {missing}; it has {list(frame.columns)}")
    rows = {}
    for key, group in frame.groupby(list(by) if len(by) > 1 else by[0], sort=True):
        if group[seed_column].duplicated().any():
            raise ClaimInputError(f"group {key} has a seed twice in column {seed_column!r}: one row per seed")
        rows[key] = {(v, stat): getattr(seed_summary(group[v].to_numpy(), confidence), stat)
                     for v in values for stat in ("mean", "low", "high", "n_seeds")}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = list(by)
    return table


def seed_mean_inputs(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One rule's keyword inputs averaged over seeds: numbers and arrays element by element, mappings by key.

    Trend rules are judged on these seed means. Values equal in every seed (the ladder's
    F_RMSE axis, K, a preset name) pass through; strings, flags or arrays of different shapes
    that differ between seeds cannot be averaged and raise :class:`ClaimInputError`.
    """
    if not per_seed:
        raise ClaimInputError("no seeds to average")
    keys = set(per_seed[0])
    for other in per_seed[1:]:
        if set(other) != keys:
            raise ClaimInputError(f"seeds give different inputs: {sorted(keys)} vs {sorted(other)}")
    return {k: _mean_leaf([s[k] for s in per_seed], k) for k in per_seed[0]}


def _mean_leaf(values: list, name: str):
    first = values[0]
    if isinstance(first, Mapping):
        return {k: _mean_leaf([v[k] for v in values], f"{name}[{k!r}]") for k in first}
    if first is None or isinstance(first, str):
        if any(v != first for v in values):
            raise ClaimInputError(f"{name} differs between seeds ({values!r}) and cannot be averaged")
        return first
    try:
        arrays = [np.asarray(v) for v in values]
        if all(a.shape == arrays[0].shape and np.array_equal(a, arrays[0]) for a in arrays):
            return first
        if arrays[0].dtype == bool or any(a.shape != arrays[0].shape for a in arrays):
            raise ValueError
        mean = np.mean(np.stack([a.astype(float) for a in arrays]), axis=0)
    except (ValueError, TypeError) as err:
        raise ClaimInputError(f"{name} differs between seeds and cannot be averaged (flags, or arrays of different "
                              "shapes): judge each seed, or pass a seed-averaged quantity") from err
    return float(mean) if mean.ndim == 0 else mean


def seed_pooled_inputs(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One rule's keyword inputs pooled over seeds: per-item arrays (atoms, configurations, flags) concatenated
    (every seed's items, so paired arrays stay paired), scalars equal in every seed passed through or else
    averaged, mappings and tuples by key.

    For rules judged on items rather than on a series (e.g. P22's flags and errors of test
    atoms): the pooled items of every seed, each atom counted once per seed.
    """
    if not per_seed:
        raise ClaimInputError("no seeds to pool")
    keys = set(per_seed[0])
    for other in per_seed[1:]:
        if set(other) != keys:
            raise ClaimInputError(f"seeds give different inputs: {sorted(keys)} vs {sorted(other)}")
    return {k: _pool_leaf([s[k] for s in per_seed], k) for k in per_seed[0]}


def _pool_leaf(values: list, name: str):
    first = values[0]
    if isinstance(first, Mapping):
        return {k: _pool_leaf([v[k] for v in values], f"{name}[{k!r}]") for k in first}
    if isinstance(first, tuple):
        return tuple(_pool_leaf([v[i] for v in values], f"{name}[{i}]") for i in range(len(first)))
    if first is None or isinstance(first, str):
        if any(v != first for v in values):
            raise ClaimInputError(f"{name} differs between seeds ({values!r}) and cannot be pooled")
        return first
    arrays = [np.asarray(v) for v in values]
    if arrays[0].ndim == 0:  # a parameter (a threshold, K): equal in every seed, or averaged
        return first if all(np.array_equal(a, arrays[0]) for a in arrays) else float(np.mean(arrays))
    return np.concatenate([a.ravel() for a in arrays])  # items: every seed's, so arrays stay paired


ProtocolKey = tuple[str, int, str]  # (construction, seed, composition)
SEED_MEAN = "seed mean"  # the seed key of a verdict judged on seed means


def judge_protocol(pid: str, rule: Callable[..., ClaimRecord], inputs: Mapping[ProtocolKey, Mapping[str, Any]], *,
                   headline_construction: str = CONSTRUCTIONS[0], headline_composition: str | None = None,
                   aggregate: Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Any]] = seed_mean_inputs
                   ) -> ClaimRecord:
    """ONE record of claim ``pid`` from its rule judged under every (construction, seed, composition) given.

    ``inputs`` maps ``(construction, seed, composition)`` to the rule's keyword arguments.
    Constructions are those of :data:`CONSTRUCTIONS` (``NO_CONSTRUCTION`` for a claim of no
    ensemble); compositions are test sets such as ``"C"``, ``"E"``, ``"C+E"`` (``NO_COMPOSITION``
    for a claim that does not depend on the test set, :data:`TEST_SET_CLAIMS`). For each
    (construction, composition) the rule is judged on the seed means of its inputs
    (``aggregate``, :func:`seed_mean_inputs`). The headline verdict, ``ours`` and ``why`` are the
    paper's construction (``headline_construction``) on the headline test set (default
    :data:`TEST_SET_CLAIMS`; ``"C+E"`` for the A+B split); the record also holds the verdict per
    construction (headline test set) and per composition (headline construction), whether they
    agree (``robustness``, ``composition_dependent``) and in how many seeds the rule, judged
    on that seed alone, is reproduced (``seeds_holding`` of ``n_seeds``, headline cell).
    """
    if not inputs:
        raise ClaimInputError(f"{pid}: no inputs to judge")
    ensemble_claim, test_set = pid in ENSEMBLE_CLAIMS, TEST_SET_CLAIMS[pid]
    head_c = headline_construction if ensemble_claim else NO_CONSTRUCTION
    head_t = (headline_composition or test_set) if test_set else NO_COMPOSITION
    for construction, _seed, composition in inputs:
        if ensemble_claim and construction not in CONSTRUCTIONS:
            raise ClaimInputError(f"{pid} is an ensemble claim: construction {construction!r} must be one of "
                                  f"{CONSTRUCTIONS}")
        if not ensemble_claim and construction != NO_CONSTRUCTION:
            raise ClaimInputError(f"{pid} involves no ensemble: key its inputs by construction {NO_CONSTRUCTION!r}, "
                                  f"not {construction!r}")
        if not test_set and composition != NO_COMPOSITION:
            raise ClaimInputError(f"{pid} does not depend on the test set: key its inputs by composition "
                                  f"{NO_COMPOSITION!r}, not {composition!r}")
        if test_set and (not composition or composition == NO_COMPOSITION):
            raise ClaimInputError(f"{pid} depends on the test set: name the test composition (e.g. 'C', 'E', "
                                  f"'{test_set}'), got {composition!r}")
    cells: dict[tuple[str, str], list[int]] = {}
    for construction, seed, composition in inputs:
        cells.setdefault((construction, composition), []).append(seed)
    if (head_c, head_t) not in cells:
        raise ClaimInputError(f"{pid}: the headline needs inputs for construction {head_c!r} on test set {head_t!r}; "
                              f"given {sorted(cells)}")

    def cell(construction: str, composition: str) -> ClaimRecord:
        seeds = sorted(cells[(construction, composition)])
        kwargs = [inputs[(construction, s, composition)] for s in seeds]
        return judge(pid, rule, **(dict(kwargs[0]) if len(kwargs) == 1 else dict(aggregate(kwargs))))

    # in the paper's order of constructions, then test compositions sorted: the order the record lists them in
    order = sorted(cells, key=lambda ct: (CONSTRUCTIONS.index(ct[0]) if ct[0] in CONSTRUCTIONS else len(CONSTRUCTIONS),
                                          ct[1]))
    records: dict[tuple[str, int | str, str], list[ClaimRecord]] = {(c, SEED_MEAN, t): [cell(c, t)] for c, t in order}
    for seed in sorted(cells[(head_c, head_t)]):
        records[(head_c, seed, head_t)] = [judge(pid, rule, **dict(inputs[(head_c, seed, head_t)]))]
    return merge_protocol_records(records, head_c, head_t)[0]


def merge_protocol_records(records: Mapping[tuple[str, int | str, str], Sequence[ClaimRecord]],
                           headline_construction: str, headline_composition: str) -> list[ClaimRecord]:
    """ONE record per claim from records keyed by ``(construction, seed or SEED_MEAN, composition)``.

    The headline is ``(headline_construction, SEED_MEAN, headline_composition)``; its record gains
    the verdicts per construction (seed means, headline test set; ensemble claims only), per test
    composition (headline construction; test-set claims only, :data:`TEST_SET_CLAIMS`) and the
    seeds in which the rule judged alone gives "reproduced" (headline construction and test set).
    """
    by_key = {key: {r.pid: r for r in recs} for key, recs in records.items()}
    head_key = (headline_construction, SEED_MEAN, headline_composition)
    if head_key not in by_key:
        raise ClaimInputError(f"no records for the headline {head_key}; have {sorted(by_key, key=str)}")
    constructions = [c for c, s, t in by_key if s == SEED_MEAN and t == headline_composition]
    compositions = [t for c, s, t in by_key if s == SEED_MEAN and c == headline_construction]
    seed_keys = [k for k in by_key if k[0] == headline_construction and k[2] == headline_composition
                 and k[1] != SEED_MEAN]
    merged = []
    for pid, head in by_key[head_key].items():
        def verdicts(keys: Sequence[tuple], label: Callable[[tuple], str], pid: str = pid) -> dict[str, str]:
            return {label(k): by_key[k][pid].verdict for k in keys if pid in by_key[k]}

        by_construction = (verdicts([(c, SEED_MEAN, headline_composition) for c in constructions], lambda k: k[0])
                           if pid in ENSEMBLE_CLAIMS else {})
        composition = (verdicts([(headline_construction, SEED_MEAN, t) for t in compositions], lambda k: k[2])
                       if TEST_SET_CLAIMS.get(pid) else {})
        per_seed = list(verdicts(seed_keys, lambda k: str(k[1])).values())
        merged.append(_with_protocol(head, by_construction, composition, per_seed))
    return merged


def _with_protocol(head: ClaimRecord, by_construction: dict[str, str], composition: dict[str, str],
                   per_seed: list[str]) -> ClaimRecord:
    """The headline record with the protocol's fields and a note of them in ``why``."""
    holding = sum(v == VERDICTS[0] for v in per_seed)
    robustness = _agreement(by_construction, "robust", "construction-dependent")
    composition_dependent = _agreement(composition, "same", "dependent") == "dependent"
    notes = [f"seeds: reproduced in {holding}/{len(per_seed)} ("
             + ", ".join(f"{per_seed.count(v)} {v}" for v in VERDICTS if v in per_seed) + ")"] if per_seed else []
    if by_construction:
        notes.append("by construction: " + ", ".join(f"{c} {v}" for c, v in by_construction.items())
                     + (f" ({robustness})" if robustness else ""))
    if composition:
        notes.append("by test set: " + ", ".join(f"{t} {v}" for t, v in composition.items())
                     + (" (composition-dependent)" if composition_dependent else ""))
    if head.provisional_no_f:
        notes.append("provisional (no F): the paper's test set holds subset F, ours cannot")
    return replace(head, ours=head.ours + (f" (seed means over {len(per_seed)} seeds)" if len(per_seed) > 1 else ""),
                   why=head.why + ("; " + "; ".join(notes) if notes else ""), verdicts_by_construction=by_construction,
                   robustness=robustness, composition=composition, composition_dependent=composition_dependent,
                   seeds_holding=holding, n_seeds=len(per_seed))


def _agreement(verdicts: Mapping[str, str], same: str, different: str) -> str:
    """``same`` / ``different`` over the judged verdicts (not "not testable here"); "" for fewer than two."""
    judged = [v for v in verdicts.values() if v != VERDICTS[3]]
    if len(judged) < 2:
        return ""
    return same if len(set(judged)) == 1 else different


