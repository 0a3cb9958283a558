"""On-disk cache of computed arrays (design matrices, labels, SOAP vectors).

Entries are keyed by a hash of everything that determines them. An entry is a folder
``<kind>/<name>-<key>/`` holding one uncompressed ``.npy`` file per array, which numpy
memory-maps, and a sidecar ``entry.json`` with each array's shape, dtype, header and
file sizes and sha256 digests::

    {"format": 1, "created": "...", "sample": {"block_bytes": 4096, "blocks": 16},
     "arrays": {"force_rows": {"file": "force_rows.npy", "shape": [1020, 1561], "dtype": "<f8",
                               "header_bytes": 128, "file_bytes": 12737888,
                               "sha256": "...", "sample_sha256": "..."}, ...}}

An entry is validated ONCE, when it is written (:func:`write_entry`: every array numeric,
all values finite, plus the caller's ``validate``); a failed check writes nothing. A read
(:func:`load_entry`) checks cheaply that the entry is the one written (file sizes, each
``.npy`` header against the sidecar, the digest of a few sampled blocks; the digest of all
the data when the entry is small, :data:`FULL_DIGEST_BYTES`, or on request) and returns
read-only memory maps: no data is read until it is used. An entry that fails the check is
recomputed, never trusted. Writes are atomic: the folder is written under a temporary name
unique to the process and renamed into place, so an interrupted or failed computation
leaves nothing a later run could trust. Entries of the older ``.npz`` format are ignored
(and deleted when the new entry of the same key is written).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from uqlib import config
from uqlib.exceptions import CacheError
from uqlib.tables import subset_runs


def cache_root() -> Path:
    """Where computed artefacts go: ``$UQLIB_COMPUTE_CACHE`` or ``data/cache``."""
    return config.compute_cache_dir()


def geometry_fingerprint(structures: pd.DataFrame | list) -> str:
    """sha256 of what descriptors depend on: cells, periodicity, positions, atomic numbers.

    Labels and ids are left out, so relabelled structures reuse cached design matrices.
    """
    digest = hashlib.sha256()
    for atoms in (structures["atoms"] if isinstance(structures, pd.DataFrame) else structures):
        for array in (atoms.cell.array, atoms.pbc, atoms.positions, atoms.numbers):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def cache_key(**parts: object) -> str:
    """A stable hex key from JSON-serialisable parts (sorted by name)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` (``.npz``) atomically.

    The older format, kept for callers outside the caches; the caches use :func:`write_entry`,
    which validates and memory-maps.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; cache entries are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """Read an ``.npz`` written by :func:`save_arrays`; ``None`` if absent or unreadable (older format)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # a damaged entry is recomputed, never trusted




# -- memory-mapped entries: one .npy per array, a sidecar with sizes and digests ------------------

ENTRY_FORMAT = 1
SIDECAR = "entry.json"
FULL_DIGEST_BYTES = 64 * 2**20  # entries up to this many data bytes get their whole digest checked on every read
SAMPLE_BLOCK_BYTES, SAMPLE_BLOCKS = 4096, 16  # the blocks of each array whose digest every read checks
_COPY_BYTES = 32 * 2**20  # arrays are written, hashed and checked in slices of this size
_READ = {"check_bytes": 0}  # bytes the read checks of this process have read (see check_bytes_read)


def check_bytes_read() -> int:
    """Bytes this process has read to check entries on reading them (sizes and headers aside)."""
    return _READ["check_bytes"]


def _byte_view(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without a copy."""
    return memoryview(array.reshape(-1).view(np.uint8))


def _sample_offsets(n_bytes: int) -> list[int]:
    """Start offsets (in the data) of the sampled blocks: evenly spaced, the first and the last included."""
    if n_bytes <= SAMPLE_BLOCK_BYTES * SAMPLE_BLOCKS:
        return list(range(0, n_bytes, SAMPLE_BLOCK_BYTES))
    return [int(x) for x in np.linspace(0, n_bytes - SAMPLE_BLOCK_BYTES, SAMPLE_BLOCKS)]


def array_problem(name: str, array: object, *, finite: bool = True) -> str | None:
    """What makes ``array`` unfit for the cache (``None`` if nothing): not a numeric array, or
    (``finite``) not all finite."""
    if not isinstance(array, np.ndarray):
        return f"{name} is a {type(array).__name__}, not a numpy array"
    if array.dtype.kind not in "biufc":
        return f"{name} has dtype {array.dtype}, not a number type"
    if finite and array.dtype.kind in "fc":
        flat = array.reshape(-1)
        step = max(1, _COPY_BYTES // array.dtype.itemsize)
        bad = sum(int((~np.isfinite(flat[s:s + step])).sum()) for s in range(0, flat.size, step))
        if bad:
            return f"{name} holds {bad} non-finite values"
    return None


def _write_npy(file: Path, blocks: list[np.ndarray]) -> dict:
    """Write the concatenation of ``blocks`` along axis 0 as one ``.npy``; its sidecar record.

    Each slice is checked finite and hashed as it is written, so validation and digest cost
    no second pass over the data; a non-finite value raises :class:`CacheError`.
    """
    name = file.stem
    first = blocks[0]
    shape = (sum(len(b) for b in blocks), *first.shape[1:]) if first.ndim else first.shape
    header = {"descr": np.lib.format.dtype_to_descr(first.dtype), "fortran_order": False, "shape": shape}
    digest = hashlib.sha256()
    n_bytes = 0
    with open(file, "wb") as fh:
        try:
            np.lib.format.write_array_header_1_0(fh, header)
        except ValueError:  # a header over 64 KiB (a very long shape): format 2.0
            np.lib.format.write_array_header_2_0(fh, header)
        header_bytes = fh.tell()
        row = 0  # of the concatenation, for the error message
        for block in blocks:
            block = np.ascontiguousarray(block)
            if block.ndim == 0:
                block = block.reshape(1)  # its bytes are the same; the header keeps the shape ()
            step = max(1, _COPY_BYTES // max(1, block[:1].nbytes))
            for s in range(0, len(block), step):
                piece = block[s:s + step]
                if (problem := array_problem(name, piece)) is not None:
                    raise CacheError(f"{problem} in rows {row + s} to {row + s + len(piece) - 1}")
                data = _byte_view(piece)
                fh.write(data)
                digest.update(data)
            n_bytes += block.nbytes
            row += len(block)
    sample = hashlib.sha256()
    with open(file, "rb") as fh:  # just written: the sampled blocks come from the page cache
        for offset in _sample_offsets(n_bytes):
            sample.update(os.pread(fh.fileno(), SAMPLE_BLOCK_BYTES, header_bytes + offset))
    return {"file": file.name, "shape": list(shape), "dtype": header["descr"], "header_bytes": header_bytes,
            "file_bytes": header_bytes + n_bytes, "sha256": digest.hexdigest(), "sample_sha256": sample.hexdigest()}


def _temporary_folder(path: Path) -> Path:
    """A new empty folder beside ``path``, named for this process (pid) and unique within it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; cache entries are ordinary folders
    return tmp


def _remove_abandoned(path: Path) -> None:
    """Delete temporary folders of ``path`` left by processes that no longer run (killed writers)."""
    for tmp in path.parent.glob(f"{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 1:].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, path: Path) -> None:
    """Rename the finished folder ``tmp`` to ``path``, replacing a damaged entry there; keep a sound one."""
    try:
        os.rename(tmp, path)
        return
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
    if path.is_dir() and entry_problem(path) is None:  # another process wrote the same entry first: keep it
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = path.with_name(f"{path.name}.{os.getpid()}.{tmp.name.rsplit('.', 2)[-2]}.old")
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, old)  # a reader that mapped the damaged files keeps them; the name is freed
    try:
        os.rename(tmp, path)
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # a concurrent writer published between the two renames
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def write_entry(path: Path, arrays: dict[str, np.ndarray] | list[dict[str, np.ndarray]], *,
                validate: Callable[[dict[str, np.ndarray]], str | None] | None = None, what: str = "") -> None:
    """Validate ``arrays`` and write them as the entry folder ``path``, atomically.

    ``arrays`` is one dict of arrays, or a list of dicts with the same names whose arrays are
    written concatenated along axis 0 (streamed, never stacked in memory). Every array must be
    numeric and finite (:func:`array_problem`; checked slice by slice as it is written) and
    ``validate`` must return ``None`` for the dict (for each part of a list); otherwise
    :class:`CacheError` is raised, naming ``what``, and nothing is written. An older ``.npz``
    of the same key is deleted.
    """
    parts = arrays if isinstance(arrays, list) else [arrays]
    names = list(parts[0])
    if not names or not all(n.isidentifier() for n in names):
        raise CacheError(f"{what or path}: array names must be identifiers, got {names}")
    problems = [f"the parts hold different arrays: {[list(p) for p in parts]}"
                if any(list(part) != names for part in parts) else None]
    problems += [array_problem(n, part.get(n), finite=False) for part in parts for n in names]  # finite: as written
    for n in names:
        arrays_n = [p[n] for p in parts if isinstance(p.get(n), np.ndarray)]
        if len({(a.dtype, a.shape[1:]) for a in arrays_n}) > 1 or (len(parts) > 1 and any(a.ndim == 0
                                                                                          for a in arrays_n)):
            problems.append(f"the parts of {n} differ in dtype or trailing shape, or cannot be stacked")
    if validate is not None and not any(problems):
        problems.extend(validate(part) for part in parts)
    problem = next((p for p in problems if p), None)
    if problem:
        raise CacheError(f"{what or path} is invalid ({problem}); not cached")
    _remove_abandoned(path)
    tmp = _temporary_folder(path)
    try:
        try:
            records = {n: _write_npy(tmp / f"{n}.npy", [part[n] for part in parts]) for n in names}
        except CacheError as err:
            raise CacheError(f"{what or path} is invalid ({err}); not cached") from None
        sidecar = {"format": ENTRY_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "sample": {"block_bytes": SAMPLE_BLOCK_BYTES, "blocks": SAMPLE_BLOCKS}, "arrays": records}
        (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=1))
        _publish(tmp, path)
    except OSError as err:  # disk full, no permission: say where, and what to do
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(err.errno, f"Could not write the cache entry {path} ({err.strerror or err}); nothing was "
                                 f"cached. Free space there, or point UQLIB_COMPUTE_CACHE at a writable disk") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    path.with_name(path.name + ".npz").unlink(missing_ok=True)  # the older format of this key: superseded


def _read_header(file: Path) -> tuple[tuple, bool, np.dtype, int]:
    with open(file, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read(fh)
        return shape, fortran_order, dtype, fh.tell()


def _digest_of_file(file: Path, start: int, offsets: list[int] | None = None) -> str:
    """sha256 of a file's bytes from ``start`` (all of them, or the sampled blocks at ``offsets``)."""
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        fd = fh.fileno()
        if offsets is None:
            fh.seek(start)
            while block := fh.read(_COPY_BYTES):
                digest.update(block)
                _READ["check_bytes"] += len(block)
        else:
            for offset in offsets:
                block = os.pread(fd, SAMPLE_BLOCK_BYTES, start + offset)
                digest.update(block)
                _READ["check_bytes"] += len(block)
    return digest.hexdigest()


def entry_problem(path: Path, *, full: bool | None = None) -> str | None:
    """What shows that the entry folder ``path`` is not the one written (``None`` if nothing).

    Cheap by default: the sidecar, the set of files and their sizes, each ``.npy`` header
    (shape, dtype, order, length) against the sidecar, and the digest of each array's sampled
    blocks; the digest of all the data too when ``full`` is true, or when ``full`` is ``None``
    and the entry holds at most :data:`FULL_DIGEST_BYTES` (or ``$UQLIB_CACHE_VERIFY`` is ``full``).
    """
    path = Path(path)
    if not path.is_dir():
        return "no entry folder"
    try:
        sidecar = json.loads((path / SIDECAR).read_text())
        records = sidecar["arrays"]
        if sidecar.get("format") != ENTRY_FORMAT or sidecar.get("sample") != {"block_bytes": SAMPLE_BLOCK_BYTES,
                                                                              "blocks": SAMPLE_BLOCKS}:
            return f"written in another format ({sidecar.get('format')}, {sidecar.get('sample')})"
    except FileNotFoundError:
        return f"its sidecar {SIDECAR} is missing"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its sidecar {SIDECAR} is unreadable ({err})"
    files = {p.name for p in path.iterdir()} - {SIDECAR}
    expected = {record["file"] for record in records.values()}
    if files != expected:
        return f"it holds files {sorted(files)}, the sidecar lists {sorted(expected)}"
    if full is None:
        data_bytes = sum(r["file_bytes"] - r["header_bytes"] for r in records.values())
        full = data_bytes <= FULL_DIGEST_BYTES or config.cache_verify() == "full"
    for name, record in records.items():
        file = path / record["file"]
        size = file.stat().st_size
        if size != record["file_bytes"]:
            return f"{record['file']} holds {size} bytes, the sidecar says {record['file_bytes']}"
        try:
            shape, fortran_order, dtype, header_bytes = _read_header(file)
        except (OSError, ValueError) as err:
            return f"{record['file']} has no readable .npy header ({err})"
        if (list(shape), fortran_order, np.lib.format.dtype_to_descr(dtype), header_bytes) != (
                record["shape"], False, record["dtype"], record["header_bytes"]):
            return (f"{record['file']} header says shape {shape}, dtype {dtype}, {header_bytes} header bytes; "
                    f"the sidecar says {tuple(record['shape'])}, {record['dtype']}, {record['header_bytes']}")
        n_bytes = record["file_bytes"] - header_bytes
        if _digest_of_file(file, header_bytes, _sample_offsets(n_bytes)) != record["sample_sha256"]:
            return f"{name}: the digest of its sampled blocks differs from the sidecar's"
        if full and _digest_of_file(file, header_bytes) != record["sha256"]:
            return f"{name}: the digest of its data differs from the sidecar's"
    return None


def load_entry(path: Path, *, full: bool | None = None) -> dict[str, np.ndarray] | None:
    """The arrays of the entry folder ``path`` as read-only memory maps, or ``None``.

    ``None`` when there is no entry, and (with a warning naming the problem) when the cheap
    check of :func:`entry_problem` finds it damaged: the caller recomputes it. The maps
    read nothing until used; they stay valid if the entry is later replaced.
    """
    path = Path(path)
    if not path.is_dir():
        return None
    problem = entry_problem(path, full=full)
    if problem is not None:
        warnings.warn(f"Cache entry {path} is not what it claims ({problem}); recomputing it", stacklevel=3)
        return None
    records = json.loads((path / SIDECAR).read_text())["arrays"]
    arrays = {}
    for name, record in records.items():
        file = path / record["file"]
        # numpy cannot map an empty array; there is nothing to read either
        arrays[name] = np.load(file, mmap_mode="r" if np.prod(record["shape"]) else None, allow_pickle=False)
    return arrays


def count_entries(root: Path | None = None) -> int:
    """How many finished entries the compute cache holds: entry folders and single-file entries
    (such as a trajectory's files); temporary folders of writers and ``.npz`` files of the older
    format (ignored by the caches) left out, so a cache holding only those counts as empty (cold)."""
    root = Path(root or cache_root())
    if not root.is_dir():
        return 0
    entries = {p.parent for p in root.rglob(SIDECAR)}
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.endswith((".tmp", ".old", ".npz"))
             and not any(parent in entries or parent.name.endswith((".tmp", ".old")) for parent in p.parents)]
    return len(entries) + len(files)


def verify_cache(root: Path | None = None, *, remove: bool = False) -> list[tuple[Path, str]]:
    """Check every entry under ``root`` (default :func:`cache_root`) with its whole digest.

    Returns ``(path, problem)`` for each damaged entry folder and each ``.npz`` of the older
    format (ignored by the caches); with ``remove``, those are deleted, to be recomputed when
    next asked for. Reads all the cached bytes: run it on request, not per build.
    """
    root = Path(root or cache_root())
    found: list[tuple[Path, str]] = []
    if not root.is_dir():
        return found
    for sidecar in sorted(root.rglob(SIDECAR)):
        entry = sidecar.parent
        if entry.name.endswith((".tmp", ".old")):
            continue
        if (problem := entry_problem(entry, full=True)) is not None:
            found.append((entry, problem))
    found += [(npz, "older .npz format, ignored") for npz in sorted(root.rglob("*.npz"))]
    if remove:
        for path, _ in found:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return found


def cached_arrays(path: Path, compute: Callable[[], dict[str, np.ndarray]], *, use_cache: bool = True,
                  validate: Callable[[dict[str, np.ndarray]], str | None] | None = None,
                  what: str = "") -> tuple[dict[str, np.ndarray], float]:
    """The arrays of the entry ``path``: read (memory-mapped, cheaply checked) or computed, validated and written.

    Returns the arrays and the seconds spent computing (0 when read). A computed result that
    fails validation (non-finite values, or ``validate`` returns a problem) raises
    :class:`CacheError` and writes nothing; so does an exception in ``compute``. With
    ``use_cache=False`` nothing is read or written, the computed arrays are returned in memory,
    validated the same way.
    """
    stored = load_entry(path) if use_cache else None
    if stored is not None:
        return stored, 0.0
    start = time.perf_counter()
    computed = compute()
    seconds = time.perf_counter() - start
    if not use_cache:
        problem = next((p for n, a in computed.items() if (p := array_problem(n, a))), None)
        if problem is None and validate is not None:
            problem = validate(computed)
        if problem:
            raise CacheError(f"Computed {what or path.name} is invalid ({problem})")
        return computed, seconds
    write_entry(path, computed, validate=validate, what=f"Computed {what or path.name}")
    del computed  # from here on the written entry, mapped, stands for it: its pages can be dropped
    return _read_back(path), seconds


def _read_back(path: Path) -> dict[str, np.ndarray]:
    """The maps of an entry just written (its sampled check only: the bytes were hashed as written)."""
    arrays = load_entry(path, full=False)
    if arrays is None:
        raise CacheError(f"Cache entry {path} was written but cannot be read back; is the disk full or shared?")
    return arrays


def entry_path(run: pd.DataFrame, kind: str, name: str, key_parts: dict) -> Path:
    """The entry folder of one subset run: keyed by the run's geometry and ``key_parts``."""
    return cache_root() / kind / f"{name}-{cache_key(geometry=geometry_fingerprint(run), **key_parts)}"


def stacked_entry_path(run_paths: list[Path]) -> Path:
    """The entry folder of the concatenation of the entries ``run_paths`` (keyed by their names, in order)."""
    first = run_paths[0]
    name = first.name.rsplit("-", 1)[0]
    return first.parent / f"{name}-stack-{cache_key(parts=[p.name for p in run_paths])}"


def is_cached(table: pd.DataFrame, kind: str, name: str, key_parts: dict) -> bool:
    """Whether every subset run of ``table`` has an entry, or their concatenation has one (present;
    checked only when read)."""
    paths = [entry_path(table.iloc[rows], kind, name, key_parts) for rows in subset_runs(table)]
    return all((p / SIDECAR).is_file() for p in paths) or (
        len(paths) > 1 and (stacked_entry_path(paths) / SIDECAR).is_file())


def cached_runs(table: pd.DataFrame, kind: str, name: str, key_parts: dict,
                compute: Callable[[pd.DataFrame], dict[str, np.ndarray]], *, use_cache: bool = True,
                validate: Callable[[pd.DataFrame, dict[str, np.ndarray]], str | None] | None = None,
                ) -> tuple[list[dict[str, np.ndarray]], float]:
    """The arrays of each run of one subset in ``table`` (:func:`uqlib.tables.subset_runs`), each its own entry.

    Returns one dict of (memory-mapped) arrays per run, in table order, and the seconds spent
    computing. For consumers that can work run by run, nothing is stacked or loaded.
    ``validate(run, arrays)`` is checked when a run's entry is written (see :func:`cached_arrays`).
    """
    parts, seconds = [], 0.0
    for rows in subset_runs(table):
        run = table.iloc[rows]
        check = None if validate is None else (lambda arrays, run=run: validate(run, arrays))
        arrays, spent = cached_arrays(entry_path(run, kind, name, key_parts), lambda run=run: compute(run),
                                      use_cache=use_cache, validate=check,
                                      what=f"{kind} {name} for {len(run)} structures of subset {run['subset'].iat[0]}")
        parts.append(arrays)
        seconds += spent
    return parts, seconds


def cached_per_subset(table: pd.DataFrame, kind: str, name: str, key_parts: dict,
                      compute: Callable[[pd.DataFrame], dict[str, np.ndarray]], *,
                      use_cache: bool = True,
                      validate: Callable[[pd.DataFrame, dict[str, np.ndarray]], str | None] | None = None,
                      ) -> tuple[dict[str, np.ndarray], float]:
    """Arrays of ``table`` computed per run of one subset, each run cached on its own.

    Splits compute into consecutive same-subset runs, so the A+B and B+C+E tables share
    the cached entries of B. Every array is stacked along axis 0 in table order. Returns
    the arrays and the seconds spent computing (0 if all came from the cache).

    With the cache, the arrays are read-only memory maps: of the run's entry when ``table``
    is one run, else of one stacked entry written (streamed from the runs' maps, never
    stacked in memory) the first time these runs are asked for together, and read directly
    afterwards. ``validate(run, arrays)`` says what is wrong with a run's arrays (``None`` if
    nothing); it is checked once, when the entry is written: a computed result that fails it,
    or holds non-finite values, raises :class:`CacheError` and is not written. A stored entry
    is checked cheaply when read (:func:`entry_problem`) and recomputed, with a warning, when
    damaged. Without the cache, the arrays are stacked in memory (:func:`_stack_releasing`).
    """
    runs = subset_runs(table)
    if use_cache and len(runs) > 1:
        paths = [entry_path(table.iloc[rows], kind, name, key_parts) for rows in runs]
        stacked = stacked_entry_path(paths)
        if (arrays := load_entry(stacked)) is not None:
            return arrays, 0.0
    parts, seconds = cached_runs(table, kind, name, key_parts, compute, use_cache=use_cache, validate=validate)
    if len(parts) == 1:
        return parts[0], seconds
    if not use_cache:
        return _stack_releasing(parts), seconds
    write_entry(stacked, parts, what=f"stacked {kind} {name} of {len(table)} structures")
    del parts
    return _read_back(stacked), seconds


def _stack_releasing(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate each array of ``parts`` along axis 0, dropping every part once copied.

    Peak memory is the parts plus one stacked array, not twice everything (a design matrix
    of A+B at the largest preset is 2.4 GB).
    """
    if len(parts) == 1:
        return parts[0]
    stacked = {}
    for key in list(parts[0]):
        first = parts[0][key]
        out = np.empty((sum(len(p[key]) for p in parts), *first.shape[1:]), dtype=first.dtype)
        start = 0
        for part in parts:
            block = part.pop(key)
            out[start:start + len(block)] = block
            start += len(block)
            del block
        stacked[key] = out
    return stacked


def main(argv: list[str] | None = None) -> int:
    """``python -m uqlib.cache verify [--remove]``: the whole-digest check of every entry (exit 1 if any damaged)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m uqlib.cache", description=main.__doc__)
    parser.add_argument("command", choices=["verify"])
    parser.add_argument("--remove", action="store_true", help="delete damaged entries and older .npz files")
    args = parser.parse_args(argv)
    found = verify_cache(remove=args.remove)
    for path, problem in found:
        print(f"{path}: {problem}{' (removed)' if args.remove else ''}")
    print(f"{count_entries()} entries in {cache_root()}; {len(found)} damaged or of the older format")
    return 1 if found and not args.remove else 0


if __name__ == "__main__":
    raise SystemExit(main())
