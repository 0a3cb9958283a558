"""uqlib: uncertainty quantification for linear ACE interatomic potentials.

Compendium library for Shuang, Wei, Liu, Gao & Dey, "Model Accuracy and Data
Heterogeneity Shape Uncertainty Quantification in Machine Learning Interatomic
Potentials" (arXiv:2508.03405). One module per concern, data flowing one way:

``data`` (manifest, files, structure tables) -> ``ace`` (presets, design matrices,
ridge fits) -> ``ensemble`` (committees, eqs 1-6) and ``dopt`` (projections, MaxVol,
gamma) -> ``clustering`` (clusters, clustered active sets) -> ``metrics`` (eq 7, rho,
rates, claims) and ``scoring`` (detection, calibration, QUESTS) -> ``active_learning``;
``structures`` builds and labels new structures; ``plots`` draws; ``book`` runs the
notebooks; ``cache`` and ``progress`` serve them all.
"""

__version__ = "0.1.0"
