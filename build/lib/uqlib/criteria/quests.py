"""QUESTS (Schwalbe-Koda et al. 2025): a model-free novelty score, the differential entropy dH.

dH of an atom's environment against the training environments (nats); dH > 0 means
the environment adds information the training set lacks, so the fixed threshold is 0.
A configuration's dH is the largest of its atoms'. The errors beside it are those of a
single linear ACE model of the training structures, so it can be judged like the others.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from uqlib import ace
from uqlib.criteria.base import Columns, Criterion, FeaturizedSet, Signal
from uqlib.progress import progress_bar
from uqlib.tables import per_structure_max


def quests_descriptors(structures, *, k: int = 32, cutoff: float = 5.0, progress: bool = False) -> np.ndarray:
    """QUESTS descriptors of every atom of ``structures`` (ase.Atoms), atoms in order, ``(n_atom, 2k - 1)``."""
    from quests.descriptor import get_descriptors

    structures = list(structures)
    if not structures:
        raise ValueError("No structures to describe")
    blocks = [get_descriptors([atoms], k=k, cutoff=cutoff)
              for atoms in progress_bar(structures, desc="QUESTS descriptors", unit="structure", disable=not progress)]
    return np.concatenate(blocks)


def quests_delta_entropy(test: np.ndarray, train: np.ndarray, *, bandwidth: float = 0.015) -> np.ndarray:
    """dH of each test environment against the training environments (nats); larger is more novel."""
    from quests.entropy import delta_entropy

    return np.asarray(delta_entropy(test, train, h=bandwidth))


class QuestsEntropy(Criterion):
    """QUESTS dH against the training environments. Fitted: ``train_descriptors_``, ``model_``."""

    name = "QUESTS"
    signals = (Signal("dH_cfg", "config", "dH", "err_F", threshold=0.0, unit="nats"),
               Signal("dH_atom", "atom", "dH", "err_F", threshold=0.0, unit="nats"))

    def __init__(self, *, bandwidth: float = 0.015, kappa: float = ace.DEFAULT_KAPPA,
                 alpha: float = ace.DEFAULT_ALPHA, progress: bool = False) -> None:
        self.bandwidth = bandwidth
        self.kappa = kappa
        self.alpha = alpha
        self.progress = progress

    def descriptors(self, data: FeaturizedSet) -> np.ndarray:
        # computed once per set and kept with it: a race scores the same structures many times
        if "quests" not in data.per_atom_arrays:
            data.per_atom_arrays["quests"] = quests_descriptors(data.table["atoms"], progress=self.progress)
        return data.per_atom_arrays["quests"]

    def fit(self, train: FeaturizedSet) -> Self:
        self.train_descriptors_ = self.descriptors(train)
        self.model_ = ace.LinearACE(train.dm.preset, kappa=self.kappa, alpha=self.alpha).fit(train.dm)
        return self

    def uncertainties(self, data: FeaturizedSet) -> tuple[Columns, Columns]:
        dh = quests_delta_entropy(self.descriptors(data), self.train_descriptors_, bandwidth=self.bandwidth)
        return {"dH": per_structure_max(dh, data.dm.n_atoms)}, {"dH": dh}

    def predictions(self, data: FeaturizedSet) -> tuple[np.ndarray, np.ndarray]:
        return self.model_.predict_energy_per_atom(data.dm), self.model_.predict_forces(data.dm)
