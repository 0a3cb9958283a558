"""Active sets (D-optimality): MaxVol, the extrapolation grade gamma, force outliers and ``.asi`` files.

For a linear ACE model, the B projections of an atom, ``B(i)`` (one value per basis
function of its species *s*), are the rows of the per-atom design matrix. The active set
``A_s`` of species *s* is the square submatrix of training projections of (locally)
maximal volume, found by MaxVol; an atom's extrapolation grade (paper eq 8) is

    gamma_atom(i) = max_j |(B(i) A_s^-1)_j|        (dimensionless),

and a configuration's ``gamma_cfg`` is the largest ``gamma_atom`` of its atoms.
``gamma <= 1`` means ``B(i)`` is a combination of the active set's rows with coefficients
of magnitude at most one (interpolation); ``gamma > 1`` means extrapolation. This is
pacemaker's linear active-set mode (``pace_activeset``): the projections, MaxVol and
``.asi`` files are pyace's.

Everything is keyed by element symbol (``{"Ni": array, "Al": array}``), as pacemaker's
``.asi`` files are; a bare array is the one-species case (keyed :data:`uqlib.config.ELEMENT`,
W, the paper's species). Two classes:

- :class:`ActiveSet`: one MaxVol active set per species (pacemaker's ``.asi``);
- :class:`ClusteredActiveSet`: one :class:`ActiveSet` per cluster of training structures,
  each covering the species its atoms span; an atom's grade is the minimum over the
  clusters that cover its species (the paper's clustering-enhanced local D-optimality,
  Sec. 2.3). A single active set is the one-cluster case and then gamma is pacemaker's.
  Saved as a folder of ``cluster-<name>.asi`` files and ``index.json``.

An atom with no neighbour within the cutoff has ``B = 0`` and so ``gamma = 0``:
D-optimality cannot flag an isolated atom (subset E holds one).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyace import ACEBBasisSet
from pyace.activelearning import compute_active_set, compute_B_projections

from uqlib import ace
from uqlib.ace import BasisPreset
from uqlib.config import ELEMENT
from uqlib.exceptions import ActiveSetError
from uqlib.progress import progress_bar

__all__ = ["INDEX_FILE", "MAXVOL_ITERATIONS", "MAXVOL_TOLERANCE", "OUTLIER_RULES", "SINGULAR_CONDITION",
           "ActiveSet", "ActiveSetError", "ActiveSetFileError", "ClusterWarning", "ClusteredActiveSet",
           "NonFiniteGammaError", "active_inverse", "atom_projections", "build_active_set", "calculator_gammas",
           "check_finite_gamma", "extrapolation_grade", "fit_clustered_active_set", "force_errors",
           "force_outlier_mask", "load_active_set", "outlier_threshold", "spans_basis"]

MAXVOL_TOLERANCE = 1.01  # pace_activeset's default: MaxVol stops when no candidate has gamma above it
MAXVOL_ITERATIONS = 300  # pace_activeset's default
SINGULAR_CONDITION = 1e14  # an active set this ill-conditioned is treated as singular
OUTLIER_RULES = ("per-species", "global")  # pace_activeset's rule first (the default)
INDEX_FILE = "index.json"
CLUSTER_RULE = "gamma = min over the clusters that cover the atom's species"

Projections = np.ndarray | Mapping[str, np.ndarray]


class ActiveSetFileError(ActiveSetError):
    """An active set read from disk is unreadable, not square, not finite or singular (the message names the
    file and the species)."""


class NonFiniteGammaError(ActiveSetError):
    """A gamma is NaN or infinite: the active set or the projections are damaged; never banded."""


class ClusterWarning(UserWarning):
    """A cluster does not cover every species, or fewer clusters survive than were asked for."""


def _by_species(values: Projections | None, what: str = "projections") -> dict[str, np.ndarray]:
    """``{element: array}``; a bare array is the one-species case, keyed :data:`ELEMENT`."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return {str(e): np.asarray(v) for e, v in values.items()}
    return {ELEMENT: np.asarray(values)}


# -- projections of the book's structure tables (one species, from the cached featurization pass) -----

