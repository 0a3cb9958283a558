"""Grading your own structures: species-keyed projections, active sets and the clustered gamma.

Works with any pacemaker B-basis potential file (``.yaml``) and any species it covers,
as pacemaker does (``pace_activeset``, ``pace_select``, ``PyACECalculator``), and adds the
paper's clustered grade (Sec. 2.3): an atom's

    gamma_atom(i) = min over clusters c of  max_j |(B(i) A_c,s^-1)_j|

where ``B(i)`` are the atom's B projections (one per basis function of its species
``s``) and ``A_c,s`` is cluster *c*'s MaxVol active set of species *s* (paper eq 8 per
cluster). A single active set is the one-cluster case, and then gamma is exactly
pacemaker's. ``gamma_cfg`` is the largest ``gamma_atom`` of a configuration.

Everything is keyed by element symbol (``{"W": array, ...}``), as pacemaker's ``.asi``
files are. A clustered set is a folder of per-cluster ``.asi`` files and ``index.json``,
the format of :meth:`uqlib.clustering.ClusteredActiveSet.save`.

Frames are graded in chunks, so a long MD trajectory read with :func:`ase.io.iread`
is never held in memory at once: only one chunk's projections are.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from pyace import ACEBBasisSet, PyACECalculator
from pyace.activelearning import compute_active_set, compute_B_projections

from uqlib.dopt import (
    MAXVOL_ITERATIONS,
    MAXVOL_TOLERANCE,
    ActiveSetError,
    active_inverse,
    build_active_set,
    extrapolation_grade,
    spans_basis,
)
from uqlib.io import DataError, validate_structures
from uqlib.progress import progress_bar

BANDS = ("below", "between", "above")  # gamma_cfg < lo, lo <= gamma_cfg <= hi, gamma_cfg > hi
DEFAULT_GAMMA_LO, DEFAULT_GAMMA_HI = 1.0, 10.0  # interpolation limit; pacemaker's advice for "unreliable"
INDEX_FILE = "index.json"
CLUSTER_RULE = "gamma = min over clusters"


# -- potentials and projections ------------------------------------------------------------------

def load_potential(path: str | Path) -> ACEBBasisSet:
    """A pacemaker B-basis potential (``.yaml``), with a clear error for a missing or wrong file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"No potential file {path}: give the .yaml that `uqlib fit` or pacemaker wrote")
    if path.suffix == ".yace":
        raise DataError(f"{path} is a C-tilde (.yace) potential, which has no B projections: give its .yaml")
    try:
        return ACEBBasisSet(str(path))
    except Exception as err:  # pyace raises RuntimeError or yaml errors for a file it cannot read
        raise DataError(f"Cannot read {path} as a pacemaker B-basis potential (.yaml): {err}") from err


def atom_species(structures: Sequence[Atoms]) -> np.ndarray:
    """The element symbol of every atom of ``structures``, structure by structure, shape ``(n_atom,)``."""
    return np.concatenate([np.asarray(a.get_chemical_symbols()) for a in structures])


def species_projections(basis: ACEBBasisSet, structures: Sequence[Atoms], *,
                        source: str | None = None, start: int = 0) -> dict[str, np.ndarray]:
    """Per-species B projections ``{element: (n_atom_of_element, n_func_of_element)}`` (pyace).

    Atoms of each species are in structure order, then atom order. Structures are
    validated first (finite, full or no periodicity, species the basis covers), so
    pyace never sees one it would turn into zeros or a crash; errors name ``source``
    and the frame (numbered from ``start``).
    """
    structures = list(structures)
    validate_structures(structures, source, elements=basis.elements_name, start=start)
    by_type = compute_B_projections(basis, structures)
    return {basis.elements_name[t]: np.asarray(array) for t, array in by_type.items()}


