"""Linear ACE models of W (or any species): a nested ladder of basis presets, one cached featurization, ridge fits.

A linear ACE model writes the energy of atom *i* as ``E_i = sum_k c_k B_k(i)``
(linear embedding, one density). Energies and forces are then linear in the
coefficients ``c``, so a model is fitted by weighted ridge regression on a design
matrix with the layout of :class:`pyace.linearacefit.LinearACEDataset`: one row per
configuration holding the per-atom mean of the B functions (energy per atom),
then three rows per atom holding the B-function forces. With several species the columns
are pyace's too: each species' block of functions (rank 1, then higher ranks) in the order
of ``basis.elements_name``, an atom's B values filling its own species' block.

Featurization happens once per structure: pyace's ``ACECalculator.compute`` with
projections and B gradients yields, in one call, the per-atom B values (the
projections D-optimality grades) and their force derivatives. It runs at the largest
preset of the ladder (:data:`LARGEST`); every smaller preset is *nested* in it (same
radial basis, per-order limits contained), so its design matrix is a column selection
(:meth:`DesignMatrix.select`), identical to what pyace computes for that preset alone.

The loss is pacemaker's, with force weight ``kappa`` and uniform weights::

    L(c) = (1 - kappa) / N_cfg * sum_s (e_s(c) - e_s^ref)^2
           + kappa / N_atom * sum_i |F_i(c) - F_i^ref|^2
           + alpha * |c|^2

with ``e_s`` the energy per atom (eV/atom) and ``F_i`` the force on atom *i*
(eV/Å). Structure weights ``w_s`` (bootstrap counts) act as repeating structure
*s* ``w_s`` times: both of its terms are multiplied by ``w_s``, and
``N_cfg = sum_s w_s``, ``N_atom = sum_s w_s n_s``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache as cache_in_memory
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyace
import scipy.linalg
import scipy.linalg.blas
from pyace import ACEBBasisSet, ACEBEvaluator, ACECalculator, BBasisConfiguration
from pyace.atomicenvironment import aseatoms_to_atomicenvironment
from pyace.multispecies_basisextension import create_multispecies_basis_config

from uqlib import cache
from uqlib.config import ELEMENT
from uqlib.exceptions import FeaturizationError, NotFittedError
from uqlib.io import validate_structures
from uqlib.progress import log_array, progress_bar
from uqlib.tables import atom_offsets, atoms_of

__all__ = ["BasisPreset", "CHUNK_BYTES", "CUTOFF", "DEFAULT_ALPHA", "DEFAULT_KAPPA", "DESIGN_MATRIX_VERSION",
           "DesignMatrix", "ENERGY_ROWS_PER_CHUNK", "LADDER", "LARGEST", "LinearACE", "PAPER_MODELS", "PRESETS",
           "cached_superset", "check_elements", "check_features", "check_kappa", "check_structure_weights",
           "choose_alpha", "column_map", "cross_validate_alpha", "cv_folds", "design_matrix", "featurize",
           "fit_coefficients", "function_keys", "get_preset", "nesting_problem", "normal_equations",
           "predict_energy_per_atom", "predict_forces", "pyace_passes", "random_deal", "rmse",
           "select_normal_equations", "solve_ridge", "stacked_normal_equations", "weighted_gram"]

CUTOFF = 5.0  # Å, as the paper's models
DESIGN_MATRIX_VERSION = 2  # bump when the computation of design matrices changes
DEFAULT_KAPPA = 0.01  # force weight of the authors' pacemaker input (ml-defect-modeling/input.yaml)
DEFAULT_ALPHA = 1e-8  # ridge strength on the normalised loss above


@dataclass(frozen=True)
class BasisPreset:
    """A linear ACE basis: radial and angular limits per body order, for the species ``elements`` (W by default).

    The ladder's names count W's functions; :meth:`for_elements` gives the same limits for
    other species, whose function count :attr:`n_functions` is larger (pyace adds the
    mixed-species functions of every body order).
    """

    name: str
    nradmax_by_orders: tuple[int, ...]
    lmax_by_orders: tuple[int, ...]
    cutoff: float = CUTOFF
    elements: tuple[str, ...] = (ELEMENT,)

    def for_elements(self, elements: Sequence[str]) -> BasisPreset:
        """The same radial and angular limits for the species ``elements`` (in pyace's order: sorted)."""
        return dataclasses.replace(self, elements=check_elements(elements))

    def potential_config(self) -> dict:
        """The pacemaker ``potential`` section of this basis (linear FS embedding).

        One species: the limits apply to its ``UNARY`` functions (W's configuration, unchanged).
        Several: ``ALL`` applies them to every block pyace builds (unary, binary, ... functions).
        """
        block = "UNARY" if len(self.elements) == 1 else "ALL"
        return {
            "deltaSplineBins": 0.001,
            "elements": list(self.elements),
            "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
            "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": self.cutoff,
                              "dcut": 0.01, "NameOfCutoffFunction": "cos"}},
            "functions": {block: {"nradmax_by_orders": list(self.nradmax_by_orders),
                                  "lmax_by_orders": list(self.lmax_by_orders)}},
        }

    def basis_configuration(self) -> BBasisConfiguration:
        return create_multispecies_basis_config(self.potential_config())

    def basis_set(self) -> ACEBBasisSet:
        return ACEBBasisSet(self.basis_configuration())

    @cached_property
    def n_functions(self) -> int:
        """Number of coefficients (B functions of all species), computed by pyace from the basis (not typed in)."""
        return len(self.basis_set().basis_coeffs)


