"""Uncertainty criteria behind one interface: ``fit(train)`` -> ``score(data)`` -> per-config and per-atom tables.

=========================  ==========================================  ==============================
criterion                  signals                                     threshold
=========================  ==========================================  ==============================
:class:`EnsembleCriterion`   CBE (eq 1), CBF (eq 3), ABF (eq 2)          eq 7 on training errors
:class:`DOptimality`         gamma_cfg, gamma_atom (one active set)      gamma > 1
:class:`ClusteredDOptimality`  min over per-cluster active sets          gamma > 1
:class:`QuestsEntropy`       dH of the environment (model-free)          dH > 0
=========================  ==========================================  ==============================

See :mod:`uqlib.criteria.base` for the interface and :mod:`uqlib.paper.studies` for judging
a criterion on a training and a test set.
"""

from uqlib.criteria.base import Criterion, FeaturizedSet, Scores, Signal, featurize
from uqlib.criteria.committee import EnsembleCriterion
from uqlib.criteria.doptimality import OUTLIER_POLICIES, ClusteredDOptimality, DOptimality
from uqlib.criteria.quests import QuestsEntropy, quests_delta_entropy, quests_descriptors

__all__ = ["OUTLIER_POLICIES", "ClusteredDOptimality", "Criterion", "DOptimality", "EnsembleCriterion",
           "FeaturizedSet", "QuestsEntropy", "Scores", "Signal", "featurize", "quests_delta_entropy",
           "quests_descriptors"]
