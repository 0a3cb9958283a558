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
# # Ensemble size: how many members does an ensemble need? (Fig. S2)
#
# ```{admonition} Deviations from the paper on this page
# :class: note deviations-box
# - {ref}`dev-subset-f`
# - {ref}`dev-linear-fits`
# - {ref}`dev-ensemble-members`
#
# All deviations, and why, are on [Deviations from the paper](../deviations).
# ```
#
# ## Overview
# The paper's {cite}`shuang2025uq` ensembles have {glue:md}`paper-ensemble-size` members. Its Figure S2 varies the
# number of members K from 3 to 30 for the most accurate model and watches selection
# rates, rank correlations, errors, uncertainties and thresholds. This notebook does the
# same for a linear ACE ensemble trained on A+B, and repeats every K with disjoint sets of
# bootstrap members so that a trend can be told from noise: selection rates and rank
# correlations in {numref}`fig-ensemble-size`, errors in
# {numref}`fig-ensemble-size-errors`, uncertainty and thresholds in
# {numref}`fig-ensemble-size-thresholds`.
#
# ```{glue:figure} fig-ensemble-size
# :name: fig-ensemble-size
#
# Against the ensemble size K: (a) the share of the test set each criterion flags,
# (b, c) Spearman rho between uncertainty and error on the training and the test set.
# Lines are means over disjoint repeats, bands one standard deviation. Reproduces
# Fig. S2a-c of {cite:t}`shuang2025uq`.
# ```
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | [Ensemble accuracy](01_ensemble_accuracy) (criteria, thresholds, rho) | necessary |

# %% tags=["parameters", "remove-cell"]
from typing import Optional  # papermill parses Optional[int], not int | None

train_subsets: str = "A+B"  # training set
test_subsets: str = "C+E"  # test set
preset: str = "Func-33"  # basis preset (the full profile uses the most accurate)
member_counts: list = [3, 6, 10, 15]  # ensemble sizes K to evaluate
n_repeats: int = 2  # disjoint repeats per K (spread across repeats is shown)
constructions: list = ["pacemaker", "bootstrap"]  # member constructions judged; the first is the headline
max_per_subset: Optional[int] = 40  # configurations per subset (None: all)
kappa: float = 0.01  # force weight of the loss
alpha: float = 1e-8  # ridge strength
seed: int = 0  # seed of the subsample and of the members

# %% tags=["hide-input"]
from uqlib.criteria import featurize
from uqlib.paper import book, claims, data, plots, protocol, studies

out = book.setup(globals(), "02_ensemble_size")

# %% tags=["hide-input"]
# the values this page was computed with (the parameters cell itself is not shown)
from uqlib.paper.findings import compact_table, glue_findings  # noqa: E402

book.glue_paper_values()  # the paper's numbers quoted in the text, from uqlib.paper.values
book.run_configuration(globals(), "02_ensemble_size")

# %% [markdown]
# ## One pool of members, split into repeats
# Members of every construction are independent draws, so one pool of `max(K) x n_repeats`
# members is fitted once per construction and split into `n_repeats` disjoint groups; within
# a group, the ensemble of size K is its first K members. The figures show the first
# construction (the paper's, pacemaker's ensemble mode) on the whole test set.

# %% tags=["hide-input"]
train_table, test_table = data.load_split(train_subsets, test_subsets, max_per_subset, seed)
train, test = featurize(train_table, preset), featurize(test_table, preset)
# every construction, judged on every test composition (C, E, C+E); the figures show the headline
all_sweeps = protocol.run_size_sweep(train, test, member_counts, n_repeats=n_repeats, constructions=constructions,
                                     seed=seed, kappa=kappa, alpha=alpha, progress=False)
all_sweeps.to_csv(out / "ensemble_size.csv", index=False)
headline = (all_sweeps["construction"] == constructions[0]) & (all_sweeps["composition"] == test_subsets)
sweep = all_sweeps[headline].drop(columns=["construction", "composition"])
stats = studies.sweep_statistics(sweep)

# %% [markdown]
# ## Figure S2
# Lines are means over the repeats, bands one standard deviation. (a) test selection rate;
# (b, c) Spearman rho on the training and test sets ({numref}`fig-ensemble-size`, at the
# top of the page); (d-f) mean training errors and (g-i) mean test errors of the
# ensemble-mean model per criterion ({numref}`fig-ensemble-size-errors`); (j) mean test
# uncertainty of CBF; (k-m) thresholds ({numref}`fig-ensemble-size-thresholds`). Energies
# in meV/atom, forces in meV/Å.

# %% tags=["hide-input"]
fig, axes = plots.new_figure(ncols=3)
plots.sweep_panel(axes[0, 0], stats, "selection_rate", ["CBE", "CBF", "ABF", "CBE or CBF"], scale=100,
                  ylabel="test selection rate (%)", title="(a) selection rate")
