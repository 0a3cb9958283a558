"""Input data: the manifest, file resolution with checksums, and tidy structure tables.

Every input file is listed in ``data/manifest.toml`` (key, paper subset, upstream
URL at a pinned commit, a checksum, size). The checksum is a ``sha256``, or, for a
file whose bytes were never available here (subset F), its ``git_blob_sha1``: the
SHA-1 of ``b"blob <size>\0" + content`` that git records for it upstream. A ``size``
of 0 means the size is unknown. An entry marked ``optional = true`` may be absent:
:func:`resolve_all` skips it and :func:`test_subsets` says what the test set became.
A file is looked for, in order,

1. in the project's cache, ``data/raw/<path>`` (or ``$UQLIB_CACHE``),
2. in the directory named by ``$UQLIB_DATA_MIRROR`` (``<mirror>/<path>``),
3. at its upstream URL, downloaded into the cache,

and its checksum is checked before it is first used in a process.

Structure tables (:func:`load_subsets`) have one row per configuration:

======================  ====================================================
``structure_id``        stable id, ``"<subset>-<row>"`` (row in the upstream file)
``subset``              paper subset letter (``A``-``F``) or ``PRM2020``
``atoms``               :class:`ase.Atoms`
``n_atoms``             number of atoms
``energy``              reference total energy (eV)
``energy_per_atom``     reference energy per atom (eV/atom)
``forces``              reference forces, array ``(n_atoms, 3)`` (eV/Å)
======================  ====================================================

Tables of your own structures (:func:`table_from_atoms`, :func:`read_structures`)
have the same columns; unlabelled structures (MD frames to grade) carry NaN in
``energy``, ``energy_per_atom`` and ``forces``, and ``table.attrs["labelled"]`` says
which kind a table is. Every structure is checked by :func:`validate_structures`
before any descriptor is computed, so a bad one is named, never featurised as zeros.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tomllib
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_PATH = PROJECT_ROOT / "data" / "manifest.toml"
ELEMENT = "W"
TABLE_COLUMNS = ["structure_id", "subset", "atoms", "n_atoms", "energy", "energy_per_atom", "forces"]


class DataError(ValueError):
    """A data file is missing, corrupt, or holds a structure uqlib cannot use."""


@dataclass(frozen=True)
class DataFile:
    """One manifest entry."""

    key: str
    path: str
    subset: str
    url: str
    size: int  # bytes; 0 when unknown
    description: str
    sha256: str = ""
    git_blob_sha1: str = ""  # used when the sha256 is unknown (see the module docstring)
    optional: bool = False

    def __post_init__(self) -> None:
        if not (self.sha256 or self.git_blob_sha1):
            raise DataError(f"Manifest entry '{self.key}' needs a sha256 or a git_blob_sha1 to verify the file by")

    @property
    def checksum(self) -> str:
        """How the file is verified, for messages: ``"sha256 <hex>"`` or ``"git blob <hex>"``."""
        return f"sha256 {self.sha256}" if self.sha256 else f"git blob {self.git_blob_sha1}"


def cache_dir() -> Path:
    """The project's local cache of downloaded files (``$UQLIB_CACHE`` or ``data/raw``)."""
    return Path(os.environ.get("UQLIB_CACHE", PROJECT_ROOT / "data" / "raw"))


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, DataFile]:
    """Read the manifest into ``{key: DataFile}``."""
    with open(path, "rb") as fh:
        entries = tomllib.load(fh)["files"]
    return {key: DataFile(key=key, **fields) for key, fields in entries.items()}


def subset_files() -> dict[str, DataFile]:
    """Manifest entries that hold one paper subset, by subset name (``A``..``F``, ``PRM2020``)."""
    return {f.subset: f for f in load_manifest().values() if f.subset and "+" not in f.subset}


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The hash git gives a file's content: SHA-1 of ``b"blob <size>\0" + content``."""
    digest = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_supply(entry: DataFile) -> str:
    return (
        f"Supply it in one of three ways:\n"
        f"  1. copy it to {cache_dir() / entry.path}\n"
        f"  2. set UQLIB_DATA_MIRROR to a directory holding {entry.path}\n"
        f"  3. allow a download from {entry.url}"
    )