def _check_tungsten(table: pd.DataFrame) -> None:
    for sid, atoms in zip(table["structure_id"], table["atoms"], strict=True):
        other = set(atoms.get_chemical_symbols()) - {ELEMENT}
        if other:
            raise ActiveSetError(f"Structure {sid} contains {sorted(other)}: the W basis cannot grade it; for "
                                 f"other species use uqlib.grading.species_projections with their potential")


def atom_projections(table: pd.DataFrame, basis: str | BasisPreset | ACEBBasisSet, *, workers: int = 2,
                     use_cache: bool = True, progress: bool = True) -> np.ndarray:
    """Per-atom B projections ``(n_atom, n_func)`` of a W structure table, atoms in table order.

    ``basis`` is a preset (the projections are then those of the cached featurization pass,
    :func:`uqlib.ace.design_matrix` in ``workers`` processes, never a second pyace pass) or any
    pyace ``ACEBBasisSet`` (computed here, in this process, not cached). With ``use_cache=False``
    a preset's projections are computed alone, without the force rows a design matrix also
    holds (about six times the cost).
    Any species: :func:`uqlib.grading.species_projections`.
    """
    if len(table) == 0:
        raise ActiveSetError("The structure table is empty: there is nothing to project")
    _check_tungsten(table)
    if not use_cache and not isinstance(basis, ACEBBasisSet):
        basis = ace.get_preset(basis).basis_set()
    if isinstance(basis, ACEBBasisSet):
        atoms = table["atoms"].tolist()
        blocks = []
        with progress_bar(total=len(atoms), unit="structure", desc="B projections", disable=not progress) as bar:
            for start in range(0, len(atoms), 20):
                blocks.append(compute_B_projections(basis, atoms[start:start + 20])[0])  # species type 0: W
                bar.update(len(atoms[start:start + 20]))
        return np.concatenate(blocks)
    return ace.design_matrix(table, basis, workers=workers, use_cache=use_cache, progress=progress).projections


# -- force outliers (pace_activeset) ---------------------------------------------------------------

def outlier_threshold(errors: np.ndarray) -> float:
    """Q3 + 1.5 IQR of ``errors`` (``np.quantile``, as ``pace_activeset``): paper eq 7's rule.

    The same number as :func:`uqlib.metrics.tukey_threshold`; computed here so that the
    command does not import metrics' plotting and statistics dependencies (seconds per run).
    """
    errors = np.asarray(errors, dtype=float)
    if errors.size == 0 or not np.isfinite(errors).all():
        raise ActiveSetError("A force-outlier threshold needs a non-empty array of finite force errors: check the "
                             "training forces and the potential")
    q1, q3 = np.quantile(errors, [0.25, 0.75])
    return float(q3 + 1.5 * (q3 - q1))


def force_errors(predicted_forces: np.ndarray, reference_forces: np.ndarray) -> np.ndarray:
    """|F_i^pred - F_i^ref| / sqrt(3) of each atom (eV/Å per component), shape ``(n_atom,)``."""
    return np.linalg.norm(np.asarray(predicted_forces) - np.asarray(reference_forces), axis=1) / np.sqrt(3)


def force_outlier_mask(predicted_forces: np.ndarray, reference_forces: np.ndarray, species: np.ndarray | None = None,
                       *, rule: str = "per-species") -> np.ndarray:
    """``True`` for atoms to keep: force error at most Q3 + 1.5 IQR, as ``pace_activeset`` does.

    ``rule="per-species"`` (pace_activeset's): one threshold per species, over that species'
    atoms (``species``: the element of each atom, ``(n_atom,)``); ``"global"``: one threshold
    over all atoms. Without ``species`` both are the one-species case. Forces ``(n_atom, 3)``, eV/Å.
    """
    if rule not in OUTLIER_RULES:
        raise ActiveSetError(f"outlier rule {rule!r}: choose one of {OUTLIER_RULES}")
    error = force_errors(predicted_forces, reference_forces)
    if species is None or rule == "global":
        return error <= outlier_threshold(error)
    species = np.asarray(species)
    if len(species) != len(error):
        raise ActiveSetError(f"{len(species)} species for {len(error)} atoms' forces")
    keep = np.zeros(len(error), bool)
    for element in np.unique(species):
        mine = species == element
        keep[mine] = error[mine] <= outlier_threshold(error[mine])
    return keep


