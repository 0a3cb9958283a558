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
# # D-optimality: MaxVol active sets and the extrapolation grade (Figs 4, 5)
#
# ```{admonition} Deviations from the paper on this page
# :class: note deviations-box
# - {ref}`dev-subset-f`
# - {ref}`dev-linear-fits`
# - {ref}`dev-ladder`
#
# All deviations, and why, are on [Deviations from the paper](../deviations).
# ```
#
# ## Overview
# Instead of asking several models whether they disagree, D-optimality
# {cite}`lysogorskiy2023active` asks whether an
# atom's B projections lie inside the span of the training set's most informative atoms.
# The active set is the square submatrix A of training projections of maximal volume
# (MaxVol {cite}`goreinov2010maxvol`); an atom's grade $\gamma_\mathrm{atom}$ and a
# configuration's $\gamma_\mathrm{cfg}$ are those of {eq}`eq-gamma-atom`, and
# $\gamma > 1$ means extrapolation. On the A+B / test split of the
# ensemble notebooks, this notebook
#
# 1. builds one active set per basis preset, after dropping training atoms whose force
#    error is an outlier ({eq}`eq-threshold`), as pacemaker's `pace_activeset` does;
# 2. Figure 4: energy and force errors against gamma for the least and most accurate preset
#    ({numref}`fig-maxvol-grade`);
# 3. Figure 5: how much of the test set D-optimality flags, against ensembles of 6 and 30
#    ({numref}`fig-maxvol-detection`, {numref}`fig-maxvol-outcomes`);
# 4. checks the paper's claims P15-P22 {cite}`shuang2025uq`.
#
# ```{glue:figure} fig-maxvol-detection
# :name: fig-maxvol-detection
#
# Share of the test set flagged as extrapolative by D-optimality (gamma > 1, black) and by
# ensembles of 6 and 30 members, per configuration (solid) and per atom (dashed), against
# the training F_RMSE of the presets on a categorical axis (one step per preset, not to
# scale; bottom: ours; top: the paper's, where it states them, for the Func-15 and Func-945
# models our least and most accurate presets stand for). Reproduces Fig. 5a of
# {cite:t}`shuang2025uq`, where D-optimality flags {glue:md}`paper-dopt-cfg-detection-min` of
# the test configurations at every accuracy (the dotted line).
# ```
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | [Ensemble accuracy](01_ensemble_accuracy) | necessary |
# | Active learning for ACE {cite}`lysogorskiy2023active` | helpful |

# %% tags=["parameters", "remove-cell"]
from typing import Optional  # papermill parses Optional[int], not int | None

train_subsets: str = "A+B"  # training set
test_subsets: str = "C+E"  # test set
presets: list = ["Func-33", "Func-72", "Func-222"]  # basis presets, least to most accurate
outliers: str = "global"  # force-outlier atoms dropped before MaxVol: "global" (pacemaker's) or "none"
ensemble_sizes: list = [6, 30]  # ensembles to compare with (bootstrap, nested)
max_per_subset: Optional[int] = 40  # configurations per subset (None: all)
kappa: float = 0.01  # force weight of the loss
alpha: float = 1e-8  # ridge strength
seed: int = 0  # seed of the subsample and of the ensembles

# %% tags=["hide-input"]
from uqlib.paper import book, claims, data, plots, studies

out = book.setup(globals(), "03_maxvol")

# %% tags=["hide-input"]
# the values this page was computed with (the parameters cell itself is not shown)
from uqlib.paper import values  # noqa: E402
from uqlib.paper.findings import compact_table, glue_findings  # noqa: E402

book.glue_paper_values()  # the paper's numbers quoted in the text, from uqlib.paper.values
book.run_configuration(globals(), "03_maxvol")

# %% [markdown]
# ## One active set per preset
# For each preset: fit the model on the training set, drop the atoms whose force error is
# an outlier, build the MaxVol active set of the remaining atoms' projections, and grade
# every training and test atom. The ensembles are fitted on the same design matrix.

# %% tags=["hide-input"]
train, test = data.load_split(train_subsets, test_subsets, max_per_subset, seed)
runs = studies.dopt_ladder(train, test, presets, ensemble_sizes=sorted(ensemble_sizes), outliers=outliers,
                            seed=seed, kappa=kappa, alpha=alpha)
table = studies.dopt_ladder_table(runs)
table.to_csv(out / "per_preset.csv")
graded = table.loc[table["active set"] == "built", "F_RMSE train"]  # presets whose data span their functions
extremes = [graded.idxmax(), graded.idxmin()]
book.table(table, "Each preset's model and active set: training errors, the grades' range (unitless) and the share "
           "of the test set D-optimality and the ensembles flag.",
           units={"F_RMSE train": "meV/Å", "E_RMSE train": "meV/atom"}
           | {c: "%" for c in table.columns if c.startswith(("D-opt", "ensemble"))},
           digits={"F_RMSE train": 1, "E_RMSE train": 2} | {c: 1 for c in table.columns if c.startswith(("D-opt", "ens"))})