def _verify(path: Path, entry: DataFile) -> None:
    kind, expected = ("sha256", entry.sha256) if entry.sha256 else ("git blob", entry.git_blob_sha1)
    actual = sha256sum(path) if entry.sha256 else git_blob_sha1(path)
    if actual != expected:
        raise DataError(
            f"Checksum mismatch for data file '{entry.key}' at {path}:\n"
            f"  expected {kind} {expected}\n  found    {kind} {actual}\n"
            f"The file is corrupt or a different version. Delete it if it is in the cache. "
            + _how_to_supply(entry)
        )


def _download(entry: DataFile, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with urllib.request.urlopen(entry.url, timeout=60) as response, open(partial, "wb") as fh:
        shutil.copyfileobj(response, fh)
    os.replace(partial, target)  # a failed download never leaves a file that looks complete
    return target


_verified: dict[Path, tuple[int, float]] = {}


def resolve(key: str, *, allow_download: bool = True) -> Path:
    """Return a local, checksum-verified path to the manifest file ``key``.

    Looks in the cache, then ``$UQLIB_DATA_MIRROR``, then downloads the upstream URL.
    Raises :class:`DataError` naming the file, its checksum and the ways to supply it.
    """
    manifest = load_manifest()
    if key not in manifest:
        raise DataError(f"Unknown data file '{key}'. Known files: {', '.join(sorted(manifest))}")
    entry = manifest[key]
    candidates = [cache_dir() / entry.path]
    mirror = os.environ.get("UQLIB_DATA_MIRROR")
    if mirror:
        if not Path(mirror).is_dir():
            raise DataError(
                f"UQLIB_DATA_MIRROR is set to '{mirror}', which is not a directory. "
                f"Point it at the data mirror (e.g. ../shared/data) or unset it to download."
            )
        candidates.append(Path(mirror) / entry.path)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        if not allow_download:
            raise DataError(f"Data file '{key}' ({entry.path}, {entry.checksum}) is missing. "
                            + _how_to_supply(entry))
        try:
            path = _download(entry, candidates[0])
        except OSError as err:
            raise DataError(
                f"Data file '{key}' ({entry.path}, {entry.checksum}) is not in the cache or the "
                f"mirror, and the download failed ({err}). " + _how_to_supply(entry)
            ) from err
    stamp = (path.stat().st_size, path.stat().st_mtime)
    if _verified.get(path) != stamp:
        _verify(path, entry)
        _verified[path] = stamp
    return path


def resolve_all(*, allow_download: bool = True) -> dict[str, Path]:
    """Resolve and verify every manifest file (the book build does this first).

    An ``optional`` entry that cannot be supplied is left out of the result (a corrupt
    copy of it is still an error); :func:`test_subsets` reports what that changes.
    """
    paths = {}
    for key, entry in load_manifest().items():
        try:
            paths[key] = resolve(key, allow_download=allow_download)
        except DataError as err:
            if not entry.optional or "Checksum mismatch" in str(err):
                raise
    return paths


PAPER_TEST_SUBSETS = "C+E+F"  # the paper's test set for the A+B training set


@cache
def test_subsets(*, allow_download: bool = True) -> tuple[str, str]:
    """The test subsets for the A+B split and why: ``("C+E+F", ...)`` if subset F resolves, else ``("C+E", reason)``.

    Subset F (``validation.pckl.gzip``) is published upstream at the pinned commit but is
    not in the local mirror; it is verified by its git blob hash. Every page that uses the
    test set should print the reason. The outcome is cached for the process.
    """
    entry = subset_files()["F"]
    try:
        path = resolve(entry.key, allow_download=allow_download)
    except DataError as err:
        if "Checksum mismatch" in str(err):
            raise
        first_line = str(err).splitlines()[0]
        return "C+E", f"subset F ({entry.path}) could not be supplied, so the test set is C+E: {first_line}"
    kind = entry.checksum.rsplit(" ", 1)[0]
    return PAPER_TEST_SUBSETS, f"subset F resolved at {path} and verified by its {kind} hash"


test_subsets.__test__ = False  # a data helper, not a pytest test


def manifest_table(*, allow_download: bool = False) -> pd.DataFrame:
    """Every manifest file: subset, size, checksum and where it was found and verified ("missing" if nowhere)."""
    rows = []
    for entry in load_manifest().values():
        try:
            found = f"{resolve(entry.key, allow_download=allow_download).parent.name}/"
        except DataError:
            found = "missing"
        checksum = entry.sha256 or getattr(entry, "git_blob_sha1", "")
        rows.append({"key": entry.key, "subset": entry.subset or "-", "size (kB)": round(entry.size / 1e3),
                     "checksum (first 12)": checksum[:12], "verified at": found, "what": entry.description})
    return pd.DataFrame(rows).set_index("key")


def parse_subsets(spec: str) -> list[str]:
    """Split a subset expression such as ``"A+B"`` or ``"C+E"`` into subset names."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"A subset expression must be a non-empty string like 'A+B', got {spec!r}")
    known = subset_files()
    names = [part.strip() for part in spec.split("+")]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DataError(f"Unknown subset(s) {unknown} in '{spec}'. Valid subsets: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise DataError(f"Subset expression '{spec}' names a subset twice")
    return names


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


def load_subsets(spec: str) -> pd.DataFrame:
    """Load one or more paper subsets as a single structure table, e.g. ``load_subsets("A+B")``."""
    tables = []
    for name in parse_subsets(spec):
        entry = subset_files()[name]
        tables.append(tidy_table(read_pacemaker_pickle(resolve(entry.key), entry.key), name))
    return pd.concat(tables, ignore_index=True)


def subsample(table: pd.DataFrame, max_per_subset: int | None, seed: int, by: str = "subset") -> pd.DataFrame:
    """At most ``max_per_subset`` configurations of each value of column ``by``, chosen with ``seed``; order kept."""
    if max_per_subset is None:
        return table
    if max_per_subset < 1:
        raise DataError(f"max_per_subset must be at least 1 (or None for all), got {max_per_subset}")
    rng = np.random.default_rng(seed)
    keep = []
    for _, group in table.groupby(by, sort=False):
        idx = group.index.to_numpy()
        keep.extend(rng.choice(idx, size=min(max_per_subset, len(idx)), replace=False))
    return table.loc[sorted(keep)].reset_index(drop=True)


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


def load_split(train: str, test: str, max_per_subset: int | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test tables of two subset expressions, each subsampled with ``seed``."""
    return (subsample(load_subsets(train), max_per_subset, seed),
            subsample(load_subsets(test), max_per_subset, seed))


def prm2020_blocks(table: pd.DataFrame) -> pd.Series:
    """Subgroup labels of PRM2020 rows: contiguous blocks of equal atom count, ``"P00"``, ``"P01"``, ...

    PRM2020 carries no config_type labels, but its rows come in contiguous blocks that
    follow the GAP data set's structure groups (see the manifest). Blocks are found in
    the upstream row order, so pass the full PRM2020 table (not a subsample).
    """
    if set(table["subset"]) != {"PRM2020"}:
        raise DataError("prm2020_blocks needs a table of PRM2020 structures only")
    n_atoms = table["n_atoms"].to_numpy()
    block = np.concatenate([[0], np.cumsum(n_atoms[1:] != n_atoms[:-1])])
    return pd.Series([f"P{b:02d}" for b in block], index=table.index, name="group")


def subset_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per subset: configurations, atoms, energy-per-atom range (eV/atom), largest |F| (eV/Å)."""
    max_force = table["forces"].map(lambda f: float(np.linalg.norm(f, axis=1).max()))
    return (
        table.assign(max_force=max_force)
        .groupby("subset", sort=False)
        .agg(configs=("structure_id", "size"), atoms=("n_atoms", "sum"),
             atoms_min=("n_atoms", "min"), atoms_max=("n_atoms", "max"),
             e_min=("energy_per_atom", "min"), e_max=("energy_per_atom", "max"),
             max_abs_force=("max_force", "max"))
    )


def holdout_split(table: pd.DataFrame, holdout_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a table into the structures fitted on and a held-out, in-distribution part.

    Each subset gives up ``round(holdout_fraction * size)`` structures, but always keeps at
    least one, so every subset stays represented in the fitted part.
    """
    if not 0 < holdout_fraction < 1:
        raise DataError(f"holdout_fraction must lie in (0, 1), got {holdout_fraction}")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(table), bool)
    for _, group in table.groupby("subset", sort=False):
        n_out = int(round(holdout_fraction * len(group)))
        held[rng.choice(np.flatnonzero(table.index.isin(group.index)), size=min(n_out, len(group) - 1),
                        replace=False)] = True
    return table[~held].reset_index(drop=True), table[held].reset_index(drop=True)


