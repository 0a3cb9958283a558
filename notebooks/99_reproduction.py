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

# %% tags=["parameters", "remove-cell"]
notebooks: list = []  # notebooks to collect (empty: every notebook of the book but this one)

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import HTML, Markdown, display
from myst_nb import glue

from uqlib.paper import book, claims
from uqlib.paper.findings import robust_disagreements, robust_disagreements_table, summary_table_html

out = book.setup(globals(), "99_reproduction")
expected = notebooks or [n for n in book.notebooks() if n not in ("98_performance", "99_reproduction")]
table, findings, missing_notebooks, missing_pids = claims.collect(out.parent, expected)
tally = claims.tally(table)

# %% tags=["hide-input"]
# the values this page was computed with (the parameters cell itself is not shown)
book.run_configuration(globals(), "99_reproduction")

# %% tags=["hide-input"]
for verdict, count in tally.items():  # the landing page shows these numbers
    glue(f"claims_{verdict.replace(' ', '_').replace('_here', '')}", int(count), display=False)
glue("claims_total", len(table), display=False)
glue("claims_pids", table["pid"].nunique(), display=False)
glue("claims_notebooks_run", len(expected) - len(missing_notebooks), display=False)
glue("claims_by_notebook", book.table(pd.crosstab(table["notebook"], table["verdict"]),
                                      "Headline verdicts (number of records) by notebook."), display=False)
# the tally with robust and construction-dependent verdicts apart (the landing page shows these numbers)
by_robustness = claims.tally_by_robustness(table)
for verdict, row in by_robustness.iterrows():
    for robustness, count in row.items():
        glue(f"tally_{verdict}_{robustness}".replace(" ", "_").replace("-", "_"), int(count), display=False)
disagreements = robust_disagreements(table)
glue("robust_disagreements", Markdown("\n".join(f"- {line}" for line in disagreements)
                                      or "- none: every disagreement depends on a protocol choice"), display=False)
glue("robust_disagreements_count", len(disagreements), display=False)
glue("robust_disagreements_table", book.table(robust_disagreements_table(table), "The robust disagreements: "
                                              "not reproduced whatever the member construction, test set or reading, "
                                              "with the measured cause.", index=False), display=False)
display(Markdown(f"**{len(table)} records** of {table['pid'].nunique()} P-numbers from "
                 f"{len(expected) - len(missing_notebooks)} of {len(expected)} notebooks. Notebooks without records: "
                 f"{', '.join(missing_notebooks) or 'none'}. P-numbers without a record: "
                 f"{', '.join(missing_pids) or 'none'}."))
book.table(by_robustness.assign(total=by_robustness.sum(axis=1)),
           "Headline verdicts (number of records) by robustness: robust = the same verdict under every member "
           "construction judged; construction-dependent = it changes with how the members are built.")

# %% [markdown]
# ## Every claim, by P-number

# %% tags=["hide-input"]
display(Markdown("One row per claim record; open *rule and reason* under a claim for the rule fixed in advance and "
                 "the measured reason. The verdict's colour repeats its word (green reproduced, orange partly, red "
                 "not reproduced, grey not testable here); under it, its robustness to the member construction and "
                 "its marks (provisional without subset F, dependent on the test set or on a reading)."))
display(HTML(summary_table_html(table)))

# %% [markdown]
# ## Beyond the paper
# Results of this compendium that the paper does not claim: verdicts *supported*, *not
# supported* or *inconclusive*.

# %% tags=["hide-input"]
book.table(findings[["key", "statement", "ours", "verdict", "notebook"]] if len(findings) else findings,
           "Results of this compendium beyond the paper, with their own verdict words.", index=False)

# %% [markdown]
# ## Summary
# Of the {glue:}`claims_total` claim records, {glue:}`claims_not_reproduced` are *not reproduced*;
# {glue:}`robust_disagreements_count` of them do not depend on how the members are built, on the
# test set or on a reading of a definition (the robust disagreements), each with its measured cause:
#
# ```{glue:md} robust_disagreements
# :format: myst
# ```
#
# The table above is the compendium's answer to "which of the paper's claims hold for
# linear ACE models of W on the published data", one row per claim record, each traceable
# to the notebook that computed it. Differences from the paper's setting that can explain a
# verdict are listed on the *Deviations from the paper* page.
