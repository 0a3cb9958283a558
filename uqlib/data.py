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
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tomllib
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

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


def geometry_fingerprint(table: pd.DataFrame) -> str:
    """sha256 of what descriptors depend on: cells, periodicity, positions, atomic numbers.

    Labels and ids are left out, so relabelled structures reuse cached design matrices.
    """
    digest = hashlib.sha256()
    for atoms in table["atoms"]:
        for array in (atoms.cell.array, atoms.pbc, atoms.positions, atoms.numbers):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def subset_runs(table: pd.DataFrame) -> list[slice]:
    """Row ranges of consecutive configurations from the same subset (the units of the caches)."""
    subsets = table["subset"].to_numpy()
    cuts = [0, *(np.flatnonzero(subsets[1:] != subsets[:-1]) + 1), len(subsets)]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def main() -> None:
    """``python -m uqlib.data``: resolve and verify every manifest file."""
    for key, path in resolve_all().items():
        print(f"ok  {key:20s} {path}")


if __name__ == "__main__":
    main()
