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

Structure tables (:func:`load_subsets`) have the columns of :mod:`uqlib.io`'s tables, one
row per configuration, ``structure_id`` ``"<subset>-<row>"`` (row in the upstream file) and
``subset`` the paper's subset letter (``A``-``F``) or ``PRM2020``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tomllib
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from uqlib import config
from uqlib.config import PROJECT_ROOT
from uqlib.io import DataError, one_line, read_pacemaker_pickle, sha256sum, tidy_table
from uqlib.tables import subsample

MANIFEST_PATH = PROJECT_ROOT / "data" / "manifest.toml"


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
    return config.download_cache_dir()


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, DataFile]:
    """Read the manifest into ``{key: DataFile}``."""
    with open(path, "rb") as fh:
        entries = tomllib.load(fh)["files"]
    return {key: DataFile(key=key, **fields) for key, fields in entries.items()}


def subset_files() -> dict[str, DataFile]:
    """Manifest entries that hold one paper subset, by subset name (``A``..``F``, ``PRM2020``)."""
    return {f.subset: f for f in load_manifest().values() if f.subset and "+" not in f.subset}



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
    """Download ``entry`` to ``target``, verified before it is renamed into the cache.

    The bytes go to a file beside ``target`` whose name is unique to this call, so a
    download cut short (or a concurrent one) never leaves a file at ``target``; a copy
    whose checksum is wrong is deleted and raises :class:`DataError`. Either way a later
    run finds no file in the cache and tries again.
    """
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.", suffix=".part")
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh, urllib.request.urlopen(entry.url, timeout=60) as response:
            shutil.copyfileobj(response, fh)
        try:
            _verify(partial, entry)
        except DataError as err:
            raise DataError(f"The download of data file '{entry.key}' from {entry.url} is incomplete or not the "
                            f"pinned version, so it was not kept: {one_line(err)}") from None
        os.replace(partial, target)  # only a verified file ever appears at target
    finally:
        partial.unlink(missing_ok=True)
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
    mirror = config.data_mirror()
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


def load_subsets(spec: str) -> pd.DataFrame:
    """Load one or more paper subsets as a single structure table, e.g. ``load_subsets("A+B")``."""
    tables = []
    for name in parse_subsets(spec):
        entry = subset_files()[name]
        tables.append(tidy_table(read_pacemaker_pickle(resolve(entry.key), entry.key), name))
    return pd.concat(tables, ignore_index=True)


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


def main(argv: list[str] | None = None) -> int:
    """``python -m uqlib.paper.data``: resolve and verify every manifest file.

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


if __name__ == "__main__":
    sys.exit(main())
