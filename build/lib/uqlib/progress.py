"""What long work reports: progress bars, and a log of the large arrays it builds.

Progress bars are widgets in Jupyter, text in a terminal, off in the book.

Set ``UQLIB_PROGRESS=0`` to switch them off; the book runner does, because an
executed notebook would keep only a bar's first frame, and papermill already
reports progress cell by cell.

:func:`log_array` appends what a process built, and how large it is, to the file named
by ``UQLIB_ARRAY_LOG`` (set by the book runner for each step, so its performance page
can say which arrays a step's memory went to); it does nothing otherwise.
"""

from __future__ import annotations

import json

from tqdm.auto import tqdm

from uqlib import config

ARRAY_LOG = "UQLIB_ARRAY_LOG"  # file to which a process appends the design matrices it builds


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """:class:`tqdm.auto.tqdm`, disabled when ``UQLIB_PROGRESS=0`` or ``disable=True``."""
    disable = kwargs.pop("disable", False) or not config.progress_enabled()
    return tqdm(iterable, disable=disable, **kwargs)


def log_array(what: str, nbytes: int) -> None:
    """Append ``{"what", "gib"}`` to the file named by ``$UQLIB_ARRAY_LOG``; no-op when it is unset."""
    path = config.array_log_path()
    if path:
        with open(path, "a") as log:
            log.write(json.dumps({"what": what, "gib": nbytes / 2**30}) + "\n")
