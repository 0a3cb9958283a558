"""Per-structure descriptors and their low-dimensional maps (clustering builds on these)."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from uqlib.ace import DesignMatrix


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
