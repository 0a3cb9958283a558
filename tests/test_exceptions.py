"""One exceptions module: every purposeful error is a UqlibError and keeps its built-in base."""

from __future__ import annotations

import pytest

from uqlib import exceptions
from uqlib.ace import LinearACE


@pytest.mark.parametrize("name", [n for n in exceptions.__all__ if n != "UqlibError"])
def test_every_error_is_a_uqlib_error(name: str) -> None:
    assert issubclass(getattr(exceptions, name), exceptions.UqlibError)


def test_not_fitted_is_also_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="not fitted"):
        LinearACE("Func-33").basis_set()
    assert issubclass(exceptions.NotFittedError, exceptions.UqlibError)
