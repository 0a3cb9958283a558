"""Findings beyond the paper: the active-learning race judged by a paired test with a Holm correction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.stats

from uqlib.paper.claims.records import ClaimInputError, Finding, _array

__all__ = ["holm", "race_comparison"]


# -- beyond the paper: the active-learning race ---------------------------------------------------------


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def race_comparison(final_rmse_by_seed: Mapping[str, Sequence[float]], random_key: str = "random",
                    alpha: float = 0.05, label: str = "") -> tuple[pd.DataFrame, list[Finding]]:
    """Does each uncertainty criterion end the active-learning race below random picking?

    ``final_rmse_by_seed`` maps criterion -> final test F_RMSE (meV/Å) per seed, the seeds
    in the same order for every criterion (paired). Per criterion: the paired differences
    (criterion - random), their mean and std, a one-sided paired t-test (criterion lower)
    and the Wilcoxon signed-rank p-value for reference, Holm-corrected over the criteria.
    Verdict: ``supported`` if the Holm-adjusted t-test p < ``alpha``; ``not supported`` if
    the mean difference is >= 0; else ``inconclusive`` (fewer than 3 seeds is inconclusive).
    """
    if random_key not in final_rmse_by_seed:
        raise ClaimInputError(f"the race has no {random_key!r} entry; criteria: {list(final_rmse_by_seed)}")
    random = _array(final_rmse_by_seed[random_key], random_key)
    rows = []
    for name, values in final_rmse_by_seed.items():
        if name == random_key:
            continue
        diff = _array(values, name, random.size) - random
        p_t = p_w = float("nan")
        if diff.size >= 3 and np.ptp(diff) > 0:
            p_t = float(scipy.stats.ttest_rel(diff + random, random, alternative="less").pvalue)
            p_w = float(scipy.stats.wilcoxon(diff, alternative="less").pvalue)
        elif diff.size >= 3:  # identical differences: the sign is certain, the t statistic undefined
            p_t = 0.0 if diff[0] < 0 else 1.0
        rows.append({"criterion": name, "seeds": diff.size, "mean diff (meV/Å)": float(diff.mean()),
                     "std diff (meV/Å)": float(diff.std(ddof=1)) if diff.size > 1 else float("nan"),
                     "seeds better": int(np.sum(diff < 0)), "p (paired t)": p_t, "p (Wilcoxon)": p_w})
    table = pd.DataFrame(rows)
    testable = table["p (paired t)"].notna()
    table["p Holm"] = np.nan
    if testable.any():
        table.loc[testable, "p Holm"] = holm(table.loc[testable, "p (paired t)"])
    findings = []
    for row in table.to_dict("records"):
        crit, p_holm, mean, n = row["criterion"], row["p Holm"], row["mean diff (meV/Å)"], row["seeds"]
        if n < 3:
            verdict, why = "inconclusive", f"{n} seeds: too few for a test across seeds"
        elif p_holm < alpha:
            verdict, why = "supported", f"Holm-adjusted p = {p_holm:.2g} < {alpha}"
        elif mean >= 0:
            verdict, why = "not supported", f"mean difference {mean:+.1f} meV/Å >= 0"
        else:
            verdict, why = "inconclusive", f"lower on average but Holm-adjusted p = {p_holm:.2g} >= {alpha}"
        findings.append(Finding(
            f"race{' ' + label if label else ''}: {crit} vs {random_key}",
            f"active learning with {crit} ends with a lower test F_RMSE than {random_key} picking",
            f"difference {mean:+.1f} ± {row['std diff (meV/Å)']:.1f} meV/Å over {n} seeds "
            f"({row['seeds better']} better)", verdict,
            f"paired one-sided t-test across seeds, Holm-corrected over {len(table)} criteria; supported if "
            f"p < {alpha}; not supported if the mean difference >= 0; fewer than 3 seeds: inconclusive", why))
    return table, findings


