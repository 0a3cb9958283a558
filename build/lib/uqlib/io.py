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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from uqlib.config import ELEMENT
from uqlib.exceptions import DataError

TABLE_COLUMNS = ["structure_id", "subset", "atoms", "n_atoms", "energy", "energy_per_atom", "forces"]



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
    return None


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
            raise DataError(f"{_where(source, missing[0])} has no energy and forces, and fitting needs them "
                            f"({len(missing)} of {len(labels)} structures lack them). Give a file with labels "
                            f"(extxyz with energy and forces, or a pacemaker pickle).")
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
    Raises :class:`DataError` naming the file for a missing or unreadable file.
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
    if columns is not None:
        kwargs = {"format": "lammps-dump-text"}
        if species_map is not None:
            kwargs["specorder"] = parse_species_map(species_map)
        elif "element" not in columns:
            raise DataError(f"{path} is a LAMMPS dump without an element column: give the species map "
                            f"(--species-map 1=W,2=Mo, LAMMPS type = element) so that types become elements")
    try:
        yield from ase.io.iread(path, index=":", **kwargs)
    except Exception as err:  # ase raises many types for a file it cannot parse
        raise DataError(f"Cannot read {path} as a structure file ({type(err).__name__}: {err}). Give an extxyz, "
                        f"a LAMMPS dump (with --species-map), a pacemaker pickle, or a format ase reads") from err


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
