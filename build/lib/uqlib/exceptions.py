"""Every error uqlib raises on purpose: :class:`UqlibError` and its subclasses.

A :class:`UqlibError` is a user's mistake or an input uqlib cannot use; its message
names the file, frame, parameter or species and says how to fix it. The ``uqlib``
command prints it on one line and exits with code 2. Anything else that escapes is a
bug and stays one (a traceback, exit code 1).

Each subclass also derives from the built-in exception it refines (``ValueError``,
``TypeError``, ...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["ActiveSetError", "CacheError", "DataError", "FeaturizationError", "NotFittedError", "UqlibError",
           "UsageError"]


class UqlibError(Exception):
    """The base of every error uqlib raises on purpose (module docstring)."""


class DataError(UqlibError, ValueError):
    """A data file is missing, corrupt, or holds a structure uqlib cannot use."""


class CacheError(UqlibError, ValueError):
    """A computed cache entry cannot be written or read back."""


class FeaturizationError(UqlibError, ValueError):
    """pyace's features of a structure are missing, of the wrong shape or not finite."""


class ActiveSetError(UqlibError, ValueError):
    """An active set cannot be built (the projections do not span the basis) or read back."""


class UsageError(UqlibError, ValueError):
    """A command-line option or combination of options that cannot work."""


class NotFittedError(UqlibError, AttributeError):
    """An estimator was used before ``fit`` (as scikit-learn's ``NotFittedError``)."""
