from __future__ import annotations

import numpy as np
import pytest

from uqlib import ace, clustering


def test_descriptors_are_standardised_structure_means(small_table):
    dm = ace.design_matrix(small_table, "Func-15", use_cache=False, progress=False)
    desc = clustering.structure_descriptors(dm)
    assert desc.shape == (8, 15)
    np.testing.assert_allclose(desc.mean(axis=0), 0, atol=1e-10)


def test_principal_components_find_the_dominant_direction():
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    points = np.column_stack([t, 2 * t, rng.normal(scale=0.01, size=200)])
    coords, explained = clustering.principal_components(points)
    assert coords.shape == (200, 2) and explained[0] > 0.99
    assert abs(np.corrcoef(coords[:, 0], t)[0, 1]) > 0.999


def test_too_few_structures_for_a_map():
    with pytest.raises(ValueError, match="at least 2 structures"):
        clustering.principal_components(np.ones((1, 5)))
