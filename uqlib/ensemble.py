"""Ensembles of linear ACE models and their uncertainties (paper eqs 1-6).

A member construction (:data:`CONSTRUCTIONS`, the ``construction`` parameter everywhere) says how
the K members that share one design matrix differ:

- ``"pacemaker"`` (the paper's, pacemaker's ensemble fitting mode: ``fit_cycles: K`` with
  ``randomize_func_coeffs: sigma``, :mod:`pyace.generalfit`): every member is fitted on the SAME
  training structures and the same weighted ridge loss (:mod:`uqlib.ace`), by BFGS started from
  function coefficients drawn from ``N(0, sigma^2)`` (:func:`pacemaker_starts`) and capped at
  ``maxiter`` iterations (the paper: 2,000), stopping when the largest gradient component is below
  ``gtol`` (1e-8, pacemaker's) or when the line search can no longer decrease the loss (scipy's
  "precision loss" stop). The optimiser is scipy's BFGS (``scipy.optimize.minimize``, the call
  pacemaker makes, with the same Wolfe line search and stopping rules) rewritten for the quadratic
  loss: :func:`minimize_quadratic_bfgs`, the loss evaluated around the ridge optimum so that its
  rounding is relative to the loss, as pacemaker's residual sums are. Each member's iterations,
  stop and excess loss over the ridge optimum are recorded (:attr:`Ensemble.optimizer`). Members
  differ because the stopped runs differ along the directions the data determine weakly, so their
  spread depends on where BFGS stops. Pacemaker also optimises the radial coefficients (ours are
  fixed) and starts its first cycle from its initial potential (zero function coefficients by
  default), not a random draw; it randomises only the later cycles.
- ``"bootstrap"``: member *k* is the ridge fit on a seeded bootstrap resample of the training
  structures (all atoms of a drawn structure come with it): structure weights are the counts.
  Structures are always the units. The K members' normal equations are accumulated in one pass
  over the rows (:func:`uqlib.ace.stacked_normal_equations`), never holding ``n_cfg`` Grams.
- ``"subsample"``: member *k* is the ridge fit on a seeded ``fraction`` (default 90 %) of the
  training structures, drawn without replacement: ``round(fraction * n_cfg)`` structures
  (:func:`subsample_weights`), weights 0/1, accumulated as for the bootstrap.
- ``"posterior"``: K samples from the Gaussian posterior of the ridge fit,
  ``N(c_hat, s2 (G + alpha I)^-1)``, with ``s2`` the weighted residual sum of
  squares over ``(n_rows - n_functions)``. One fit, then K cheap draws.

Every ensemble records each member's structure weights ``(K, n_cfg)`` (ones where every member
sees every structure once). The same seed gives the same members.

Energies are **per atom** throughout (eV/atom): the energy uncertainty U_E,cfg,
the energy error and its threshold all use the energy per atom, as the paper's
code does. Forces are in eV/Å.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.linalg.blas
from scipy.optimize._optimize import _line_search_wolfe12, _LineSearchError

from uqlib import ace
from uqlib.ace import DesignMatrix
from uqlib.progress import progress_bar
from uqlib.tables import atom_offsets, per_structure_max

ENERGY_UNIT = "eV/atom"  # CBE works with energies per atom (see module docstring)
CONSTRUCTIONS = ("pacemaker", "bootstrap", "subsample", "posterior")
PACEMAKER_SIGMA = 1e-3  # standard deviation of the start coefficients (pacemaker's documented example value)
PACEMAKER_MAXITER = 2000  # BFGS iterations per member, as the paper's fits
PACEMAKER_GTOL = 1e-8  # BFGS stops when max |dL/dc| < gtol (pacemaker's scipy option)
SUBSAMPLE_FRACTION = 0.9


@dataclass
class Ensemble:
    """K linear ACE members: ``coefficients`` has shape ``(K, n_functions)``."""

    preset: str
    construction: str
    seed: int
    coefficients: np.ndarray
    setup_seconds: float  # shared work: the normal equations (one pass over the rows) or the one fit
    member_seconds: float  # mean wall time per member after the shared work
    # (K, n_cfg): how often each training structure counts in each member's fit
    structure_weights: np.ndarray | None = None
    # pacemaker: one row per member (iterations, status, converged, gradient_norm, excess_loss); else None
    optimizer: pd.DataFrame | None = None
    # (K, p): eigenvalues of each member's G (the loss without alpha), when the fit was asked for them
    gram_eigenvalues: np.ndarray | None = None
    kappa: float | None = None  # the loss the members were fitted on
    alpha: float | None = None

    @property
    def n_members(self) -> int:
        return len(self.coefficients)

    def members(self, indices: np.ndarray | slice) -> Ensemble:
        """The ensemble of some of the members (nested or disjoint sub-ensembles for K sweeps)."""
        coefficients = self.coefficients[indices]
        if coefficients.ndim != 2 or len(coefficients) < 2:
            raise ValueError(f"A sub-ensemble needs at least 2 of the {self.n_members} members, got {indices}")

        def pick(values):
            return None if values is None else values[indices]

        optimizer = None if self.optimizer is None else self.optimizer.iloc[indices].reset_index(drop=True)
        return Ensemble(self.preset, self.construction, self.seed, coefficients, self.setup_seconds,
                        self.member_seconds, pick(self.structure_weights), optimizer, pick(self.gram_eigenvalues),
                        self.kappa, self.alpha)


# -- structure weights of each construction ---------------------------------------------------------

def bootstrap_weights(n_configs: int, n_members: int, seed: int) -> np.ndarray:
    """Counts of each structure in each member's bootstrap resample, shape ``(K, n_configs)``."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_configs, size=(n_members, n_configs))
    counts = np.empty((n_members, n_configs))
    for row, d in zip(counts, draws, strict=True):
        row[:] = np.bincount(d, minlength=n_configs)
    return counts


