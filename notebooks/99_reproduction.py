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
# # Reproduction summary
#
# ## Overview
# Every analysis notebook ends by judging the paper's claims for its section with rules
# fixed in advance (`uqlib.paper.claims`) and writes the records to `claims.json`. This page
# collects them, by P-number (P1-P36 of the paper's claim list): the paper's value and
# ours side by side, the verdict, the rule. It names every P-number without a record and
# every notebook that wrote none. Findings of this compendium beyond the paper have their
# own table, with their own verdict words.
#
# ## Prerequisites
# | Concept | Importance |
# | --- | --- |
# | The notebooks of this book | necessary |
#
# Time to run: seconds.

# %% tags=["parameters"]
notebooks: list = []  # notebooks to collect (empty: every notebook of the book but this one)

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from uqlib.paper import book, claims

out = book.setup(globals(), "99_reproduction")
expected = notebooks or [n for n in book.notebooks() if n not in ("98_performance", "99_reproduction")]
table, findings, missing_notebooks, missing_pids = claims.collect(out.parent, expected)
tally = claims.tally(table)

# %% tags=["hide-input"]
for verdict, count in tally.items():  # the landing page shows these numbers
    glue(f"claims_{verdict.replace(' ', '_').replace('_here', '')}", int(count), display=False)
glue("claims_total", len(table), display=False)
glue("claims_pids", table["pid"].nunique(), display=False)
glue("claims_notebooks_run", len(expected) - len(missing_notebooks), display=False)
glue("claims_by_notebook", pd.crosstab(table["notebook"], table["verdict"]), display=False)
display(Markdown(f"**{len(table)} records** of {table['pid'].nunique()} P-numbers from "
                 f"{len(expected) - len(missing_notebooks)} of {len(expected)} notebooks. Notebooks without records: "
                 f"{', '.join(missing_notebooks) or 'none'}. P-numbers without a record: "
                 f"{', '.join(missing_pids) or 'none'}."))
tally.to_frame()

# %% [markdown]
# ## Every claim, by P-number

# %% tags=["hide-input"]
pd.set_option("display.max_colwidth", None)
table.style.hide(axis="index").set_properties(**{"text-align": "left", "vertical-align": "top"})

# %% [markdown]
# ## Beyond the paper
# Results of this compendium that the paper does not claim: verdicts *supported*, *not
# supported* or *inconclusive*.

# %% tags=["hide-input"]
findings

# %% [markdown]
# ## Summary
# The table above is the compendium's answer to "which of the paper's claims hold for
# linear ACE models of W on the published data", one row per claim record, each traceable
# to the notebook that computed it. Differences from the paper's setting that can explain a
# verdict are listed on the *Deviations from the paper* page.
