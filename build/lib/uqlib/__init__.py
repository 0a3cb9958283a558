"""uqlib: uncertainty quantification for linear ACE interatomic potentials.

Compendium library for Shuang, Wei, Liu, Gao & Dey, "Model Accuracy and Data
Heterogeneity Shape Uncertainty Quantification in Machine Learning Interatomic
Potentials" (arXiv:2508.03405). One module per concern; data flow one way:

==========================  ======================================================================
module                      concern
==========================  ======================================================================
``data``                    manifest, resolution (cache -> mirror -> download), checksums,
                            structure tables (also from any list of ase.Atoms or file ase reads),
                            validation, splits, atom offsets
``cache``                   atomic on-disk caches and their keys
``ace``                     the nested basis ladder, one featurization pass (energy rows, force
                            rows, per-atom B projections), column selections, weighted ridge
``ensemble``                committees of linear models and their spreads (eqs 1-3)
``dopt``                    B projections of any potential, outlier filter, MaxVol, gamma, ``.asi``
``clustering``              partitions of structures (ACE descriptor k-means/BIRCH, SOAP+BIRCH)
                            and the clustered active set
``criteria``                ONE interface for every uncertainty criterion: ``fit(train)`` ->
                            ``score(data)`` -> per-configuration and per-atom tables (ensemble,
                            D-optimality, clustered D-optimality, QUESTS)
``metrics``                 arrays -> numbers (eq 7, rho, rates, confusion, ROC/AP, calibration);
                            imports nothing from uqlib
``evaluate``                a criterion judged on a training and a test set -> tidy tables
``claims``                  the paper's claims P1-P36: rules fixed in advance, records, ledger
``scoring``                 beyond the paper: every criterion as a detector, error-bar calibration
``active_learning``         beyond the paper: the active-learning race
``maxvol2d``                the paper's 2D MaxVol example and the minimum rule (Figs 7c-d, 8a-b)
``structures``, ``fracture``  polycrystals, the LAMMPS fracture run, atom classes, UNEP-v1 labels
``clustered_grading``       Fig. 8: PRM2020 criteria (15 groups, other partitions) grading a LAMMPS fracture run
``grading``, ``cli``        the ``uqlib`` command: species-keyed grading of any potential, clustered
                            sets, selection, an ASE calculator
``plots``                   figures in one style; they draw and compute nothing
``book``                    the notebook runner, parameter checks, rendering
``performance``             step timings of cold and warm builds, memory sampling, the goals
                            and what bounds a missed one (the performance page)
``progress``                progress bars (off in the book)
==========================  ======================================================================
"""

__version__ = "0.1.0"
