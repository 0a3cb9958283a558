"""The paper's numbers live in one module, each with its unit and source."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from uqlib.paper import claims, values

PAPER_TEXT = Path("/work/shared/paper/arxiv-2508.03405.md")


def test_every_value_has_a_unit_field_a_source_and_a_description():
    assert len(values.ALL_VALUES) >= 30
    for name, value in values.ALL_VALUES.items():
        assert value.source and value.what, name
        if value.unit == "%":
            assert 0 <= value.value <= 1, f"{name}: rates are fractions"


@pytest.mark.parametrize("value, shown", [
    (values.AD_DOPT_CFG_RATE, "75.4 %"), (values.AD_ENSEMBLE_CFG_RATE, "0.076 %"),
    (values.F_RMSE_FUNC15, "171.62 meV/Å"), (values.GAMMA_MAX_FUNC945, "about 1e6"),
    (values.AD_ERROR_MODE_LOW, "near 1e-4 eV/Å"), (values.DOPT_CFG_DETECTION_MIN, "more than 90 %"),
    (values.CROSSOVER_F_RMSE, "100 meV/Å"),
])
def test_values_read_as_the_paper_writes_them(value, shown):
    assert value.text() == shown
    assert value.cited() == f"{shown} ({value.source})"


def test_the_claim_rules_read_the_papers_values_from_the_module():
    assert claims.PAPER_F_RMSE is values.F_RMSE and claims.PAPER_E_RMSE is values.E_RMSE
    assert values.CROSSOVER_F_RMSE.value == claims.PAPER_CROSSOVER


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason="the paper's text is not on this machine")
def test_every_stated_value_appears_in_the_papers_text():
    text = PAPER_TEXT.read_text()
    for name, value in values.ALL_VALUES.items():
        if value.approximate or value.unit == "" and value.value in (1.0, 1.5, 6, 10, 30, 0.7):
            continue  # bounds and round figures ("about 1e6", "at least 10") are in words
        number = 100 * value.value if value.unit == "%" else value.value
        assert re.search(rf"(?<![\d.]){number:g}(?![\d])", text), f"{name}: {number:g} not in the paper's text"
