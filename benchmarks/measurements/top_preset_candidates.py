"""Candidates for the ladder's top (issue 21, item 6): nested presets between Func-724 and Func-1561.

A measurement, not a benchmark of speed. For each nested preset with Func-724 <= preset <= Func-1561
(nradmax (15, 6-8, 4-5, 3), lmax (0, 4-5, 3-4, 2)), or only the names given: the training force and
energy RMSE on A+B (ridge fit, kappa 0.01, alpha 1e-8, as the ladder's comments), the condition
number and numerical rank of the per-atom projections, and whether they span the functions by
:func:`uqlib.activeset.spans_basis`'s test (condition below ``SINGULAR_CONDITION``). The structures are
featurized once at the largest candidate; the others are column selections.

    PYTHONPATH=. python benchmarks/measurements/top_preset_candidates.py 150 0           # 150 per subset, seed 0
    PYTHONPATH=. python benchmarks/measurements/top_preset_candidates.py all 0 Func-968  # full A+B, named candidates
    PYTHONPATH=. python benchmarks/measurements/top_preset_candidates.py all 0 Func-968 --active-set

``--active-set`` also builds the MaxVol active set of the last candidate named, as
:class:`uqlib.criteria.DOptimality` does (global force-outlier filter).
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np

from uqlib import ace, activeset, tables
from uqlib.criteria import DOptimality, FeaturizedSet
from uqlib.paper import data


def candidates(names: list[str] | None) -> list[ace.BasisPreset]:
    low, high = ace.PRESETS["Func-724"], ace.BasisPreset("Func-1561", (15, 8, 5, 3), (0, 5, 4, 2))  # the old top
    found = []
    for n2, n3, l2, l3 in itertools.product(range(6, 9), range(4, 6), range(4, 6), range(3, 5)):
        preset = ace.BasisPreset("candidate", (15, n2, n3, 3), (0, l2, l3, 2))
        if ace.nesting_problem(low, preset) is None and ace.nesting_problem(preset, high) is None:
            found.append(ace.BasisPreset(f"Func-{preset.n_functions}", preset.nradmax_by_orders,
                                         preset.lmax_by_orders))
    found.sort(key=lambda p: p.n_functions)
    return [p for p in found if names is None or p.name in names]


def main(argv: list[str]) -> None:
    per_subset = None if argv[0] == "all" else int(argv[0])
    seed, names = int(argv[1]), argv[2].split(",") if len(argv) > 2 and not argv[2].startswith("--") else None
    presets = candidates(names)
    table = tables.subsample(data.load_subsets("A+B"), per_subset, seed)
    print(f"{len(table)} structures, {table.n_atoms.sum()} atoms", flush=True)
    top = max(presets, key=lambda p: p.n_functions)
    start = time.time()
    full = ace.design_matrix(table, top, largest=top, progress=False)
    print(f"featurized at {top.name} in {time.time() - start:.0f} s", flush=True)
    for preset in presets:
        dm = full.select(preset)
        errors = ace.rmse(dm, ace.fit_coefficients(dm))
        s = np.linalg.svd(dm.projections, compute_uv=False)
        print(f"{preset.name:10s} {preset.nradmax_by_orders} {preset.lmax_by_orders} F_RMSE {errors['F_rmse']:.2f} "
              f"E_RMSE {errors['E_rmse']:.2f} cond {s[0] / s[-1]:.2e} rank {np.linalg.matrix_rank(dm.projections)} "
              f"spans {activeset.spans_basis(dm.projections)}", flush=True)
    if "--active-set" in argv:
        preset = presets[-1] if names is None else next(p for p in presets if p.name == names[-1])
        ace.PRESETS[preset.name] = preset  # in this process only: LinearACE looks presets up by name
        dm = full.select(preset)
        criterion = DOptimality().fit(FeaturizedSet(table, dm, dm.projections))
        active = criterion.active_set_
        inverse = next(iter(active.inverses.values()))  # W: one species
        print(f"{preset.name} active set: {len(inverse)} atoms, {int((~criterion.keep_).sum())} outliers excluded, "
              f"cond(A^-1) {np.linalg.cond(inverse):.2e}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
