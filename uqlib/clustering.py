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
from sklearn.cluster import Birch, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from uqlib.ace import DesignMatrix
from uqlib.dopt import SINGULAR_CONDITION, ActiveSet, ActiveSetError, build_active_set


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


def _spans(rows: np.ndarray, n_functions: int) -> bool:
    """Whether ``rows`` have full column rank, by the condition test of :func:`uqlib.dopt.build_active_set`."""
    if len(rows) < n_functions:
        return False
    singular_values = np.linalg.svd(rows, compute_uv=False)
    return bool(singular_values[-1] > singular_values[0] / SINGULAR_CONDITION)


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
        small = [n for n in names if not _spans(projections[keep & (atom_clusters == n)], p)]
        if not small or len(names) == 1:
            break
        victim = min(small, key=lambda n: sizes[n])
        centre = {n: projections[atom_clusters == n].mean(axis=0) for n in names}
        target = min((n for n in names if n != victim), key=lambda n: np.linalg.norm(centre[n] - centre[victim]))
        rank = np.linalg.matrix_rank(projections[keep & (atom_clusters == victim)]) if sizes[victim] else 0
        atom_clusters = np.where(atom_clusters == victim, target, atom_clusters)
        merged[str(victim)] = f"{target} ({sizes[victim]} atoms of rank {rank} < {p} functions)"
        names.remove(victim)
    sets = [build_active_set(projections, keep=keep & (atom_clusters == n)) for n in names]
    return ClusteredActiveSet(names, sets, merged)
