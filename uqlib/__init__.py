"""uqlib: uncertainty quantification for linear ACE interatomic potentials.

Two layers. The **core** (the modules below) is what a person fitting potentials imports
or runs on their own data; :mod:`uqlib.paper` is the compendium of Shuang, Wei, Liu, Gao &
Dey, "Model Accuracy and Data Heterogeneity Shape Uncertainty Quantification in Machine
Learning Interatomic Potentials" (arXiv:2508.03405), built on top. The core never imports
the paper (``tests/test_layers.py`` checks). Data flow down the table, never back up.

The user API is each core module's ``__all__``; names outside it are internal.

==========================  ======================================================================
core module                 concern
==========================  ======================================================================
``io``                      read and check structures: extxyz, LAMMPS dumps, pacemaker pickles,
                            anything ase reads; structure tables
``tables``                  atom offsets, per-atom <-> per-structure maps, subsamples, splits
``cache``                   content-addressed on-disk caches of computed arrays
``ace``                     nested basis presets, ONE featurization pass (energy rows, force rows,
                            per-atom B projections), column selections, weighted ridge, export
``ensemble``                member constructions and their spreads (eqs 1-3)
``dopt``                    B projections of any potential, force-outlier filter, MaxVol, gamma,
                            ``.asi`` files
``clustering``              partitions of training structures (k-means, BIRCH on SOAP, labels) and
                            the clustered active set (minimum gamma over clusters)
``criteria``                ONE interface for every uncertainty criterion: ``fit(train)`` ->
                            ``score(data)`` -> per-configuration and per-atom tables
``evaluation``              a criterion judged on a training and a test set: eq 7 thresholds,
                            Spearman rho, selection rates -> tidy tables
``metrics``                 arrays -> numbers (eq 7, rho, rates, confusion, ROC/AP, calibration);
                            imports nothing from uqlib
``grading``                 frames -> per-atom gamma, bands, selection (serial and Dask call the
                            same function); the ASE calculator
``distributed``, ``scale``  Dask grading of long trajectories and its scaling plan
``neighbours``              neighbour counts (matscipy)
``cli``                     the ``uqlib`` command: ``fit``, ``activeset``, ``grade``, ``select``
``config``                  every ``UQLIB_*`` setting and shared default
``exceptions``              :class:`~uqlib.exceptions.UqlibError` and its subclasses
``progress``                progress bars and the array log
==========================  ======================================================================
"""

__version__ = "0.1.0"
