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
import zipfile
from pathlib import Path

import numpy as np

from uqlib.data import PROJECT_ROOT


def cache_root() -> Path:
    """Where computed artefacts go: ``$UQLIB_COMPUTE_CACHE`` or ``data/cache``."""
    return Path(os.environ.get("UQLIB_COMPUTE_CACHE", PROJECT_ROOT / "data" / "cache"))


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
