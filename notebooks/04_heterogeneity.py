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
# # Heterogeneous training data: elastic cells plus nanospheres (Figs 6, 7, 8a-b)
#
# ```{admonition} Deviations from the paper on this page
# :class: note deviations-box
# - {ref}`dev-subset-f`
# - {ref}`dev-linear-fits`
# - {ref}`dev-ad-posterior`
#
# All deviations, and why, are on [Deviations from the paper](../deviations).
# ```
#
# ## Overview
# What happens to uncertainty quantification when the training set is made of two very
# different groups? The paper {cite}`shuang2025uq` trains on {glue:md}`paper-ad-train-per-group`
# elastic cells (A) and as many nanospheres (D) and tests on B+C+E, every structure of which lies outside that training
# domain. {numref}`fig-heterogeneity` shows the ensembles on that split: their force
# errors against their uncertainty, and the two modes of the per-atom force errors.
#
# ```{glue:figure} fig-heterogeneity
# :name: fig-heterogeneity
#
# Ensembles trained on A+D and tested on B+C+E; reproduces Fig. 6a-c of
# {cite:t}`shuang2025uq`. The members are those of `ensemble_construction` (by default
# pacemaker's ensemble mode, as on the A+B split: every member fits the same 60 training
# structures from its own random start, as the paper's do). (a) Largest atomic force error of each configuration against the configuration's
# force uncertainty $U_{F,\mathrm{cfg}}$ ({eq}`eq-u-f-cfg`, CBF) and (b) each atom's force
# error against its uncertainty ({eq}`eq-u-f-atom`, ABF), one column per ensemble size K;
# dotted lines: the threshold {eq}`eq-threshold` on the training errors (right of the
# vertical line: flagged). The titles give the share of the test set flagged; the paper
# flags {glue:md}`paper-ad-ensemble-cfg-rate` of configurations and
# {glue:md}`paper-ad-ensemble-atom-rate` of atoms (the table after the figure shows both). (c) The
# per-atom force errors of the ensemble-mean model (smallest K), by subset, as % of each
# set's atoms.
# ```
#
# This notebook
#
# 1. fits ensembles (K = 6 and 30) and a D-optimality active set on that split;
# 2. Figure 6 ({numref}`fig-heterogeneity`): the ensembles' force errors against
#    uncertainty, and the two modes of the per-atom force errors;
# 3. Figure 7a-b ({numref}`fig-heterogeneity-dopt`): D-optimality on the same split, and
#    its gamma range against the homogeneous A+B training of the MaxVol notebook;
# 4. Figures 7c-d and 8a-b ({numref}`fig-heterogeneity-toy`): a 2D example of why one
#    active set for a union of groups misjudges novelty, with a scan of the plane under
#    both rules.
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | [Ensemble accuracy](01_ensemble_accuracy) | necessary |
# | [MaxVol](03_maxvol) | necessary |

# %% tags=["parameters", "remove-cell"]
from typing import Optional  # papermill parses Optional[int], not int | None

n_per_group: int = 30  # training configurations from A and from D each (paper: 30 + 30)
test_subsets: str = "B+C+E"  # test set, all out of the A+D domain
preset: str = "Func-72"  # basis preset (the full profile uses the largest)
ensemble_sizes: list = [6, 30]  # ensemble sizes K, nested sub-ensembles of one pool
ensemble_construction: str = "pacemaker"  # pool of the figures (the paper's, as on the A+B split); the table after
# Figure 6 shows every construction: "pacemaker", "bootstrap", "subsample", "posterior"
compare_homogeneous: bool = True  # also grade C+E against an A+B active set (gamma range)
max_test_per_subset: Optional[int] = 20  # test configurations per subset (None: all)
kappa: float = 0.01  # force weight of the loss
alpha: float = 1e-8  # ridge strength of the D-optimality fits (and of the ensembles when alpha_by_cv is False)
alpha_by_cv: bool = False  # choose the ensembles' ridge strength by K-fold CV (default: alpha, as on A+B)
cv_alphas: list = [1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]  # the candidates
cv_folds: int = 5  # folds of that cross-validation
seed: int = 0  # seed of the training choice, the test subsample and the ensembles
# The 2D example (Figs 7c-d, 8a-b): three groups of 2D vectors around these centres
group_centres: list = [[3.0, 0.6], [1.6, 2.4], [-1.2, 2.2]]
group_spread: float = 0.25  # standard deviation of each group around its centre
points_per_group: int = 25
grid_points: int = 301  # per axis of the regional scan
grid_half_width: float = 7.0  # the scan covers [-w, w] x [-w, w]
n_toy_geometries: int = 20  # seeded random 2D geometries over which claim P29 is judged (fewer than 20: not judged)