def check_elements(elements: Sequence[str]) -> tuple[str, ...]:
    """Chemical symbols as a sorted tuple without repeats (pyace's species order); a clear error otherwise."""
    from ase.data import chemical_symbols

    if isinstance(elements, str):
        elements = [e.strip() for e in elements.split(",")]
    unknown = [e for e in elements if e not in chemical_symbols[1:]]
    if not elements or unknown:
        raise ValueError(f"elements must be chemical symbols such as Cu,Au; got {list(elements)}")
    return tuple(sorted(set(elements)))


# The accuracy ladder: six nested presets (same radial basis; each preset's per-order
# nradmax/lmax limits contain the previous one's), named by the count pyace computes.
# A test checks the names, the nesting and the monotone training error.
LADDER: tuple[BasisPreset, ...] = (  # training F_RMSE on A+B (kappa 0.01, alpha 1e-8), measured
    BasisPreset("Func-33", (15, 3), (0, 2)),  # 183.3 meV/Å
    BasisPreset("Func-49", (15, 3, 2), (0, 3, 1)),  # 137.7
    BasisPreset("Func-72", (15, 3, 2, 1), (0, 4, 2, 0)),  # 103.8
    BasisPreset("Func-222", (15, 4, 3, 2), (0, 4, 3, 1)),  # 79.0
    BasisPreset("Func-724", (15, 6, 4, 3), (0, 4, 3, 2)),  # 58.8
    # the top: within 5 % of the paper's most accurate model (51.37 meV/Å), and its A+B projections
    # span its functions, so an A+B active set exists (benchmarks/measurements/top_preset_candidates.py)
    BasisPreset("Func-968", (15, 6, 4, 3), (0, 4, 4, 2)),  # 49.86
)
PRESETS: dict[str, BasisPreset] = {p.name: p for p in LADDER}
LARGEST = LADDER[-1].name  # every design matrix is featurized once at this preset, then sliced

PAPER_MODELS: dict[str, str] = {LADDER[0].name: "Func-15", LADDER[-1].name: "Func-945"}
"""The paper's models that our presets stand for: only the two the paper states, at the ends.

The paper's independent variable is accuracy, training force RMSE from 171.62 (Func-15) to
51.37 meV/Å (Func-945); it names no other model (the authors' code calls the six FN-15,
FN-30, FN-50, FN-100, FN-300, FN-all). Our ladder is ranked on the same axis (training
force RMSE on A+B, kappa 0.01, alpha 1e-8: 183.3, 137.7, 103.8, 79.0, 58.8, 49.86 meV/Å):
Func-33 stands for Func-15 (within 7 %) and Func-968 for Func-945 (within 3 %); the steps
between are ours. The paper's models are linear ACE as ours (one density, identity
embedding); what differs is that pacemaker optimises the radial functions with the
coefficients and fits by at most 2,000 BFGS steps, so a linear model on our fixed radial
basis needs more B functions for a given force error (968 against 945 at the top; with 15
functions it is a pure pair potential at 696 meV/Å, a model class the paper never used).
"""


