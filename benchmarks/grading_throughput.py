"""Extrapolation-grade throughput: uqlib (pyace projections + one matrix product) against
PyACECalculator with an active set, looping over the same structures, in the same run.

    python benchmarks/grading_throughput.py [--preset Func-222] [--structures 40]

Prints atoms per second for each and writes benchmarks/output/grading_throughput.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import save_result
from pyace import PyACECalculator

from uqlib import activeset, tables
from uqlib.criteria import DOptimality, featurize
from uqlib.paper import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="Func-222")
    parser.add_argument("--structures", type=int, default=40, help="test structures per subset of C+E")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train = tables.subsample(data.load_subsets("A+B"), 60, args.seed)
    test = tables.subsample(data.load_subsets("C+E"), args.structures, args.seed)
    n_atoms = int(test["n_atoms"].sum())
    criterion = DOptimality().fit(featurize(train, args.preset, progress=False))
    model, active = criterion.model_, criterion.active_set_

    start = time.perf_counter()
    ours = active.grade(activeset.atom_projections(test, args.preset, use_cache=False, progress=False))
    uqlib_seconds = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        calc = PyACECalculator(str(model.to_yaml(Path(tmp) / "model.yaml")))
        calc.set_active_set(str(active.save(Path(tmp) / "model.asi")))
        start = time.perf_counter()
        theirs = activeset.calculator_gammas(calc, test["atoms"])
        pyace_seconds = time.perf_counter() - start
    agree = float(np.max(np.abs(ours - theirs) / np.maximum(1.0, np.abs(ours))))

    result = {
        "preset": args.preset, "structures": len(test), "atoms": n_atoms,
        "uqlib_atoms_per_s": n_atoms / uqlib_seconds, "pyace_calculator_atoms_per_s": n_atoms / pyace_seconds,
        "speedup": pyace_seconds / uqlib_seconds, "max_relative_gamma_difference": agree,
    }
    print(f"{args.preset}, {len(test)} structures, {n_atoms} atoms")
    print(f"  uqlib (projections + A^-1 product): {result['uqlib_atoms_per_s']:10.0f} atoms/s")
    print(f"  PyACECalculator loop with gamma:   {result['pyace_calculator_atoms_per_s']:10.0f} atoms/s")
    print(f"  speed-up {result['speedup']:.2f}x; largest relative gamma difference {agree:.1e}")
    save_result("grading_throughput", result)


if __name__ == "__main__":
    main()
