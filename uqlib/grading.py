"""Grading your own structures: species-keyed projections, the clustered gamma of frames, bands, selection.

Works with any pacemaker B-basis potential file (``.yaml``) and any species it covers,
as pacemaker does (``pace_activeset``, ``pace_select``, ``PyACECalculator``), and adds the
paper's clustered grade (Sec. 2.3): an atom's

    gamma_atom(i) = min over clusters c covering s of  max_j |(B(i) A_c,s^-1)_j|

where ``B(i)`` are the atom's B projections (one per basis function of its species
``s``) and ``A_c,s`` is cluster *c*'s MaxVol active set of species *s* (paper eq 8 per
cluster). The active sets are :class:`uqlib.activeset.ClusteredActiveSet` (a single
``.asi`` is its one-cluster case, and then gamma is exactly pacemaker's). ``gamma_cfg`` is
the largest ``gamma_atom`` of a configuration.

Frames are graded in chunks by ONE function, :func:`grade_block` (via :func:`grade_chunk`),
which the serial driver :func:`iter_grades`, the Dask tasks of :mod:`uqlib.distributed`, the
ASE calculator and the book's Fig. 8 all call; a long MD trajectory read with
:func:`ase.io.iread` is never held in memory at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from pyace import ACEBBasisSet, PyACECalculator
from pyace.activelearning import compute_active_set, compute_B_projections

from uqlib.activeset import (
    MAXVOL_ITERATIONS,
    MAXVOL_TOLERANCE,
    ActiveSet,
    ActiveSetError,
    ClusteredActiveSet,
    NonFiniteGammaError,
    active_inverse,
    check_finite_gamma,
    force_outlier_mask,
    load_active_set,
)
from uqlib.io import DataError, validate_structures
from uqlib.progress import progress_bar

__all__ = ["BANDS", "ClusteredGammaCalculator", "FrameGrade", "atom_species", "band", "batch_count",
           "build_active_set_by_batches", "frame_chunks", "grade_block", "grade_chunk", "iter_grades",
           "load_potential", "mean_projections", "member_forces", "member_potentials", "outlier_keep",
           "per_atom_order", "select_frames", "species_labels", "species_projections", "structure_indices"]

BANDS = ("below", "between", "above")  # gamma_cfg < lo, lo <= gamma_cfg <= hi, gamma_cfg > hi
DEFAULT_GAMMA_LO, DEFAULT_GAMMA_HI = 1.0, 10.0  # interpolation limit; pacemaker's advice for "unreliable"


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


def species_projections(basis: ACEBBasisSet, structures: Sequence[Atoms], *, source: str | None = None,
                        start: int = 0, with_forces: bool = False
                        ) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-species B projections ``{element: (n_atom_of_element, n_func_of_element)}`` (pyace).

    Atoms of each species are in structure order, then atom order. Structures are
    validated first (finite, full or no periodicity, species the basis covers), so
    pyace never sees one it would turn into zeros or a crash; errors name ``source``
    and the frame (numbered from ``start``). With ``with_forces`` also the potential's
    forces ``{element: (n_atom_of_element, 3)}`` (eV/Å) from the same pyace pass, as
    ``pace_activeset`` gets them for its outlier filter.
    """
    structures = list(structures)
    validate_structures(structures, source, elements=basis.elements_name, start=start)
    if not with_forces:
        by_type = compute_B_projections(basis, structures)
        return {basis.elements_name[t]: np.asarray(array) for t, array in by_type.items()}
    by_type, forces = compute_B_projections(basis, structures, compute_forces_dict=True)
    return ({basis.elements_name[t]: np.asarray(a) for t, a in by_type.items()},
            {basis.elements_name[t]: np.asarray(f) for t, f in forces.items()})


def per_atom_order(species: np.ndarray, per_species: dict[str, np.ndarray], fill: float = np.nan) -> np.ndarray:
    """Scatter per-species values back to atom order (``species`` from :func:`atom_species`)."""
    out = np.full(len(species), fill, dtype=float)
    for element, values in per_species.items():
        out[species == element] = values
    return out


# -- active sets of training structures ----------------------------------------------------------------