# %% [markdown]
# MaxVol stops when every atom it was offered has gamma at most its tolerance (1.01), so the
# kept training atoms' largest gamma (*kept train max*) stays near 1; training atoms above
# that are the excluded force outliers. A preset whose training projections do not span all
# its functions has no active set (MaxVol's square submatrix would be singular): the column
# *active set* says so, and the figures and claims below use the presets that have one.
#
# ## Figure 4: errors against the extrapolation grade
# Energy error per atom (meV/atom) and largest atomic force error (meV/Å) of each
# configuration against gamma_cfg, and each atom's force error against gamma_atom, for the
# least and the most accurate preset; the dotted line is gamma = 1 ({numref}`fig-maxvol-grade`).
#
# ```{glue:figure} fig-maxvol-grade
# :name: fig-maxvol-grade
#
# Errors against the extrapolation grade for the least accurate preset (top row, the
# paper's Func-15) and the most accurate one (bottom row, Func-945): energy error per atom
# (meV/atom) and largest atomic force error (meV/Å) of each configuration against
# gamma_cfg, and each atom's force error against gamma_atom; training and test set in two
# colours, gamma = 1 dotted. Reproduces Fig. 4a-f of {cite:t}`shuang2025uq`.
# ```

# %% tags=["hide-input"]
fig, axes = plots.new_figure(ncols=3, nrows=2)
for row, name in enumerate(extremes):
    for col, (signal, xlabel, ylabel) in enumerate(plots.GRADE_PANELS):
        plots.error_vs_grade(axes[row, col], runs[name].dopt.points(signal), xlabel=xlabel,
                             ylabel=ylabel.replace("force error, max over atoms", "largest force error"))
        axes[row, col].set_title(f"({'abcdef'[3 * row + col]}) {name}")
book.figure(fig, "fig-maxvol-grade")

# %% [markdown]
# ## Figure 5: detection against accuracy, and against the ensemble
# (a) Share of the test set flagged as extrapolative (gamma > 1) by D-optimality, per
# configuration and per atom, and by the ensembles (configurations: U_E > eps_E or
# U_F,cfg > eps_F,cfg; atoms: U_F,atom > eps_F,atom). Every test structure lies outside the
# A+B training domain, so a higher rate is better detection. (b-d) For the most accurate
# preset, how D-optimality and the smallest ensemble classify the test set: *missed* marks
# over-confident cases (high error, called in-distribution), *false alarm* under-confident
# ones; high error means above the threshold {eq}`eq-threshold` of the training errors. Panel (a) is
# {numref}`fig-maxvol-detection` at the top of the page, (b-d) {numref}`fig-maxvol-outcomes`.

# %% tags=["hide-input"]
fig, axes = plots.new_figure(height=4.5)
plots.metric_vs_x(axes[0, 0], range(len(table)), {c: table[c] for c in table.columns if c.startswith(("D-opt", "ens"))},
                  xlabel="", ylabel="test flagged (%)", styles=plots.DETECTOR_STYLE)
plots.accuracy_axis(axes[0, 0], table["F_RMSE train"], presets=list(table.index))
plots.paper_models_axis(axes[0, 0], [table.index.get_loc(n) for n in extremes])
axes[0, 0].axhline(100 * values.DOPT_CFG_DETECTION_MIN.value, color="k", lw=0.8, ls=":",
                   label=f"paper: D-opt configurations {values.DOPT_CFG_DETECTION_MIN.text()}")
axes[0, 0].legend(fontsize=9, ncol=2)
axes[0, 0].set_title("(a) detection rate")
book.figure(fig, "fig-maxvol-detection")

# %% [markdown]
# ```{glue:figure} fig-maxvol-outcomes
# :name: fig-maxvol-outcomes
#
# How D-optimality and the smallest ensemble classify the test set of the most accurate
# preset (the paper's Func-945): by the configuration's energy (b), its forces (c) and per
# atom (d); detected, missed (over-confident), false alarm (under-confident) and quiet, in %
# of the test configurations or atoms. Reproduces Fig. 5b-d of {cite:t}`shuang2025uq`.
# ```

# %% tags=["hide-input"]
best = runs[extremes[1]]
fig, axes = plots.new_figure(ncols=3, height=4.0)
for ax, (dopt_signal, ens_signal), letter in zip(axes[0], [("gamma_cfg (energy)", "CBE"), ("gamma_cfg", "CBF"),
                                                           ("gamma_atom", "ABF")], "bcd", strict=True):
    plots.outcome_bars(ax, studies.paired_outcomes({"D-opt": best.dopt, "ensemble": best.ensembles[min(ensemble_sizes)]},
                                                    [dopt_signal, ens_signal]),
                       f"({letter}) {extremes[1]}, {ens_signal}")
book.figure(fig, "fig-maxvol-outcomes")

# %% [markdown]
# ## The paper's claims, checked
# P15-P22, each judged by its rule in `uqlib.paper.claims` on the runs above; the table gives
# the paper's value beside ours.

# %% tags=["hide-input"]
records = studies.dopt_ladder_claims(runs, table)
claims.write_records(out, "03_maxvol", records)
compact_table(records, "The paper's claims P15-P22 judged on this page; the rule and the reason of each are in the "
              "Summary and on the reproduction summary.")

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
# - One MaxVol active set per preset, built from the training atoms that are not force
#   outliers (their number is in the table), grades every training and test atom.
# - Figure 4 ({numref}`fig-maxvol-grade`) shows how the errors behave on either side of
#   $\gamma = 1$; Figure 5 ({numref}`fig-maxvol-detection`) how much of the
#   out-of-distribution test set D-optimality and the ensembles flag.
#
# ### What's next
# *Heterogeneity* trains on elastic cells plus nanospheres and watches both criteria fail.
