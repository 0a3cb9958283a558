"""Reading and checking structures: extxyz, LAMMPS dumps, pacemaker pickles, anything ase reads.

Structure tables have one row per configuration:

======================  ====================================================
``structure_id``        stable id, ``"<subset>-<row>"`` (row in the source file)
``subset``              a label of where the structure came from (a paper subset, ``user``, ...)
``atoms``               :class:`ase.Atoms`
``n_atoms``             number of atoms
``energy``              reference total energy (eV)
``energy_per_atom``     reference energy per atom (eV/atom)
``forces``              reference forces, array ``(n_atoms, 3)`` (eV/Å)
======================  ====================================================

Tables of your own structures (:func:`table_from_atoms`, :func:`read_structures`)
have these columns; unlabelled structures (MD frames to grade) carry NaN in
``energy``, ``energy_per_atom`` and ``forces``, and ``table.attrs["labelled"]`` says
which kind a table is. Every structure is checked by :func:`validate_structures`
before any descriptor is computed, so a bad one is named, never featurised as zeros.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from uqlib.config import ELEMENT
from uqlib.exceptions import DataError

__all__ = ["MIN_DISTANCE", "PICKLE_SUFFIXES", "TABLE_COLUMNS", "TRUNCATION_POLICY", "TruncatedFrameWarning",
           "coincident_atoms", "iter_structures", "one_line", "parse_species_map", "read_pacemaker_pickle",
           "read_structures", "read_table", "sha256sum", "structure_problem", "table_from_atoms", "tidy_table",
           "validate_structures", "write_extxyz"]

TABLE_COLUMNS = ["structure_id", "subset", "atoms", "n_atoms", "energy", "energy_per_atom", "forces"]

# pyace stops ("Encountered very small distance") for atoms closer than this (measured: it stops at 1e-4 Å
# and computes at 1e-3 Å); checked here so that the error names the file, frame and atoms
MIN_DISTANCE = 1e-3  # Å


class TruncatedFrameWarning(UserWarning):
    """The last frame of a file is incomplete (a trajectory still being written): it is skipped."""



def read_pacemaker_pickle(path: Path, key: str) -> pd.DataFrame:
    """Read a gzip-pickled pacemaker DataFrame; ``key`` names it in errors."""
    try:
        frame = pd.read_pickle(path, compression="gzip")
    except Exception as err:  # pickle, gzip and pandas raise many types
        raise DataError(f"Cannot read data file '{key}' at {path} as a gzip-pickled DataFrame: {err}") from err
    missing = {"ase_atoms", "energy", "forces"} - set(frame.columns)
    if missing:
        raise DataError(f"Data file '{key}' at {path} lacks the columns {sorted(missing)}")
    return frame


def tidy_table(frame: pd.DataFrame, subset: str) -> pd.DataFrame:
    """Turn a pacemaker-style DataFrame into a validated structure table.

    Rejects, naming the structure, any atom that is not W, a non-finite energy
    or force, and forces whose shape does not match the structure.
    """
    rows = []
    labelled = zip(frame["ase_atoms"], frame["energy"], frame["forces"], strict=True)
    for row, (atoms, energy, forces) in enumerate(labelled):
        sid = f"{subset}-{row:04d}"
        symbols = set(atoms.get_chemical_symbols())
        if symbols != {ELEMENT}:
            raise DataError(f"Structure {sid} contains {sorted(symbols - {ELEMENT})}: uqlib models {ELEMENT} only")
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (len(atoms), 3):
            raise DataError(f"Structure {sid} has forces of shape {forces.shape}, expected ({len(atoms)}, 3)")
        if not np.isfinite(energy) or not np.isfinite(forces).all():
            raise DataError(f"Structure {sid} has a NaN or infinite energy or force label")
        rows.append((sid, subset, atoms, len(atoms), float(energy), float(energy) / len(atoms), forces))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def write_extxyz(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a labelled structure table as extxyz (energies and forces as ase's single-point results)."""
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for row in table.itertuples():
        atoms = row.atoms.copy()
        atoms.calc = SinglePointCalculator(atoms, energy=row.energy, forces=row.forces)
        frames.append(atoms)
    ase.io.write(path, frames)
    return Path(path)


PICKLE_SUFFIXES = (".pckl.gzip", ".pkl.gz", ".pckl.gz", ".pkl.gzip", ".pckl", ".pkl")