# %% tags=["hide-input"]
from IPython.display import display

from uqlib import tables
from uqlib.criteria import featurize
from uqlib.paper import book, claims, data, maxvol2d, plots, studies

out = book.setup(globals(), "04_heterogeneity")

# %% tags=["hide-input"]
# the values this page was computed with (the parameters cell itself is not shown)
from uqlib.paper import values  # noqa: E402
from uqlib.paper.findings import compact_table, glue_findings  # noqa: E402

book.glue_paper_values()  # the paper's numbers quoted in the text, from uqlib.paper.values
book.run_configuration(globals(), "04_heterogeneity")

# %% [markdown]
# ## The split
# `n_per_group` configurations each of A (2-atom strained cells) and D (113-atom spheres),
# chosen with the seed; the test set is B+C+E. One pool of `max(ensemble_sizes)` members
# is fitted per member construction, with the same ridge strength as on the A+B split; the
# figures use `ensemble_construction`. The smaller ensembles are the first K members of a pool, so the
# ensembles are nested as in the paper.

# %% tags=["hide-input"]
train = featurize(tables.subsample(data.load_subsets("A+D"), n_per_group, seed), preset)
test = featurize(tables.subsample(data.load_subsets(test_subsets), max_test_per_subset, seed), preset)
print(f"train: {train.table.groupby('subset').size().to_dict()} configurations, {train.n_atoms.sum()} atoms; "
      f"test {test_subsets}: {len(test.table)} configurations, {test.n_atoms.sum()} atoms; {preset}")
study = studies.ensemble_study(train, ensemble_sizes, seed, kappa, alpha, cv_alphas if alpha_by_cv else None, cv_folds,
                               construction=ensemble_construction)
by_construction = {name: study.evaluations(train, test, ensemble_sizes, name) for name in study.pools}
evaluations = by_construction[ensemble_construction]

# %% [markdown]
# ## The ensembles on A+D: which members to trust
# The paper's members all fit the same 60 structures, each from its own random start
# (pacemaker's ensemble mode), and so do the figures' members here; bootstrap members each
# see about two thirds of the structures, and on A+D that makes them different models
# ({ref}`dev-ad-posterior`). The stability table below (and the CV curve, when
# `alpha_by_cv` is set) are the measurements, and the table after Figure 6 gives every
# construction's flagged fractions.

# %% tags=["hide-input"]
print(f"the ensembles' ridge strength: alpha = {study.alpha:g} ({'chosen by CV' if alpha_by_cv else 'the parameter'})")
display(book.table(study.cv_curve, "Cross-validation over training structures: the loss and the errors of the "
                   "left-out structures at each ridge strength alpha.",
                   units={"cv_E_rmse": "meV/atom", "cv_F_rmse": "meV/Å"}, digits={"cv_E_rmse": 2, "cv_F_rmse": 1}),
        book.table(study.stability, "Each pool and ensemble size K: the single fit's, the members' and the ensemble "
                   "mean's training errors, and the members' fewest distinct structures and lowest rank.",
                   units={c: "meV/atom" if "E_rmse" in c else "meV/Å" for c in study.stability.columns if "rmse" in c},
                   digits={c: 1 for c in study.stability.columns if "rmse" in c}))

