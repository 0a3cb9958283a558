"""Shared fixtures: real data from the mirror, small tables, an isolated compute cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from uqlib.config import PROJECT_ROOT

# Developers and CI keep the data mirror beside the checkout; an explicit setting wins.
_mirror = PROJECT_ROOT.parent / "shared" / "data"
if "UQLIB_DATA_MIRROR" not in os.environ and _mirror.is_dir():
    os.environ["UQLIB_DATA_MIRROR"] = str(_mirror)


@pytest.fixture
def compute_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty compute cache, so a test sees exactly what it computes."""
    monkeypatch.setenv("UQLIB_COMPUTE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def small_table():
    """Eight real configurations: four elastic cells (A) and four AIMD/defect cells (B)."""
    from uqlib import tables
    from uqlib.paper import data

    table = data.load_subsets("A+B")
    return tables.subsample(table, 4, seed=1)
