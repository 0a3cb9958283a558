"""Seconds of the pacemaker construction's BFGS: ours (rank-two update, O(F^2) per iteration) against scipy's.

    OMP_NUM_THREADS=1 python benchmarks/pacemaker_bfgs.py [--functions 222 724] [--maxiter 2000]

On a random SPD Gram matrix of F functions (eigenvalues log-spaced over ten decades, so BFGS
needs many iterations) both optimisers run from the same N(0, 1e-3^2) start with the same
``maxiter`` and pacemaker's gtol: uqlib.ensemble.minimize_quadratic_bfgs against
scipy.optimize.minimize(method="BFGS", jac=True) given the same loss and gradient. Prints
seconds, iterations, the largest difference of the final iterates and the per-iteration
ratio. On a spectrum this ill-conditioned (like a design matrix's Gram) the two runs take the
same steps until rounding differences (~1e-16, from the two ways of writing one update) are
amplified by the conditioning, so late iterates and the stopping iteration may differ; on a
well-conditioned quadratic they agree to ~1e-15 (tests/test_ensemble.py). The timing compares
the cost per iteration. Writes benchmarks/output/pacemaker_bfgs.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.optimize
from common import save_result

from uqlib import ensemble

SPECTRUM_DECADES = 10  # eigenvalues of the Gram from 1e-10 to 1


def random_gram(n_functions: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((n_functions, n_functions)))
    gram = (basis * np.logspace(-SPECTRUM_DECADES, 0, n_functions)) @ basis.T
    return (gram + gram.T) / 2, rng.standard_normal(n_functions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--functions", type=int, nargs="+", default=[222, 724])
    parser.add_argument("--maxiter", type=int, default=ensemble.PACEMAKER_MAXITER)
    parser.add_argument("--alpha", type=float, default=1e-8)
    args = parser.parse_args()
    results = {}
    for n in args.functions:
        gram, rhs = random_gram(n)
        x0 = ensemble.pacemaker_starts(1, n, seed=0)[0]
        start = time.perf_counter()
        ours = ensemble.minimize_quadratic_bfgs(gram, rhs, x0, alpha=args.alpha, maxiter=args.maxiter)
        ours_s = time.perf_counter() - start
        loss = ensemble._Quadratic(gram, rhs, args.alpha)
        start = time.perf_counter()
        ref = scipy.optimize.minimize(loss.fun_and_grad, x0, jac=True, method="BFGS",
                                      options={"maxiter": args.maxiter, "gtol": ensemble.PACEMAKER_GTOL})
        scipy_s = time.perf_counter() - start
        results[str(n)] = {"ours_seconds": ours_s, "scipy_seconds": scipy_s, "ours_iterations": ours.nit,
                           "scipy_iterations": int(ref.nit),
                           "max_iterate_difference": float(np.abs(ours.x - ref.x).max()),
                           "ours_ms_per_iteration": 1e3 * ours_s / max(ours.nit, 1),
                           "scipy_ms_per_iteration": 1e3 * scipy_s / max(ref.nit, 1)}
        r = results[str(n)]
        print(f"F = {n}: ours {ours_s:.2f} s / {ours.nit} iterations ({r['ours_ms_per_iteration']:.2f} ms each), "
              f"scipy {scipy_s:.2f} s / {ref.nit} iterations ({r['scipy_ms_per_iteration']:.2f} ms each), "
              f"{scipy_s / ours_s:.0f}x; final iterates differ by {r['max_iterate_difference']:.1e}", flush=True)
    save_result("pacemaker_bfgs", {"maxiter": args.maxiter, "gtol": ensemble.PACEMAKER_GTOL, "alpha": args.alpha,
                                   "results": results})


if __name__ == "__main__":
    main()
