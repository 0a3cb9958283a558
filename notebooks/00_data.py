# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The data: five W subsets and the PRM2020 set
#
# ```{admonition} Deviations from the paper on this page
# :class: note deviations-box
# - {ref}`dev-subset-f`
# - {ref}`dev-subset-letters`
# - {ref}`dev-energy-reference`
# - {ref}`dev-descriptor-map`
#
# All deviations, and why, are on [Deviations from the paper](../deviations).
# ```
#
# ## Overview
# The paper {cite}`shuang2025uq` trains and tests ACE models {cite}`drautz2019ace` of BCC
# tungsten on DFT data that the authors published with it {cite}`shuang2025defects`, plus
# the PRM2020 set of the W GAP {cite}`byggmastar2020gap`. This notebook resolves every
# input file from the project's manifest, checks it, and describes what is in it:
#
# 1. the files, where they come from and their checksums;
# 2. one table of the subsets (configurations, atoms, energy range, largest force);
# 3. a map of all structures in the first two principal components of an ACE descriptor
#    ({numref}`fig-descriptor-map`), the counterpart of the paper's Figure 1, and how far
#    each subset lies from the training set in the full descriptor space.
#
# ```{glue:figure} fig-descriptor-map
# :name: fig-descriptor-map
#
# The structures of every subset in the first two principal components of the
# standardised mean ACE B projections (our stand-in for the MACE descriptor), coloured by
# subset; the counterpart of Fig. 1 of {cite:t}`shuang2025uq`. Subsets A+B are the
# training set, C and E the test set, D the nanospheres of the heterogeneous split.
# ```
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | Atomic Cluster Expansion {cite}`drautz2019ace` | helpful |
# | [Principal component analysis (scikit-learn)](https://scikit-learn.org/stable/modules/decomposition.html#pca) | helpful |

# %% tags=["parameters", "remove-cell"]
from typing import Optional  # papermill parses Optional[int], not int | None

subsets: str = "A+B+C+D+E+PRM2020"  # subsets to describe and map
descriptor_preset: str = "Func-33"  # ACE basis of the descriptor (see uqlib.ace.PRESETS)
max_per_subset: Optional[int] = 30  # configurations per subset on the map (None: all)
seed: int = 0  # seed of the subsample

# %% tags=["hide-input"]
from uqlib import ace, clustering, metrics, tables
from uqlib.paper import book, data, plots

out = book.setup(globals(), "00_data")

# %% tags=["hide-input"]
# the values this page was computed with (the parameters cell itself is not shown)
book.run_configuration(globals(), "00_data")

# %% [markdown]
# ## The input files
# Every file is listed in `data/manifest.toml` with its upstream URL at a pinned commit and
# its checksum. `uqlib.paper.data.resolve` finds it in the local cache, the mirror named by
# `UQLIB_DATA_MIRROR` or upstream, and refuses a file whose checksum differs. A file that
# cannot be found anywhere (subset F is published upstream but not in the local mirror)
# is listed as missing, and the notebooks say which test set they ran on.

# %% tags=["hide-input"]
book.table(data.manifest_table(), "The input files: where each comes from, its checksum and whether it resolved.")

# %% [markdown]
# ## The subsets
# Energies are total DFT energies per atom (eV/atom; no isolated-atom reference is
# subtracted, as in the upstream files), forces in eV/Å. Subsets A and B are the paper's
# training set, C, E (and F where available) its test set.

# %% tags=["hide-input"]
table = data.load_subsets(subsets)
summary = tables.subset_summary(table).rename(index=plots.SUBSET_LABELS)
book.table(summary.rename(columns={"e_min": "lowest energy", "e_max": "highest energy",
                                   "max_abs_force": "largest force norm", "atoms_min": "fewest atoms",
                                   "atoms_max": "most atoms"}),
           "Configurations, atoms (total, fewest and most per configuration), the range of the energy per atom "
           "and the largest force norm of each subset.",
           units={"lowest energy": "eV/atom", "highest energy": "eV/atom", "largest force norm": "eV/Å"},
           digits={"lowest energy": 3, "highest energy": 3, "largest force norm": 2})

# %% [markdown]
# ## A map of the structures
# Each configuration is described by the mean over its atoms of the ACE B functions of the
# descriptor basis, standardised per function. These means are the energy rows of the
# linear ACE design matrix (`uqlib.ace.design_matrix`), cached on disk. The paper's
# Figure 1 used a MACE descriptor, which is not available here; an ACE descriptor of the
# model family the paper studies is the natural stand-in. The map is
# {numref}`fig-descriptor-map` at the top of the page.

# %% tags=["hide-input"]
sample = tables.subsample(table, max_per_subset, seed)
descriptors = clustering.structure_descriptors(ace.design_matrix(sample, descriptor_preset))
coords, explained = clustering.principal_components(descriptors)
fig, axes = plots.new_figure(height=5.5)
plots.descriptor_map(axes[0, 0], coords, sample["subset"].to_numpy(), explained)
axes[0, 0].set_title(f"{len(sample)} structures, {descriptor_preset} descriptor")
book.figure(fig, "fig-descriptor-map")

# %% [markdown]
# What to look for in {numref}`fig-descriptor-map`: which subsets share a region of the map and which stand apart.
# Structures whose atoms see vacuum (nanospheres D, defect clusters E) have far fewer
# neighbours per atom than bulk cells, which moves their mean B projections a long way;
# the strained perfect crystals (A) and the AIMD cells (B) stay close to the perfect
# lattice. Two dimensions can hide separation, so the table below measures it in the
# full descriptor space: the distance from each subset's centroid to the centroid of the
# A+B training set, in units of the typical spread of A+B around its own centroid.

# %% tags=["hide-input"]
book.table(metrics.centroid_distances(descriptors, sample["subset"].to_numpy(),
                                      sample["subset"].isin(["A", "B"]).to_numpy()).to_frame("centroid distance to A+B"),
           "Distance from each subset's centroid to the A+B centroid in the full descriptor space.",
           units={"centroid distance to A+B": "A+B spread = 1"}, digits=2)

# %% [markdown]
# ## Summary
# - All input files that resolve match the manifest's checksums; the table says which
#   could not be found.
# - The subset table gives the size of every subset; A+B (training) and C+E(+F) (test)
#   are the split of the ensemble and D-optimality notebooks, A and D the heterogeneous one.
# - The descriptor map and the centroid distances show how far each subset lies from the
#   A+B training set: training on one region and testing on another is what makes a
#   test structure out of distribution.
#
# ### What's next
# *Ensemble accuracy* fits linear ACE ensembles on A+B and asks whether their spread
# tracks their error on the test set.
