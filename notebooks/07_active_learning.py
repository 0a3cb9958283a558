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
# # Beyond the paper: a simulated active-learning race
#
# ```{admonition} Deviations from the paper on this page
# :class: note deviations-box
# - {ref}`dev-linear-fits`
# - {ref}`dev-ensemble-members`
#
# All deviations, and why, are on [Deviations from the paper](../deviations).
# ```
#
# ## Overview
# The point of uncertainty quantification in fitting potentials is to choose which
# structures to label next {cite}`lysogorskiy2023active`. This notebook races the criteria
# of {cite:t}`shuang2025uq` against each other: from a starting training set, each round
# every criterion (random, CBF, gamma, clustered gamma, QUESTS
# {cite}`schwalbekoda2025quests`) picks a fixed budget of structures from a pool, the model
# is refitted, and its error on a held-out test set is recorded. Two starting sets: the
# homogeneous A+B and the heterogeneous A+D; the pool and the test set are drawn from C+E.
# Several seeds. {numref}`fig-active-learning` shows the race.
#
# ```{glue:figure} fig-active-learning
# :name: fig-active-learning
#
# A simulated active-learning race, beyond the paper: {cite:t}`shuang2025uq` proposes its
# criteria for active learning but runs no campaign, so no figure of the paper is
# reproduced and the paper gives no value to set beside ours. Test force RMSE (left,
# meV/Å per component) and energy RMSE (right, meV/atom) of the refitted model against
# the structures labelled, from the homogeneous start A+B (top) and the heterogeneous
# start A+D (bottom, the split of Figs. 6-7); mean over seeds, band one standard
# deviation; log scale.
# ```
#
# 1. the race ({numref}`fig-active-learning`): test force and energy RMSE against labels
#    used, per criterion;
# 2. which criterion reaches a target accuracy with the fewest labels;
# 3. whether that ranking matches how well each criterion's score ranked the pool's
#    errors at the start (Spearman rho of score and error, the detection quality that
#    matters for picking).
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | [Scoring](06_scoring) | necessary |

# %% tags=["parameters", "remove-cell"]
from typing import Optional  # papermill parses Optional[int], not int | None

preset: str = "Func-33"  # basis preset of the model being improved
start_per_subset: int = 15  # starting configurations per subset (A and B, or A and D)
pool_per_subset: Optional[int] = 25  # C and E configurations in pool + test, per subset (None: all)
test_fraction: float = 0.3  # share of those held out as the test set
budget: int = 5  # structures labelled per round
rounds: int = 4  # rounds per race
seeds: list = [0, 1]  # one race per seed (pool/test split, random picks, ensembles)
n_members: int = 6  # ensemble size for CBF
kappa: float = 0.01  # force weight of the loss
alpha: float = 1e-8  # ridge strength

# %% tags=["hide-input"]
from IPython.display import display

from uqlib import tables
from uqlib.paper import active_learning, book, claims, data, plots

out = book.setup(globals(), "07_active_learning")

# %% tags=["hide-input"]
# the values this page was computed with (the parameters cell itself is not shown)
from uqlib.paper.findings import glue_findings  # noqa: E402

book.run_configuration(globals(), "07_active_learning")

# %% [markdown]
# ## The races
# The starting sets are drawn with the first seed. For each starting set and seed, the
# C+E candidates are subsampled and split into the pool and the test set with the seed;
# all design matrices, projections and QUESTS descriptors are computed once per campaign
# (`uqlib.paper.active_learning.run_races`). Before any pick, each criterion's score of the
# pool is set against the pool's errors (largest atomic force error per structure of the
# starting model): the round-0 Spearman rho.

# %% tags=["hide-input"]
starts = {name: tables.subsample(data.load_subsets(name), start_per_subset, seeds[0]) for name in ("A+B", "A+D")}
curves, round_zero = active_learning.run_races(starts, data.load_subsets("C+E"), preset, per_subset=pool_per_subset,
                                               test_fraction=test_fraction, budget=budget, rounds=rounds, seeds=seeds,
                                               n_members=n_members, kappa=kappa, alpha=alpha)
curves.to_csv(out / "curves.csv", index=False)
print(f"{len(curves)} points of {curves['criterion'].nunique()} criteria, {len(starts)} starts, {len(seeds)} seeds")

# %% [markdown]
# ## Test error against labels used
# Mean over seeds, band one standard deviation; force RMSE per component (meV/Å) and
# energy RMSE (meV/atom) of the refitted model on the held-out test set:
# {numref}`fig-active-learning` in the Overview, drawn by the next cell.

# %% tags=["hide-input"]
fig, axes = plots.new_figure(ncols=2, nrows=2)
for row, start_name in enumerate(starts):
    for col, (column, label) in enumerate((("F_rmse", "test F_RMSE (meV/Å)"), ("E_rmse", "test E_RMSE (meV/atom)"))):
        plots.metric_vs_x(axes[row, col], **active_learning.mean_curves(curves, start_name, column),
                          xlabel="labels used (structures)", ylabel=label, styles=plots.AL_STYLE)
        axes[row, col].set_yscale("log")  # the first labels from the test distribution dominate
        axes[row, col].set_title(f"start {start_name}")
for ax in axes.flat[1:]:  # one legend for the four panels
    ax.get_legend().remove()
book.figure(fig, "fig-active-learning")

# %% [markdown]
# ## Labels to a target accuracy, and the detection scores
# Target: the force RMSE that random picking reaches at the end of the race, per
# starting set. The table gives the fewest labels at which each criterion's mean curve
# reaches it (empty: never within the race), next to the Spearman rho between the
# criterion's round-0 score and the pool's errors (how well it ranks what it should pick).

# %% tags=["hide-input"]
race = active_learning.race_table(curves, round_zero)
race.to_csv(out / "race.csv", index=False)
book.table(race, "Fewest labels at which each criterion's mean curve reaches the target (a dash: never within the "
           "race) and the Spearman rho (unitless) of its round-0 score with the pool's errors.", digits=3, index=False)

# %% [markdown]
# ## Findings, checked and recorded
# The paper makes no claim about active learning; these are findings of this compendium.
# Whether a criterion beats random picking is judged by a paired test across seeds of the
# final test F_RMSE (one-sided t-test, Holm-corrected over the criteria), with the spread of
# the paired differences; with fewer than three seeds the verdict is *inconclusive*.

# %% tags=["hide-input"]
comparison, findings = active_learning.race_findings(curves)
claims.write_records(out, "07_active_learning", [], findings)
display(book.table(comparison, "The race's paired comparison of each criterion with random selection, over seeds.",
                   digits=3),
        book.table(claims.findings_table(findings)[["statement", "ours", "verdict"]],
                   "Results of this compendium beyond the paper, with their own verdict words; the rule and the reason of each are in the Summary."))

# %% tags=["hide-input"]
# the summary's blocks, one per claim, built from the records above
glue_findings([], findings)

# %% [markdown]
# ## Summary
# What this page found, claim by claim: the paper's words and value, ours, the verdict and
# how robust it is (computed from the claim records of this run, never typed).
#
# ```{glue:md} findings
# :format: myst
# ```
#
# - The curves of {numref}`fig-active-learning` show, for a homogeneous and a heterogeneous start, how fast each criterion
#   lowers the test error per labelled structure.
# - The race table names the criterion that reaches the target accuracy with the fewest
#   labels and sets it against how well each score ranked the pool's errors at the start.
