from __future__ import annotations

import numpy as np
import pytest

from uqlib import ace, clustering, dopt, tables
from uqlib.paper import data


def test_descriptors_are_standardised_structure_means(small_table):
    dm = ace.design_matrix(small_table, "Func-33", use_cache=False, progress=False)
    desc = clustering.structure_descriptors(dm)
    assert desc.shape == (8, 33)
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


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0]])
    return np.vstack([c + rng.normal(scale=0.5, size=(30, 3)) for c in centres]), np.repeat([0, 1, 2], 30)


@pytest.mark.parametrize("method", clustering.METHODS)
def test_the_number_of_clusters_is_chosen_by_silhouette(method):
    points, truth = _blobs()
    labels, scores = clustering.cluster_structures(points, method=method, max_clusters=6)
    assert max(scores, key=scores.get) == 3
    assert len(set(zip(labels, truth, strict=True))) == 3  # the clusters are the blobs


def test_fixed_number_and_bad_requests():
    points, _ = _blobs()
    labels, scores = clustering.cluster_structures(points, 4, seed=1)
    assert len(set(labels)) == 4 and list(scores) == [4]
    with pytest.raises(ValueError, match="Unknown clustering method"):
        clustering.cluster_structures(points, 3, method="dbscan")
    with pytest.raises(ValueError, match="Cannot make 200 clusters"):
        clustering.cluster_structures(points, 200)


def _two_groups(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(40, 4)) * [3, 1, 0.2, 0.2]
    b = rng.normal(size=(40, 4)) * [0.2, 0.2, 1, 3]
    return np.vstack([a, b]), np.repeat(["a", "b"], 40)


def test_clustered_grade_is_the_minimum_over_clusters():
    projections, labels = _two_groups()
    clustered = clustering.fit_clustered_active_set(projections, labels)
    union = dopt.build_active_set(projections)
    queries = np.random.default_rng(3).normal(size=(500, 4)) * 2
    one_by_one = np.column_stack([a.grade(queries) for a in clustered.active_sets])
    np.testing.assert_allclose(clustered.grade_per_cluster(queries), one_by_one)
    np.testing.assert_allclose(clustered.grade(queries), one_by_one.min(axis=1))
    # the clustered rule disagrees with one active set for the union somewhere
    assert np.any((clustered.grade(queries) > 1) != (union.grade(queries) > 1))


def test_small_clusters_are_merged_and_reported(tmp_path):
    projections, labels = _two_groups()
    labels = labels.astype(object)
    labels[:3] = "tiny"  # three atoms cannot span four functions
    clustered = clustering.fit_clustered_active_set(projections, labels)
    assert clustered.merged == {"tiny": "a (3 atoms of rank 3 < 4 functions)"} and clustered.clusters == ["a", "b"]
    loaded = clustering.ClusteredActiveSet.load(clustered.save(tmp_path / "sets"))
    assert loaded.clusters == ["a", "b"] and loaded.merged == clustered.merged
    np.testing.assert_array_equal(loaded.active_sets[1].inverse, clustered.active_sets[1].inverse)
    with pytest.raises(dopt.ActiveSetError, match="Under-determined"):
        clustering.fit_clustered_active_set(projections[:3], labels[:3])


def test_clustered_grade_matches_pyace_calculator_cluster_by_cluster(tmp_path):
    from pyace import PyACECalculator

    table = tables.subsample(data.load_subsets("B+D"), 8, seed=0)
    test = tables.subsample(data.load_subsets("E"), 2, seed=0)
    dm = ace.design_matrix(table, "Func-33", use_cache=False, progress=False)
    model = ace.LinearACE("Func-33").fit(dm)
    projections = dopt.atom_projections(table, "Func-33", use_cache=False, progress=False)
    atom_clusters = tables.per_atom(table["subset"], table["n_atoms"])
    clustered = clustering.fit_clustered_active_set(projections, atom_clusters)
    folder = clustered.save(tmp_path / "sets")
    calc = PyACECalculator(str(model.to_yaml(tmp_path / "m.yaml")))
    per_cluster = []
    for name in clustered.clusters:
        calc.set_active_set(str(folder / f"cluster-{name}.asi"))
        per_cluster.append(dopt.calculator_gammas(calc, test["atoms"]))
    ours = clustered.grade(dopt.atom_projections(test, "Func-33", use_cache=False, progress=False))
    np.testing.assert_allclose(ours, np.min(per_cluster, axis=0), rtol=1e-6)


def test_rank_deficient_clusters_are_merged_too():
    projections, labels = _two_groups()
    labels = labels.astype(object)
    projections = projections.copy()
    projections[:10] = projections[0]  # ten identical environments: many atoms, rank one
    labels[:10] = "symmetric"
    clustered = clustering.fit_clustered_active_set(projections, labels)
    assert "symmetric" in clustered.merged


def _three_kinds(seed=0, n=8):
    """bcc and fcc cells with thermal noise, and (110) slabs: three kinds of W structure."""
    from ase.build import bcc110, bulk

    rng = np.random.default_rng(seed)
    kinds = [bulk("W", "bcc", a=3.18, cubic=True).repeat(2), bulk("W", "fcc", a=4.0, cubic=True).repeat(2),
             bcc110("W", (2, 2, 4), a=3.18, vacuum=5.0, periodic=True)]
    atoms, truth = [], []
    for label, base in enumerate(kinds):
        for _ in range(n):
            a = base.copy()
            a.positions += rng.normal(scale=0.05, size=a.positions.shape)
            atoms.append(a)
            truth.append(label)
    return atoms, np.array(truth)


