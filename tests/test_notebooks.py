"""The notebooks as text: paired with jupytext, in sync, ruff-clean, and thin.

Each ``notebooks/NN_*.ipynb`` (what papermill runs) is paired with a percent-format
``notebooks/NN_*.py`` (what ruff, ``duplicates`` and a diff read). A notebook holds
parameters, calls, figures and prose; what it computes beyond a few lines of glue
belongs in a tested uqlib function, so the number of "logic lines" per notebook is
capped. nbmake (``make test``) runs the notebooks themselves.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("*.py"))
MAX_LOGIC_LINES = 15
# calls that draw or show, whatever they are given
DRAWING_ROOTS = {"plots", "plt", "ax", "axes", "fig", "display", "glue", "Markdown", "print", "book"}


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else None


def _is_drawing(statement: ast.stmt, last: bool = False) -> bool:
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return True
    if isinstance(statement, ast.Expr) and last:
        return True  # the last expression of a cell is what the cell displays
    if isinstance(statement, ast.Expr):
        value = statement.value
        # a bare name or table expression at the end of a cell is display, as is a drawing call
        return not isinstance(value, ast.Call) or _root(value) in DRAWING_ROOTS or _root(value) is None
    if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call):
        return _root(statement.value) in DRAWING_ROOTS - {"book"}  # fig, axes = plots.new_figure(...)
    if isinstance(statement, ast.For | ast.With):
        return all(_is_drawing(s) for s in statement.body)
    return False


def logic_lines(source: str) -> int:
    """Lines of code cells that are neither parameters, imports, drawing, display nor prose."""
    notebook = jupytext.reads(source, fmt="py:percent")
    count = 0
    for cell in notebook.cells:
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        body = ast.parse(cell.source).body
        for index, statement in enumerate(body):
            if not _is_drawing(statement, last=index == len(body) - 1):
                count += statement.end_lineno - statement.lineno + 1
    return count


def test_logic_line_counter_by_hand():
    source = ('# %% tags=["parameters"]\nseed: int = 0\n\n# %%\nimport numpy as np\n'
              'x = np.arange(3)\nfor i in x:\n    print(i)\nfig, axes = plots.new_figure()\nplots.draw(axes, x)\n'
              'for ax in axes:\n    ax.set_title("a")\ntable = frame.groupby("a").agg(\n    ["mean"])\ntable\n')
    assert logic_lines(source) == 3  # x = ..., and the two lines of table = ...
    assert logic_lines('# %%\nframe.describe()\nframe.plot()\n') == 1  # only the last expression is display


def test_every_notebook_is_paired():
    ipynbs = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert ipynbs == {p.stem for p in PAIRS}, "pair every notebook: jupytext --set-formats ipynb,py:percent"


@pytest.mark.parametrize("pair", PAIRS, ids=[p.stem for p in PAIRS])
def test_pair_is_in_sync(pair):
    text = jupytext.read(pair)
    ipynb = jupytext.read(pair.with_suffix(".ipynb"))
    assert [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in text.cells] == \
        [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in ipynb.cells], \
        f"{pair.name} and its .ipynb differ: run `make notebooks` (jupytext --sync)"


@pytest.mark.parametrize("pair", PAIRS, ids=[p.stem for p in PAIRS])
def test_notebook_is_thin(pair):
    assert logic_lines(pair.read_text()) <= MAX_LOGIC_LINES, \
        f"{pair.name} computes too much itself: move loops, rules and tables into a tested uqlib function"


def test_notebooks_are_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *map(str, PAIRS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
