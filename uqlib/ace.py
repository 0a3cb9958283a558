"""Linear ACE models of W: basis presets, cached design matrices, weighted ridge fits.

A linear ACE model writes the energy of atom *i* as ``E_i = sum_k c_k B_k(i)``
(linear embedding, one density). Energies and forces are then linear in the
coefficients ``c``, so a model is fitted by weighted ridge regression on the
design matrix of :class:`pyace.linearacefit.LinearACEDataset`: one row per
configuration holding the per-atom mean of the B functions (energy per atom),
then three rows per atom holding the B-function forces.

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

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyace
import scipy.linalg
from pyace import ACEBBasisSet, BBasisConfiguration
from pyace.activelearning import compute_number_of_functions
from pyace.linearacefit import LinearACEDataset
from pyace.multispecies_basisextension import create_multispecies_basis_config

from uqlib import cache
from uqlib.data import ELEMENT
from uqlib.progress import progress_bar

CUTOFF = 5.0  # Å, as the paper's models
DESIGN_MATRIX_VERSION = 1  # bump when the computation of design matrices changes
DEFAULT_KAPPA = 0.01  # force weight of the authors' pacemaker input (ml-defect-modeling/input.yaml)
DEFAULT_ALPHA = 1e-8  # ridge strength on the normalised loss above


@dataclass(frozen=True)
class BasisPreset:
    """A linear ACE basis for W: radial and angular limits per body order."""

    name: str
    nradmax_by_orders: tuple[int, ...]
    lmax_by_orders: tuple[int, ...]
    cutoff: float = CUTOFF

    def potential_config(self) -> dict:
        """The pacemaker ``potential`` section of this basis (linear FS embedding)."""
        return {
            "deltaSplineBins": 0.001,
            "elements": [ELEMENT],
            "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
            "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": self.cutoff,
                              "dcut": 0.01, "NameOfCutoffFunction": "cos"}},
            "functions": {"UNARY": {"nradmax_by_orders": list(self.nradmax_by_orders),
                                    "lmax_by_orders": list(self.lmax_by_orders)}},
        }

    def basis_configuration(self) -> BBasisConfiguration:
        return create_multispecies_basis_config(self.potential_config())

    def basis_set(self) -> ACEBBasisSet:
        return ACEBBasisSet(self.basis_configuration())

    @cached_property
    def n_functions(self) -> int:
        """Number of B functions, computed by pyace from the basis (not typed in)."""
        return int(compute_number_of_functions(self.basis_set())[0])


# Named by their function count like the paper's Func-15 ... Func-945; a test
# checks that each name matches the count pyace computes.
PRESETS: dict[str, BasisPreset] = {
    p.name: p
    for p in (
        BasisPreset("Func-15", (15,), (0,)),
        BasisPreset("Func-33", (15, 3), (0, 2)),
        BasisPreset("Func-72", (15, 3, 2, 1), (0, 4, 2, 0)),
        BasisPreset("Func-222", (15, 4, 3, 2), (0, 4, 3, 1)),
        BasisPreset("Func-724", (15, 6, 4, 3), (0, 4, 3, 2)),
        BasisPreset("Func-945", (15, 5, 5, 3), (0, 3, 3, 2)),
    )
}


def get_preset(name: str | BasisPreset) -> BasisPreset:
    """Look up a basis preset by name; the error lists the valid names."""
    if isinstance(name, BasisPreset):
        return name
    if name not in PRESETS:
        raise KeyError(f"Unknown basis preset {name!r}. Valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass
class DesignMatrix:
    """Linear ACE design matrix of a structure table, with its reference labels.

    ``energy_rows[s]`` is the per-atom mean of the B functions of configuration
    *s* (so ``energy_rows @ c`` is the energy per atom, eV/atom); rows
    ``3*i .. 3*i+2`` of ``force_rows`` give the force on atom *i* (eV/Å).
    """

    preset: str
    structure_ids: np.ndarray  # (n_cfg,)
    n_atoms: np.ndarray  # (n_cfg,)
    energy_rows: np.ndarray  # (n_cfg, n_func)
    force_rows: np.ndarray  # (3 * n_atom_total, n_func)
    energy_per_atom: np.ndarray  # (n_cfg,) reference, eV/atom
    forces: np.ndarray  # (n_atom_total, 3) reference, eV/Å
    seconds: float = field(default=0.0)  # wall time to compute (0 if read from the cache)

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
        starts = np.concatenate([[0], np.cumsum(self.n_atoms)])
        atoms = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in configs]) if len(configs) else []
        atoms = np.asarray(atoms, dtype=int)
        rows = (3 * atoms[:, None] + np.arange(3)).ravel()
        return DesignMatrix(self.preset, self.structure_ids[configs], self.n_atoms[configs],
                            self.energy_rows[configs], self.force_rows[rows],
                            self.energy_per_atom[configs], self.forces[atoms])


def _pyace_frame(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"ase_atoms": table["atoms"].to_numpy(), "energy": table["energy"].to_numpy(),
                         "forces": table["forces"].to_numpy()})


def _chunks(n_atoms: np.ndarray, atoms_per_chunk: int) -> list[slice]:
    bounds, start, acc = [], 0, 0
    for s, n in enumerate(n_atoms):
        acc += n
        if acc >= atoms_per_chunk:
            bounds.append(slice(start, s + 1))
            start, acc = s + 1, 0
    if start < len(n_atoms):
        bounds.append(slice(start, len(n_atoms)))
    return bounds


def _compute_design_matrix(table: pd.DataFrame, preset: BasisPreset, workers: int,
                           progress: bool) -> tuple[np.ndarray, np.ndarray]:
    basis = preset.basis_set()
    n_atoms = table["n_atoms"].to_numpy()
    energy_rows = np.empty((len(table), preset.n_functions))
    force_rows = np.empty((3 * n_atoms.sum(), preset.n_functions))
    frame = _pyace_frame(table)
    row = 0
    # pyace builds one chunk with `workers` processes; chunking gives the progress bar.
    with progress_bar(total=int(n_atoms.sum()), unit="atom", disable=not progress,
              desc=f"design matrix {preset.name}") as bar:
        for part in _chunks(n_atoms, atoms_per_chunk=2000):
            dataset = LinearACEDataset(basis, frame.iloc[part].reset_index(drop=True))
            matrix = dataset.get_design_matrix(max_workers=workers)
            n_cfg = part.stop - part.start
            energy_rows[part] = matrix[:n_cfg]
            force_rows[row:row + len(matrix) - n_cfg] = matrix[n_cfg:]
            row += len(matrix) - n_cfg
            bar.update(int(n_atoms[part].sum()))
    return energy_rows, force_rows


def design_matrix(table: pd.DataFrame, preset: str | BasisPreset, *, workers: int = 2,
                  use_cache: bool = True, progress: bool = True) -> DesignMatrix:
    """The design matrix of ``table`` for ``preset``, read from the cache when present.

    Each run of one subset is cached on its own (:func:`uqlib.cache.cached_per_subset`),
    keyed by the preset's basis, the geometry of the structures
    (:func:`uqlib.data.geometry_fingerprint`: labels do not enter), the pyace version
    and :data:`DESIGN_MATRIX_VERSION`.
    """
    preset = get_preset(preset)
    if len(table) == 0:
        raise ValueError("Cannot build a design matrix of an empty structure table")

    def compute(run: pd.DataFrame) -> dict[str, np.ndarray]:
        energy_rows, force_rows = _compute_design_matrix(run, preset, workers, progress)
        return {"energy_rows": energy_rows, "force_rows": force_rows}

    key_parts = {"basis": preset.potential_config(), "pyace": pyace.__version__, "version": DESIGN_MATRIX_VERSION}
    arrays, seconds = cache.cached_per_subset(table, "design", preset.name, key_parts, compute, use_cache=use_cache)
    return DesignMatrix(
        preset=preset.name,
        structure_ids=table["structure_id"].to_numpy(),
        n_atoms=table["n_atoms"].to_numpy(),
        energy_rows=arrays["energy_rows"],
        force_rows=arrays["force_rows"],
        energy_per_atom=table["energy_per_atom"].to_numpy(),
        forces=np.concatenate(table["forces"].to_list()),
        seconds=seconds,
    )


def _check_weights(dm: DesignMatrix, structure_weights: np.ndarray | None) -> np.ndarray:
    w = np.ones(dm.n_configs) if structure_weights is None else np.asarray(structure_weights, dtype=float)
    if w.shape != (dm.n_configs,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"structure_weights must be {dm.n_configs} non-negative numbers, not all zero")
    return w


def _check_kappa(kappa: float) -> None:
    if not 0.0 <= kappa <= 1.0:
        raise ValueError(f"kappa must lie in [0, 1], got {kappa}")


def normal_equations(dm: DesignMatrix, *, kappa: float = DEFAULT_KAPPA,
                     structure_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gram matrix ``G`` and right-hand side ``b`` of the loss (module docstring) without ``alpha``.

    The minimiser is ``c = (G + alpha I)^-1 b``.
    """
    _check_kappa(kappa)
    w = _check_weights(dm, structure_weights)
    energy_w = (1.0 - kappa) / w.sum() * w
    force_w = kappa / (w @ dm.n_atoms) * np.repeat(np.repeat(w, dm.n_atoms), 3)
    weighted_e = dm.energy_rows * energy_w[:, None]
    weighted_f = dm.force_rows * force_w[:, None]
    gram = weighted_e.T @ dm.energy_rows + weighted_f.T @ dm.force_rows
    rhs = weighted_e.T @ dm.energy_per_atom + weighted_f.T @ dm.forces.ravel()
    return gram, rhs


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

    def _coefficients(self) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("LinearACE is not fitted yet: call .fit(design_matrix) first")
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
