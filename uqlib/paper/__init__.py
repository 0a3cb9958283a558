"""The compendium of arXiv:2508.03405 built on the uqlib core.

Nothing in the core (``uqlib.*`` outside this package) imports from here; the
notebooks import both. One module per concern:

==========================  ======================================================================
module                      concern
==========================  ======================================================================
``data``                    the paper's subsets A-F and PRM2020: manifest, resolution (cache ->
                            mirror -> download), checksums, splits, PRM2020 blocks
``values``                  the paper's numbers, each with its figure and unit (one source)
``claims``                  the paper's claims P1-P36 (a package): ``records``, ``rules`` fixed in
                            advance, ``robustness`` (seed means, per-construction verdicts),
                            ``findings`` (the race), ``ledger``
``protocol``                a verdict over member constructions x seeds x test compositions
``studies``                 criteria judged the paper's way: ladders, K sweeps, A+D tables
``findings``                each page's claim blocks, glued from the records
``scoring``                 beyond the paper: every criterion as a detector, error-bar calibration
``active_learning``         beyond the paper: the active-learning race
``maxvol2d``                the paper's 2D MaxVol example and the minimum rule (Figs 7c-d, 8a-b)
``structures``, ``fracture``  polycrystals, the LAMMPS fracture run, atom classes, UNEP-v1 labels
``prm2020``                 PRM2020's groups and their labels
``clustered_grading``       Fig. 8: PRM2020 criteria grading a LAMMPS fracture run
``plots``                   figures in one style; they draw and compute nothing
``book``                    the notebook runner, parameter checks, rendering
``performance``             step timings of cold and warm builds, memory sampling, the goals
==========================  ======================================================================
"""
