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
# # Performance
#
# ## Overview
# How fast and how lean the compendium is, measured on the machine that built this book:
# the benchmark scripts in `benchmarks/` (run by `make benchmarks`, and by `make book`
# before the notebooks) save their figures with the machine and the date, and the book
# runner records each notebook's wall time and the largest memory of its kernels. This
# page sets them against the project's goals; where a goal is missed it says so.
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | The notebooks of this book | helpful |
#
# Time to run: seconds (it reads saved records; it measures nothing itself).

# %% tags=["parameters"]
benchmark_dir: str = "../benchmarks/output"  # where the benchmark scripts saved their records

# %%
import pandas as pd

from uqlib import book

out = book.setup(globals(), "98_performance")
records, timings = book.read_records(benchmark_dir, out.parent)

# %% [markdown]
# ## The notebooks
# Wall time of each notebook in the latest run of the book runner for this profile, and
# the largest resident memory of any notebook kernel up to that point. The page cannot tell
# a cold run (empty `data/cache/`) from a warm one, so the book time is judged against the
# warm goal; the cold time is measured by a run from an empty cache (README).

# %%
pd.DataFrame(timings).T

# %% [markdown]
# ## The goals

# %%
book.performance_goals(records, timings)

# %% [markdown]
# ## The benchmarks in detail

# %%
pd.DataFrame([{"benchmark": name, "figure": key, "value": value} for name, r in records.items()
              for key, value in r.items() if not isinstance(value, list | dict)])

# %% [markdown]
# ## Summary
# The goals table states, for this machine and date, which of the project's speed and
# memory goals hold; the benchmark scripts print the same figures when run on their own.
