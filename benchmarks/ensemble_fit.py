"""Ensemble fit time for K = 1, 6 and 30 members on one cached design matrix, and peak memory.

    python benchmarks/ensemble_fit.py [--preset Func-1561] [--max-per-subset N]

K = 1 is one ridge fit (uqlib.ace.LinearACE); K = 6 and 30 are bootstrap ensembles
(uqlib.ensemble.fit_ensemble, construction="bootstrap", structures always the units), whose
K normal equations are accumulated in one streamed pass over the rows
(uqlib.ace.stacked_normal_equations). The design matrix is read from the compute cache
(featurized once at the largest preset) before timing starts.
Writes benchmarks/output/ensemble_fit.json.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scipy.linalg
from common import save_result

from uqlib import ace, ensemble, tables
from uqlib.paper import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default=ace.LARGEST)
    parser.add_argument("--max-per-subset", type=int, default=None, help="subsample A+B (default: all)")
    args = parser.parse_args()
    table = tables.subsample(data.load_subsets("A+B"), args.max_per_subset, seed=0)
    dm = ace.design_matrix(table, args.preset, progress=False)
    loaded_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    design_matrix_gib = (dm.energy_rows.nbytes + dm.force_rows.nbytes + dm.projections.nbytes) / 2**30

    start = time.perf_counter()
    ace.LinearACE(args.preset).fit(dm)
    seconds = {1: time.perf_counter() - start}
    fitted = {}
    for k in (6, 30):
        start = time.perf_counter()
        fitted[k] = ensemble.fit_ensemble(dm, k, construction="bootstrap", seed=0, progress=False)
        seconds[k] = time.perf_counter() - start
    # what one member costs at least: the Cholesky of its p x p normal matrix
    spd = np.cov(np.random.default_rng(0).standard_normal((dm.n_functions, 2 * dm.n_functions)))
    start = time.perf_counter()
    scipy.linalg.cholesky(spd + np.eye(dm.n_functions), lower=True)
    cholesky_seconds = time.perf_counter() - start
    print(f"{args.preset} on A+B ({dm.n_configs} configurations, {int(dm.n_atoms.sum())} atoms), "
          f"bootstrap over structures:")
    for k, s in seconds.items():
        print(f"  K = {k:2d}: {s:6.1f} s ({s / seconds[1]:.2f}x one model)")
    save_result("ensemble_fit", {"preset": args.preset, "configs": dm.n_configs, "atoms": int(dm.n_atoms.sum()),
                                 "functions": dm.n_functions, "bootstrap_units": dm.n_configs,
                                 "design_matrix_loaded_peak_mib": round(loaded_mib),
                                 "design_matrix_gib": design_matrix_gib,
                                 "seconds": {str(k): s for k, s in seconds.items()},
                                 "setup_seconds_30": fitted[30].setup_seconds,
                                 "per_member_seconds_30": fitted[30].member_seconds,
                                 "cholesky_seconds": cholesky_seconds,
                                 "ratio_30_to_1": seconds[30] / seconds[1]})


if __name__ == "__main__":
    main()
