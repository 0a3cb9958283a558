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
# ## Overview
# Instead of asking several models whether they disagree, D-optimality asks whether an
# atom's B projections lie inside the span of the training set's most informative atoms.
# The active set is the square submatrix A of training projections of maximal volume
# (MaxVol); an atom's grade is gamma = max_j |(B A^-1)_j|, a configuration's grade its
# largest atomic gamma, and gamma > 1 means extrapolation. On the A+B / test split of the
# ensemble notebooks, this notebook
#
# 1. builds one active set per basis preset, after dropping training atoms whose force
#    error is an outlier (Q3 + 1.5 IQR), as pacemaker's `pace_activeset` does;
# 2. Figure 4: energy and force errors against gamma for the least and most accurate preset;
# 3. Figure 5: how much of the test set D-optimality flags, against ensembles of 6 and 30;
# 4. checks the paper's claims P15-P22.
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | [Ensemble accuracy](01_ensemble_accuracy) | necessary |
# | [Lysogorskiy et al., active learning for ACE (PRM 2023)](https://doi.org/10.1103/PhysRevMaterials.7.043801) | helpful |
#
# Time to run: about a minute with the fast defaults; several minutes with the full profile
# once the design matrices are cached.

# %% tags=["parameters"]
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

# %%
import matplotlib.pyplot as plt

from uqlib import book, claims, data, evaluate, plots

out = book.setup(globals(), "03_maxvol")

# %% [markdown]
# ## One active set per preset
# For each preset: fit the model on the training set, drop the atoms whose force error is
# an outlier, build the MaxVol active set of the remaining atoms' projections, and grade
# every training and test atom. The ensembles are fitted on the same design matrix.

# %%
train, test = data.load_split(train_subsets, test_subsets, max_per_subset, seed)
runs = evaluate.dopt_ladder(train, test, presets, ensemble_sizes=sorted(ensemble_sizes), outliers=outliers,
                            seed=seed, kappa=kappa, alpha=alpha)
table = evaluate.dopt_ladder_table(runs)
table.to_csv(out / "per_preset.csv")
extremes = [table["F_RMSE train"].idxmax(), table["F_RMSE train"].idxmin()]
table.round(3)

# %% [markdown]
# MaxVol stops when every atom it was offered has gamma at most its tolerance (1.01), so the
# kept training atoms' largest gamma (*kept train max*) stays near 1; training atoms above
# that are the excluded force outliers.
#
# ## Figure 4: errors against the extrapolation grade
# Energy error per atom (meV/atom) and largest atomic force error (meV/Å) of each
# configuration against gamma_cfg, and each atom's force error against gamma_atom, for the
# least and the most accurate preset; the dotted line is gamma = 1.

# %%
fig, axes = plots.new_figure(ncols=3, nrows=2, width=3.6, height=3.1)
for row, name in enumerate(extremes):
    for col, (signal, xlabel, ylabel) in enumerate(plots.GRADE_PANELS):
        plots.error_vs_grade(axes[row, col], runs[name].dopt.points(signal), xlabel=xlabel, ylabel=ylabel)
        axes[row, col].set_title(name)
plt.show()

# %% [markdown]
# ## Figure 5: detection against accuracy, and against the ensemble
# (a) Share of the test set flagged as extrapolative (gamma > 1) by D-optimality, per
# configuration and per atom, and by the ensembles (configurations: U_E > eps_E or
# U_F,cfg > eps_F,cfg; atoms: U_F,atom > eps_F,atom). Every test structure lies outside the
# A+B training domain, so a higher rate is better detection. (b-d) For the most accurate
# preset, how D-optimality and the smallest ensemble classify the test set: *missed* marks
# over-confident cases (high error, called in-distribution), *false alarm* under-confident
# ones; high error means above eq 7 of the training errors.

# %%
best = runs[extremes[1]]
fig, axes = plots.new_figure(ncols=4, width=3.4, height=3.2)
plots.metric_vs_x(axes[0, 0], table["F_RMSE train"], {c: table[c] for c in table.columns if c.startswith(("D-opt", "ens"))},
                  xlabel="F_RMSE train (meV/Å)", ylabel="test flagged (%)", styles=plots.DETECTOR_STYLE)
axes[0, 0].set_title("(a) detection rate")
for ax, (dopt_signal, ens_signal), letter in zip(axes[0, 1:], [("gamma_cfg (energy)", "CBE"), ("gamma_cfg", "CBF"),
                                                               ("gamma_atom", "ABF")], "bcd", strict=True):
    plots.outcome_bars(ax, evaluate.paired_outcomes({"D-opt": best.dopt, "ensemble": best.ensembles[min(ensemble_sizes)]},
                                                    [dopt_signal, ens_signal]),
                       f"({letter}) {extremes[1]}, {ens_signal}")
plt.show()

# %% [markdown]
# ## The paper's claims, checked
# P15-P22, each judged by its rule in `uqlib.claims` on the runs above (P21 once for each
# ensemble size).

# %%
records = evaluate.dopt_ladder_claims(runs, table)
claims.write_records(out, "03_maxvol", records)
claims.records_table(records)

# %% [markdown]
# ## Summary
# - One MaxVol active set per preset, built from the training atoms that are not force
#   outliers (their number is in the table), grades every training and test atom.
# - Figure 4 shows how the errors behave on either side of gamma = 1, Figure 5 how much of
#   the out-of-distribution test set D-optimality and the ensembles flag.
#
# ### What's next
# *Heterogeneity* trains on elastic cells plus nanospheres and watches both criteria fail.