# -- MaxVol and gamma ------------------------------------------------------------------------------

def spans_basis(rows: np.ndarray, n_functions: int | None = None) -> bool:
    """Whether ``rows`` (projections, ``(n, p)``) have full column rank: a MaxVol active set of them exists.

    At least ``n_functions`` (default: the number of columns) rows, and a smallest singular
    value above the largest / :data:`SINGULAR_CONDITION`, the test :func:`active_inverse` applies.
    """
    n_functions = rows.shape[1] if n_functions is None else n_functions
    if len(rows) < n_functions or len(rows) == 0:
        return False
    singular_values = np.linalg.svd(rows, compute_uv=False)
    return bool(singular_values[-1] > singular_values[0] / SINGULAR_CONDITION)


def active_inverse(matrix: np.ndarray) -> np.ndarray:
    """``A_active^-1`` of a MaxVol active set ``(n_func, n_func)``; raises :class:`ActiveSetError` when
    the set is not square or is singular (condition number above :data:`SINGULAR_CONDITION`)."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ActiveSetError(f"Under-determined active set: {len(matrix)} training atoms for "
                             f"{matrix.shape[-1]} basis functions. Use a smaller basis preset or more structures.")
    condition = np.linalg.cond(matrix)
    if not np.isfinite(condition) or condition > SINGULAR_CONDITION:
        raise ActiveSetError(
            f"The active set is singular (condition number {condition:.1e}): the training projections do not "
            f"span all {len(matrix)} basis functions. Use a smaller basis preset or more varied structures.")
    return np.linalg.inv(matrix)


def _maxvol(rows: np.ndarray, keep: np.ndarray, tolerance: float, max_iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of pyace's MaxVol active set of ``rows[keep]`` and the indices (into ``rows``) it selected."""
    candidates = np.array(rows[keep], dtype=float)  # a copy: pyace edits it in place
    n_atoms, n_functions = candidates.shape
    if n_atoms < n_functions:
        excluded = f" ({int((~keep).sum())} excluded as force outliers)" if (~keep).any() else ""
        raise ActiveSetError(
            f"Under-determined active set: {n_atoms} training atoms for {n_functions} basis functions{excluded}. "
            f"Use a smaller basis preset or more training structures.")
    active, selected = compute_active_set({0: candidates}, {0: np.arange(n_atoms)},
                                          tol=tolerance, max_iters=max_iterations)
    return active_inverse(active[0]), np.flatnonzero(keep)[selected[0]]


def extrapolation_grade(projections: np.ndarray, inverse: np.ndarray, block: int = 20000) -> np.ndarray:
    """gamma_atom = max_j |(B A^-1)_j| for each row ``B`` of ``projections`` (blocked to bound memory)."""
    if projections.shape[1] != len(inverse):
        raise ActiveSetError(f"Projections have {projections.shape[1]} functions, the active set {len(inverse)}: "
                             f"the active set belongs to another potential")
    return np.concatenate([np.abs(projections[s:s + block] @ inverse).max(axis=1)
                           for s in range(0, len(projections), block)] or [np.empty(0)])


def check_finite_gamma(gamma: np.ndarray, where: str) -> np.ndarray:
    """``gamma`` unchanged, or :class:`NonFiniteGammaError` naming ``where`` and the first bad atoms."""
    gamma = np.asarray(gamma)
    bad = np.flatnonzero(~np.isfinite(gamma))
    if bad.size:
        raise NonFiniteGammaError(
            f"{where}: gamma of atom(s) {bad[:5].tolist()} is {gamma[bad[0]]} (not finite); the active set or the "
            f"potential is damaged: rebuild the active set with `uqlib activeset`")
    return gamma