# %% [markdown]
# ## Figure 6: the ensembles
# {numref}`fig-heterogeneity` (in the Overview), drawn by the next cell: (a, b) largest
# atomic force error of each configuration against U_F,cfg, and each atom's force error
# against U_F,atom, for each ensemble size; the dotted lines are the thresholds ({eq}`eq-threshold` on
# the training errors): points right of the vertical line are flagged, points above the
# horizontal one have an error above the training fence. (c) Distribution of per-atom
# force errors of the ensemble-mean model (smallest K), by subset. The table after it sets
# the paper's flagged fractions (Fig. 6a-b, Func-945) beside ours.

# %% tags=["hide-input"]
fig, axes = plots.new_figure(ncols=len(evaluations) + 1, nrows=2, height=3.2)
for col, (name, ev) in enumerate(evaluations.items()):
    for row, signal in enumerate(("CBF", "ABF")):
        plots.error_vs_uncertainty(axes[row, col], ev.points(signal), signal)
        axes[row, col].axvline(1e3 * ev.summary.loc[signal, "threshold"], color="k", ls=":")
        axes[row, col].axhline(1e3 * ev.summary.loc[signal, "threshold"], color="k", ls=":")
        axes[row, col].set_title(f"({'ab'[row]}) {name}, {signal}:\n"
                                 f"{100 * ev.summary.loc[signal, 'selection_rate']:.2f} % flagged", fontsize=10)
plots.histograms(axes[0, -1], {k: 1e3 * v for k, v in studies.errors_by_subset(next(iter(evaluations.values()))).items()},
                 xlabel="atomic force error (meV/Å)")
axes[0, -1].set_title("(c) per-atom force errors", fontsize=10)
axes[1, -1].set_visible(False)
book.figure(fig, "fig-heterogeneity")

# %% tags=["hide-input"]
# The paper's values (Fig. 6a-b, from uqlib.paper.values) beside ours, on rows named without leading spaces
book.table(book.with_paper_column(studies.flagged_fractions(evaluations), "paper (Fig 6a-b)", {
    "by CBF (%)": values.AD_ENSEMBLE_CFG_RATE, "atoms flagged (%)": values.AD_ENSEMBLE_ATOM_RATE}),
    "What the ensembles flag of the B+C+E test set (one column per ensemble size), their test rho (unitless) "
    "and errors, beside the paper's flagged fractions.", digits=3)

# %% [markdown]
# What the choice of pool changes in Figure 6: the same table for both pools (the figure
# shows `ensemble_construction`). The thresholds ({eq}`eq-threshold`) come from each pool's own training errors,
# so a pool whose mean fits the training set badly also sets high thresholds.

# %% tags=["hide-input"]
book.table(studies.flagged_fractions({f"{name}, {k}": ev for name, evs in by_construction.items()
                                      for k, ev in evs.items()}).rename(index=lambda label: " ".join(label.split())),
           "The same for every member construction and each ensemble size.", digits=3)

# %% [markdown]
# ## Figure 7a-b: D-optimality on the same split
# One model fitted on A+D, one active set of its training atoms with the force outliers
# excluded as pacemaker does; largest atomic force error against gamma_cfg and atomic force
# error against gamma_atom. The table also shows two other active sets of the same
# training set, one keeping every atom (as MTP does, claim P34) and one from core atoms
# only, with at least 12 neighbours (the paper's remedy for vacuum-surface atoms, P35),
# and compares the range of gamma_atom with that of the homogeneous A+B training graded
# on C+E (the MaxVol notebook's split). {numref}`fig-heterogeneity-dopt` shows the grades;
# the table after it sets the paper's values (Fig. 7a-b and, for A+B, Fig. 4) beside ours.
#
# ```{glue:figure} fig-heterogeneity-dopt
# :name: fig-heterogeneity-dopt
#
# D-optimality trained on A+D and tested on B+C+E; reproduces Fig. 7a-b of
# {cite:t}`shuang2025uq`. (a) Largest atomic force error of each configuration against
# gamma_cfg; (b) atomic force error against gamma_atom; dotted line: gamma = 1 (right:
# flagged, {eq}`eq-gamma-atom`). The paper flags {glue:md}`paper-ad-dopt-cfg-rate` of
# configurations and {glue:md}`paper-ad-dopt-atom-rate` of atoms, with $\gamma$ between
# {glue:md}`paper-ad-gamma-low` and {glue:md}`paper-ad-gamma-high`, against
# {glue:md}`paper-ab-gamma-max` for the homogeneous A+B training (Fig. 4); the table below
# gives ours beside these.
# ```