def test_soap_vectors_are_cached_and_separate_the_kinds(compute_cache):
    atoms, truth = _three_kinds()
    soap = clustering.soap_descriptors(atoms, progress=False)
    assert soap.shape[0] == len(atoms) and soap.shape[1] > 100 and np.isfinite(soap).all()
    assert len(list((compute_cache / "soap").glob("soap-*/entry.json"))) == 1
    np.testing.assert_array_equal(clustering.soap_descriptors(atoms, progress=False), soap)
    shifted = [a.copy() for a in atoms]
    shifted[0].positions[0] += 0.1
    assert not np.allclose(clustering.soap_descriptors(shifted, progress=False)[0], soap[0])
    assert len(list((compute_cache / "soap").glob("soap-*/entry.json"))) == 2
    labels, report = clustering.soap_birch_clusters(soap, 3)
    assert len(set(zip(labels, truth, strict=True))) == 3  # one cluster per kind
    assert report["sizes"] == [8, 8, 8] and 0 < report["explained_variance"] <= 1
    with pytest.raises(ValueError, match="other than W"):
        from ase import Atoms
        clustering.soap_descriptors([Atoms("Mo", cell=[3, 3, 3], pbc=True)], use_cache=False)


def test_direct_pca_keeps_kaiser_components_weighted_by_variance():
    rng = np.random.default_rng(1)
    t = rng.normal(size=(300, 2))
    points = np.column_stack([t[:, 0], t[:, 0] + 0.01 * rng.normal(size=300), t[:, 1], 0.01 * rng.normal(size=300)])
    features, ratios = clustering.direct_pca(points)
    assert features.shape == (300, 2)  # two eigenvalues of the scaled data exceed 1
    assert ratios[:2].sum() > 0.7
    unweighted, _ = clustering.direct_pca(points, weighted=False)
    np.testing.assert_allclose(np.abs(features), np.abs(unweighted) * ratios[:2])
    assert clustering.direct_pca(points, n_components=3)[0].shape == (300, 3)
    with pytest.raises(ValueError, match="Cannot keep 9"):
        clustering.direct_pca(points, n_components=9)


def test_cluster_sizes_over_row_orders_are_a_tidy_table():
    points, _ = _blobs()
    sizes = clustering.cluster_sizes_over_orders(points, 3, n_orders=4, seed=0, n_components=3)
    assert list(sizes.columns) == ["order", "rank", "size"] and len(sizes) == 12
    assert (sizes.groupby("order")["size"].sum() == 90).all()
    assert (sizes.groupby("rank")["size"].std() == 0).all()  # well-separated blobs: order does not matter
    with pytest.raises(ValueError, match="Cannot make 5 clusters of 3"):
        clustering.birch_clusters(points[:3], 5)


class _FakeSOAP:
    """Stands in for dscribe's SOAP: counts the structures it describes; NaN vectors if asked."""

    created = 0
    value = 1.0

    def __init__(self, **settings):
        pass

    def create(self, atoms, n_jobs=1):
        type(self).created += 1
        return np.full(5, self.value) * atoms.positions.sum()


@pytest.fixture
def fake_soap(monkeypatch):
    import dscribe.descriptors

    monkeypatch.setattr(dscribe.descriptors, "SOAP", _FakeSOAP)
    monkeypatch.setattr(_FakeSOAP, "created", 0)
    return _FakeSOAP


def test_a_damaged_soap_entry_is_recomputed_not_trusted(compute_cache, fake_soap):
    atoms, _ = _three_kinds(n=2)
    first = np.array(clustering.soap_descriptors(atoms, progress=False))
    assert fake_soap.created == 6
    matrix = next((compute_cache / "soap").glob("soap-*/soap.npy"))
    data = bytearray(matrix.read_bytes())
    data[-3] ^= 0x40  # one byte of the last vector
    matrix.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="not what it claims"):
        again = clustering.soap_descriptors(atoms, progress=False)
    assert fake_soap.created == 12
    np.testing.assert_array_equal(again, first)
    clustering.soap_descriptors(atoms, progress=False)
    assert fake_soap.created == 12  # the recomputed entry is trusted again


def test_non_finite_soap_vectors_are_refused_and_not_cached(compute_cache, fake_soap, monkeypatch):
    from uqlib import cache

    monkeypatch.setattr(fake_soap, "value", np.nan)
    atoms, _ = _three_kinds(n=1)
    with pytest.raises(cache.CacheError, match="non-finite"):
        clustering.soap_descriptors(atoms, progress=False)
    assert not list(compute_cache.rglob("*.npy"))


def test_soap_vectors_of_the_wrong_shape_are_refused_and_not_cached(compute_cache, fake_soap, monkeypatch):
    from uqlib import cache

    monkeypatch.setattr(fake_soap, "create", lambda self, atoms, n_jobs=1: np.ones((2, 5)))  # two rows a structure
    atoms, _ = _three_kinds(n=1)
    with pytest.raises(cache.CacheError, match=r"soap has shape \(6, 5\), expected \(3, n_features > 0\)"):
        clustering.soap_descriptors(atoms, progress=False)
    assert not list(compute_cache.rglob("*.npy"))