def _check_inverse(inverse: np.ndarray, where: str, *, invertible: bool) -> np.ndarray:
    """A square, finite (and, with ``invertible``, well-conditioned) inverse, or :class:`ActiveSetFileError`."""
    inverse = np.asarray(inverse)
    fix = "rebuild it with `uqlib activeset` (or pace_activeset)"
    if inverse.ndim != 2 or inverse.shape[0] != inverse.shape[1] or inverse.shape[0] == 0:
        raise ActiveSetFileError(f"{where} is {inverse.shape}, not a square matrix: {fix}")
    if not np.issubdtype(inverse.dtype, np.number) or not np.isfinite(inverse).all():
        raise ActiveSetFileError(f"{where} holds non-finite values (NaN or inf): {fix}")
    if invertible:
        condition = np.linalg.cond(inverse)
        if not np.isfinite(condition) or condition > SINGULAR_CONDITION:
            raise ActiveSetFileError(f"{where} is singular (condition number {condition:.1e}; an all-zero "
                                     f"matrix grades everything 0): {fix}")
    return np.asarray(inverse, dtype=float)


# -- one species-keyed active set --------------------------------------------------------------------

@dataclass
class ActiveSet:
    """MaxVol active sets of one or more species: ``inverses[element]`` is ``A_s^-1``, ``(n_func_s, n_func_s)``.

    ``atoms[element]`` are the training rows MaxVol selected and ``candidates[element]`` the
    rows offered to it (force outliers left out), when the set was built here; a set read
    from an ``.asi`` file has only the inverses. W data is the one-species case.
    """

    inverses: dict[str, np.ndarray]
    atoms: dict[str, np.ndarray] = field(default_factory=dict)
    candidates: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.inverses:
            raise ActiveSetError("An active set needs at least one species")
        self.inverses = {str(e): _check_inverse(v, f"the {e} active set", invertible=False)
                         for e, v in self.inverses.items()}

    @property
    def elements(self) -> list[str]:
        return sorted(self.inverses)

    def _only(self) -> str:
        if len(self.inverses) != 1:
            raise ActiveSetError(f"This active set covers {self.elements}: give projections keyed by element")
        return next(iter(self.inverses))

    @property
    def inverse(self) -> np.ndarray:
        """``A^-1`` of a one-species set."""
        return self.inverses[self._only()]

    @property
    def n_candidates(self) -> int:
        """Training atoms offered to MaxVol (all species)."""
        return int(sum(c.sum() for c in self.candidates.values()))

    @property
    def n_excluded(self) -> int:
        """Training atoms dropped as force outliers before MaxVol (all species)."""
        return int(sum((~c).sum() for c in self.candidates.values()))

    def grade(self, projections: Projections, block: int = 20000) -> np.ndarray | dict[str, np.ndarray]:
        """gamma_atom of each row (:func:`extrapolation_grade`): a dict per species, or an array for an array."""
        if not isinstance(projections, Mapping):
            return extrapolation_grade(np.asarray(projections), self.inverses[self._only()], block)
        missing = sorted(set(projections) - set(self.inverses))
        if missing:
            raise ActiveSetError(f"The active set has no {missing} (it covers {self.elements})")
        return {e: extrapolation_grade(np.asarray(rows), self.inverses[e], block) for e, rows in projections.items()}

    def save(self, path: str | Path) -> Path:
        """pacemaker's ``.asi``: ``numpy.savez`` of the inverses keyed by element (as ``pace_activeset``).

        Written to a temporary file in the same folder and renamed into place, so a reader never sees half.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as fh:
                np.savez(fh, **{e: self.inverses[e] for e in self.elements})
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> ActiveSet:
        """Read an ``.asi`` file; every species' inverse must be square, finite and invertible."""
        path = Path(path)
        if not path.is_file():
            raise ActiveSetFileError(f"No active set file {path}: give the .asi that `uqlib activeset` or "
                                     f"pace_activeset wrote")
        try:
            with np.load(path, allow_pickle=False) as stored:
                inverses = {str(key): np.array(stored[key]) for key in stored.files}
        except Exception as err:  # numpy raises OSError, ValueError or BadZipFile for a file it cannot read
            raise ActiveSetFileError(f"Cannot read {path} as a pacemaker active set (.asi): {err}") from err
        if not inverses:
            raise ActiveSetFileError(f"{path} holds no active set")
        return cls({e: _check_inverse(v, f"{path}, species {e}", invertible=True) for e, v in inverses.items()})