def subsample_size(n_configs: int, fraction: float) -> int:
    """How many structures a subsample member sees: ``fraction * n_configs`` rounded half up, at least 1."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction (of the training structures each subsample member sees) must lie in (0, 1], "
                         f"got {fraction}")
    return max(1, int(np.floor(fraction * n_configs + 0.5)))


def subsample_weights(n_configs: int, n_members: int, seed: int, fraction: float = SUBSAMPLE_FRACTION
                      ) -> np.ndarray:
    """0/1 weights ``(K, n_configs)``: member *k* sees a seeded draw without replacement of
    :func:`subsample_size` structures."""
    size = subsample_size(n_configs, fraction)
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_members, n_configs))
    for row in weights:
        row[rng.choice(n_configs, size, replace=False)] = 1.0
    return weights


def pacemaker_starts(n_members: int, n_functions: int, seed: int, sigma: float = PACEMAKER_SIGMA) -> np.ndarray:
    """Start coefficients ``(K, n_functions)`` of the pacemaker members: independent ``N(0, sigma^2)`` draws."""
    if not sigma > 0:
        raise ValueError(f"sigma (the spread of the pacemaker start coefficients) must be positive, got {sigma}")
    return sigma * np.random.default_rng(seed).standard_normal((n_members, n_functions))


# -- BFGS on a quadratic loss, as scipy.optimize.minimize(method="BFGS") runs it ----------------------

@dataclass
class BFGSResult:
    """Where :func:`minimize_quadratic_bfgs` stopped.

    ``status`` as scipy's: 0 converged (max |grad| <= gtol), 1 maxiter reached, 2 line search
    failed (precision loss), 3 NaN.
    """

    x: np.ndarray
    fun: float
    gradient_norm: float  # max |dL/dc| at x
    nit: int
    nfev: int
    status: int


class _Quadratic:
    """``L(c) = c^T A c - 2 b^T c`` (``A = G + alpha I``) and its gradient ``2 (A c - b)``: one ``dsymv`` per point.

    Given the minimiser ``c*`` (``optimum``) and the loss there (``optimum_loss``, with the constant
    ``y^T W y`` the expanded form leaves out), the loss is evaluated as
    ``L(c*) + (c - c*)^T A (c - c*)`` with gradient ``2 A (c - c*)``: its rounding is
    then relative to the loss itself, as when the loss is summed from residuals (pacemaker),
    not relative to ``|b^T c|``, which for energies of several eV/atom is 10^5 times the loss.
    The line search asks for the value and the gradient at the same points; both come from one
    product with ``A``, cached for the last point (as scipy's ``ScalarFunction`` caches ``fun, jac``).
    """

    def __init__(self, gram: np.ndarray, rhs: np.ndarray, alpha: float, optimum: np.ndarray | None = None,
                 optimum_loss: float = 0.0) -> None:
        self.gram = np.asfortranarray(gram)
        self.rhs = np.asarray(rhs, dtype=float)
        self.alpha = float(alpha)
        self.optimum = None if optimum is None else np.asarray(optimum, dtype=float)
        self.optimum_loss = float(optimum_loss)
        self.x: np.ndarray | None = None
        self.nfev = 0

    def _product(self, v: np.ndarray) -> np.ndarray:
        av = scipy.linalg.blas.dsymv(1.0, self.gram, v)
        if self.alpha:
            av += self.alpha * v
        return av

    def _at(self, x: np.ndarray) -> None:
        if self.x is None or not np.array_equal(x, self.x):
            self.x, self.nfev = np.array(x, dtype=float), self.nfev + 1
            if self.optimum is None:
                ax = self._product(x)
                self.f = float(x @ ax - 2.0 * (self.rhs @ x))
                self.g = 2.0 * (ax - self.rhs)
            else:
                gap = x - self.optimum
                a_gap = self._product(gap)
                self.f = self.optimum_loss + float(gap @ a_gap)
                self.g = 2.0 * a_gap

    def fun(self, x: np.ndarray) -> float:
        self._at(x)
        return self.f

    def grad(self, x: np.ndarray) -> np.ndarray:
        self._at(x)
        return self.g

    def fun_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """For ``scipy.optimize.minimize(..., jac=True)``: the same numbers scipy would be given."""
        self._at(x)
        return self.f, self.g


def minimize_quadratic_bfgs(gram: np.ndarray, rhs: np.ndarray, x0: np.ndarray, *, alpha: float = 0.0,
                            maxiter: int = PACEMAKER_MAXITER, gtol: float = PACEMAKER_GTOL,
                            c1: float = 1e-4, c2: float = 0.9, optimum: np.ndarray | None = None,
                            optimum_loss: float = 0.0) -> BFGSResult:
    """Minimise ``L(c) = c^T (G + alpha I) c - 2 b^T c`` from ``x0`` by scipy's BFGS, O(p^2) per iteration.

    The iteration is scipy's ``_minimize_bfgs`` (scipy 1.17) step for step: initial inverse
    Hessian ``I``, direction ``-H g``, the same Wolfe line search (``_line_search_wolfe12``, with
    scipy's first-step guess from ``old_old_fval = f + |g| / 2``), the same stopping rules
    (``max |g| <= gtol``, ``maxiter`` iterations, line-search failure) and the same BFGS update of
    the inverse Hessian. The line search is scipy's own function (MINPACK's ``dcsrch``, falling back
    to ``line_search_wolfe2``), imported from ``scipy.optimize._optimize``: a test checks that this
    function follows ``scipy.optimize.minimize(method="BFGS")`` iterate for iterate. Only the
    update's arithmetic differs: scipy forms
    ``(I - rho s y^T) H (I - rho y s^T) + rho s s^T`` with two dense matrix products, O(p^3);
    with ``u = H y`` it equals the rank-two correction
    ``H - rho (s u^T + u s^T) + (rho^2 y^T u + rho) s s^T = H + s v^T + v s^T``,
    ``v = -rho u + (rho^2 y^T u + rho) s / 2``: one BLAS ``dsyr2`` on the upper triangle. With the
    products ``A c`` (``dsymv``), an iteration costs a few passes over two ``p x p`` triangles.
    Given ``optimum`` (``c*``) and ``optimum_loss`` (``L(c*)``), the loss and gradient are evaluated
    as ``L(c*) + (c - c*)^T A (c - c*)`` and ``2 A (c - c*)`` (:class:`_Quadratic`): the same
    function, with rounding relative to the loss. Shapes: ``gram`` ``(p, p)`` symmetric, ``rhs``,
    ``x0`` and ``optimum`` ``(p,)``.
    """
    if not isinstance(maxiter, int | np.integer) or maxiter < 0:
        raise ValueError(f"maxiter must be a non-negative integer, got {maxiter!r}")
    loss = _Quadratic(gram, rhs, alpha, optimum, optimum_loss)
    x = np.array(x0, dtype=float)
    f, g = loss.fun(x), loss.grad(x)
    hess_inv = np.eye(len(x), order="F")  # upper triangle kept up to date (dsyr2, dsymv read only it)
    old_old_f = f + np.linalg.norm(g) / 2  # scipy: sets the first step guess to |dx| ~ 1
    k, status = 0, 0
    gnorm = np.max(np.abs(g))
    while gnorm > gtol and k < maxiter:
        direction = -scipy.linalg.blas.dsymv(1.0, hess_inv, g)
        try:
            step, _, _, f, old_old_f, g_new = _line_search_wolfe12(
                loss.fun, loss.grad, x, direction, g, f, old_old_f, amin=1e-100, amax=1e100, c1=c1, c2=c2)
        except _LineSearchError:
            status = 2
            break
        s = step * direction
        x = x + s
        if g_new is None:
            g_new = loss.grad(x)
        y = g_new - g
        g = g_new
        k += 1
        gnorm = np.max(np.abs(g))
        if gnorm <= gtol:
            break
        if step * np.linalg.norm(direction) <= 0.0:  # scipy's xrtol test with its default xrtol = 0
            break
        if not np.isfinite(f):
            status = 2
            break
        ys = float(y @ s)
        rho = 1000.0 if ys == 0.0 else 1.0 / ys  # scipy's guard
        u = scipy.linalg.blas.dsymv(1.0, hess_inv, y)
        v = -rho * u + 0.5 * (rho * rho * float(y @ u) + rho) * s
        hess_inv = scipy.linalg.blas.dsyr2(1.0, s, v, a=hess_inv, lower=0, overwrite_a=1)
    if status != 2 and k >= maxiter and gnorm > gtol:
        status = 1
    elif status == 0 and (np.isnan(gnorm) or np.isnan(f) or np.isnan(x).any()):
        status = 3
    return BFGSResult(x, float(f), float(gnorm), k, loss.nfev, status)


# -- fitting the members ---------------------------------------------------------------------------

def _check(dm: DesignMatrix, n_members: int, construction: str, kappa: float) -> None:
    if not isinstance(n_members, int | np.integer) or n_members < 2:
        raise ValueError(f"An ensemble needs at least 2 members (n_members), got {n_members!r}")
    if construction not in CONSTRUCTIONS:
        raise ValueError(f"Unknown member construction {construction!r}; choose one of {CONSTRUCTIONS}")
    if dm.n_configs < 2:
        raise ValueError("An ensemble needs at least 2 training structures")
    ace.check_kappa(kappa)


def _spectra(grams: np.ndarray, n_members: int) -> np.ndarray:
    """Eigenvalues ``(K, p)`` of each member's G; a single shared G ``(p, p)`` is decomposed once."""
    if grams.ndim == 2:
        return np.repeat(np.linalg.eigvalsh(grams)[None, :], n_members, axis=0)
    return np.stack([np.linalg.eigvalsh(gram) for gram in grams])


def _posterior(dm: DesignMatrix, n_members: int, seed: int, kappa: float, alpha: float,
               gram_spectra: bool) -> Ensemble:
    start = time.perf_counter()
    gram, rhs = ace.normal_equations(dm, kappa=kappa)
    regularised = gram + alpha * np.eye(len(gram))
    centre = scipy.linalg.solve(regularised, rhs, assume_a="pos")
    energy_w, force_w = 1.0 - kappa, kappa  # normalised weights: the loss without alpha
    de = dm.energy_rows @ centre - dm.energy_per_atom
    df = dm.force_rows @ centre - dm.forces.ravel()
    weighted_ssr = energy_w * np.mean(de**2) + force_w * np.mean(df**2) * 3
    n_rows = dm.n_configs + df.size
    s2 = weighted_ssr / max(n_rows - dm.n_functions, 1)
    # Cholesky of the precision: draws are centre + s * L^-T z.
    chol = scipy.linalg.cholesky(regularised, lower=True)
    setup = time.perf_counter() - start
    z = np.random.default_rng(seed).standard_normal((dm.n_functions, n_members))
    draws = scipy.linalg.solve_triangular(chol.T, z, lower=False)
    coefficients = centre[None, :] + np.sqrt(s2) * draws.T
    per_member = (time.perf_counter() - start - setup) / n_members
    return Ensemble(dm.preset, "posterior", seed, coefficients, setup, per_member,
                    np.ones((n_members, dm.n_configs)), None, _spectra(gram, n_members) if gram_spectra else None,
                    kappa, alpha)


def _labels_level(dm: DesignMatrix, weights: np.ndarray, kappa: float) -> np.ndarray:
    """``y^T W_k y`` ``(K,)``: the weighted sum of squared labels of each weighting (the loss at c = 0)."""
    force_squares = np.add.reduceat(np.sum(np.square(dm.forces), axis=1), atom_offsets(dm.n_atoms)[:-1])
    return ((1.0 - kappa) * (weights @ np.square(dm.energy_per_atom)) / weights.sum(axis=1)
            + kappa * (weights @ force_squares) / (weights @ dm.n_atoms))


def _pacemaker_members(gram: np.ndarray, rhs: np.ndarray, labels_level: float, n_members: int, seed: int,
                       alpha: float, sigma: float, maxiter: int, gtol: float, progress: bool, desc: str
                       ) -> tuple[np.ndarray, pd.DataFrame]:
    """BFGS from ``N(0, sigma^2)`` starts on one loss ``(G, b)``; ``labels_level`` is ``y^T W y``."""
    optimum = ace.solve_ridge(gram, rhs, alpha)
    # L(c*) = y^T W y - 2 b^T c* + c*^T A c* = y^T W y - b^T c* (A c* = b): the level of the loss, its rounding scale
    optimum_loss = max(labels_level - float(rhs @ optimum), 0.0)
    members, rows = [], []
    for x0 in progress_bar(pacemaker_starts(n_members, len(rhs), seed, sigma), desc=desc, disable=not progress,
                           unit="member"):
        result = minimize_quadratic_bfgs(gram, rhs, x0, alpha=alpha, maxiter=maxiter, gtol=gtol, optimum=optimum,
                                         optimum_loss=optimum_loss)
        gap = result.x - optimum
        # L(c) - L(c*) = (c - c*)^T (G + alpha I) (c - c*): exact for a quadratic, no cancellation of large terms
        excess = float(gap @ gram @ gap + alpha * gap @ gap)
        members.append(result.x)
        rows.append({"iterations": result.nit, "status": result.status, "converged": result.status == 0,
                     "gradient_norm": result.gradient_norm, "excess_loss": excess, "evaluations": result.nfev})
    return np.array(members), pd.DataFrame(rows)


def _pacemaker(dm: DesignMatrix, n_members: int, seed: int, kappa: float, alpha: float, sigma: float,
               maxiter: int, gtol: float, progress: bool, gram_spectra: bool) -> Ensemble:
    start = time.perf_counter()
    gram, rhs = ace.normal_equations(dm, kappa=kappa)
    level = float(_labels_level(dm, np.ones((1, dm.n_configs)), kappa)[0])
    setup = time.perf_counter() - start
    members, record = _pacemaker_members(gram, rhs, level, n_members, seed, alpha, sigma, maxiter, gtol, progress,
                                         f"pacemaker {dm.preset}")
    per_member = (time.perf_counter() - start - setup) / n_members
    return Ensemble(dm.preset, "pacemaker", seed, members, setup, per_member, np.ones((n_members, dm.n_configs)),
                    record, _spectra(gram, n_members) if gram_spectra else None, kappa, alpha)


def _resampled(dm: DesignMatrix, weights: np.ndarray, construction: str, seed: int, kappa: float, alpha: float,
               progress: bool, gram_spectra: bool, chunk_bytes: float) -> Ensemble:
    start = time.perf_counter()
    grams, rhs = ace.stacked_normal_equations(dm, weights, kappa=kappa, chunk_bytes=chunk_bytes)
    setup = time.perf_counter() - start
    members = _solve_members(grams, rhs, alpha, progress, f"{construction} {dm.preset}")
    per_member = (time.perf_counter() - start - setup) / len(grams)
    return Ensemble(dm.preset, construction, seed, members, setup, per_member, weights, None,
                    _spectra(grams, len(grams)) if gram_spectra else None, kappa, alpha)


def _solve_members(grams: np.ndarray, rhs: np.ndarray, alpha: float, progress: bool, desc: str) -> np.ndarray:
    return np.array([ace.solve_ridge(gram, b, alpha) for gram, b in progress_bar(
        zip(grams, rhs, strict=True), total=len(grams), desc=desc, disable=not progress, unit="member")])


def _member_weights(construction: str, n_configs: int, n_members: int, seed: int, fraction: float) -> np.ndarray:
    if construction == "bootstrap":
        return bootstrap_weights(n_configs, n_members, seed)
    if construction == "subsample":
        return subsample_weights(n_configs, n_members, seed, fraction)
    return np.ones((n_members, n_configs))  # pacemaker, posterior: every member sees every structure once


def fit_ensemble(dm: DesignMatrix, n_members: int, *, construction: str = "bootstrap", seed: int = 0,
                 kappa: float = ace.DEFAULT_KAPPA, alpha: float = ace.DEFAULT_ALPHA, progress: bool = True,
                 sigma: float = PACEMAKER_SIGMA, maxiter: int = PACEMAKER_MAXITER, gtol: float = PACEMAKER_GTOL,
                 fraction: float = SUBSAMPLE_FRACTION, gram_spectra: bool = False,
                 chunk_bytes: float = ace.CHUNK_BYTES) -> Ensemble:
    """Fit ``n_members`` linear ACE models on one design matrix by a member ``construction`` (module docstring).

    ``sigma``, ``maxiter`` and ``gtol`` are the pacemaker construction's (start spread, BFGS
    iteration cap, gradient tolerance); ``fraction`` the subsample construction's. With
    ``gram_spectra`` the eigenvalues of each member's ``G`` are recorded (one ``eigvalsh`` per
    distinct ``G``) for :func:`uqlib.paper.studies.member_diagnostics`. ``chunk_bytes`` bounds the
    per-chunk memory of the streamed normal equations (:func:`uqlib.ace.stacked_normal_equations`).
    """
    _check(dm, n_members, construction, kappa)
    if construction == "posterior":
        return _posterior(dm, n_members, seed, kappa, alpha, gram_spectra)
    if construction == "pacemaker":
        return _pacemaker(dm, n_members, seed, kappa, alpha, sigma, maxiter, gtol, progress, gram_spectra)
    weights = _member_weights(construction, dm.n_configs, n_members, seed, fraction)
    return _resampled(dm, weights, construction, seed, kappa, alpha, progress, gram_spectra, chunk_bytes)


def fit_nested_ensembles(dm: DesignMatrix, presets: Sequence[str | ace.BasisPreset], n_members: int, *,
                         construction: str = "bootstrap", seed: int = 0, kappa: float = ace.DEFAULT_KAPPA,
                         alpha: float = ace.DEFAULT_ALPHA, progress: bool = True, sigma: float = PACEMAKER_SIGMA,
                         maxiter: int = PACEMAKER_MAXITER, gtol: float = PACEMAKER_GTOL,
                         fraction: float = SUBSAMPLE_FRACTION, gram_spectra: bool = False,
                         chunk_bytes: float = ace.CHUNK_BYTES) -> dict[str, Ensemble]:
    """One ensemble per preset nested in ``dm``'s, from ONE pass over ``dm``'s rows: ``{preset name: Ensemble}``.

    The members' normal equations are accumulated once at ``dm``'s preset
    (:func:`uqlib.ace.stacked_normal_equations`; one shared ``G`` for pacemaker and posterior) and
    each preset's are their sub-blocks (:func:`uqlib.ace.select_normal_equations`). Every preset's
    members get the same structure weights (bootstrap counts and subsamples depend on the seed and
    the structures only), so the ladder's ensembles differ only by their basis. Equal to
    :func:`fit_ensemble` on ``dm.select(preset)`` up to rounding; the posterior committee's
    residual variance is computed from the normal equations,
    ``s2 = (y^T W y - 2 b^T c + c^T G c) / (n_rows - p)``, instead of from the residual rows.
    ``setup_seconds`` of each ensemble is the shared pass.
    """
    _check(dm, n_members, construction, kappa)
    start = time.perf_counter()
    weights = _member_weights(construction, dm.n_configs, n_members, seed, fraction)
    shared = construction in ("pacemaker", "posterior")
    grams, rhs = ace.stacked_normal_equations(dm, weights[:1] if shared else weights, kappa=kappa,
                                              chunk_bytes=chunk_bytes)
    levels = _labels_level(dm, weights[:1] if shared else weights, kappa)
    setup = time.perf_counter() - start
    own = dm.basis or ace.get_preset(dm.preset)
    fitted = {}
    for preset in presets:
        preset = ace.get_preset(preset).for_elements(own.elements) if isinstance(preset, str) else preset
        sub_grams, sub_rhs = ace.select_normal_equations(grams, rhs, preset, own)
        begin, record = time.perf_counter(), None
        if construction == "pacemaker":
            members, record = _pacemaker_members(sub_grams[0], sub_rhs[0], float(levels[0]), n_members, seed, alpha,
                                                 sigma, maxiter, gtol, progress, f"pacemaker {preset.name}")
        elif construction == "posterior":
            members = _posterior_draws(sub_grams[0], sub_rhs[0], float(levels[0]), dm.n_configs + 3 * int(
                dm.n_atoms.sum()), n_members, seed, alpha)
        else:
            members = _solve_members(sub_grams, sub_rhs, alpha, progress, f"{construction} {preset.name}")
        per_member = (time.perf_counter() - begin) / n_members
        spectra = _spectra(sub_grams[0] if shared else sub_grams, n_members) if gram_spectra else None
        fitted[preset.name] = Ensemble(preset.name, construction, seed, members, setup, per_member, weights, record,
                                       spectra, kappa, alpha)
    return fitted


def _posterior_draws(gram: np.ndarray, rhs: np.ndarray, labels_level: float, n_rows: int, n_members: int,
                     seed: int, alpha: float) -> np.ndarray:
    """The posterior committee of :func:`_posterior` from the normal equations alone."""
    regularised = gram + alpha * np.eye(len(gram))
    centre = scipy.linalg.solve(regularised, rhs, assume_a="pos")
    # the loss without alpha at the centre, y^T W y - 2 b^T c + c^T G c, is _posterior's weighted residual sum
    weighted_ssr = max(labels_level - 2.0 * float(rhs @ centre) + float(centre @ gram @ centre), 0.0)
    s2 = weighted_ssr / max(n_rows - len(rhs), 1)
    chol = scipy.linalg.cholesky(regularised, lower=True)
    z = np.random.default_rng(seed).standard_normal((len(rhs), n_members))
    draws = scipy.linalg.solve_triangular(chol.T, z, lower=False)
    return centre[None, :] + np.sqrt(s2) * draws.T


# -- uncertainties (paper eqs 1-3); the errors of eqs 4-6 are in uqlib.criteria.ensemble ----------

def energy_uncertainty(member_energies: np.ndarray) -> np.ndarray:
    """Eq 1, U_E,cfg = max_k |E_k - <E>|, from ``(K, n_cfg)`` energies per atom (eV/atom)."""
    return np.abs(member_energies - member_energies.mean(axis=0)).max(axis=0)


def atom_force_uncertainty(member_forces: np.ndarray) -> np.ndarray:
    """Eq 2, U_F,atom = max_k |F_i,k - <F_i>| (Euclidean norm), from ``(K, n_atom, 3)`` forces (eV/Å)."""
    return np.linalg.norm(member_forces - member_forces.mean(axis=0), axis=-1).max(axis=0)


def config_force_uncertainty(member_forces: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Eq 3, U_F,cfg = max over a configuration's atoms of U_F,atom (eV/Å), shape ``(n_cfg,)``."""
    return per_structure_max(atom_force_uncertainty(member_forces), n_atoms)


def ensemble_rmse(dm: DesignMatrix, ensemble: Ensemble) -> dict[str, float]:
    """RMSE of the ensemble-mean model (meV/atom, meV/Å), which for a linear model is the mean coefficient."""
    return ace.rmse(dm, ensemble.coefficients.mean(axis=0))


def ensemble_uncertainties(dm: DesignMatrix, coefficients: np.ndarray, *, structures_per_chunk: int = 256
                           ) -> dict[str, np.ndarray]:
    """Eqs 1-3 for every structure of ``dm``, computed chunk by chunk of structures.

    Member predictions ``(K, m, ...)`` exist for one chunk at a time (the rows are read as contiguous
    slices, so memory-mapped row arrays are never loaded whole); only the results are kept:
    ``U_E`` ``(n_cfg,)`` eV/atom (eq 1), ``U_F_atom`` ``(n_atom,)`` eV/Å (eq 2), ``U_F_cfg``
    ``(n_cfg,)`` eV/Å (eq 3). Equal to :func:`energy_uncertainty` etc. on whole-set predictions.
    """
    coefficients = np.asarray(coefficients)
    offsets = atom_offsets(dm.n_atoms)
    u_e, u_f_cfg = np.empty(dm.n_configs), np.empty(dm.n_configs)
    u_f_atom = np.empty(int(offsets[-1]))
    for start in range(0, dm.n_configs, structures_per_chunk):
        stop = min(start + structures_per_chunk, dm.n_configs)
        first, last = offsets[start], offsets[stop]
        energies = coefficients @ np.asarray(dm.energy_rows[start:stop]).T
        forces = (coefficients @ np.asarray(dm.force_rows[3 * first:3 * last]).T).reshape(len(coefficients), -1, 3)
        u_e[start:stop] = energy_uncertainty(energies)
        u_f_atom[first:last] = atom_force_uncertainty(forces)
        u_f_cfg[start:stop] = per_structure_max(u_f_atom[first:last], dm.n_atoms[start:stop])
    return {"U_E": u_e, "U_F_atom": u_f_atom, "U_F_cfg": u_f_cfg}