def _where(source: str | None, index: int, structure_id: str | None = None) -> str:
    if structure_id is not None:
        return f"structure {structure_id}"
    return f"{source}, frame {index}" if source else f"structure {index}"


def structure_problem(atoms: Atoms, elements: Sequence[str] | None = None) -> str | None:
    """Why ``atoms`` cannot be featurised, or ``None`` when it can.

    Checks what pyace would otherwise turn into a crash in a worker or rows of zeros:
    at least one atom, finite positions and cell, periodic in all three directions or in
    none, and (when ``elements`` is given) only species the potential covers.
    """
    if not isinstance(atoms, Atoms):
        return f"is a {type(atoms).__name__}, not an ase.Atoms"
    if len(atoms) == 0:
        return "has no atoms"
    if not np.isfinite(atoms.positions).all():
        bad = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
        return f"has non-finite (NaN or infinite) positions for atom(s) {bad[:5].tolist()}"
    if not np.isfinite(atoms.cell.array).all():
        return "has a non-finite (NaN or infinite) cell"
    pbc = np.asarray(atoms.pbc, bool)
    if pbc.any() and not pbc.all():
        return (f"is periodic in only some directions (pbc={pbc.tolist()}); pyace needs full or no "
                f"periodicity: set pbc=True with a vacuum gap in the cell, or pbc=False")
    if pbc.all() and abs(atoms.cell.volume) < 1e-8:
        return "is periodic but its cell has zero volume; give the cell or set pbc=False"
    if elements is not None:
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
        if unknown:
            return f"contains {unknown}, which the potential does not cover (it covers {sorted(elements)})"
    pair = coincident_atoms(atoms)
    if pair is not None:
        i, j, distance = pair
        return (f"has atoms {i} and {j} {distance:.2g} Å apart (closer than {MIN_DISTANCE} Å: coincident, "
                f"pyace cannot evaluate them); remove the duplicate atom")
    return None


def coincident_atoms(atoms: Atoms, min_distance: float = MIN_DISTANCE) -> tuple[int, int, float] | None:
    """The first pair of atoms closer than ``min_distance`` (Å, minimum image) and their distance, or ``None``.

    A k-d tree in fractional coordinates (periodic) or Cartesian ones, so it costs about
    0.1 s for 80,000 atoms (ase's neighbour list takes 10 s at this cutoff).
    """
    from ase.geometry import find_mic
    from scipy.spatial import cKDTree

    if len(atoms) < 2:
        return None
    if np.asarray(atoms.pbc, bool).all():
        scaled = atoms.cell.scaled_positions(atoms.positions)
        scaled -= np.floor(scaled)
        scaled[scaled >= 1.0] = 0.0
        # |d_frac| <= |cell^-1| |d_cart|: every pair within min_distance is within this fractional radius
        radius = min_distance * np.linalg.norm(np.linalg.inv(atoms.cell.array), 2)
        pairs = cKDTree(scaled, boxsize=1.0).query_pairs(radius, output_type="ndarray")
    else:
        pairs = cKDTree(atoms.positions).query_pairs(min_distance, output_type="ndarray")
    if len(pairs) == 0:
        return None
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    vectors = atoms.positions[pairs[:, 1]] - atoms.positions[pairs[:, 0]]
    if np.asarray(atoms.pbc, bool).all():
        vectors = find_mic(vectors, atoms.cell, pbc=True)[0]
    distances = np.linalg.norm(vectors, axis=1)
    close = np.flatnonzero(distances < min_distance)
    if len(close) == 0:
        return None
    i, j = pairs[close[0]]
    return int(i), int(j), float(distances[close[0]])


def validate_structures(structures: Iterable[Atoms] | pd.DataFrame, source: str | None = None, *,
                        elements: Sequence[str] | None = None, start: int = 0) -> None:
    """Raise :class:`DataError` for the first structure that cannot be featurised.

    ``structures`` is a list of :class:`ase.Atoms` (frames of the file ``source``,
    counted from ``start``) or a structure table (named by ``structure_id``). The
    message names the file and frame or the structure id, the problem and the fix.
    Also rejects an empty input.
    """
    if isinstance(structures, pd.DataFrame):
        items = zip(structures["atoms"], structures["structure_id"], strict=True)
    else:
        items = ((atoms, None) for atoms in structures)
    count = 0
    for index, (atoms, sid) in enumerate(items, start=start):
        count += 1
        problem = structure_problem(atoms, elements)
        if problem:
            raise DataError(f"{_where(source, index, sid)} {problem}. Fix or remove it and run again.")
    if count == 0 and start == 0:
        raise DataError(f"{source or 'the input'} holds no structures: give at least one structure")