def build_active_set(projections: Projections, *, keep: Projections | None = None,
                     tolerance: float = MAXVOL_TOLERANCE, max_iterations: int = MAXVOL_ITERATIONS,
                     what: str | None = None) -> ActiveSet:
    """MaxVol active set of each species' training projections (rows where ``keep`` is true), as ``pace_activeset``.

    ``projections``: ``{element: (n_atom_s, n_func_s)}`` or one array (one species). Raises
    :class:`ActiveSetError`, naming the species (and ``what``, e.g. a cluster), when fewer atoms
    than basis functions remain or the selected matrix is singular; never a pseudo-inverse.
    """
    projections, keep = _by_species(projections), _by_species(keep, "keep")
    inverses, atoms, candidates = {}, {}, {}
    for element in sorted(projections):
        rows = projections[element]
        mask = np.asarray(keep.get(element, np.ones(len(rows), bool)), bool)
        try:
            inverses[element], atoms[element] = _maxvol(rows, mask, tolerance, max_iterations)
        except ActiveSetError as err:
            if what is None and len(projections) == 1:
                raise
            raise ActiveSetError(f"{element} in {what or 'the training set'}: {err}") from err
        candidates[element] = mask
    return ActiveSet(inverses, atoms, candidates)


# -- one clustered active set ------------------------------------------------------------------------