# %% tags=["hide-input"]
gammas = studies.dopt_variants(train, test, kappa=kappa, alpha=alpha)
if compare_homogeneous:
    gammas |= studies.homogeneous_reference(preset, max_test_per_subset, seed, kappa=kappa, alpha=alpha)

# %% tags=["hide-input"]
fig, axes = plots.new_figure(ncols=2)
for ax, signal, ylabel, letter in zip(axes[0], ("gamma_cfg", "gamma_atom"), (
        "force error, max over atoms (meV/Å)", "atomic force error (meV/Å)"), "ab", strict=True):
    plots.error_vs_grade(ax, gammas["outlier filter"].points(signal), xlabel=signal, ylabel=ylabel)
    ax.set_title(f"({letter}) {preset}, A+D training")
book.figure(fig, "fig-heterogeneity-dopt")

# %% tags=["hide-input"]
# The paper's values (Fig. 7a-b for A+D, Fig. 4 for A+B; from uqlib.paper.values) beside ours
book.table(book.with_paper_column(book.with_paper_column(studies.gamma_summary(gammas), "paper A+D (Fig 7a-b)", {
    "configurations flagged (%)": values.AD_DOPT_CFG_RATE, "atoms flagged (%)": values.AD_DOPT_ATOM_RATE,
    "gamma_atom test min": values.AD_GAMMA_LOW, "gamma_atom test max": values.AD_GAMMA_HIGH}),
    "paper A+B (Fig 4)", {"gamma_atom test max": values.AB_GAMMA_MAX}),
           "What D-optimality flags of the test set and the range of its grades (unitless), for each active set, "
           "beside the paper's values.", digits=3)

# %% [markdown]
# ## Figures 7c-d and 8a-b: why one active set for a union of groups misjudges novelty
# Three groups of 2D vectors (a, b, c) stand in for the groups of a heterogeneous training
# set. Each group has its own MaxVol active set (two vectors, circled; its region gamma <= 1
# dashed) and the union has one (solid black). The clustered rule of the paper grades a
# point by the minimum of its gammas over the groups. Point A is a point the union calls
# in-distribution while every group calls it novel; point B lies inside its own group's
# data, which grades it in-distribution, while the union calls it novel. Both are found by
# the scan of the plane (d), which colours each grid cell by how the two rules disagree;
# (8a) and (8b) show log10 gamma over the plane under the union's active set (the original
# D-optimality, {eq}`eq-gamma-atom`) and under the minimum rule ({eq}`eq-gamma-min`), with the gamma = 1
# contour. The groups' geometry is a parameter of this notebook: move them and watch the
# regions change. {numref}`fig-heterogeneity-toy` shows the four panels.
#
# ```{glue:figure} fig-heterogeneity-toy
# :name: fig-heterogeneity-toy
#
# A 2D example of MaxVol on a union of groups; reproduces Fig. 7c-d and, as maps of the
# grade rather than schematics, Fig. 8a-b of {cite:t}`shuang2025uq`. (7c) Three groups of
# vectors, each with its two-vector active set (circled; dashed: its region gamma <= 1),
# and the union's active set (solid black); stars: points A and B. (7d) Where the union's
# grade and the groups' grades disagree: missed novelty (union in-distribution, every
# group novel) and false novelty. (8a) log10 gamma of the union's active set (original
# D-optimality) and (8b) the minimum over the groups' gammas (clustered D-optimality), with
# the gamma = 1 contour; the colour scale diverges at gamma = 1.
# ```