def get_preset(name: str | BasisPreset) -> BasisPreset:
    """Look up a basis preset by name; the error lists the valid names."""
    if isinstance(name, BasisPreset):
        return name
    if name not in PRESETS:
        raise KeyError(f"Unknown basis preset {name!r}. Valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def nesting_problem(small: str | BasisPreset, large: str | BasisPreset) -> str | None:
    """Why ``small`` is not nested in ``large`` (``None`` when it is).

    Nested means: the same radial basis (cutoff, radial settings and the number of rank-1
    radial functions ``nradmax_by_orders[0]``) and, for every body order, radial and
    angular limits no larger than ``large``'s. Then every B function of ``small`` is one of
    ``large`` (:func:`column_map` finds which, from pyace's basis).
    """
    small, large = get_preset(small), get_preset(large)
    if small.elements != large.elements:
        return f"the species differ ({list(small.elements)} vs {list(large.elements)})"
    a, b = small.potential_config(), large.potential_config()
    if a["bonds"] != b["bonds"] or a["embeddings"] != b["embeddings"]:
        return "the radial settings or embeddings differ"
    if small.nradmax_by_orders[0] != large.nradmax_by_orders[0]:
        return f"nradmax of order 1 differs ({small.nradmax_by_orders[0]} vs {large.nradmax_by_orders[0]})"
    if len(small.nradmax_by_orders) > len(large.nradmax_by_orders):
        return f"{small.name} has body orders up to {len(small.nradmax_by_orders)}, {large.name} only up to " \
               f"{len(large.nradmax_by_orders)}"
    # zip stops at small's last order: large may have more orders
    for order, (ns, nl, ls, ll) in enumerate(zip(small.nradmax_by_orders, large.nradmax_by_orders,
                                                 small.lmax_by_orders, large.lmax_by_orders, strict=False), start=1):
        if ns > nl or ls > ll:
            return f"order {order}: nradmax {ns} > {nl} or lmax {ls} > {ll}"
    return None


def function_keys(basis: ACEBBasisSet) -> list[tuple]:
    """One key per B function of a basis, in the column order of the design matrix (species by species).

    The key is the function's specification in pyace, ``(mu0, rank, mus, ns, ls, LS)``; two
    functions with the same key are the same function when the radial basis is shared.
    """
    functions = [f for rank1, higher in zip(basis.basis_rank1, basis.basis, strict=True)
                 for f in [*rank1, *higher]]
    return [(f.mu0, f.rank, tuple(f.mus), tuple(f.ns), tuple(f.ls), tuple(f.LS)) for f in functions]


def column_map(small: str | BasisPreset, large: str | BasisPreset) -> np.ndarray:
    """Columns of ``large``'s design matrix that hold ``small``'s functions, in ``small``'s order.

    Computed by matching pyace's function specifications (:func:`function_keys`); raises
    :class:`ValueError` if ``small`` is not nested in ``large``.
    """
    small, large = get_preset(small), get_preset(large)
    problem = nesting_problem(small, large)
    if problem is not None:
        raise ValueError(f"Preset {small.name} is not nested in {large.name}: {problem}")
    return _column_map(small, large)


@cache_in_memory
def _column_map(small: BasisPreset, large: BasisPreset) -> np.ndarray:
    large_keys = {key: j for j, key in enumerate(function_keys(large.basis_set()))}
    small_keys = function_keys(small.basis_set())
    if len(large_keys) != large.n_functions or len(set(small_keys)) != len(small_keys):
        raise ValueError("pyace function specifications are not unique: cannot map columns")
    missing = [key for key in small_keys if key not in large_keys]
    if missing:
        raise ValueError(f"{len(missing)} functions of {small.name} are not in {large.name}, e.g. {missing[0]}")
    columns = np.array([large_keys[key] for key in small_keys])
    columns.flags.writeable = False
    return columns


@dataclass
class DesignMatrix:
    """Linear ACE design matrix of a structure table, with its reference labels.

    ``energy_rows[s]`` is the per-atom mean of the B functions of configuration
    *s* (so ``energy_rows @ c`` is the energy per atom, eV/atom); rows
    ``3*i .. 3*i+2`` of ``force_rows`` give the force on atom *i* (eV/Å);
    ``projections[i]`` are atom *i*'s B values (so ``projections @ c`` is its energy, eV),
    the rows D-optimality grades. With several species, an atom's B values fill its own
    species' block of columns and the other blocks are zero (pyace's layout); D-optimality
    grades each species' block on its own (:func:`uqlib.grading.species_projections`).
    """

    preset: str
    structure_ids: np.ndarray  # (n_cfg,)
    n_atoms: np.ndarray  # (n_cfg,)
    energy_rows: np.ndarray  # (n_cfg, n_func)
    force_rows: np.ndarray  # (3 * n_atom_total, n_func)
    energy_per_atom: np.ndarray  # (n_cfg,) reference, eV/atom
    forces: np.ndarray  # (n_atom_total, 3) reference, eV/Å
    projections: np.ndarray  # (n_atom_total, n_func) per-atom B values
    seconds: float = field(default=0.0)  # wall time to compute (0 if read from the cache)
    basis: BasisPreset | None = None  # the preset of these columns (default: PRESETS[preset])

    @property
    def n_configs(self) -> int:
        return len(self.n_atoms)

    @property
    def n_functions(self) -> int:
        return self.energy_rows.shape[1]

    @property
    def atom_structure(self) -> np.ndarray:
        """Index of the configuration each atom belongs to, shape ``(n_atom_total,)``."""
        return np.repeat(np.arange(self.n_configs), self.n_atoms)

    def subset(self, configs: np.ndarray) -> DesignMatrix:
        """The design matrix of the configurations ``configs`` (indices, in that order)."""
        configs = np.asarray(configs, dtype=int)
        atoms = atoms_of(configs, self.n_atoms)
        rows = (3 * atoms[:, None] + np.arange(3)).ravel()
        return DesignMatrix(self.preset, self.structure_ids[configs], self.n_atoms[configs],
                            self.energy_rows[configs], self.force_rows[rows],
                            self.energy_per_atom[configs], self.forces[atoms], self.projections[atoms],
                            basis=self.basis)

    def select(self, preset: str | BasisPreset) -> DesignMatrix:
        """The design matrix of a preset nested in this one: a column selection, no pyace pass.

        Raises :class:`ValueError` if ``preset`` is not nested in this design matrix's preset.
        """
        own = self.basis or get_preset(self.preset)
        # a preset named here has this design matrix's species
        preset = get_preset(preset).for_elements(own.elements) if isinstance(preset, str) else preset
        if preset == own:
            return self
        columns = column_map(preset, own)
        return DesignMatrix(preset.name, self.structure_ids, self.n_atoms, self.energy_rows[:, columns],
                            self.force_rows[:, columns], self.energy_per_atom, self.forces,
                            self.projections[:, columns], seconds=self.seconds, basis=preset)


_PASSES = {"structures": 0}  # structures featurized by pyace in this process (see pyace_passes)
_WORKER: dict = {}  # the worker's basis, evaluator and calculator; set before forking, inherited by workers


def pyace_passes() -> int:
    """How many structures this process has featurized with pyace so far (all presets together).

    A full build that featurizes every structure once, at the largest preset, has
    ``pyace_passes() == number of structures`` (benchmarks/featurization_passes.py).
    """
    return _PASSES["structures"]


def _featurize_chunk(atoms_list: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per structure: B projections ``(n_at, p)`` and their force rows ``(3 n_at, p)`` from ONE pyace call.

    ``ACECalculator.compute(compute_projections=True, compute_b_grad=True)`` is the call
    :class:`pyace.linearacefit.LinearACEDataset` makes per structure; it yields the per-atom
    B values and ``forces_bfuncs`` (``-dE_i/dr`` per function) together. An atom's B values
    (as many as its species has functions) go to its species' block of columns, as
    ``LinearACEDataset`` places them; ``forces_bfuncs`` already spans all columns.
    """
    basis, calculator = _WORKER["basis"], _WORKER["calculator"]
    n_functions, block_start = _WORKER["n_functions"], _WORKER["block_start"]
    out = []
    for atoms in atoms_list:
        env = aseatoms_to_atomicenvironment(atoms, cutoff=basis.cutoffmax,
                                            elements_mapper_dict=basis.elements_to_index_map)
        calculator.compute(env, compute_projections=True, compute_b_grad=True)
        if len(block_start) == 1:  # one species: the projections are the whole row
            projections = np.array(calculator.projections, dtype=float).reshape(len(atoms), -1)
        else:
            projections = np.zeros((len(atoms), n_functions))
            # species_type also lists the periodic images after the real atoms: zip stops at the real ones
            for row, species, values in zip(projections, env.species_type, calculator.projections, strict=False):
                row[block_start[species]:block_start[species] + len(values)] = values
        # forces_bfuncs is [atom][function][xyz]; rows 3i..3i+2 of the design matrix are atom i's x, y, z
        force_rows = np.array(calculator.forces_bfuncs, dtype=float).transpose(0, 2, 1).reshape(3 * len(atoms), -1)
        out.append((projections, force_rows))
    return out


def _set_worker_basis(basis: ACEBBasisSet) -> None:
    evaluator = ACEBEvaluator(basis)
    # each species' block of columns starts after the previous species' functions (LinearACEDataset's layout)
    sizes = [len(rank1) + len(higher) for rank1, higher in zip(basis.basis_rank1, basis.basis, strict=True)]
    # keep all three alive: the calculator holds a raw pointer to the evaluator, the evaluator to the basis
    _WORKER.update(basis=basis, evaluator=evaluator, calculator=ACECalculator(evaluator),
                   n_functions=sum(sizes), block_start=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int))


def featurize(table: pd.DataFrame, preset: str | BasisPreset, *, workers: int = 2,
              progress: bool = True, structures_per_chunk: int = 8) -> dict[str, np.ndarray]:
    """One pyace pass over ``table``: energy rows, force rows and per-atom B projections of ``preset``.

    Returns ``energy_rows`` ``(n_cfg, p)`` (per-atom mean of B, so ``energy_rows @ c`` is
    eV/atom), ``force_rows`` ``(3 n_atom, p)`` (eV/Å per unit coefficient) and
    ``projections`` ``(n_atom, p)``, atoms in table order. Uncached: use :func:`design_matrix`.
    A failure inside a worker process raises here; nothing is returned or cached. Every
    structure is checked first (:func:`uqlib.io.validate_structures`: at least one atom,
    finite positions and cell, full or no periodicity, only ``preset.elements``): a bad one
    raises :class:`uqlib.io.DataError` naming its structure id, before any pyace call.
    """
    preset = get_preset(preset)
    validate_structures(table, elements=preset.elements)
    n_atoms = table["n_atoms"].to_numpy()
    p = preset.n_functions
    energy_rows = np.empty((len(table), p))
    force_rows = np.empty((3 * int(n_atoms.sum()), p))
    projections = np.empty((int(n_atoms.sum()), p))
    atoms = table["atoms"].tolist()
    chunks = [atoms[s:s + structures_per_chunk] for s in range(0, len(atoms), structures_per_chunk)]
    _set_worker_basis(preset.basis_set())
    structure, atom = 0, 0
    with progress_bar(total=int(n_atoms.sum()), unit="atom", disable=not progress,
                      desc=f"featurize {preset.name}") as bar:
        if workers > 1 and len(chunks) > 1:
            # fork, like pyace's LinearACEDataset: workers inherit the basis without pickling it
            pool = multiprocessing.get_context("fork").Pool(workers)
            results = pool.imap(_featurize_chunk, chunks)
        else:
            pool, results = None, map(_featurize_chunk, chunks)
        try:
            for block in results:
                for proj, forces in block:
                    n = len(proj)
                    if n != n_atoms[structure] or proj.shape[1] != p:
                        raise FeaturizationError(
                            f"pyace returned {proj.shape} projections for structure "
                            f"{table['structure_id'].iloc[structure]} ({n_atoms[structure]} atoms, {p} functions)")
                    projections[atom:atom + n] = proj
                    energy_rows[structure] = proj.mean(axis=0)
                    force_rows[3 * atom:3 * (atom + n)] = forces
                    structure, atom = structure + 1, atom + n
                    _PASSES["structures"] += 1
                    bar.update(n)
        finally:
            if pool is not None:
                pool.terminate()
    arrays = {"energy_rows": energy_rows, "force_rows": force_rows, "projections": projections}
    problem = check_features(arrays, n_atoms, p)
    if problem:
        raise FeaturizationError(f"Featurization of {len(table)} structures with {preset.name} failed: {problem}")
    return arrays



def check_features(arrays: dict[str, np.ndarray], n_atoms: np.ndarray, n_functions: int) -> str | None:
    """What is wrong with featurized arrays of structures with ``n_atoms`` atoms (``None`` if nothing).

    Checks every shape against the structures and the basis, that all values are
    finite, and that each energy row is the per-atom mean of the structure's projections.
    """
    n_cfg, n_atom = len(n_atoms), int(np.sum(n_atoms))
    expected = {"energy_rows": (n_cfg, n_functions), "force_rows": (3 * n_atom, n_functions),
                "projections": (n_atom, n_functions)}
    for name, shape in expected.items():
        if name not in arrays:
            return f"{name} missing"
        if arrays[name].shape != shape:
            return f"{name} has shape {arrays[name].shape}, expected {shape}"
        if not np.isfinite(arrays[name]).all():
            return f"{name} holds {int((~np.isfinite(arrays[name])).sum())} non-finite values"
    means = np.add.reduceat(arrays["projections"], atom_offsets(n_atoms)[:-1], axis=0)
    means /= np.asarray(n_atoms)[:, None]
    if not np.allclose(means, arrays["energy_rows"], rtol=1e-10, atol=1e-12):
        return "energy rows are not the per-atom means of the projections"
    return None


def _cache_key_parts(top: BasisPreset) -> dict:
    return {"basis": top.potential_config(), "pyace": pyace.__version__, "version": DESIGN_MATRIX_VERSION}


def cached_superset(table: pd.DataFrame, preset: str | BasisPreset) -> BasisPreset | None:
    """The largest ladder preset (for ``preset``'s species) that nests ``preset`` and has ``table`` cached."""
    preset = get_preset(preset)
    for top in (rung.for_elements(preset.elements) for rung in reversed(LADDER)):
        if (top.name != preset.name and nesting_problem(preset, top) is None
                and cache.is_cached(table, "design", top.name, _cache_key_parts(top))):
            return top
    return None


def design_matrix(table: pd.DataFrame, preset: str | BasisPreset, *, largest: str | BasisPreset | None = None,
                  workers: int = 2, use_cache: bool = True, progress: bool = True) -> DesignMatrix:
    """The design matrix of ``table`` for ``preset``: a column selection of one featurization at ``largest``.

    ``largest`` is the largest preset the caller will need of these structures (for example
    the top of the ladder a notebook sweeps); it must nest ``preset``. By default it is the
    largest ladder preset already cached for ``table`` (:func:`cached_superset`), else
    ``preset`` itself. Each run of one subset is featurized once at ``largest`` and cached
    (:func:`uqlib.cache.cached_per_subset`), keyed by the basis, the geometry of the
    structures (:func:`uqlib.cache.geometry_fingerprint`: labels do not enter), the pyace
    version and :data:`DESIGN_MATRIX_VERSION`; a cached entry is checked
    (:func:`check_features`) before it is trusted. Every smaller preset of the ladder is
    then :meth:`DesignMatrix.select`, never a second pyace pass: columns shared by nested
    presets are identical.
    """
    preset = get_preset(preset)
    if len(table) == 0:
        raise ValueError("Cannot build a design matrix of an empty structure table")
    if largest is not None:
        top = get_preset(largest).for_elements(preset.elements) if isinstance(largest, str) else largest
        if nesting_problem(preset, top) is not None:
            raise ValueError(f"Preset {preset.name} is not nested in largest={top.name}: "
                             f"{nesting_problem(preset, top)}")
    else:
        top = (cached_superset(table, preset) if use_cache else None) or preset

    def compute(run: pd.DataFrame) -> dict[str, np.ndarray]:
        return featurize(run, top, workers=workers, progress=progress)

    def validate(run: pd.DataFrame, arrays: dict[str, np.ndarray]) -> str | None:
        return check_features(arrays, run["n_atoms"].to_numpy(), top.n_functions)

    arrays, seconds = cache.cached_per_subset(table, "design", top.name, _cache_key_parts(top), compute,
                                              use_cache=use_cache, validate=validate)
    full = DesignMatrix(
        preset=top.name,
        structure_ids=table["structure_id"].to_numpy(),
        n_atoms=table["n_atoms"].to_numpy(),
        energy_rows=arrays["energy_rows"],
        force_rows=arrays["force_rows"],
        energy_per_atom=table["energy_per_atom"].to_numpy(),
        forces=np.concatenate(table["forces"].to_list()),
        projections=arrays["projections"],
        seconds=seconds,
        basis=top,
    )
    selected = full.select(preset)
    # what the design matrices take in memory, for the book runner's record of the step (uqlib.progress.log_array)
    for held in (full, selected) if selected is not full else (full,):
        log_array(f"{len(table)} structures, {int(held.n_atoms.sum())} atoms, {held.basis.name}",
                              sum(a.nbytes for a in (held.energy_rows, held.force_rows, held.projections)))
    return selected


def _check_weights(dm: DesignMatrix, structure_weights: np.ndarray | None) -> np.ndarray:
    w = np.ones(dm.n_configs) if structure_weights is None else np.asarray(structure_weights, dtype=float)
    if w.shape != (dm.n_configs,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"structure_weights must be {dm.n_configs} non-negative numbers, not all zero")
    return w


def check_kappa(kappa: float) -> None:
    """``kappa`` (the force weight of the loss) must lie in [0, 1]."""
    if not 0.0 <= kappa <= 1.0:
        raise ValueError(f"kappa must lie in [0, 1], got {kappa}")


def weighted_gram(rows: np.ndarray, row_weights: np.ndarray, targets: np.ndarray,
                  block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``X^T W X`` and ``X^T W y`` for rows ``X`` ``(n, p)``, weights ``W = diag(w)`` (``w >= 0``), targets ``y``.

    Accumulated over blocks of rows with BLAS ``dsyrk`` (the symmetric product, half the
    flops of ``X^T X``), so no weighted copy of ``X`` is ever made: the temporary memory is
    one block, ``block x p`` doubles.
    """
    p = rows.shape[1]
    gram = np.zeros((p, p), order="F")
    rhs = np.zeros(p)
    for start in range(0, len(rows), block):
        part, w = rows[start:start + block], row_weights[start:start + block]
        if not w.any():
            continue
        scaled = part * np.sqrt(w)[:, None]
        # scaled.T is Fortran-ordered (p, m): dsyrk(trans=0) gives scaled.T @ scaled, upper triangle, in place
        gram = scipy.linalg.blas.dsyrk(1.0, scaled.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
        rhs += part.T @ (w * targets[start:start + block])
    upper = np.triu(gram)
    return upper + np.triu(gram, 1).T, rhs


def normal_equations(dm: DesignMatrix, *, kappa: float = DEFAULT_KAPPA,
                     structure_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gram matrix ``G`` and right-hand side ``b`` of the loss (module docstring) without ``alpha``.

    The minimiser is ``c = (G + alpha I)^-1 b``. Shapes ``(p, p)`` and ``(p,)``.
    """
    check_kappa(kappa)
    w = _check_weights(dm, structure_weights)
    energy_w = (1.0 - kappa) / w.sum() * w
    force_w = kappa / (w @ dm.n_atoms) * np.repeat(np.repeat(w, dm.n_atoms), 3)
    gram_e, rhs_e = weighted_gram(dm.energy_rows, energy_w, dm.energy_per_atom)
    gram_f, rhs_f = weighted_gram(dm.force_rows, force_w, dm.forces.ravel())
    return gram_e + gram_f, rhs_e + rhs_f


# -- streamed normal equations: K members' Grams in one pass over the rows ----------------------------

CHUNK_BYTES = 256 * 2**20  # memory for one chunk's per-structure force Grams (stacked_normal_equations)
ENERGY_ROWS_PER_CHUNK = 256  # energy rows read at a time by stacked_normal_equations


def _blas_into(result: np.ndarray, target: np.ndarray) -> None:
    """BLAS wrappers write in place when the output is Fortran-contiguous float64; copy back if one did not."""
    if not np.shares_memory(result, target):
        target[...] = result


def _fill_upper_from_lower(grams: np.ndarray) -> np.ndarray:
    """Make each ``(p, p)`` matrix of ``grams`` ``(K, p, p)`` symmetric in place from its lower triangle.

    The upper triangles must be zero (as the accumulation leaves them); one ``p x p`` temporary at a time.
    """
    for gram in grams:
        gram += np.tril(gram, -1).T
    return grams


def check_structure_weights(structure_weights: np.ndarray, n_configs: int) -> np.ndarray:
    """Weights ``(K, n_cfg)`` of each structure in each of K fits: non-negative, each row with a positive sum."""
    w = np.asarray(structure_weights, dtype=float)
    w = w[None, :] if w.ndim == 1 else w
    if w.ndim != 2 or w.shape[1] != n_configs or (w < 0).any() or not (w.sum(axis=1) > 0).all():
        raise ValueError(f"structure_weights must be (K, {n_configs}) non-negative numbers, each row not all zero; "
                         f"got shape {np.shape(structure_weights)}")
    return w


def stacked_normal_equations(dm: DesignMatrix, structure_weights: np.ndarray, *, kappa: float = DEFAULT_KAPPA,
                             chunk_bytes: float = CHUNK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Gram matrices ``(K, p, p)`` and right-hand sides ``(K, p)`` of K weighted losses in ONE pass over the rows.

    Row ``k`` of ``structure_weights`` ``(K, n_cfg)`` gives fit *k*'s structure weights (bootstrap
    counts, 0/1 subsamples, CV folds); each ``(G_k, b_k)`` equals :func:`normal_equations` with those
    weights (the loss of the module docstring without ``alpha``).

    How: the structures are read in chunks (contiguous slices of the row arrays, so memory-mapped
    arrays are never loaded whole). For the m structures of a chunk, each structure's force Gram
    ``F_s^T F_s`` (BLAS ``dsyrk``) goes into a stack ``(m, p^2)``; then one GEMM adds
    ``W_chunk (K x m) @ stack`` to the K accumulators in place, with the member scales
    ``kappa / N_atom,k`` folded into ``W``. The energy rows are rank one per structure, so member
    *k*'s energy Gram is one ``dsyrk`` of its weighted rows (zero-weight rows skipped). Working
    memory: the K accumulators (``8 K p^2`` bytes) and one chunk's stack (at most ``chunk_bytes``).
    """
    check_kappa(kappa)
    w = check_structure_weights(structure_weights, dm.n_configs)
    n_members, p = len(w), dm.n_functions
    energy_scale = (1.0 - kappa) / w.sum(axis=1)  # (K,)
    force_scale = kappa / (w @ dm.n_atoms)  # (K,)
    # lower triangles (C order) accumulate: the upper triangles of the Fortran views BLAS writes
    grams = np.zeros((n_members, p, p))
    rhs = np.zeros((n_members, p))
    offsets = atom_offsets(dm.n_atoms)
    per_chunk = int(max(1, min(dm.n_configs, chunk_bytes // (8 * p * p))))
    stack = np.zeros((per_chunk, p, p))  # per-structure force Grams; their untouched triangles stay zero
    stack_rhs = np.empty((per_chunk, p))
    flat_grams = grams.reshape(n_members, p * p).T  # (p^2, K), Fortran-contiguous view of the accumulators
    for start in range(0, dm.n_configs, per_chunk):
        stop = min(start + per_chunk, dm.n_configs)
        first = offsets[start]
        rows = dm.force_rows[3 * first:3 * offsets[stop]]  # one contiguous read
        targets = np.asarray(dm.forces[first:offsets[stop]]).ravel()
        for j, s in enumerate(range(start, stop)):
            a, b = 3 * (offsets[s] - first), 3 * (offsets[s + 1] - first)
            block = np.asarray(rows[a:b])
            _blas_into(scipy.linalg.blas.dsyrk(1.0, block.T, beta=0.0, c=stack[j].T, trans=0, lower=0,
                                               overwrite_c=1), stack[j].T)
            stack_rhs[j] = targets[a:b] @ block
        m = stop - start
        weights = w[:, start:stop] * force_scale[:, None]  # (K, m)
        _blas_into(scipy.linalg.blas.dgemm(1.0, stack[:m].reshape(m, p * p).T, np.asfortranarray(weights.T),
                                           beta=1.0, c=flat_grams, overwrite_c=1), flat_grams)
        rhs += weights @ stack_rhs[:m]
    energy_block = ENERGY_ROWS_PER_CHUNK  # K dsyrk calls per block, each adding a rank-(block) update
    for start in range(0, dm.n_configs, energy_block):
        rows = np.asarray(dm.energy_rows[start:start + energy_block])
        targets = np.asarray(dm.energy_per_atom[start:start + energy_block])
        for k in range(n_members):
            v = w[k, start:start + energy_block] * energy_scale[k]
            kept = v > 0
            if not kept.any():
                continue
            scaled = rows[kept] * np.sqrt(v[kept])[:, None]
            _blas_into(scipy.linalg.blas.dsyrk(1.0, scaled.T, beta=1.0, c=grams[k].T, trans=0, lower=0,
                                               overwrite_c=1), grams[k].T)
            rhs[k] += (v[kept] * targets[kept]) @ rows[kept]
    return _fill_upper_from_lower(grams), rhs


def select_normal_equations(gram: np.ndarray, rhs: np.ndarray, preset: str | BasisPreset,
                            top: str | BasisPreset) -> tuple[np.ndarray, np.ndarray]:
    """The normal equations of ``preset`` from those of a preset ``top`` that nests it: sub-blocks, no pass.

    ``G[np.ix_(cols, cols)]`` and ``b[cols]`` with ``cols`` = :func:`column_map` ``(preset, top)``;
    ``gram`` may be ``(p, p)`` or a stack ``(K, p, p)`` (``rhs`` ``(p,)`` or ``(K, p)``). A Gram is a
    sum over rows of ``x x^T``, and ``preset``'s rows are ``top``'s rows restricted to ``cols``
    (:meth:`DesignMatrix.select`), so one pass at the top serves every step of the ladder.
    """
    columns = column_map(preset, top)
    top = get_preset(top)
    if gram.shape[-1] != top.n_functions:
        raise ValueError(f"gram has {gram.shape[-1]} functions, {top.name} has {top.n_functions}: "
                         f"pass the normal equations of {top.name}")
    return gram[..., columns[:, None], columns], rhs[..., columns]


def solve_ridge(gram: np.ndarray, rhs: np.ndarray, alpha: float) -> np.ndarray:
    """Solve ``(G + alpha I) c = b`` by Cholesky (LAPACK through scipy); ``rhs`` may be ``(p, K)``."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive (a ridge), got {alpha}")
    return scipy.linalg.solve(gram + alpha * np.eye(len(gram)), rhs, assume_a="pos")


def fit_coefficients(dm: DesignMatrix, *, kappa: float = DEFAULT_KAPPA, alpha: float = DEFAULT_ALPHA,
                     structure_weights: np.ndarray | None = None) -> np.ndarray:
    """Minimise the weighted ridge loss (module docstring); returns ``c`` of length ``n_functions``."""
    gram, rhs = normal_equations(dm, kappa=kappa, structure_weights=structure_weights)
    return solve_ridge(gram, rhs, alpha)


def predict_energy_per_atom(dm: DesignMatrix, coefficients: np.ndarray) -> np.ndarray:
    """Energy per atom of each configuration (eV/atom); ``coefficients`` may be ``(K, n_func)``."""
    return np.asarray(coefficients) @ dm.energy_rows.T


def predict_forces(dm: DesignMatrix, coefficients: np.ndarray) -> np.ndarray:
    """Forces (eV/Å), shape ``(n_atom, 3)``, or ``(K, n_atom, 3)`` for ``(K, n_func)`` coefficients."""
    flat = np.asarray(coefficients) @ dm.force_rows.T
    return flat.reshape(*flat.shape[:-1], -1, 3)


def rmse(dm: DesignMatrix, coefficients: np.ndarray) -> dict[str, float]:
    """Energy RMSE (meV/atom) and force-component RMSE (meV/Å), as pacemaker reports them."""
    e = predict_energy_per_atom(dm, coefficients) - dm.energy_per_atom
    f = predict_forces(dm, coefficients) - dm.forces
    return {"E_rmse": 1e3 * float(np.sqrt(np.mean(e**2))), "F_rmse": 1e3 * float(np.sqrt(np.mean(f**2)))}


class LinearACE:
    """A linear ACE potential fitted by weighted ridge (scikit-learn style).

    >>> model = LinearACE("Func-72").fit(train_dm)
    >>> model.rmse(test_dm)
    {'E_rmse': ..., 'F_rmse': ...}
    """

    def __init__(self, preset: str | BasisPreset, *, kappa: float = DEFAULT_KAPPA,
                 alpha: float = DEFAULT_ALPHA) -> None:
        self.preset = get_preset(preset)
        self.kappa = kappa
        self.alpha = alpha
        self.coef_: np.ndarray | None = None
        self.fit_seconds_: float | None = None

    def _check_dm(self, dm: DesignMatrix) -> None:
        if dm.preset != self.preset.name:
            raise ValueError(f"Design matrix is for {dm.preset}, the model for {self.preset.name}")
        if dm.basis is not None and dm.basis.elements != self.preset.elements:
            raise ValueError(f"Design matrix is for species {list(dm.basis.elements)}, the model for "
                             f"{list(self.preset.elements)}")

    def _coefficients(self) -> np.ndarray:
        if self.coef_ is None:
            raise NotFittedError("LinearACE is not fitted yet: call .fit(design_matrix) first")
        return self.coef_

    def fit(self, dm: DesignMatrix, structure_weights: np.ndarray | None = None) -> LinearACE:
        self._check_dm(dm)
        start = time.perf_counter()
        self.coef_ = fit_coefficients(dm, kappa=self.kappa, alpha=self.alpha, structure_weights=structure_weights)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def predict_energy_per_atom(self, dm: DesignMatrix) -> np.ndarray:
        self._check_dm(dm)
        return predict_energy_per_atom(dm, self._coefficients())

    def predict_forces(self, dm: DesignMatrix) -> np.ndarray:
        self._check_dm(dm)
        return predict_forces(dm, self._coefficients())

    def rmse(self, dm: DesignMatrix) -> dict[str, float]:
        self._check_dm(dm)
        return rmse(dm, self._coefficients())

    def basis_set(self) -> ACEBBasisSet:
        basis = self.preset.basis_set()
        basis.basis_coeffs = self._coefficients()
        return basis

    def to_yaml(self, path: str | Path) -> Path:
        """Write a pacemaker YAML that :class:`pyace.PyACECalculator` loads."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.basis_set().to_BBasisConfiguration().save(str(path))
        return path


def random_deal(n_items: int, n_parts: int, seed: int) -> np.ndarray:
    """Part label ``(n_items,)`` of each item: a seeded random deal into ``n_parts`` near-equal parts (CV folds)."""
    labels = np.empty(n_items, dtype=int)
    for part, members in enumerate(np.array_split(np.random.default_rng(seed).permutation(n_items), n_parts)):
        labels[members] = part
    return labels


def cv_folds(n_configs: int, n_folds: int, seed: int) -> np.ndarray:
    """Fold label ``(n_configs,)`` of each structure: a seeded random deal into ``n_folds`` near-equal folds."""
    if not isinstance(n_folds, int | np.integer) or not 2 <= n_folds <= n_configs:
        raise ValueError(f"n_folds must be an integer in [2, {n_configs}] (the number of structures), got {n_folds!r}")
    return random_deal(n_configs, n_folds, seed)


def _held_out_errors(dm: DesignMatrix, coefficients: np.ndarray, configs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared energy-per-atom and force-component errors of ``(n_alpha, p)`` coefficients on ``configs``."""
    held = dm.subset(configs)
    de = predict_energy_per_atom(held, coefficients) - held.energy_per_atom
    df = predict_forces(held, coefficients) - held.forces
    return np.mean(de**2, axis=-1), np.mean(df.reshape(len(coefficients), -1) ** 2, axis=-1)


def cross_validate_alpha(dm: DesignMatrix, alphas: np.ndarray, *, n_folds: int = 5, seed: int = 0,
                         kappa: float = DEFAULT_KAPPA) -> pd.DataFrame:
    """K-fold cross-validation over structures of the ridge strength ``alpha`` (module docstring's loss).

    Each fold's structures are held out whole; the model is fitted on the others for every
    ``alpha`` (one eigendecomposition of the fold's ``G`` serves all of them) and scored on
    the held-out structures by the loss without ``alpha``,
    ``(1 - kappa) MSE(e) + kappa * 3 MSE(F component)`` (so the two terms weigh as in the fit).
    Returns one row per alpha: ``alpha``, ``cv_loss``, ``cv_E_rmse`` (meV/atom), ``cv_F_rmse``
    (meV/Å), errors pooled over the folds (mean of the folds' mean squared errors).
    """
    check_kappa(kappa)
    alphas = np.asarray(alphas, dtype=float)
    if alphas.ndim != 1 or len(alphas) == 0 or (alphas <= 0).any():
        raise ValueError(f"alphas must be a non-empty list of positive ridge strengths, got {alphas}")
    folds = cv_folds(dm.n_configs, n_folds, seed)
    mse_e, mse_f = np.zeros(len(alphas)), np.zeros(len(alphas))
    # every fold's normal equations in one pass over the rows (fold k's fit leaves fold k out)
    grams, rhss = stacked_normal_equations(dm, (folds[None, :] != np.arange(n_folds)[:, None]).astype(float),
                                           kappa=kappa)
    for fold in progress_bar(range(n_folds), desc="alpha cross-validation", unit="fold"):
        gram, rhs = grams[fold], rhss[fold]
        eigenvalues, vectors = np.linalg.eigh(gram)
        projected = vectors.T @ rhs
        coefficients = (projected[None, :] / (eigenvalues[None, :] + alphas[:, None])) @ vectors.T
        e, f = _held_out_errors(dm, coefficients, np.flatnonzero(folds == fold))
        mse_e += e / n_folds
        mse_f += f / n_folds
    return pd.DataFrame({"alpha": alphas, "cv_loss": (1 - kappa) * mse_e + kappa * 3 * mse_f,
                         "cv_E_rmse": 1e3 * np.sqrt(mse_e), "cv_F_rmse": 1e3 * np.sqrt(mse_f)})


def choose_alpha(dm: DesignMatrix, alphas: np.ndarray, *, n_folds: int = 5, seed: int = 0,
                 kappa: float = DEFAULT_KAPPA) -> tuple[float, pd.DataFrame]:
    """The ``alpha`` of least cross-validated loss (:func:`cross_validate_alpha`), and the CV curve."""
    curve = cross_validate_alpha(dm, alphas, n_folds=n_folds, seed=seed, kappa=kappa)
    return float(curve.loc[curve["cv_loss"].idxmin(), "alpha"]), curve
