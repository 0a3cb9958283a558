"""On-disk cache of computed arrays (design matrices, labels, active sets).

Entries are keyed by a hash of everything that determines them, and written
atomically (temporary file, then rename), so an interrupted run never leaves a
half-written file that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
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
    """Write ``arrays`` to ``path`` (``.npz``) atomically."""
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
    """Read an ``.npz`` written by :func:`save_arrays`; ``None`` if absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # a damaged entry is recomputed, never trusted


def entry_path(run: pd.DataFrame, kind: str, name: str, key_parts: dict) -> Path:
    """Where the cache entry of one subset run lives: keyed by the run's geometry and ``key_parts``."""
    return cache_root() / kind / f"{name}-{cache_key(geometry=geometry_fingerprint(run), **key_parts)}.npz"


def is_cached(table: pd.DataFrame, kind: str, name: str, key_parts: dict) -> bool:
    """Whether every subset run of ``table`` has an entry (present; validated only when read)."""
    return all(entry_path(table.iloc[rows], kind, name, key_parts).is_file() for rows in subset_runs(table))


def cached_per_subset(table: pd.DataFrame, kind: str, name: str, key_parts: dict,
                      compute: Callable[[pd.DataFrame], dict[str, np.ndarray]], *,
                      use_cache: bool = True,
                      validate: Callable[[pd.DataFrame, dict[str, np.ndarray]], str | None] | None = None,
                      ) -> tuple[dict[str, np.ndarray], float]:
    """Arrays of ``table`` computed per run of one subset, each run cached on its own.

    Splits compute into consecutive same-subset runs, so the A+B and B+C+E tables share
    the cached arrays of B. Every array is stacked along axis 0 in table order. Returns
    the arrays and the seconds spent computing (0 if all came from the cache).

    ``validate(run, arrays)`` says what is wrong with arrays (``None`` if nothing): a
    stored entry that fails it is recomputed (with a warning), a computed one that fails
    it raises :class:`CacheError` and is not written.
    """
    parts: list[dict[str, np.ndarray]] = []
    seconds = 0.0
    for rows in subset_runs(table):
        run = table.iloc[rows]
        path = entry_path(run, kind, name, key_parts)
        stored = load_arrays(path) if use_cache else None
        if stored is not None and validate is not None and (problem := validate(run, stored)) is not None:
            warnings.warn(f"Cache entry {path} is not what it claims ({problem}); recomputing it", stacklevel=2)
            stored = None
        if stored is None:
            start = time.perf_counter()
            stored = compute(run)
            seconds += time.perf_counter() - start
            if validate is not None and (problem := validate(run, stored)) is not None:
                raise CacheError(f"Computed {kind} {name} for {len(run)} structures is invalid ({problem}); "
                                 f"not cached")
            if use_cache:
                save_arrays(path, **stored)
        parts.append(stored)
    return _stack_releasing(parts), seconds


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