# %% tags=["hide-input"]
sets = maxvol2d.union_vs_groups(maxvol2d.make_groups(group_centres, group_spread, points_per_group, seed))
scan = maxvol2d.scan_plane(sets, grid_half_width, grid_points)
points = maxvol2d.find_points(sets, scan)

# %% tags=["hide-input"]
fig, axes = plots.new_figure(ncols=2, nrows=2, height=3.6, layout="compressed")  # square maps
plots.active_sets_2d(axes[0, 0], sets.groups, sets.group_vectors, sets.union_vectors,
                     points[["x1", "x2"]].T.to_dict("list"))
axes[0, 0].set_title("(7c) groups, their active sets and the union's", fontsize=10)
plots.region_map(axes[0, 1], scan.extent, scan.image(), list(maxvol2d.CATEGORIES))
for label, point in points[["x1", "x2"]].iterrows():
    axes[0, 1].scatter(*point, marker="*", s=120, color="k")
    axes[0, 1].annotate(label, tuple(point), xytext=(5, 5), textcoords="offset points", weight="bold")
axes[0, 1].set_title("(7d) where the union and the groups disagree", fontsize=10)
plots.grade_map_2d(axes[1, 0], scan.extent, scan.image("gamma union"), points[["x1", "x2"]].T.to_dict("list"),
                   title="(8a) gamma of the union's active set")
plots.grade_map_2d(axes[1, 1], scan.extent, scan.image("gamma min"), points[["x1", "x2"]].T.to_dict("list"),
                   title="(8b) minimum of the groups' gammas")
for ax in axes[1]:
    ax.title.set_fontsize(10)
book.figure(fig, "fig-heterogeneity-toy")

# %% [markdown]
# The areas of the four regions in the scanned square (the square holds every gamma <= 1
# parallelogram when `scan.covers_all_sets` is true, so the disagreement areas are
# complete), the grades of points A and B, and the paper's grades of its own A and B
# beside ours: the paper does not publish its coordinates, so only the side of gamma = 1
# each grade falls on can be compared (claim P28 in the table of claims below).

# %% tags=["hide-input"]
print(f"the scan covers every active set's gamma <= 1 region: {scan.covers_all_sets}")
display(book.table(scan.areas.to_frame(), "Area of each region of the scanned square (units of the 2D plane, squared).",
                   digits=2),
        book.table(points, "Points A and B: their coordinates and grades (unitless).", digits=2),
        book.table(maxvol2d.paper_comparison(points), "The paper's grades of its points A and B (Fig. 7c) beside ours "
                   "(unitless); only the side of gamma = 1 can be compared.", digits=2))

# %% [markdown]
# ## The paper's claims, checked
# P23-P30, P34 and P35, each judged by its rule in `uqlib.paper.claims`: the smallest ensemble
# and the three active sets above on the A+D split, and the 2D example (novel cells lie
# more than two standard deviations from every group, known cells within two of one).
# The table sets the paper's value of each claim beside ours, with the verdict.

# %% tags=["hide-input"]
records = studies.heterogeneity_claims(evaluations, gammas, *maxvol2d.claim_inputs(sets, scan, n_toy_geometries, seed))
claims.write_records(out, "04_heterogeneity", records)
compact_table(records, "The paper's claims P23-P30, P34 and P35 judged on this page; the rule and the reason of each "
              "are in the Summary and on the reproduction summary.")

# %% tags=["hide-input"]
# the summary's blocks, one per claim, built from the records above
glue_findings(records)

# %% [markdown]
# ## Summary
# What this page found, claim by claim: the paper's words and value, ours, the verdict and
# how robust it is (computed from the claim records of this run, never typed).
#
# ```{glue:md} findings
# :format: myst
# ```
#
# - {numref}`fig-heterogeneity`c shows the two modes of the per-atom errors that set the
#   ensembles' thresholds on this split; {numref}`fig-heterogeneity-dopt` D-optimality on the
#   same split; {numref}`fig-heterogeneity-toy` where one active set for a union of groups
#   and the minimum rule ({eq}`eq-gamma-min`) disagree.
#
# ### What's next
# *Clustered D-optimality* builds one active set per cluster of the training data.