def species_labels(structure_labels: np.ndarray, structure_of_atom: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each species' rows labelled with their structure's cluster (``structure_labels``: one per structure)."""
    labels = np.asarray(structure_labels).astype(str)
    return {e: labels[owner] for e, owner in structure_of_atom.items()}


def outlier_keep(predicted_forces: dict[str, np.ndarray], structures: Sequence[Atoms], *, rule: str = "per-species"
                 ) -> dict[str, np.ndarray]:
    """Per species, the atoms offered to MaxVol: force error at most Q3 + 1.5 IQR (``pace_activeset``'s filter).

    ``predicted_forces`` from :func:`species_projections` (``with_forces=True``); the reference
    forces are the structures' own (eV/Å). ``rule="per-species"`` is pace_activeset's (one
    threshold per species), ``"global"`` one threshold over all atoms
    (:func:`uqlib.activeset.force_outlier_mask`).
    """
    species = atom_species(structures)
    reference = np.concatenate([a.get_forces() for a in structures])
    elements = sorted(predicted_forces)
    predicted = np.concatenate([predicted_forces[e] for e in elements])
    ordered = np.concatenate([reference[species == e] for e in elements])
    labels = np.concatenate([np.full(len(predicted_forces[e]), e) for e in elements])
    keep = force_outlier_mask(predicted, ordered, labels, rule=rule)
    bounds = np.cumsum([0, *(len(predicted_forces[e]) for e in elements)])
    return {e: keep[bounds[i]:bounds[i + 1]] for i, e in enumerate(elements)}


def mean_projections(projections: dict[str, np.ndarray], structure_of_atom: dict[str, np.ndarray],
                     n_structures: int) -> np.ndarray:
    """Per structure: its atoms' mean B projections, species blocks side by side (zeros for an absent species).

    Raw, not standardised (:func:`uqlib.clustering.structure_descriptors` is the standardised
    form for one species). Shape ``(n_structures, sum_s n_func_s)``.
    """
    blocks = []
    for element in sorted(projections):
        rows, owner = projections[element], structure_of_atom[element]
        sums = np.zeros((n_structures, rows.shape[1]))
        np.add.at(sums, owner, rows)
        counts = np.bincount(owner, minlength=n_structures)[:, None]
        blocks.append(np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0))
    return np.hstack(blocks)


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
                                ) -> ActiveSet:
    """MaxVol active set of each species from structures too many to project at once (pyace's batched MaxVol).

    pyace's :func:`compute_active_set_by_batches` projects one batch at a time, keeps a
    cumulative MaxVol set (stage 1), then refines it with the atoms still above
    ``tolerance`` (stage 2); only one batch's projections are in memory. The result is
    an approximation of the one-shot MaxVol (:func:`uqlib.activeset.build_active_set`): its
    gamma over the training set is at most ``tolerance`` when the refinement converges.
    """
    from pyace.activelearning import compute_active_set_by_batches, compute_number_of_functions

    structures = list(structures)
    validate_structures(structures, source, elements=basis.elements_name)
    n_functions = max(compute_number_of_functions(basis))
    n_batches = batch_count(len(structures), sum(len(a) for a in structures), n_functions, batch_size=batch_size,
                            memory_limit=memory_limit)
    try:
        _, active, _ = compute_active_set_by_batches(basis, structures, n_batches=n_batches,
                                                     gamma_tolerance=tolerance, maxvol_iters=max_iterations)
    except KeyError as err:  # pyace indexes a species type that a batch does not hold
        raise ActiveSetError(f"A batch of the batched MaxVol holds no atom of one species (pyace species type "
                             f"{err.args[0] if err.args else '?'} of {basis.elements_name}): give a larger "
                             f"--batch-size (or --memory-limit) so that every batch holds every species") from err
    inverses = {}
    for species_type, matrix in active.items():
        element = basis.elements_name[species_type]
        try:
            inverses[element] = active_inverse(matrix)
        except ActiveSetError as err:
            raise ActiveSetError(f"{element}: {err}") from err
    return ActiveSet(inverses)


def structure_indices(structures: Sequence[Atoms], elements: Iterable[str]) -> dict[str, np.ndarray]:
    """For each species, the structure index of each of its atoms (the row order of :func:`species_projections`)."""
    owner = np.repeat(np.arange(len(structures)), [len(a) for a in structures])
    species = atom_species(structures)
    return {e: owner[species == e] for e in elements}


# -- grading frames ------------------------------------------------------------------------------

def band(gamma_cfg: np.ndarray, gamma_lo: float, gamma_hi: float) -> np.ndarray:
    """``below`` (gamma < lo: interpolation), ``between``, or ``above`` (gamma > hi: unreliable).

    A non-finite gamma is an error (:class:`uqlib.activeset.NonFiniteGammaError`), never a band.
    """
    if not 0 < gamma_lo <= gamma_hi:
        raise DataError(f"Need 0 < gamma-lo <= gamma-hi, got {gamma_lo} and {gamma_hi}")
    gamma_cfg = np.asarray(gamma_cfg, dtype=float)
    if not np.isfinite(gamma_cfg).all():
        raise NonFiniteGammaError(f"gamma_cfg {gamma_cfg[~np.isfinite(gamma_cfg)][:3].tolist()} is not finite: "
                                  f"it has no band; the active set or the potential is damaged")
    return np.where(gamma_cfg < gamma_lo, BANDS[0], np.where(gamma_cfg > gamma_hi, BANDS[2], BANDS[1]))


@dataclass
class FrameGrade:
    """The grade of one frame: per-atom gamma (dimensionless) and the cluster that gave each minimum."""

    frame: int
    atoms: Atoms
    gamma: np.ndarray  # (n_atoms,)
    cluster: np.ndarray  # (n_atoms,) index into ClusteredActiveSet.clusters

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


def grade_block(frames: Sequence[Atoms], active_set: ClusteredActiveSet, projections: dict[str, np.ndarray], *,
                start: int = 0, source: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """THE frame-grading function: per frame, gamma_atom ``(n_atoms,)`` and the index of the cluster giving it.

    ``projections[element]`` are the B projections of ``frames``' atoms of that species in
    frame order, then atom order (:func:`species_projections`, or a W design matrix's
    projections). The clustered gamma is :meth:`ClusteredActiveSet.grade_with_cluster`; a
    non-finite gamma is an error naming the frame (numbered from ``start``) and ``source``.
    """
    active_set.check_covers(projections)
    species = atom_species(frames) if len(frames) else np.empty(0, str)
    graded = active_set.grade_with_cluster(projections)
    gamma = per_atom_order(species, {e: g for e, (g, _) in graded.items()})
    cluster = per_atom_order(species, {e: c for e, (_, c) in graded.items()}, fill=-1).astype(int)
    bounds = np.cumsum([0, *(len(a) for a in frames)])
    out = []
    for i in range(len(frames)):
        part = slice(bounds[i], bounds[i + 1])
        check_finite_gamma(gamma[part], f"{source or 'the input'}, frame {start + i}")
        out.append((gamma[part], cluster[part]))
    return out


def grade_chunk(basis: ACEBBasisSet, chunk: Sequence[Atoms], active_set: ClusteredActiveSet, *, start: int = 0,
                source: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """One pyace projection call for ``chunk``, then :func:`grade_block`: the unit of work of both
    :func:`iter_grades` and the Dask tasks of :mod:`uqlib.distributed`, so the two give identical numbers."""
    return grade_block(chunk, active_set, species_projections(basis, chunk, source=source, start=start),
                       start=start, source=source)


def iter_grades(frames: Iterable[Atoms], basis: ACEBBasisSet, active_set: ClusteredActiveSet, *,
                chunk_size: int = 50, source: str | None = None, progress: bool = True) -> Iterator[FrameGrade]:
    """Grade frames one chunk at a time (bounded memory); yields one :class:`FrameGrade` per frame.

    ``frames`` is read lazily, so peak memory is one chunk's frames and projections
    (``chunk atoms x n_func`` floats), whatever the trajectory length.
    """
    if chunk_size < 1:
        raise DataError(f"chunk_size must be at least 1, got {chunk_size}")
    active_set.check_covers(basis.elements_name)
    start = 0
    with progress_bar(unit="frame", desc=f"grading {source or 'frames'}", disable=not progress) as bar:
        for chunk in frame_chunks(frames, chunk_size):
            for i, (gamma, cluster) in enumerate(grade_chunk(basis, chunk, active_set, start=start, source=source)):
                yield FrameGrade(start + i, chunk[i], gamma, cluster)
            start += len(chunk)
            bar.update(len(chunk))
    if start == 0:
        raise DataError(f"{source or 'the input'} holds no frames to grade")


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


def _swap_maxvol(active: np.ndarray, rows: np.ndarray, tolerance: float, max_iterations: int) -> np.ndarray:
    """The square set ``active`` (``(p, p)``) grown into a MaxVol set of ``active`` and ``rows`` by row swaps.

    Each swap puts the row with the largest coefficient ``|(r A^-1)_j| > tolerance`` in place of
    row *j*, which multiplies ``|det A|`` by that coefficient, so it ends; afterwards every row
    has gamma at most ``tolerance``. The coefficients ``C = rows A^-1`` are updated by a rank-one
    correction per swap (the classic MaxVol step), so a swap costs ``O(n p)``; started from the
    current set, it is far cheaper than pyace's MaxVol from scratch (a tenth of a second a call).
    """
    matrix = np.vstack([active, rows]).astype(float)
    coefficients = matrix @ np.linalg.inv(active)  # (n + p, p); the first p rows are the identity
    chosen = np.arange(len(active))
    for _ in range(max_iterations):
        row, column = np.unravel_index(np.argmax(np.abs(coefficients)), coefficients.shape)
        pivot = coefficients[row, column]
        if abs(pivot) <= tolerance:
            break
        change = coefficients[row].copy()
        change[column] -= 1.0
        coefficients -= np.outer(coefficients[:, column] / pivot, change)
        chosen[column] = row
    return matrix[chosen]


def _update_active(pool: dict[str, np.ndarray], active: dict[str, np.ndarray], rows: dict[str, np.ndarray],
                   tolerance: float, max_iterations: int) -> None:
    """Add ``rows`` (one picked frame's, per species) to ``pool`` and make ``active`` a MaxVol set of the pool."""
    for element, new in rows.items():
        pool[element] = np.vstack([pool.get(element, np.empty((0, new.shape[1]))), new])
        current = active.get(element)
        if current is not None and current.shape == (new.shape[1],) * 2:
            # every pool row but the new ones is already interpolated by the square set: swap the new ones in
            active[element] = _swap_maxvol(current, pool[element], tolerance, max_iterations)
        elif len(pool[element]) >= new.shape[1]:  # no square set yet: pyace's MaxVol over the whole pool
            active[element] = _maxvol_rows(pool[element], np.zeros(len(pool[element]), int), tolerance,
                                           max_iterations)[0]
        else:
            active[element] = pool[element]


def select_frames(candidates: Sequence[Atoms], basis: ACEBBasisSet, active_set: ClusteredActiveSet, n: int, *,
                  tolerance: float = MAXVOL_TOLERANCE, max_iterations: int = MAXVOL_ITERATIONS) -> list[int]:
    """Indices of at most ``n`` candidate frames chosen by D-optimality (MaxVol, as ``pace_select``), no duplicates.

    A round runs pyace's MaxVol per species over the rows of the current active set ``A``
    (``(A^-1)^-1``; for a clustered set, all clusters' rows stacked) and those of the
    candidates that still extrapolate (gamma above ``tolerance`` against ``A``), and ranks
    the candidates by the atoms they bring into it (``pace_select``'s ranking). Walking
    down the ranking, a frame is picked only if it still extrapolates against ``A`` updated
    (by MaxVol) with the frames picked before it, so a near duplicate of a picked frame is
    dropped. A new round starts when the ranking is used up before ``n`` frames; the
    selection stops early when no candidate extrapolates.
    """
    if n < 1:
        raise DataError(f"--n must be at least 1, got {n}")
    projections = species_projections(basis, candidates)
    owners = structure_indices(candidates, projections)
    current = {e: [np.linalg.inv(s.inverses[e]) for s in active_set.sets if e in s.inverses] for e in projections}
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
        before = len(picked)
        for frame, _ in entered.most_common():
            if len(picked) == n:
                break
            mine = {e: rows[owners[e] == frame] for e, rows in projections.items()}
            if len(picked) > before and frame not in _extrapolating_frames(
                    mine, {e: np.full(len(r), frame) for e, r in mine.items()}, active, tolerance):
                continue  # interpolated by the frames picked before it: a near duplicate
            picked.append(frame)
            _update_active(pool, active, mine, tolerance, max_iterations)
        if len(picked) == before:
            break
    return picked


# -- the ASE calculator --------------------------------------------------------------------------

class ClusteredGammaCalculator(Calculator):
    """Energy and forces of a pacemaker potential, and the clustered gamma of every atom.

    Energy (eV), forces (eV/Å) and stress come from :class:`pyace.PyACECalculator`;
    ``results["gamma"]`` (per atom) is the minimum over the clusters that cover the atom's
    species (:class:`uqlib.activeset.ClusteredActiveSet`), ``results["gamma_cluster"]`` the
    index of the cluster giving it. With a single ``.asi`` it equals pacemaker's own gamma.

    >>> atoms.calc = ClusteredGammaCalculator("potential.yaml", "activeset/")
    >>> atoms.get_forces(); atoms.calc.results["gamma"]
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies", "gamma"]

    def __init__(self, potential: str | Path, active_set: str | Path | ClusteredActiveSet | ActiveSet,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.basis = load_potential(potential)
        if isinstance(active_set, ActiveSet):
            active_set = ClusteredActiveSet.single(active_set)
        self.active_set = active_set if isinstance(active_set, ClusteredActiveSet) else load_active_set(active_set)
        self.active_set.check_covers(self.basis.elements_name)
        self.ace = PyACECalculator(str(potential))

    def calculate(self, atoms: Atoms | None = None, properties: Sequence[str] = ("energy", "forces"),
                  system_changes: Sequence[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        # graded first: the structure is validated before pyace's calculator sees it
        (gamma, cluster), = grade_chunk(self.basis, [self.atoms], self.active_set, source="the calculator's atoms")
        self.ace.calculate(self.atoms, ["energy", "forces", "stress", "energies"], system_changes)
        self.results = {k: v for k, v in self.ace.results.items() if k != "gamma"}
        self.results["gamma"], self.results["gamma_cluster"] = gamma, cluster