def _labels(atoms: Atoms) -> tuple[float, np.ndarray] | None:
    """Reference energy (eV) and forces (eV/Å) attached to ``atoms``, or ``None`` if it has none."""
    calc = atoms.calc
    if calc is None or not {"energy", "forces"} <= set(getattr(calc, "results", {})):
        return None
    return float(calc.results["energy"]), np.asarray(calc.results["forces"], dtype=float)


def _missing_labels(atoms: Atoms) -> str:
    """Which of the labels fitting needs ``atoms`` lacks: "energy", "forces" or "energy and forces"."""
    results = set(getattr(atoms.calc, "results", {}) or {})
    missing = [name for name in ("energy", "forces") if name not in results]
    return " and ".join(missing)


def table_from_atoms(structures: Iterable[Atoms], *, subset: str = "user", source: str | None = None,
                     labelled: bool | str = "auto", elements: Sequence[str] | None = None) -> pd.DataFrame:
    """A structure table (module docstring) from your own :class:`ase.Atoms`, labelled or not.

    Labels are read from each structure's calculator results (``energy`` in eV,
    ``forces`` in eV/Å; ase attaches them when it reads extxyz or an OUTCAR).
    ``labelled="auto"`` makes a labelled table when every structure has both labels,
    an unlabelled one (NaN labels) otherwise; ``True`` requires labels. Given labels
    must be finite and of the right shape. Ids are ``"<subset>-<frame>"``.
    Raises :class:`DataError` naming ``source`` and the frame.
    """
    structures = list(structures)
    validate_structures(structures, source, elements=elements)
    labels = [_labels(atoms) for atoms in structures]
    if labelled == "auto":
        labelled = all(label is not None for label in labels)
    elif labelled is True:
        missing = [i for i, label in enumerate(labels) if label is None]
        if missing:
            lacking = _missing_labels(structures[missing[0]])
            has = {"energy": "it has forces but ", "forces": "it has an energy but "}.get(lacking, "")
            raise DataError(f"{_where(source, missing[0])} has no {lacking} ({has}fitting needs both an energy and "
                            f"forces; {len(missing)} of {len(labels)} structures lack a label). Give a file with "
                            f"labels (extxyz with energy and forces, or a pacemaker pickle).")
    rows = []
    for index, (atoms, label) in enumerate(zip(structures, labels, strict=True)):
        sid, n = f"{subset}-{index:04d}", len(atoms)
        if labelled:
            energy, forces = label
            if forces.shape != (n, 3):
                raise DataError(f"{_where(source, index)} has forces of shape {forces.shape}, expected ({n}, 3)")
            if not np.isfinite(energy) or not np.isfinite(forces).all():
                raise DataError(f"{_where(source, index)} has a NaN or infinite energy or force label; "
                                f"fix or remove it")
        else:
            energy, forces = float("nan"), np.full((n, 3), np.nan)
        rows.append((sid, subset, atoms, n, energy, energy / n, forces))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table.attrs["labelled"] = bool(labelled)
    return table


def parse_species_map(spec: str | dict[int, str] | None) -> list[str] | None:
    """LAMMPS type -> element: ``"1=W,2=Mo"`` or ``{1: "W", 2: "Mo"}`` -> ``["W", "Mo"]`` (ase's specorder)."""
    if spec is None or isinstance(spec, list):
        return spec
    try:
        mapping = ({int(k): str(v) for k, v in (part.split("=") for part in spec.split(","))}
                   if isinstance(spec, str) else {int(k): str(v) for k, v in spec.items()})
    except ValueError:
        raise DataError(f"Species map {spec!r} is not of the form 1=W,2=Mo (LAMMPS type = element)") from None
    if sorted(mapping) != list(range(1, len(mapping) + 1)):
        raise DataError(f"Species map {spec!r} must name every LAMMPS type from 1 up, got types {sorted(mapping)}")
    from ase.data import chemical_symbols
    unknown = [v for v in mapping.values() if v not in chemical_symbols[1:]]
    if unknown:
        raise DataError(f"Species map {spec!r} names {unknown}, which are not chemical elements")
    return [mapping[t] for t in sorted(mapping)]


def _is_pickle(path: Path) -> bool:
    return path.name.endswith(PICKLE_SUFFIXES)


