"""uqlib: uncertainty quantification for linear ACE interatomic potentials.

Compendium library for Shuang, Wei, Liu, Gao & Dey, "Model Accuracy and Data
Heterogeneity Shape Uncertainty Quantification in Machine Learning Interatomic
Potentials" (arXiv:2508.03405). One module per concern: ``data``, ``ace``,
``cache``, ``plots``, ``book``.
"""

__version__ = "0.1.0"