for ax, which, letter in ((axes[0, 1], "train", "b"), (axes[0, 2], "test", "c")):
    plots.sweep_panel(ax, stats, f"rho_{which}", ["CBE", "CBF", "ABF"], ylabel=f"Spearman rho ({which})",
                      title=f"({letter}) rho, {which}")
book.figure(fig, "fig-ensemble-size")

# %% [markdown]
# ```{glue:figure} fig-ensemble-size-errors
# :name: fig-ensemble-size-errors
#
# Mean error of the ensemble-mean model against the ensemble size K, on the training set
# (d-f) and the test set (g-i), for CBE (meV/atom), CBF and ABF (meV/Å); means over
# disjoint repeats, bands one standard deviation. Reproduces Fig. S2d-i of
# {cite:t}`shuang2025uq`.
# ```

# %% tags=["hide-input"]
fig, axes = plots.new_figure(ncols=3, nrows=2)
for col, signal in enumerate(("CBE", "CBF", "ABF")):
    plots.sweep_panel(axes[0, col], stats, "mean_err_train", [signal], scale=1e3,
                      ylabel=f"mean error ({plots.CRITERION_UNITS[signal]})", title=f"({'def'[col]}) train error, {signal}")
    plots.sweep_panel(axes[1, col], stats, "mean_err_test", [signal], scale=1e3,
                      ylabel=f"mean error ({plots.CRITERION_UNITS[signal]})", title=f"({'ghi'[col]}) test error, {signal}")
book.figure(fig, "fig-ensemble-size-errors")

# %% [markdown]
# ```{glue:figure} fig-ensemble-size-thresholds
# :name: fig-ensemble-size-thresholds
#
# Against the ensemble size K: (j) the mean CBF uncertainty U_F,cfg of the test
# configurations (meV/Å); (k-m) the thresholds ({eq}`eq-threshold`) of CBE (meV/atom), CBF and ABF
# (meV/Å); means over disjoint repeats, bands one standard deviation. Reproduces
# Fig. S2j-m of {cite:t}`shuang2025uq`.
# ```

# %% tags=["hide-input"]
fig, axes = plots.new_figure(ncols=2, nrows=2, height=3.0)
plots.sweep_panel(axes[0, 0], stats, "mean_U_test", ["CBF"], scale=1e3, ylabel="mean test U_F,cfg (meV/Å)",
                  title="(j) mean test uncertainty, CBF")
for ax, signal, letter in zip((axes[0, 1], axes[1, 0], axes[1, 1]), ("CBE", "CBF", "ABF"), "klm", strict=True):
    plots.sweep_panel(ax, stats, "threshold", [signal], scale=1e3,
                      ylabel=f"eps ({plots.CRITERION_UNITS[signal]})", title=f"({letter}) threshold, {signal}")
book.figure(fig, "fig-ensemble-size-thresholds")

# %% [markdown]
# The mean over repeats of the selection rate, the test rho and the threshold per
# criterion and K:

# %% tags=["hide-input"]
means = stats.xs("mean", axis=1, level=1)[["selection_rate", "rho_test", "threshold"]].unstack(0).dropna(axis=1, how="all")
shown = {"selection_rate": (100, "rate {c} (%)"), "rho_test": (1, "rho test {c}"), "threshold": (1e3, "eps {c} ({unit})")}
book.table(means.mul([shown[q][0] for q, _ in means.columns], axis=1).set_axis(
    [shown[q][1].format(c=c, unit=plots.CRITERION_UNITS.get(c, "")) for q, c in means.columns], axis=1),
    "Mean over repeats, per ensemble size K: the share of the test set flagged, the test Spearman rho (unitless) and "
    "the threshold of each criterion.", digits=2)

# %% [markdown]
# ## The paper's claims, checked
# P12 (rates settle only from about ten members on, CBE at every K), P13 (no trend of rho
# with K; test error up and training error down; mean test uncertainty up) and P14
# (thresholds fall with K, except CBE's), each judged by its rule in `uqlib.paper.claims`; the
# table gives the paper's value beside ours.

# %% tags=["hide-input"]
records = protocol.judge_size_sweep(all_sweeps, constructions[0], test_subsets)  # repeats as seeds
claims.write_records(out, "02_ensemble_size", records)
compact_table(records, "The paper's claims P12-P14 judged on this page; the rule and the reason of each are in the "
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
# - One pool of bootstrap members, split into disjoint repeats, gives every quantity of
#   Figure S2 as a function of K with its spread across repeats
#   ({numref}`fig-ensemble-size`, {numref}`fig-ensemble-size-errors`,
#   {numref}`fig-ensemble-size-thresholds`).
# - The claim table records whether the selection rates settle near the paper's K
#   ({glue:md}`paper-ensemble-size-stable`) and whether
#   larger ensembles lower the thresholds for this model and data.
#
# ### What's next
# *D-optimality* grades atoms against one MaxVol active set instead of a committee.
