"""Featurization throughput per basis preset (atoms per second), uncached, each preset featurized on its own.

    python benchmarks/design_matrix_throughput.py [--structures 20] [--presets Func-33 Func-72]

A full build featurizes only at the largest preset (benchmarks/featurization_passes.py);
this shows what that one pass costs against the smaller bases.
Writes benchmarks/output/design_matrix_throughput.json.
"""

from __future__ import annotations

import argparse

from common import save_result

from uqlib import ace, tables
from uqlib.paper import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--structures", type=int, default=20, help="structures per subset of A+B")
    parser.add_argument("--presets", nargs="*", default=list(ace.PRESETS))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    table = tables.subsample(data.load_subsets("A+B"), args.structures, seed=0)
    n_atoms = int(table["n_atoms"].sum())
    rows = []
    for name in args.presets:
        dm = ace.design_matrix(table, name, largest=name, workers=args.workers, use_cache=False, progress=False)
        rows.append({"preset": name, "functions": dm.n_functions, "atoms": n_atoms, "seconds": dm.seconds,
                     "atoms_per_s": n_atoms / dm.seconds})
        print(f"{name:9s} {dm.n_functions:4d} functions: {n_atoms / dm.seconds:8.0f} atoms/s ({dm.seconds:.1f} s)")
    save_result("design_matrix_throughput", {"rows": rows, "workers": args.workers})

if __name__ == "__main__":
    main()
