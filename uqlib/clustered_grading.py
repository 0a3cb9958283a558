"""The clustered grade on PRM2020 and a cracked polycrystal (Fig. 8), as tables.

PRM2020 is relabelled with UNEP-v1 and partitioned (its structure-group blocks, or
k-means / BIRCH on the ACE descriptor); a global :class:`~uqlib.criteria.DOptimality`
and a :class:`~uqlib.criteria.ClusteredDOptimality` (one active set per cluster,
gamma = minimum over clusters) are fitted on it and grade every atom of a relaxed,
cracked W polycrystal labelled with UNEP-v1. The per-atom table carries both grades,
the global model's force error, the coordination and whether the atom is on a surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from ase import Atoms

from uqlib import claims, data, structures
from uqlib.criteria import ClusteredDOptimality, DOptimality, FeaturizedSet, featurize


@dataclass
class PrmCriteria:
    """The PRM2020 training set and the two criteria fitted on it."""

    train: FeaturizedSet
    global_: DOptimality
    clustered: ClusteredDOptimality


def fit_on_prm2020(preset: str, *, per_group: int | None, partition: str = "blocks", seed: int = 0,
                   outliers: str = "per-cluster", n_clusters: int | None = None, kappa: float = 0.01,
                   alpha: float = 1e-8) -> PrmCriteria:
    """UNEP-v1-labelled PRM2020 (``per_group`` structures per block), a global and a clustered criterion.

    ``partition``: ``"blocks"`` (the contiguous structure-group blocks), ``"kmeans"`` or ``"birch"``.
    """
    full = data.load_subsets("PRM2020")
    full["group"] = data.prm2020_blocks(full)
    table = structures.label_with_nep(data.subsample(full, per_group, seed, by="group").reset_index(drop=True))
    train = featurize(table, preset)
    clusters = "column:group" if partition == "blocks" else partition
    return PrmCriteria(train, DOptimality(kappa=kappa, alpha=alpha).fit(train),
                       ClusteredDOptimality(clusters, n_clusters=n_clusters, outliers=outliers, seed=seed,
                                            max_clusters=15, kappa=kappa, alpha=alpha).fit(train))


def grade_polycrystal(criteria: PrmCriteria, crystal: Atoms, *, surface_coordination: int = 12
                      ) -> pd.DataFrame:
    """Per atom of ``crystal`` (labelled with UNEP-v1): both grades, the global model's force error (eV/Å),
    the cluster that gave the minimum, the coordination (neighbours within 3.3 Å) and ``surface``."""
    table = structures.label_with_nep(structures.structure_table([crystal], "poly", np.array([0.0]),
                                                                 [np.zeros((len(crystal), 3))]))
    poly = featurize(table, criteria.train.dm.preset)
    global_scores, clustered_scores = criteria.global_.score(poly), criteria.clustered.score(poly)
    coordination = structures.coordination(crystal)
    return pd.DataFrame({"gamma_global": global_scores.atoms["gamma"],
                         "gamma_clustered": clustered_scores.atoms["gamma"],
                         "cluster": clustered_scores.atoms["cluster"], "force_error": global_scores.atoms["err_F"],
                         "coordination": coordination, "surface": coordination < surface_coordination})


def grade_summary(atoms: pd.DataFrame) -> pd.DataFrame:
    """Shares (%) of all and of surface atoms flagged (gamma > 1) by each grade, and the newly flagged atoms."""
    only = (atoms["gamma_clustered"] > 1) & (atoms["gamma_global"] <= 1)
    rows = {grade: {"atoms flagged (%)": 100 * np.mean(atoms[f"gamma_{grade}"] > 1),
                    "surface atoms flagged (%)": 100 * np.mean(atoms.loc[atoms["surface"], f"gamma_{grade}"] > 1)}
            for grade in ("global", "clustered")}
    rows["only clustered"] = {"atoms flagged (%)": 100 * only.mean(),
                              "mean force error (meV/Å)": 1e3 * atoms.loc[only, "force_error"].mean(),
                              "mean force error of the rest (meV/Å)": 1e3 * atoms.loc[~only, "force_error"].mean()}
    return pd.DataFrame(rows)


def polycrystal_claims(atoms: pd.DataFrame, high_error: float) -> list[claims.ClaimRecord]:
    """P31-P33 and P36 on the graded polycrystal; ``high_error`` (eV/Å) marks a high force error."""
    surface, high = atoms["surface"].to_numpy(), atoms["force_error"].to_numpy() > high_error
    g, c = atoms["gamma_global"].to_numpy(), atoms["gamma_clustered"].to_numpy()
    only, error = (c > 1) & (g <= 1), atoms["force_error"].to_numpy()
    records = [claims.p31_surface_atoms(float(np.mean(g[surface] > 1)), float(np.mean(c[surface] > 1))),
               claims.p32_global_misses(g, error, high_error),
               claims.p33_new_atoms_error(error[only], error[~only])]
    if high.any():
        records.append(claims.p36_clustered_improves(float(np.mean(g[high] > 1)), float(np.mean(c[high] > 1))))
    else:
        records.append(claims.not_testable("P36", f"no polycrystal atom has a force error above {high_error:g} eV/Å"))
    return records
