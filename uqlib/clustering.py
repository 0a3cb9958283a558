"""Partitions of training structures: the paper's clusters, before each gets its own active set.

Structures are described by the mean of their atoms' B projections (standardised) or by
structure-averaged SOAP vectors (any species, dscribe), and partitioned with scikit-learn
(k-means or BIRCH). The clustered active set built on a partition, and its grade (the
minimum over clusters), are :class:`uqlib.activeset.ClusteredActiveSet`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import Birch, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from uqlib.ace import DesignMatrix

__all__ = ["METHODS", "SOAP_SETTINGS", "SOAP_VERSION", "birch_clusters", "cluster_sizes_over_orders",
           "cluster_structures", "direct_pca", "principal_components", "soap_birch_clusters", "soap_descriptors",
           "structure_descriptors"]


def structure_descriptors(dm: DesignMatrix) -> np.ndarray:
    """Standardised per-structure ACE descriptor: the mean of the atoms' B projections.

    The energy rows of a linear ACE design matrix are exactly these means, so no
    second pass over the structures is needed. Shape ``(n_cfg, n_func)``.
    """
    return StandardScaler().fit_transform(dm.energy_rows)


def principal_components(descriptors: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in the leading principal components and each one's explained variance ratio."""
    if descriptors.shape[0] < n_components:
        raise ValueError(f"Need at least {n_components} structures for {n_components} components, "
                         f"got {descriptors.shape[0]}")
    pca = PCA(n_components=n_components, svd_solver="full")
    return pca.fit_transform(descriptors), pca.explained_variance_ratio_


# -- partitions ----------------------------------------------------------------------------------

METHODS = ("kmeans", "birch")


def cluster_structures(descriptors: np.ndarray, n_clusters: int | None = None, *, method: str = "kmeans",
                       seed: int = 0, max_clusters: int = 15) -> tuple[np.ndarray, dict[int, float]]:
    """Cluster labels of structures from their descriptors (scikit-learn k-means or BIRCH).

    With ``n_clusters=None`` the number is chosen by the largest silhouette score over
    ``2 .. max_clusters``. Returns the labels and the silhouette score of every number tried.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown clustering method {method!r}; choose one of {METHODS}")
    n = len(descriptors)
    candidates = [n_clusters] if n_clusters is not None else list(range(2, min(max_clusters, n - 1) + 1))
    if not candidates or min(candidates) < 1 or max(candidates) > n:
        raise ValueError(f"Cannot make {n_clusters or 'at least 2'} clusters of {n} structures")

    def fit(k: int) -> np.ndarray:
        model = KMeans(k, n_init=10, random_state=seed) if method == "kmeans" else Birch(n_clusters=k)
        return model.fit_predict(descriptors)

    scores, labels = {}, {}
    for k in candidates:
        labels[k] = fit(k)
        scores[k] = silhouette_score(descriptors, labels[k]) if 1 < len(set(labels[k])) < n else float("nan")
    best = candidates[0] if len(candidates) == 1 else max(scores, key=lambda k: scores[k])
    return labels[best], scores


# -- the unsupervised route of the authors' Code/Clustering.ipynb: averaged SOAP, PCA, BIRCH -------

SOAP_SETTINGS = {"r_cut": 5.0, "n_max": 10, "l_max": 8}  # the authors' Clustering.ipynb
SOAP_VERSION = 1


def soap_descriptors(atoms_list: list, *, species: list[str] | None = None, r_cut: float = SOAP_SETTINGS["r_cut"],
                     n_max: int = SOAP_SETTINGS["n_max"], l_max: int = SOAP_SETTINGS["l_max"], n_jobs: int = 1,
                     use_cache: bool = True, progress: bool = True) -> np.ndarray:
    """Structure-averaged SOAP vectors (dscribe, ``average="inner"``), shape ``(n_structures, n_features)``.

    Any species: ``species`` (default: every species of ``atoms_list``, sorted) sets dscribe's
    species channels; a structure holding another species is an error naming it. The other
    settings default to the authors' (r_cut 5 Å, n_max 10, l_max 8; they had W only). A
    structure whose cell is periodic in all three directions is treated as periodic, any
    other as a finite cluster. The matrix is cached on disk (uqlib.cache, folder ``soap``)
    under a key of the geometry, the species and the settings, checked (shape, all finite) when
    written and cheaply when read, and returned read-only (memory-mapped) from the cache.
    """

    from dscribe.descriptors import SOAP

    from uqlib import cache
    from uqlib.config import ELEMENT
    from uqlib.progress import progress_bar

    if not len(atoms_list):
        raise ValueError("soap_descriptors needs at least one structure")
    present = sorted({s for a in atoms_list for s in a.get_chemical_symbols()})
    species = present if species is None else sorted(set(species))
    bad = [i for i, a in enumerate(atoms_list) if not set(a.get_chemical_symbols()) <= set(species)]
    if bad:
        raise ValueError(f"Structures {bad[:5]} contain species outside {species}: give species= covering them")
    # W alone keeps the key of the W-only version, so the book's cached SOAP vectors stay valid
    extra = {} if species == [ELEMENT] else {"species": species}
    key = cache.cache_key(geometry=cache.geometry_fingerprint(list(atoms_list)), r_cut=r_cut,
                          n_max=n_max, l_max=l_max, version=SOAP_VERSION, **extra)
    path = cache.cache_root() / "soap" / f"soap-{key}"

    def compute() -> dict[str, np.ndarray]:
        settings = dict(species=species, r_cut=r_cut, n_max=n_max, l_max=l_max, average="inner", sparse=False)
        soap = {True: SOAP(periodic=True, **settings), False: SOAP(periodic=False, **settings)}
        rows = [soap[bool(np.all(a.pbc))].create(a, n_jobs=n_jobs)
                for a in progress_bar(atoms_list, desc="SOAP", unit="structure", disable=not progress)]
        return {"soap": np.vstack(rows)}

    def validate(arrays: dict[str, np.ndarray]) -> str | None:  # finiteness: the cache checks it
        shape = arrays["soap"].shape
        if len(shape) != 2 or shape[0] != len(atoms_list) or shape[1] == 0:
            return f"soap has shape {shape}, expected ({len(atoms_list)}, n_features > 0)"
        return None

    stored, _ = cache.cached_arrays(path, compute, use_cache=use_cache, validate=validate,
                                    what=f"SOAP vectors of {len(atoms_list)} structures")
    return stored["soap"]


def direct_pca(descriptors: np.ndarray, *, n_components: int | None = None,
               weighted: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Scale and project as maml's DIRECT sampler does: StandardScaler, then PCA.

    Keeps the components with eigenvalue > 1 (Kaiser's rule, maml's choice) unless
    ``n_components`` is given, and multiplies each by its explained variance ratio
    (maml's ``weighting_PCs=True``). Returns the features ``(n, m)`` and the explained
    variance ratios of all components.
    """
    scaled = StandardScaler().fit_transform(descriptors)
    pca = PCA(svd_solver="full").fit(scaled)
    m = int((pca.explained_variance_ > 1).sum()) if n_components is None else n_components
    if not 1 <= m <= len(pca.explained_variance_ratio_):
        raise ValueError(f"Cannot keep {m} principal components of {len(pca.explained_variance_ratio_)}")
    features = pca.transform(scaled)[:, :m]
    if weighted:
        features = features * pca.explained_variance_ratio_[:m]
    return features, pca.explained_variance_ratio_


