"""Clusters of training structures and the clustered active set (the paper's fix).

Structures are described by the mean of their atoms' B projections (standardised),
partitioned with scikit-learn (k-means or BIRCH, or given labels), and each cluster
gets its own MaxVol active set; an atom's clustered grade is the minimum over the
clusters of its grade against each cluster's set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import Birch, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from uqlib.ace import DesignMatrix
from uqlib.dopt import ActiveSet, ActiveSetError, build_active_set, spans_basis
from uqlib.progress import progress_bar


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


# -- the clustered active set (the paper's clustering-enhanced local D-optimality) -------------------

@dataclass
class ClusteredActiveSet:
    """One MaxVol active set per cluster; an atom's grade is the minimum over clusters."""

    clusters: list[str]  # cluster names, in the order of ``active_sets``
    active_sets: list[ActiveSet]
    merged: dict[str, str] = field(default_factory=dict)  # cluster -> the cluster it was merged into, and why

    def grade_per_cluster(self, projections: np.ndarray) -> np.ndarray:
        """gamma of each atom against each cluster's active set, shape ``(n_atom, n_clusters)``.

        One stacked product ``B [A_1^-1 | A_2^-1 | ...]`` per block of atoms: the
        projections are read once for all clusters.
        """
        stacked = np.hstack([a.inverse for a in self.active_sets])
        p, k = projections.shape[1], len(self.active_sets)
        if stacked.shape[0] != p:
            raise ActiveSetError(f"Projections have {p} functions, the active sets {stacked.shape[0]}")
        block = max(1, int(2e7 // (k * p)))  # about 160 MB of products at a time
        return np.concatenate([np.abs((projections[s:s + block] @ stacked).reshape(-1, k, p)).max(axis=2)
                               for s in range(0, len(projections), block)])

    def grade(self, projections: np.ndarray) -> np.ndarray:
        """The clustered gamma_atom: the minimum over clusters of each cluster's gamma."""
        return self.grade_per_cluster(projections).min(axis=1)

    def save(self, folder: str | Path) -> Path:
        """A folder of pacemaker ``.asi`` files, one per cluster, and ``index.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, active in zip(self.clusters, self.active_sets, strict=True):
            files[name] = active.save(folder / f"cluster-{name}.asi").name
        (folder / "index.json").write_text(json.dumps({"rule": "gamma = min over clusters", "files": files,
                                                       "merged": self.merged}, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ClusteredActiveSet:
        folder = Path(folder)
        index = json.loads((folder / "index.json").read_text())
        names = list(index["files"])
        return cls(names, [ActiveSet.load(folder / index["files"][n]) for n in names], index.get("merged", {}))


def fit_clustered_active_set(projections: np.ndarray, atom_clusters: np.ndarray, *,
                             keep: np.ndarray | None = None) -> ClusteredActiveSet:
    """One active set per cluster of the training atoms (``atom_clusters``: a label per atom).

    ``keep`` marks the atoms offered to MaxVol (force outliers already removed). A
    cluster whose kept atoms cannot span all basis functions (fewer atoms than functions,
    or too few distinct environments, as in a high-symmetry crystal) cannot have its own
    active set: it is merged into the cluster whose mean projection is nearest, and the
    merge is recorded in ``merged``.
    """
    atom_clusters = np.asarray(atom_clusters).astype(str)
    keep = np.ones(len(projections), bool) if keep is None else np.asarray(keep, bool)
    p = projections.shape[1]
    names = sorted(str(n) for n in set(atom_clusters))
    merged: dict[str, str] = {}
    while True:
        sizes = {n: int((keep & (atom_clusters == n)).sum()) for n in names}
        small = [n for n in names if not spans_basis(projections[keep & (atom_clusters == n)], p)]
        if not small or len(names) == 1:
            break
        victim = min(small, key=lambda n: sizes[n])
        centre = {n: projections[atom_clusters == n].mean(axis=0) for n in names}
        target = min((n for n in names if n != victim), key=lambda n: np.linalg.norm(centre[n] - centre[victim]))
        rank = np.linalg.matrix_rank(projections[keep & (atom_clusters == victim)]) if sizes[victim] else 0
        atom_clusters = np.where(atom_clusters == victim, target, atom_clusters)
        merged[str(victim)] = f"{target} ({sizes[victim]} atoms of rank {rank} < {p} functions)"
        names.remove(victim)
    sets = [build_active_set(projections, keep=keep & (atom_clusters == n))
            for n in progress_bar(names, desc="MaxVol per cluster", unit="cluster")]
    return ClusteredActiveSet(names, sets, merged)


# -- the unsupervised route of the authors' Code/Clustering.ipynb: averaged SOAP, PCA, BIRCH -------

SOAP_SETTINGS = {"r_cut": 5.0, "n_max": 10, "l_max": 8}  # the authors' Clustering.ipynb
SOAP_VERSION = 1


def soap_descriptors(atoms_list: list, *, r_cut: float = SOAP_SETTINGS["r_cut"], n_max: int = SOAP_SETTINGS["n_max"],
                     l_max: int = SOAP_SETTINGS["l_max"], n_jobs: int = 1, use_cache: bool = True,
                     progress: bool = True) -> np.ndarray:
    """Structure-averaged SOAP vectors (dscribe, ``average="inner"``), shape ``(n_structures, n_features)``.

    The settings default to the authors' (r_cut 5 Å, n_max 10, l_max 8, W only). A
    structure whose cell is periodic in all three directions is treated as periodic,
    any other as a finite cluster. The matrix is cached on disk (uqlib.cache, folder
    ``soap``) under a key of the geometry and the settings, checked (shape, all finite) when
    written and cheaply when read, and returned read-only (memory-mapped) from the cache.
    """

    from dscribe.descriptors import SOAP

    from uqlib import cache
    from uqlib.config import ELEMENT
    from uqlib.progress import progress_bar

    if not len(atoms_list):
        raise ValueError("soap_descriptors needs at least one structure")
    bad = [i for i, a in enumerate(atoms_list) if set(a.get_chemical_symbols()) != {ELEMENT}]
    if bad:
        raise ValueError(f"Structures {bad[:5]} contain elements other than {ELEMENT}; SOAP here is set up for W only")
    key = cache.cache_key(geometry=cache.geometry_fingerprint(list(atoms_list)), r_cut=r_cut,
                          n_max=n_max, l_max=l_max, version=SOAP_VERSION)
    path = cache.cache_root() / "soap" / f"soap-{key}"

    def compute() -> dict[str, np.ndarray]:
        settings = dict(species=[ELEMENT], r_cut=r_cut, n_max=n_max, l_max=l_max, average="inner", sparse=False)
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
