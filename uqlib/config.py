"""Settings: every ``UQLIB_*`` environment variable and every shared default, read here only.

=========================  =================================================================
variable                   meaning (default)
=========================  =================================================================
``UQLIB_COMPUTE_CACHE``    computed caches: design matrices, labels, active sets
                           (``data/cache`` in a checkout, else the user cache folder)
``UQLIB_CACHE``            downloaded input files (``data/raw`` in a checkout, else the
                           user cache folder)
``UQLIB_DATA_MIRROR``      a folder holding the input files, looked in before downloading
``UQLIB_RESULTS``          where the book's notebooks write records (``results/default``)
``UQLIB_PROGRESS``         ``0`` switches progress bars off (as :func:`set_progress`)
``UQLIB_ARRAY_LOG``        file to which large arrays are logged (set by the book runner)
``UQLIB_SCHEDULER``        address of a Dask scheduler, ``tcp://HOST:PORT``
``UQLIB_CACHE_VERIFY``     ``full``: check every cache entry's whole digest on every read
=========================  =================================================================

Nothing in uqlib writes ``os.environ``: a process's own choices (``uqlib -q``) go through
:func:`set_progress`, which this process alone sees.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ELEMENT", "PROJECT_ROOT", "array_log_path", "cache_verify", "compute_cache_dir", "data_mirror",
           "download_cache_dir", "in_checkout", "progress_enabled", "results_root", "scheduler_address", "set_progress"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ELEMENT = "W"  # the species of the paper's data: the default of single-species calls

_settings: dict[str, object] = {"progress": None}  # None: as UQLIB_PROGRESS says


def in_checkout() -> bool:
    """Whether uqlib runs from a source checkout (editable install) rather than an installed wheel."""
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "uqlib").is_dir()


def _user_cache() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("uqlib"))


def compute_cache_dir() -> Path:
    """Computed caches (``$UQLIB_COMPUTE_CACHE``; ``data/cache`` in a checkout; else the user cache folder)."""
    if value := os.environ.get("UQLIB_COMPUTE_CACHE"):
        return Path(value)
    return PROJECT_ROOT / "data" / "cache" if in_checkout() else _user_cache() / "compute"


def download_cache_dir() -> Path:
    """Downloaded input files (``$UQLIB_CACHE``; ``data/raw`` in a checkout; else the user cache folder)."""
    if value := os.environ.get("UQLIB_CACHE"):
        return Path(value)
    return PROJECT_ROOT / "data" / "raw" if in_checkout() else _user_cache() / "raw"


def data_mirror() -> str | None:
    """The folder named by ``$UQLIB_DATA_MIRROR``, or ``None`` (not checked here: the caller says what is wrong)."""
    return os.environ.get("UQLIB_DATA_MIRROR") or None


def results_root() -> Path:
    """Where notebooks write their records (``$UQLIB_RESULTS``, else ``results/default`` of the checkout)."""
    return Path(os.environ.get("UQLIB_RESULTS", PROJECT_ROOT / "results" / "default"))


def array_log_path() -> str | None:
    """The file named by ``$UQLIB_ARRAY_LOG``, or ``None``."""
    return os.environ.get("UQLIB_ARRAY_LOG") or None


def scheduler_address() -> str | None:
    """``$UQLIB_SCHEDULER`` (a Dask scheduler's ``tcp://HOST:PORT``), or ``None``."""
    return os.environ.get("UQLIB_SCHEDULER") or None


def cache_verify() -> str:
    """``$UQLIB_CACHE_VERIFY``: ``"full"`` checks every cache entry's whole digest on each read ("" otherwise)."""
    return os.environ.get("UQLIB_CACHE_VERIFY", "")


def set_progress(enabled: bool | None) -> None:
    """Switch progress bars on or off in this process; ``None`` goes back to ``$UQLIB_PROGRESS``."""
    _settings["progress"] = enabled


def progress_enabled() -> bool:
    """Whether progress bars show: :func:`set_progress` if called, else ``$UQLIB_PROGRESS != "0"``."""
    if _settings["progress"] is not None:
        return bool(_settings["progress"])
    return os.environ.get("UQLIB_PROGRESS") != "0"