def _lammps_dump_columns(path: Path) -> list[str] | None:
    """Per-atom column names of a LAMMPS text dump, or ``None`` when ``path`` is not one."""
    with open(path, "rb") as fh:
        if fh.read(15) != b"ITEM: TIMESTEP\n":
            return None
        for line in fh:
            if line.startswith(b"ITEM: ATOMS"):
                return line.decode().split()[2:]
    return None


def iter_structures(path: str | Path, species_map: str | dict[int, str] | None = None) -> Iterator[Atoms]:
    """Frames of a file one at a time (bounded memory): anything ase reads, LAMMPS dumps, pacemaker pickles.

    A LAMMPS dump without an ``element`` column needs ``species_map`` (``"1=W,2=Mo"``).
    Labels (energy, forces) come attached as a calculator when the file has them.
    Raises :class:`DataError` naming the file for a missing or unreadable file, and the
    file and frame for a frame that cannot be read.

    Incomplete frames (LAMMPS dumps and extxyz, policy of :data:`TRUNCATION_POLICY`): an
    incomplete *last* frame (fewer atom rows than the frame declares before the end of the
    file, as in a trajectory still being written) is skipped with a
    :class:`TruncatedFrameWarning` naming the file and frame, and the complete frames
    before it are kept; an incomplete frame followed by more frames is a :class:`DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"No such file: {path}. Give the path of a structure file (extxyz, LAMMPS dump, "
                        f"pacemaker pickle, or anything ase reads)")
    if _is_pickle(path):
        frame = read_pacemaker_pickle(path, str(path))
        for atoms, energy, forces in zip(frame["ase_atoms"], frame["energy"], frame["forces"], strict=True):
            atoms = atoms.copy()
            atoms.calc = SinglePointCalculator(atoms, energy=float(energy), forces=np.asarray(forces, float))
            yield atoms
        return
    kwargs: dict = {}
    columns = _lammps_dump_columns(path)
    kind = "extxyz" if path.suffix in (".xyz", ".extxyz") else None
    if columns is not None:
        kind = "lammps-dump"
        kwargs = {"format": "lammps-dump-text"}
        if species_map is not None:
            kwargs["specorder"] = parse_species_map(species_map)
        elif "element" not in columns:
            raise DataError(f"{path} is a LAMMPS dump without an element column: give the species map "
                            f"(--species-map 1=W,2=Mo, LAMMPS type = element) so that types become elements")
    # a dump's frame sizes are checked as it is read: ase reads a short last frame without complaint
    sizes = _frame_sizes(path, kind) if kind == "lammps-dump" else None
    reader = ase.io.iread(path, index=":", **kwargs)
    index = 0
    while True:
        try:
            atoms = next(reader)
        except StopIteration:
            return
        except Exception as err:  # ase raises many types for a file it cannot parse
            size = _size_of_frame(sizes if sizes is not None else _frame_sizes(path, kind), index) if kind else None
            if size is not None and size[1] < size[0] and _truncated_last_frame(path, index, size):
                return
            raise DataError(_unreadable(path, index, err, kwargs.get("specorder"))) from err
        if sizes is not None:
            size = _size_of_frame(sizes, index)
            if size is not None and size[1] < size[0] and _truncated_last_frame(path, index, size):
                return
        yield atoms
        index += 1


TRUNCATION_POLICY = ("an incomplete last frame (a trajectory still being written) is skipped with a warning "
                     "naming the file and frame, and the complete frames before it are kept; an incomplete "
                     "frame followed by more frames stops the run with an error (exit code 2)")


def _truncated_last_frame(path: Path, index: int, size: tuple[int, int, bool]) -> bool:
    """Warn about an incomplete last frame (and return True), or raise for an incomplete frame mid-file."""
    declared, present, at_end = size
    if not at_end:
        raise DataError(f"{path}, frame {index} declares {declared} atoms but has {present} atom rows before the "
                        f"next frame: the file is damaged; repair or remove that frame")
    warnings.warn(f"{path}, frame {index} is incomplete ({present} of {declared} atom rows before the end of the "
                  f"file, e.g. a trajectory still being written): skipped; the {index} complete frame(s) before it "
                  f"are kept", TruncatedFrameWarning, stacklevel=3)
    return True


def _size_of_frame(sizes: Iterator[tuple[int, int, bool]], index: int) -> tuple[int, int, bool] | None:
    """The entry of frame ``index`` of the ``sizes`` still to come (from :func:`_frame_sizes`)."""
    for size in sizes:
        if size[3] == index:
            return size[:3]
    return None


def _frame_sizes(path: Path, kind: str) -> Iterator[tuple[int, int, bool, int]]:
    """Per frame of an extxyz or a LAMMPS text dump: (declared atoms, atom rows present, file ends there, frame).

    A text scan (no parsing of numbers), so a frame that ase reads short, or fails to
    read, can be named. A line that does not fit the format ends the scan.
    """
    with open(path, errors="replace") as fh:
        lines = iter(fh)
        frame = 0
        if kind == "extxyz":
            for line in lines:
                if not line.strip():
                    continue
                try:
                    declared = int(line.split()[0])
                except ValueError:
                    return
                next(lines, None)  # the comment line
                present = 0
                for present in range(1, declared + 1):  # noqa: B007 (the count is the result)
                    if next(lines, None) is None:
                        present -= 1
                        break
                else:
                    present = declared
                yield declared, present, present < declared, frame
                frame += 1
            return
        declared, present, counting = None, 0, False
        for line in lines:
            if line.startswith("ITEM:"):
                if line.startswith("ITEM: TIMESTEP") and declared is not None:
                    yield declared, present, False, frame
                    frame, declared, present, counting = frame + 1, None, 0, False
                elif line.startswith("ITEM: NUMBER OF ATOMS"):
                    try:
                        declared = int(next(lines, "").strip())
                    except ValueError:
                        return
                counting = line.startswith("ITEM: ATOMS")
            elif counting and line.strip():
                present += 1
        if declared is not None:
            yield declared, present, True, frame


def _unreadable(path: Path, index: int, err: Exception, specorder: list[str] | None) -> str:
    """The one-line message for frame ``index`` of ``path`` that ase could not read."""
    if isinstance(err, IndexError) and specorder is not None:
        types = _dump_types(path, index)
        extra = sorted(t for t in types if t > len(specorder))
        named = ",".join(f"{t}={e}" for t, e in enumerate(specorder, start=1))
        return (f"{path}, frame {index} has LAMMPS atom type(s) {extra or sorted(types)} that --species-map {named} "
                f"does not name: give an element for every type, e.g. --species-map "
                f"{named},{(extra or [len(specorder) + 1])[0]}=X")
    return (f"Cannot read {path} as a structure file: frame {index} ({type(err).__name__}: {err}). Give an extxyz, "
            f"a LAMMPS dump "
            f"(with --species-map), a pacemaker pickle, or a format ase reads")


def _dump_types(path: Path, index: int) -> set[int]:
    """The LAMMPS atom types in frame ``index`` of a text dump (its ``type`` column)."""
    types: set[int] = set()
    frame, column, counting = -1, None, False
    with open(path, errors="replace") as fh:
        for line in fh:
            if line.startswith("ITEM:"):
                if line.startswith("ITEM: TIMESTEP"):
                    frame += 1
                    if frame > index:
                        break
                counting = line.startswith("ITEM: ATOMS") and frame == index
                if counting:
                    names = line.split()[2:]
                    column = names.index("type") if "type" in names else None
            elif counting and column is not None and line.strip():
                try:
                    types.add(int(line.split()[column]))
                except (ValueError, IndexError):
                    continue
    return types


def read_structures(path: str | Path, species_map: str | dict[int, str] | None = None) -> list[Atoms]:
    """All frames of a file as a list (see :func:`iter_structures`); an empty file is an error."""
    frames = list(iter_structures(path, species_map))
    if not frames:
        raise DataError(f"{path} holds no structures")
    return frames


def read_table(paths: Sequence[str | Path], *, species_map: str | dict[int, str] | None = None,
               labelled: bool | str = "auto", elements: Sequence[str] | None = None) -> pd.DataFrame:
    """One structure table of several files; each file's frames form a subset named after the file."""
    tables = []
    for path in paths:
        name = Path(path).name.split(".")[0]
        tables.append(table_from_atoms(read_structures(path, species_map), subset=name, source=str(path),
                                       labelled=labelled, elements=elements))
    kinds = {t.attrs["labelled"] for t in tables}
    if labelled == "auto" and len(kinds) > 1:
        raise DataError("Some files have energy and force labels and others do not: give files of one kind")
    table = pd.concat(tables, ignore_index=True)
    table.attrs["labelled"] = kinds.pop()
    return table


def one_line(err: BaseException | str) -> str:
    """An error's message on one line (remedies joined with '; '), for command-line tools."""
    return "; ".join(part.strip() for part in str(err).splitlines() if part.strip())

def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