def atom_offsets(n_atoms: np.ndarray) -> np.ndarray:
    """Where each configuration's atoms start in the per-atom arrays, and where the last ends.

    Shape ``(n_cfg + 1,)``: atoms of configuration *s* are ``offsets[s]:offsets[s + 1]``.
    """
    return np.concatenate([[0], np.cumsum(np.asarray(n_atoms, dtype=int))])


def atoms_of(configs: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Indices of the atoms of the configurations ``configs`` (in that order) in the per-atom arrays."""
    offsets = atom_offsets(n_atoms)
    configs = np.asarray(configs, dtype=int)
    if len(configs) == 0:
        return np.array([], dtype=int)
    return np.concatenate([np.arange(offsets[s], offsets[s + 1]) for s in configs])


def per_structure_max(per_atom: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Largest per-atom value of each configuration; atoms are stored structure by structure."""
    n_atoms = np.asarray(n_atoms)
    if len(per_atom) != n_atoms.sum() or (n_atoms < 1).any():
        raise ValueError(f"{len(per_atom)} per-atom values do not match structures of {n_atoms.sum()} atoms")
    return np.maximum.reduceat(per_atom, atom_offsets(n_atoms)[:-1])


def per_atom(per_structure: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Each configuration's value repeated for its atoms (the inverse of :func:`per_structure_max`)."""
    per_structure, n_atoms = np.asarray(per_structure), np.asarray(n_atoms)
    if len(per_structure) != len(n_atoms):
        raise ValueError(f"{len(per_structure)} values for {len(n_atoms)} configurations")
    return np.repeat(per_structure, n_atoms)


def subset_runs(table: pd.DataFrame) -> list[slice]:
    """Row ranges of consecutive configurations from the same subset (the units of the caches)."""
    subsets = table["subset"].to_numpy()
    cuts = [0, *(np.flatnonzero(subsets[1:] != subsets[:-1]) + 1), len(subsets)]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


# -- your own structures: validation, tables, files ----------------------------------------------

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

def main(argv: list[str] | None = None) -> int:
    """``python -m uqlib.data``: resolve and verify every manifest file.

    Exit code 0 when all files are present and verified, 2 (one line, no traceback)
    when one is missing or corrupt.
    """
    try:
        for key, path in resolve_all().items():
            print(f"ok  {key:20s} {path}")
    except DataError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0


def one_line(err: BaseException | str) -> str:
    """An error's message on one line (remedies joined with '; '), for command-line tools."""
    return "; ".join(part.strip() for part in str(err).splitlines() if part.strip())


if __name__ == "__main__":
    sys.exit(main())