@dataclass
class ClusteredActiveSet:
    """One :class:`ActiveSet` per cluster; an atom's grade is the minimum over the clusters that cover its species.

    ``merged[name]`` says where a cluster's atoms of a species went, and why, when they could
    not span that species' functions (see :func:`fit_clustered_active_set`). One cluster is
    pacemaker's single active set.
    """

    clusters: list[str]
    sets: list[ActiveSet]
    merged: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clusters = [str(c) for c in self.clusters]
        if len(self.clusters) != len(self.sets) or not self.sets:
            raise ActiveSetError(f"{len(self.clusters)} cluster names for {len(self.sets)} active sets")

    @classmethod
    def single(cls, active_set: ActiveSet, name: str = "all") -> ClusteredActiveSet:
        return cls([name], [active_set])

    @property
    def elements(self) -> list[str]:
        return sorted(set().union(*(s.inverses for s in self.sets)))

    def covering(self, element: str) -> list[str]:
        """The clusters whose active set covers ``element``."""
        return [c for c, s in zip(self.clusters, self.sets, strict=True) if element in s.inverses]

    def check_covers(self, elements: Iterable[str]) -> None:
        missing = sorted(set(elements) - set(self.elements))
        if missing:
            raise ActiveSetError(f"The active set has no {missing} (it covers {self.elements}); build it with "
                                 f"`uqlib activeset` from training structures that contain every species")

    def grade_per_cluster(self, projections: np.ndarray, element: str | None = None) -> np.ndarray:
        """gamma of atoms of ``element`` against each cluster, shape ``(n_atom, n_clusters)``; ``inf`` where a
        cluster does not cover ``element``.

        One stacked product ``B [A_1^-1 | A_2^-1 | ...]`` per block of atoms: the projections
        are read once for all clusters.
        """
        element = element or (self.elements[0] if len(self.elements) == 1 else None)
        if element is None:
            raise ActiveSetError(f"This clustered set covers {self.elements}: name the species of the projections")
        projections = np.asarray(projections)
        out = np.full((len(projections), len(self.sets)), np.inf)
        columns = [c for c, s in enumerate(self.sets) if element in s.inverses]
        if not columns or not len(projections):
            return out
        p, k = projections.shape[1], len(columns)
        for c in columns:
            if len(self.sets[c].inverses[element]) != p:
                raise ActiveSetError(f"The {element} active set of cluster {self.clusters[c]} has "
                                     f"{len(self.sets[c].inverses[element])} functions, the potential {p}: "
                                     f"the active set belongs to another potential")
        stacked = np.hstack([self.sets[c].inverses[element] for c in columns])
        block = max(1, int(2e7 // (k * p)))  # about 160 MB of products at a time
        out[:, columns] = np.concatenate([np.abs((projections[s:s + block] @ stacked).reshape(-1, k, p)).max(axis=2)
                                          for s in range(0, len(projections), block)])
        return out

    def grade_with_cluster(self, projections: Projections) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per species: the clustered gamma_atom (min over covering clusters) and the index of the cluster giving it.

        The one place a clustered gamma is computed (the command, the Dask tasks, the ASE
        calculator and the book's criteria all come here).
        """
        result = {}
        for element, rows in _by_species(projections).items():
            if element not in self.elements:
                raise ActiveSetError(f"The active set has no {element} (it covers {self.elements})")
            per_cluster = self.grade_per_cluster(rows, element)
            result[element] = (per_cluster.min(axis=1), per_cluster.argmin(axis=1))
        return result

    def grade(self, projections: Projections) -> np.ndarray | dict[str, np.ndarray]:
        """The clustered gamma_atom: a dict per species, or an array for an array (one species)."""
        graded = {e: g for e, (g, _) in self.grade_with_cluster(projections).items()}
        return graded if isinstance(projections, Mapping) else next(iter(graded.values()))

    def save(self, folder: str | Path) -> Path:
        """A folder of pacemaker ``cluster-<name>.asi`` files and ``index.json`` (files, species, merges)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {name: active.save(folder / f"cluster-{name}.asi").name
                 for name, active in zip(self.clusters, self.sets, strict=True)}
        index = {"rule": CLUSTER_RULE, "files": files,
                 "species": {name: s.elements for name, s in zip(self.clusters, self.sets, strict=True)},
                 "merged": self.merged}
        temporary = folder / f".{INDEX_FILE}.tmp"
        temporary.write_text(json.dumps(index, indent=2))
        os.replace(temporary, folder / INDEX_FILE)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ClusteredActiveSet:
        """Read a folder written by :meth:`save` (older folders without ``species`` read the same way)."""
        folder = Path(folder)
        try:
            index = json.loads((folder / INDEX_FILE).read_text())
            files = index["files"]
            if not isinstance(files, dict) or not files:
                raise KeyError("files")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ActiveSetFileError(f"{folder / INDEX_FILE} is not a clustered active set index ({err!r}): give a "
                                     f"folder written by `uqlib activeset --clusters ...`") from err
        return cls(list(files), [ActiveSet.load(folder / name) for name in files.values()],
                   {str(k): str(v) for k, v in index.get("merged", {}).items()})


def load_active_set(path: str | Path) -> ClusteredActiveSet:
    """A single ``.asi`` file (one cluster, named after the file) or a clustered folder with ``index.json``."""
    path = Path(path)
    if path.is_file():
        return ClusteredActiveSet([path.stem], [ActiveSet.load(path)])
    if (path / INDEX_FILE).is_file():
        return ClusteredActiveSet.load(path)
    raise ActiveSetFileError(f"No active set at {path}: give a pacemaker .asi file or a folder written by "
                             f"`uqlib activeset --clusters ...` (with {INDEX_FILE})")


def _merge_small(rows: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, dict[str, tuple]]:
    """One species: merge clusters whose kept rows cannot span the functions into the nearest cluster.

    The smallest such cluster goes first, into the cluster whose mean projection is
    nearest; repeated until every cluster spans or one is left. Returns the new labels and,
    per merged cluster, ``(target, kept atoms, rank, functions)``.
    """
    n_functions = rows.shape[1]
    names = sorted(set(labels.tolist()))
    notes: dict[str, tuple] = {}
    while len(names) > 1:
        sizes = {n: int((keep & (labels == n)).sum()) for n in names}
        small = [n for n in names if not spans_basis(rows[keep & (labels == n)], n_functions)]
        if not small:
            break
        victim = min(small, key=lambda n: sizes[n])
        centre = {n: rows[labels == n].mean(axis=0) for n in names}
        target = min((n for n in names if n != victim), key=lambda n: np.linalg.norm(centre[n] - centre[victim]))
        rank = int(np.linalg.matrix_rank(rows[keep & (labels == victim)])) if sizes[victim] else 0
        labels = np.where(labels == victim, target, labels)
        notes[victim] = (target, sizes[victim], rank, n_functions)
        names.remove(victim)
    return labels, notes


def fit_clustered_active_set(projections: Projections, labels: Projections, *, keep: Projections | None = None,
                             strict: bool = False, tolerance: float = MAXVOL_TOLERANCE,
                             max_iterations: int = MAXVOL_ITERATIONS, progress: bool = True) -> ClusteredActiveSet:
    """One species-keyed active set per cluster of training atoms (the one cluster-merge loop of uqlib).

    ``projections[element]`` ``(n_atom_s, n_func_s)``; ``labels[element]`` the cluster of each
    row (e.g. its structure's cluster); ``keep[element]`` the rows offered to MaxVol (force
    outliers already removed, :func:`force_outlier_mask`). Arrays are the one-species case.

    Species by species, a cluster whose kept atoms of that species cannot span its functions
    (fewer atoms than functions, or too few distinct environments, as in a high-symmetry
    crystal) hands those atoms to the cluster whose mean projection is nearest (recorded in
    ``merged``). A cluster then covers the species it spans; a cluster that spans none is
    dropped, with a :class:`ClusterWarning` naming it. Fewer surviving clusters than labels is a
    warning, or an :class:`ActiveSetError` with ``strict=True``.
    """
    projections = _by_species(projections)
    labels = {e: np.asarray(v).astype(str) for e, v in _by_species(labels, "labels").items()}
    keep = _by_species(keep, "keep")
    for element, rows in projections.items():
        if element not in labels or len(labels[element]) != len(rows):
            raise ActiveSetError(f"{element}: {len(labels.get(element, []))} cluster labels for {len(rows)} atoms")
    asked = sorted(set().union(*(set(v.tolist()) for v in labels.values())))
    notes: dict[str, dict[str, tuple]] = {}
    for element in sorted(projections):
        mask = np.asarray(keep.get(element, np.ones(len(projections[element]), bool)), bool)
        keep[element] = mask
        labels[element], merged = _merge_small(projections[element], labels[element], mask)
        for victim, note in merged.items():
            notes.setdefault(victim, {})[element] = note
    covered = {name: [e for e in sorted(projections) if (labels[e] == name).any()] for name in asked}
    survivors = [name for name in asked if covered[name]]
    one_species = len(projections) == 1

    def reason(name: str) -> str:
        return "; ".join(f"{e}: {size} atoms of rank {rank} < {p} functions, merged into {target}"
                         for e, (target, size, rank, p) in notes[name].items())

    if one_species:  # the W book's wording: "<target> (<n> atoms of rank <r> < <p> functions)"
        merged = {name: "{} ({} atoms of rank {} < {} functions)".format(*next(iter(notes[name].values())))
                  for name in notes}
    else:
        merged = {name: reason(name) for name in notes}
    for name in notes:
        if name in survivors:
            warnings.warn(f"cluster {name} covers {covered[name]} only: its atoms of other species do not span "
                          f"their functions ({reason(name)})", ClusterWarning, stacklevel=2)
        else:
            warnings.warn(f"cluster {name} dropped: its atoms span no species' functions ({reason(name)})",
                          ClusterWarning, stacklevel=2)
    if len(survivors) < len(asked):
        message = (f"{len(survivors)} of the {len(asked)} clusters asked for survive "
                   f"(dropped: {', '.join(n for n in asked if n not in survivors)}); ask for fewer clusters or give "
                   f"each more varied structures")
        if strict:
            raise ActiveSetError(message)
        warnings.warn(message, ClusterWarning, stacklevel=2)
    sets = []
    for name in progress_bar(survivors, desc="MaxVol per cluster", unit="cluster", disable=not progress):
        chosen = {e: labels[e] == name for e in covered[name]}
        sets.append(build_active_set({e: projections[e][m] for e, m in chosen.items()},
                                     keep={e: keep[e][m] for e, m in chosen.items()}, tolerance=tolerance,
                                     max_iterations=max_iterations, what=None if one_species else f"cluster {name}"))
    return ClusteredActiveSet(survivors, sets, merged)


# -- the reference ---------------------------------------------------------------------------------

def calculator_gammas(calculator, structures) -> np.ndarray:
    """gamma_atom of every atom of ``structures`` from a pyace ``PyACECalculator`` with an active set.

    The reference that :meth:`ActiveSet.grade` is tested and benchmarked against; atoms in order.
    """
    gammas = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calculator
        atoms.get_potential_energy()
        gammas.append(np.array(calculator.results["gamma"]))
    return np.concatenate(gammas)