def birch_clusters(features: np.ndarray, n_clusters: int = 5, *, threshold: float = 0.001) -> np.ndarray:
    """scikit-learn BIRCH into ``n_clusters``, lowering the threshold until there are enough subclusters (maml)."""
    if len(features) < n_clusters:
        raise ValueError(f"Cannot make {n_clusters} clusters of {len(features)} structures")
    while True:
        model = Birch(n_clusters=n_clusters, threshold=threshold).fit(features)
        found = len(model.subcluster_labels_)
        if found >= n_clusters:
            return model.predict(features)
        threshold = threshold / n_clusters * max(found, 1)


def soap_birch_clusters(descriptors: np.ndarray, n_clusters: int = 5, *, n_components: int | None = None,
                        threshold: float = 0.001) -> tuple[np.ndarray, dict]:
    """The paper's unsupervised partition (authors' ``Code/Clustering.ipynb``, maml DIRECT).

    ``descriptors``: averaged SOAP vectors ``(n_structures, n_features)`` from
    :func:`soap_descriptors`. Steps: StandardScaler, PCA (Kaiser's rule, weighted by
    explained variance, or ``n_components``), BIRCH into ``n_clusters`` (threshold
    0.001 as the authors). Returns the labels, ordered so cluster 0 is the largest,
    and a report (number of PCs kept, the variance they explain, cluster sizes).
    """
    features, ratios = direct_pca(descriptors, n_components=n_components)
    labels = birch_clusters(features, n_clusters, threshold=threshold)
    sizes = np.bincount(labels, minlength=n_clusters)
    relabel = np.empty_like(sizes)
    relabel[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes))
    labels = relabel[labels]
    m = features.shape[1]
    report = {"n_components": m, "explained_variance": float(ratios[:m].sum()),
              "sizes": np.bincount(labels, minlength=n_clusters).tolist()}
    return labels, report


def cluster_sizes_over_orders(descriptors: np.ndarray, n_clusters: int = 5, *, n_orders: int = 10, seed: int = 0,
                              **options) -> pd.DataFrame:
    """BIRCH is order-dependent: cluster sizes of :func:`soap_birch_clusters` over shuffled row orders.

    Row order 0 is the given order, the others are permutations drawn with ``seed``.
    Returns a tidy table, one row per order and size rank (``order``, ``rank``,
    ``size``); summarise with ``.groupby("rank")["size"].describe()``.
    """


    rng = np.random.default_rng(seed)
    rows = []
    for order in range(n_orders):
        perm = np.arange(len(descriptors)) if order == 0 else rng.permutation(len(descriptors))
        labels, _ = soap_birch_clusters(descriptors[perm], n_clusters, **options)
        for rank, size in enumerate(np.bincount(labels, minlength=n_clusters)):
            rows.append({"order": order, "rank": rank, "size": int(size)})
    return pd.DataFrame(rows)