def per_atom_order(species: np.ndarray, per_species: dict[str, np.ndarray], fill: float = np.nan) -> np.ndarray:
    """Scatter per-species values back to atom order (``species`` from :func:`atom_species`)."""
    out = np.full(len(species), fill, dtype=float)
    for element, values in per_species.items():
        out[species == element] = values
    return out


# -- active sets ---------------------------------------------------------------------------------

@dataclass
class SpeciesActiveSet:
    """Inverses of the MaxVol active set of each species, ``{element: A_s^-1 (n_func_s, n_func_s)}``."""

    inverses: dict[str, np.ndarray]

    @property
    def elements(self) -> list[str]:
        return sorted(self.inverses)

    def save(self, path: str | Path) -> Path:
        """pacemaker's ``.asi``: ``numpy.savez`` of the inverses keyed by element (``pace_activeset``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez(fh, **self.inverses)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SpeciesActiveSet:
        path = Path(path)
        try:
            with np.load(path) as stored:
                inverses = {key: stored[key] for key in stored.files}
        except Exception as err:  # numpy raises OSError, ValueError, BadZipFile
            raise DataError(f"Cannot read {path} as a pacemaker active set (.asi): {err}") from err
        if not inverses:
            raise DataError(f"{path} holds no active set")
        return cls(inverses)


def build_species_active_set(projections: dict[str, np.ndarray], *, tolerance: float = MAXVOL_TOLERANCE,
                             max_iterations: int = MAXVOL_ITERATIONS, what: str = "the training set"
                             ) -> SpeciesActiveSet:
    """MaxVol active set of each species (:func:`uqlib.dopt.build_active_set`, species by species), as inverses.

    Raises :class:`uqlib.dopt.ActiveSetError`, naming the species and ``what``, when a species
    has fewer atoms than functions or a singular active set; never falls back to a pseudo-inverse.
    """
    inverses = {}
    for element, rows in projections.items():
        try:
            inverses[element] = build_active_set(rows, tolerance=tolerance, max_iterations=max_iterations).inverse
        except ActiveSetError as err:
            raise ActiveSetError(f"{element} in {what}: {err}") from err
    return SpeciesActiveSet(inverses)


def batch_count(n_structures: int, n_atoms: int, n_functions: int, *, batch_size: int | None = None,
                memory_limit: str | int | None = None) -> int:
    """Number of batches for a batched MaxVol: from structures per batch, or from a memory limit.

    ``memory_limit`` (bytes, or text such as ``"2GB"``) bounds one batch's projections,
    ``n_atoms / n_batches x n_functions`` float64 values, as ``pace_activeset --memory-limit`` does.
    """
    from dask.utils import parse_bytes

    if batch_size is not None and memory_limit is not None:
        raise DataError("Give batch_size (--batch-size) or memory_limit (--memory-limit), not both")
    if batch_size is not None:
        if batch_size < 1:
            raise DataError(f"batch_size (--batch-size) must be at least 1 structure, got {batch_size}")
        return max(1, -(-n_structures // batch_size))
    if memory_limit is None:
        return 1
    try:
        limit = parse_bytes(memory_limit) if isinstance(memory_limit, str) else int(memory_limit)
    except ValueError as err:
        raise DataError(f"memory_limit (--memory-limit) {memory_limit!r} is not a size such as 2GB: {err}") from err
    if limit <= 0:
        raise DataError(f"memory_limit (--memory-limit) must be positive, got {memory_limit!r}")
    return int(min(n_structures, max(1, np.ceil(n_atoms * n_functions * 8 / limit))))


def build_active_set_by_batches(basis: ACEBBasisSet, structures: Sequence[Atoms], *, batch_size: int | None = None,
                                memory_limit: str | int | None = None, tolerance: float = MAXVOL_TOLERANCE,
                                max_iterations: int = MAXVOL_ITERATIONS, source: str | None = None
                                ) -> SpeciesActiveSet:
    """MaxVol active set of each species from structures too many to project at once (pyace's batched MaxVol).

    pyace's :func:`compute_active_set_by_batches` projects one batch at a time, keeps a
    cumulative MaxVol set (stage 1), then refines it with the atoms still above
    ``tolerance`` (stage 2); only one batch's projections are in memory. The result is
    an approximation of the one-shot MaxVol (:func:`build_species_active_set`): its
    gamma over the training set is at most ``tolerance`` when the refinement converges.
    """
    from pyace.activelearning import compute_active_set_by_batches, compute_number_of_functions

    structures = list(structures)
    validate_structures(structures, source, elements=basis.elements_name)
    n_functions = max(compute_number_of_functions(basis))
    n_batches = batch_count(len(structures), sum(len(a) for a in structures), n_functions, batch_size=batch_size,
                            memory_limit=memory_limit)
    _, active, _ = compute_active_set_by_batches(basis, structures, n_batches=n_batches, gamma_tolerance=tolerance,
                                                 maxvol_iters=max_iterations)
    inverses = {}
    for species_type, matrix in active.items():
        element = basis.elements_name[species_type]
        try:
            inverses[element] = active_inverse(matrix)
        except ActiveSetError as err:
            raise ActiveSetError(f"{element}: {err}") from err
    return SpeciesActiveSet(inverses)


@dataclass
class GradingSet:
    """Active sets of one or more clusters; an atom's gamma is the minimum over clusters.

    One cluster is pacemaker's single active set.
    """

    clusters: list[str]
    sets: list[SpeciesActiveSet]
    merged: dict[str, str] = field(default_factory=dict)

    @property
    def elements(self) -> list[str]:
        return sorted(set().union(*(s.inverses for s in self.sets)))

    def grade_per_cluster(self, element: str, projections: np.ndarray) -> np.ndarray:
        """gamma of atoms of ``element`` against each cluster, shape ``(n_atom, n_clusters)``.

        A cluster with no active set for ``element`` grades it ``inf`` (it has not seen it).
        """
        out = np.full((len(projections), len(self.sets)), np.inf)
        for c, active in enumerate(self.sets):
            inverse = active.inverses.get(element)
            if inverse is None:
                continue
            if inverse.shape[0] != projections.shape[1]:
                raise ActiveSetError(f"The {element} active set of cluster {self.clusters[c]} has "
                                     f"{inverse.shape[0]} functions, the potential {projections.shape[1]}: "
                                     f"the active set belongs to another potential")
            out[:, c] = extrapolation_grade(projections, inverse)
        return out

    def grade(self, projections: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per species: the clustered gamma_atom and the index of the cluster giving the minimum."""
        result = {}
        for element, rows in projections.items():
            per_cluster = self.grade_per_cluster(element, rows)
            result[element] = (per_cluster.min(axis=1), per_cluster.argmin(axis=1))
        return result

    def check_covers(self, elements: Iterable[str]) -> None:
        missing = sorted(set(elements) - set(self.elements))
        if missing:
            raise DataError(f"The active set has no {missing} (it covers {self.elements}); build it with "
                            f"`uqlib activeset` from training structures that contain every species")

    def save(self, folder: str | Path) -> Path:
        """A folder of ``cluster-<name>.asi`` and ``index.json`` (as :class:`uqlib.clustering.ClusteredActiveSet`)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {name: active.save(folder / f"cluster-{name}.asi").name
                 for name, active in zip(self.clusters, self.sets, strict=True)}
        (folder / INDEX_FILE).write_text(json.dumps({"rule": CLUSTER_RULE, "files": files, "merged": self.merged},
                                                    indent=2))
        return folder


def load_grading_set(path: str | Path) -> GradingSet:
    """A single ``.asi`` file (one cluster) or a clustered folder with ``index.json``."""
    path = Path(path)
    if path.is_file():
        return GradingSet([path.stem], [SpeciesActiveSet.load(path)])
    if (path / INDEX_FILE).is_file():
        try:
            index = json.loads((path / INDEX_FILE).read_text())
            files = index["files"]
        except (ValueError, KeyError) as err:
            raise DataError(f"{path / INDEX_FILE} is not a clustered active set index: {err}") from err
        return GradingSet(list(files), [SpeciesActiveSet.load(path / f) for f in files.values()],
                          index.get("merged", {}))
    raise DataError(f"No active set at {path}: give a pacemaker .asi file or a folder written by "
                    f"`uqlib activeset --clusters ...` (with {INDEX_FILE})")


# -- clustered active sets from training structures -----------------------------------------------

def structure_descriptors(projections: dict[str, np.ndarray], structure_of_atom: dict[str, np.ndarray],
                          n_structures: int) -> np.ndarray:
    """Per structure: its atoms' mean B projections, species blocks side by side (zeros for an absent species).

    For one species these are the energy rows of the linear ACE design matrix, as
    :func:`uqlib.clustering.structure_descriptors` uses. Shape ``(n_structures, sum_s n_func_s)``.
    """
    blocks = []
    for element in sorted(projections):
        rows, owner = projections[element], structure_of_atom[element]
        sums = np.zeros((n_structures, rows.shape[1]))
        np.add.at(sums, owner, rows)
        counts = np.bincount(owner, minlength=n_structures)[:, None]
        blocks.append(np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0))
    return np.hstack(blocks)


def build_grading_set(projections: dict[str, np.ndarray], structure_of_atom: dict[str, np.ndarray],
                      structure_clusters: np.ndarray | None = None, *, keep: dict[str, np.ndarray] | None = None,
                      tolerance: float = MAXVOL_TOLERANCE, progress: bool = True) -> GradingSet:
    """One species-keyed active set per cluster of training structures (or one set without clusters).

    ``structure_of_atom[element]`` is the structure index of each row of
    ``projections[element]``; ``structure_clusters`` a label per structure. A cluster whose
    atoms of some species cannot span that species' functions is merged into the cluster
    with the nearest mean descriptor (:func:`structure_descriptors`), and the merge is
    recorded, as :func:`uqlib.clustering.fit_clustered_active_set` does for W.
    ``keep[element]`` marks the rows offered to MaxVol (force outliers already removed,
    :func:`uqlib.dopt.force_outlier_mask`); all rows by default.
    """
    keep = keep or {}
    if structure_clusters is None:
        offered = {e: rows[keep.get(e, slice(None))] for e, rows in projections.items()}
        return GradingSet(["all"], [build_species_active_set(offered, tolerance=tolerance)])
    labels = np.asarray(structure_clusters).astype(str)
    descriptors = structure_descriptors(projections, structure_of_atom, len(labels))
    names, merged = sorted(set(labels)), {}

    def rows(element: str, name: str) -> np.ndarray:
        chosen = labels[structure_of_atom[element]] == name
        if element in keep:
            chosen &= keep[element]
        return projections[element][chosen]

    while len(names) > 1:
        small = [n for n in names if not all(spans_basis(rows(e, n)) for e in projections)]
        if not small:
            break
        victim = min(small, key=lambda n: int((labels == n).sum()))
        centre = {n: descriptors[labels == n].mean(axis=0) for n in names}
        target = min((n for n in names if n != victim), key=lambda n: np.linalg.norm(centre[n] - centre[victim]))
        merged[victim] = f"{target} (its atoms do not span every species' functions)"
        labels = np.where(labels == victim, target, labels)
        names.remove(victim)
    sets = [build_species_active_set({e: rows(e, n) for e in projections}, tolerance=tolerance,
                                     what=f"cluster {n}")
            for n in progress_bar(names, desc="active sets", unit="cluster", disable=not progress)]
    return GradingSet(names, sets, merged)


def structure_indices(structures: Sequence[Atoms], elements: Iterable[str]) -> dict[str, np.ndarray]:
    """For each species, the structure index of each of its atoms (the row order of :func:`species_projections`)."""
    owner = np.repeat(np.arange(len(structures)), [len(a) for a in structures])
    species = atom_species(structures)
    return {e: owner[species == e] for e in elements}


# -- grading frames ------------------------------------------------------------------------------

def band(gamma_cfg: np.ndarray, gamma_lo: float, gamma_hi: float) -> np.ndarray:
    """``below`` (gamma < lo: interpolation), ``between``, or ``above`` (gamma > hi: unreliable)."""
    if not 0 < gamma_lo <= gamma_hi:
        raise DataError(f"Need 0 < gamma-lo <= gamma-hi, got {gamma_lo} and {gamma_hi}")
    gamma_cfg = np.asarray(gamma_cfg)
    return np.where(gamma_cfg < gamma_lo, BANDS[0], np.where(gamma_cfg > gamma_hi, BANDS[2], BANDS[1]))


@dataclass
class FrameGrade:
    """The grade of one frame: per-atom gamma (dimensionless) and the cluster that gave each minimum."""

    frame: int
    atoms: Atoms
    gamma: np.ndarray  # (n_atoms,)
    cluster: np.ndarray  # (n_atoms,) index into GradingSet.clusters

    @property
    def gamma_max(self) -> float:
        return float(self.gamma.max())


def frame_chunks(frames: Iterable[Atoms], size: int) -> Iterator[list[Atoms]]:
    """Lists of at most ``size`` consecutive frames, read lazily from ``frames``."""
    chunk: list[Atoms] = []
    for atoms in frames:
        chunk.append(atoms)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def grade_chunk(basis: ACEBBasisSet, chunk: Sequence[Atoms], grading_set: GradingSet, *, start: int = 0,
                source: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame of ``chunk``: gamma_atom ``(n_atoms,)`` and the index of the cluster giving its minimum.

    One pyace projection call for the chunk, then the clustered grade; the unit of work of
    both :func:`iter_grades` and the Dask tasks of :mod:`uqlib.distributed`, so the two give
    identical numbers. Frames are numbered from ``start`` in error messages.
    """
    species = atom_species(chunk) if len(chunk) else np.empty(0, str)
    graded = grading_set.grade(species_projections(basis, chunk, source=source, start=start))
    gamma = per_atom_order(species, {e: g for e, (g, _) in graded.items()})
    cluster = per_atom_order(species, {e: c for e, (_, c) in graded.items()}, fill=-1).astype(int)
    bounds = np.cumsum([0, *(len(a) for a in chunk)])
    return [(gamma[bounds[i]:bounds[i + 1]], cluster[bounds[i]:bounds[i + 1]]) for i in range(len(chunk))]


def iter_grades(frames: Iterable[Atoms], basis: ACEBBasisSet, grading_set: GradingSet, *,
                chunk_size: int = 50, source: str | None = None, progress: bool = True) -> Iterator[FrameGrade]:
    """Grade frames one chunk at a time (bounded memory); yields one :class:`FrameGrade` per frame.

    ``frames`` is read lazily, so peak memory is one chunk's frames and projections
    (``chunk atoms x n_func`` floats), whatever the trajectory length.
    """
    if chunk_size < 1:
        raise DataError(f"chunk_size must be at least 1, got {chunk_size}")
    grading_set.check_covers(basis.elements_name)
    start = 0
    with progress_bar(unit="frame", desc=f"grading {source or 'frames'}", disable=not progress) as bar:
        for chunk in frame_chunks(frames, chunk_size):
            for i, (gamma, cluster) in enumerate(grade_chunk(basis, chunk, grading_set, start=start, source=source)):
                yield FrameGrade(start + i, chunk[i], gamma, cluster)
            start += len(chunk)
            bar.update(len(chunk))
    if start == 0:
        raise DataError(f"{source or 'the input'} holds no frames to grade")


def grade_structures(structures: Sequence[Atoms], basis: ACEBBasisSet, grading_set: GradingSet, *,
                     gamma_lo: float = DEFAULT_GAMMA_LO, gamma_hi: float = DEFAULT_GAMMA_HI,
                     chunk_size: int = 50, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-configuration and per-atom grade tables of ``structures``.

    Per configuration: ``frame``, ``n_atoms``, ``gamma`` (gamma_cfg), ``band``.
    Per atom: ``frame``, ``atom``, ``element``, ``gamma`` (gamma_atom), ``cluster`` (name).
    """
    configs, atoms_rows = [], []
    for g in iter_grades(structures, basis, grading_set, chunk_size=chunk_size, progress=progress):
        configs.append((g.frame, len(g.atoms), g.gamma_max))
        atoms_rows.append(pd.DataFrame({"frame": g.frame, "atom": np.arange(len(g.atoms)),
                                        "element": g.atoms.get_chemical_symbols(), "gamma": g.gamma,
                                        "cluster": np.asarray(grading_set.clusters)[g.cluster]}))
    per_config = pd.DataFrame(configs, columns=["frame", "n_atoms", "gamma"])
    per_config["band"] = band(per_config["gamma"], gamma_lo, gamma_hi)
    return per_config, pd.concat(atoms_rows, ignore_index=True)


# -- ensembles -----------------------------------------------------------------------------------

def member_potentials(folder: str | Path) -> list[Path]:
    """The member YAMLs that `uqlib fit --ensemble K` wrote (``members/member-*.yaml``)."""
    folder = Path(folder)
    members = sorted((folder / "members").glob("member-*.yaml")) if folder.is_dir() else []
    if len(members) < 2:
        raise DataError(f"No ensemble in {folder}: give the output folder of `uqlib fit --ensemble K` (K >= 2), "
                        f"which holds members/member-*.yaml")
    return members


def member_forces(calculators: Sequence[PyACECalculator], atoms: Atoms) -> np.ndarray:
    """Forces of each member on ``atoms`` (eV/Å), shape ``(K, n_atoms, 3)``."""
    forces = []
    for calc in calculators:
        copy = atoms.copy()
        copy.calc = calc
        forces.append(copy.get_forces())
    return np.array(forces)


# -- selection of new training structures ---------------------------------------------------------

def _maxvol_rows(rows: np.ndarray, owner: np.ndarray, tolerance: float, max_iterations: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """pyace's MaxVol over ``rows``: the active rows and the owner (frame, or -1) of each."""
    selected_rows, selected_owner = compute_active_set({0: np.array(rows, dtype=float)}, {0: owner},
                                                       tol=tolerance, max_iters=max_iterations)
    return selected_rows[0], selected_owner[0]


def _extrapolating_frames(projections: dict[str, np.ndarray], owners: dict[str, np.ndarray],
                          active: dict[str, np.ndarray], tolerance: float) -> set[int]:
    """Frames with an atom whose gamma against the square active set ``active`` exceeds ``tolerance``."""
    frames: set[int] = set()
    for element, rows in projections.items():
        matrix = active.get(element)
        if matrix is None or matrix.shape[0] != matrix.shape[1]:
            frames.update(owners[element].tolist())  # no full active set yet: every frame can enlarge it
            continue
        gamma = np.abs(rows @ np.linalg.inv(matrix)).max(axis=1)
        frames.update(owners[element][gamma > tolerance].tolist())
    return frames


def select_frames(candidates: Sequence[Atoms], basis: ACEBBasisSet, grading_set: GradingSet, n: int, *,
                  tolerance: float = MAXVOL_TOLERANCE, max_iterations: int = MAXVOL_ITERATIONS) -> list[int]:
    """Indices of at most ``n`` candidate frames chosen greedily by D-optimality (MaxVol, as ``pace_select``).

    Each round keeps the candidates that still extrapolate (gamma above ``tolerance``
    against the current active set ``A``), runs pyace's MaxVol per species over the rows
    of ``A`` (``(A^-1)^-1``; for a clustered set, all clusters' rows stacked) and theirs,
    and picks the frame with the most atoms entering; ``A`` is then updated with that
    frame by MaxVol. A near duplicate of a picked frame is interpolated by the updated set,
    so it is dropped: the batch has no near duplicates. Stops early when no candidate
    extrapolates.
    """
    if n < 1:
        raise DataError(f"--n must be at least 1, got {n}")
    projections = species_projections(basis, candidates)
    owners = structure_indices(candidates, projections)
    current = {e: [np.linalg.inv(s.inverses[e]) for s in grading_set.sets if e in s.inverses] for e in projections}
    active = {e: np.vstack(rows) for e, rows in current.items() if rows}
    pool = dict(active)  # the rows MaxVol chooses the updated active set from
    picked: list[int] = []
    while len(picked) < n:
        eligible = _extrapolating_frames(projections, owners, active, tolerance) - set(picked)
        entered: Counter = Counter()
        for element, rows in projections.items():
            remaining = np.isin(owners[element], list(eligible))
            extra = active.get(element, np.empty((0, rows.shape[1])))
            stacked = np.vstack([rows[remaining], extra])
            if len(stacked) < rows.shape[1] or not remaining.any():
                continue  # too few rows for a MaxVol of this species
            owner = np.concatenate([owners[element][remaining], -np.ones(len(extra), int)])
            entered.update(int(i) for i in _maxvol_rows(stacked, owner, tolerance, max_iterations)[1] if i >= 0)
        if not entered:
            break
        frame = entered.most_common(1)[0][0]
        picked.append(frame)
        for element, rows in projections.items():
            # MaxVol over the initial set and every picked frame, so that all picked rows stay interpolated
            pool[element] = np.vstack([pool.get(element, np.empty((0, rows.shape[1]))), rows[owners[element] == frame]])
            if len(pool[element]) >= rows.shape[1]:
                active[element] = _maxvol_rows(pool[element], np.zeros(len(pool[element]), int), tolerance,
                                               max_iterations)[0]
            else:
                active[element] = pool[element]
    return picked


# -- the ASE calculator --------------------------------------------------------------------------

class ClusteredGammaCalculator(Calculator):
    """Energy and forces of a pacemaker potential, and the clustered gamma of every atom.

    Energy (eV), forces (eV/Å) and stress come from :class:`pyace.PyACECalculator`;
    ``results["gamma"]`` (per atom) is the minimum over the clusters of the grading set
    (:class:`GradingSet`), ``results["gamma_cluster"]`` the index of the cluster giving it.
    With a single ``.asi`` it equals pacemaker's own gamma.

    >>> atoms.calc = ClusteredGammaCalculator("potential.yaml", "activeset/")
    >>> atoms.get_forces(); atoms.calc.results["gamma"]
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies", "gamma"]

    def __init__(self, potential: str | Path, active_set: str | Path | GradingSet, **kwargs) -> None:
        super().__init__(**kwargs)
        self.basis = load_potential(potential)
        self.grading_set = active_set if isinstance(active_set, GradingSet) else load_grading_set(active_set)
        self.grading_set.check_covers(self.basis.elements_name)
        self.ace = PyACECalculator(str(potential))

    def calculate(self, atoms: Atoms | None = None, properties: Sequence[str] = ("energy", "forces"),
                  system_changes: Sequence[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        validate_structures([self.atoms], "the calculator's atoms", elements=self.basis.elements_name)
        self.ace.calculate(self.atoms, ["energy", "forces", "stress", "energies"], system_changes)
        self.results = {k: v for k, v in self.ace.results.items() if k != "gamma"}
        species = atom_species([self.atoms])
        graded = self.grading_set.grade(species_projections(self.basis, [self.atoms]))
        self.results["gamma"] = per_atom_order(species, {e: g for e, (g, _) in graded.items()})
        self.results["gamma_cluster"] = per_atom_order(species, {e: c for e, (_, c) in graded.items()}, -1).astype(int)
