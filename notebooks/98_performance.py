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
# the book runner records each notebook's wall time and the largest memory of its
# processes, separately for a *cold* build (one that started from an empty compute cache)
# and a *warm* one; the benchmark scripts in `benchmarks/` run on their own (`make
# benchmarks`, not `make book`) and save their figures with the date, the machine (cores,
# total memory), the load average at their start and end and the git commit they ran. This
# page shows the latest of both, sets them against the project's goals and, where a goal is
# missed, says what bounds the figure, from the measured records. A benchmark that has not
# been run on this machine shows a dash.
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | The notebooks of this book | helpful |
#
# Time to run: seconds (it reads saved records; it measures nothing itself).

# %% tags=["parameters", "remove-cell"]
benchmark_dir: str = "../benchmarks/output"  # where the benchmark scripts saved their records

# %% tags=["hide-input"]
import pandas as pd

from uqlib.paper import book, performance
from uqlib.scale import scale_plan

out = book.setup(globals(), "98_performance")
pd.set_option("display.max_colwidth", None)  # the goals' bounds are sentences
records, timings = performance.read_records(benchmark_dir, out.parent)

# %% tags=["hide-input"]
# the values this page was computed with (the parameters cell itself is not shown)
book.run_configuration(globals(), "98_performance")

# %% [markdown]
# ## The build, step by step
# Wall time of each step (each notebook; a build run with `--benchmarks`, as older builds
# were, also times the benchmarks as one step) in the latest cold and warm build of this
# profile, the cache entries (design matrices, labels, active sets,
# trajectories) each step computed, and the largest memory of the step's processes (the
# notebook kernel and any workers it started), sampled four times a second as the sum of
# their proportional set sizes, so pages a forked worker shares with its parent count once
# (records marked "rss sum" come from an older runner). The design matrices each step loaded
# or built are logged too; the goals table names them for the step with the largest memory.
# A cold step minus the same step warm is what computing its caches cost; a step that is
# missing from one kind was not run that way with this profile.

# %% tags=["hide-input"]
performance.step_table_view(timings)

# %% [markdown]
# ## The benchmark records: when, where, under what load, from which commit
# The latest record of each benchmark `make benchmarks` runs: the date it was made (UTC),
# the git commit it ran (`+dirty`: with uncommitted changes), the machine's cores and total
# memory, the 1, 5 and 15 minute load averages at the benchmark's start and end (a load above
# the cores means other work shared the machine, and the figures are slower than on a free
# one) and its peak memory. A dash marks a benchmark without a record (not run here), or a
# field an older record lacks. The goals below judge these records, whatever their age.

# %% tags=["hide-input"]
performance.benchmark_provenance(records)

# %% [markdown]
# ## The goals
# Each goal with its measured figure and verdict; for a missed goal, the last column says
# what bounds the figure, from the records above and the benchmarks' own cost splits.

# %% tags=["hide-input"]
performance.performance_goals(records, timings)

# %% [markdown]
# ## Beyond one machine: 1e9 atom-frames on Dask
# Grading streams frames chunk by chunk through Dask workers (`uqlib grade --scheduler
# tcp://HOST:PORT`, or `UQLIB_SCHEDULER` for the library), so the memory of a worker depends
# on its chunk, not on the trajectory. From the throughput of one worker and the scheduler's
# time per task measured above (`distributed_grading`), the table gives, per number of
# workers, the chunk that keeps the single scheduler at most 10 % busy, the wall and worker
# hours for 1e9 atom-frames (clustered set, K = 5, Func-222), and the memory per worker that
# chunk needs. Throughput per worker is this machine's, under whatever load it had during the
# benchmark (its load average is in the record); a dedicated core is at least as fast. At the
# largest scales the frames must be read by the workers from shared storage rather than
# shipped by the client, and more than one scheduler (independent campaigns over file
# shards) lifts the single-scheduler bound. The throughput per worker holds for frames of
# the benchmark's size: pyace builds a frame's neighbour environments at a cost that grows
# faster than its atoms (`projection_us_per_atom_*` in the detail table), so
# million-atom configurations are better graded inside LAMMPS (`compute pace/extrapolation`),
# as the paper does, or cut into smaller periodic frames.

# %% tags=["hide-input"]
scale_plan(records)

# %% [markdown]
# ## The benchmarks in detail

# %% [markdown]
# Every figure of each benchmark's latest record (provenance aside); a dash where a benchmark
# has no record or a figure was not measured.

# %% tags=["hide-input"]
performance.benchmark_figures(records)

# %% [markdown]
# ## Summary
# The goals table states, for this machine and date, which of the project's speed and
# memory goals hold; the benchmark scripts print the same figures when run on their own.
