"""Clustered grading time: K cluster active sets in one pass against one active set, and against
K separate PyACECalculator passes (one per cluster .asi), on the same structures, same run.

    python benchmarks/clustered_grading.py [--preset Func-72] [--clusters 15] [--structures 20]

The K active sets are MaxVol sets of K disjoint random parts of a training sample (their
content does not change the cost). Writes benchmarks/output/clustered_grading.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import save_result
from pyace import PyACECalculator

from uqlib import ace, activeset, tables
from uqlib.paper import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="Func-72")
    parser.add_argument("--clusters", type=int, default=15)
    parser.add_argument("--structures", type=int, default=20, help="test structures per subset of C+E")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train = data.load_subsets("B")
    test = tables.subsample(data.load_subsets("C+E"), args.structures, args.seed)
    n_atoms = int(test["n_atoms"].sum())
    projections = activeset.atom_projections(train, args.preset, progress=False)
    labels = np.random.default_rng(args.seed).integers(0, args.clusters, size=len(projections))
    clustered = activeset.fit_clustered_active_set(projections, labels, progress=False)
    single = activeset.build_active_set(projections)

    start = time.perf_counter()
    test_proj = activeset.atom_projections(test, args.preset, use_cache=False, progress=False)
    projection_seconds = time.perf_counter() - start
    start = time.perf_counter()
    single.grade(test_proj)
    one_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ours = clustered.grade(test_proj)
    k_seconds = time.perf_counter() - start

    model = ace.LinearACE(args.preset).fit(ace.design_matrix(tables.subsample(train, 40, args.seed), args.preset,
                                                             progress=False))
    with tempfile.TemporaryDirectory() as tmp:
        folder = clustered.save(Path(tmp) / "sets")
        calc = PyACECalculator(str(model.to_yaml(Path(tmp) / "m.yaml")))
        start = time.perf_counter()
        per_cluster = []
        for name in clustered.clusters:
            calc.set_active_set(str(folder / f"cluster-{name}.asi"))
            per_cluster.append(activeset.calculator_gammas(calc, test["atoms"]))
        pyace_seconds = time.perf_counter() - start
    difference = float(np.max(np.abs(ours - np.min(per_cluster, axis=0)) / np.maximum(1.0, ours)))

    k = len(clustered.clusters)
    result = {
        "preset": args.preset, "clusters": k, "atoms": n_atoms,
        "projection_us_per_atom": 1e6 * projection_seconds / n_atoms,
        "one_set_us_per_atom": 1e6 * (projection_seconds + one_seconds) / n_atoms,
        "k_sets_one_pass_us_per_atom": 1e6 * (projection_seconds + k_seconds) / n_atoms,
        "k_pyace_passes_us_per_atom": 1e6 * pyace_seconds / n_atoms,
        "ratio_k_sets_to_one_set": (projection_seconds + k_seconds) / (projection_seconds + one_seconds),
        "max_relative_gamma_difference": difference,
    }
    print(f"{args.preset}, {k} clusters, {n_atoms} test atoms (time per atom, projections included)")
    print(f"  one active set:                 {result['one_set_us_per_atom']:8.1f} us")
    print(f"  {k} active sets, one pass:       {result['k_sets_one_pass_us_per_atom']:8.1f} us "
          f"({result['ratio_k_sets_to_one_set']:.2f}x one set)")
    print(f"  {k} PyACECalculator passes:      {result['k_pyace_passes_us_per_atom']:8.1f} us")
    print(f"  largest relative gamma difference {difference:.1e}")
    save_result("clustered_grading", result)


if __name__ == "__main__":
    main()
