"""Same parameters, same numbers; another seed, other numbers: no result can be a constant."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from uqlib.paper import book

TINY = {"preset": "Func-33", "member_counts": [3, 5], "n_repeats": 2, "max_per_subset": 8}


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    results = {}
    for label, seed in (("first", 0), ("again", 0), ("other", 1)):
        patch = pytest.MonkeyPatch()
        patch.setattr(book, "RESULTS_ROOT", root / label)
        book.run_notebook("02_ensemble_size", {**TINY, "seed": seed}, output_dir=root / label, progress=False)
        patch.undo()
        folder = root / label / "fast" / "02_ensemble_size"
        results[label] = (json.loads((folder / "claims.json").read_text()),
                          pd.read_csv(folder / "ensemble_size.csv"))
    return results


def test_same_parameters_give_identical_claims_and_tables(three_runs):
    claims, table = three_runs["first"]
    claims_again, table_again = three_runs["again"]
    assert claims == claims_again
    pd.testing.assert_frame_equal(table, table_again)


def test_another_seed_changes_the_seeded_numbers(three_runs):
    _, table = three_runs["first"]
    _, other = three_runs["other"]
    assert not table["selection_rate"].equals(other["selection_rate"])
    assert not table["threshold"].equals(other["threshold"])
