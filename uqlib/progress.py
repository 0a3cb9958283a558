"""Progress bars for long work: widgets in Jupyter, text in a terminal, off in the book.

Set ``UQLIB_PROGRESS=0`` to switch them off; the book runner does, because an
executed notebook would keep only a bar's first frame, and papermill already
reports progress cell by cell.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """:class:`tqdm.auto.tqdm`, disabled when ``UQLIB_PROGRESS=0`` or ``disable=True``."""
    disable = kwargs.pop("disable", False) or os.environ.get("UQLIB_PROGRESS") == "0"
    return tqdm(iterable, disable=disable, **kwargs)
