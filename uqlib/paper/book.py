"""The book runner: profiles, parameter checks, papermill execution, jupyter-book build.

Each notebook in ``notebooks/`` has a cell tagged ``parameters`` whose
annotated names (``seed: int = 0``) are its parameters and whose defaults are the
fast profile. The full profile
is a table of overrides per notebook in ``book/profiles.yaml``. The runner
executes every notebook that ``_toc.yml`` lists, in order, with papermill,
writes the executed copies to ``book/notebooks/`` and renders the book with
jupyter-book (which itself executes nothing).

Command line::

    python -m uqlib.paper.book build [--profile full|fast] [--only 00_data ...] [--no-render] [--benchmarks]
    python -m uqlib.paper.book run 00_data [-p name value ...] [--profile fast]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import types
import typing
from pathlib import Path

import nbformat
import papermill
import yaml

from uqlib import config, progress
from uqlib.config import PROJECT_ROOT
from uqlib.exceptions import UqlibError
from uqlib.io import DataError, one_line
from uqlib.paper import performance
from uqlib.paper.data import resolve_all

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
EXECUTED_DIR = PROJECT_ROOT / "book" / "notebooks"
PROFILE_FILE = PROJECT_ROOT / "book" / "profiles.yaml"
TOC_FILE = PROJECT_ROOT / "_toc.yml"
RESULTS_ROOT = PROJECT_ROOT / "results"


class ParameterError(UqlibError, TypeError):
    """A notebook parameter is unknown or of the wrong type."""


class NotebookError(UqlibError, RuntimeError):
    """A notebook raised an error while the runner executed it."""


def notebooks() -> list[str]:
    """Names of the notebooks the book shows (``00_data``, ...), in ``_toc.yml`` order."""
    toc = yaml.safe_load(TOC_FILE.read_text())
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    prefix = EXECUTED_DIR.relative_to(PROJECT_ROOT).as_posix() + "/"
    return [f.removeprefix(prefix) for f in files if f.startswith(prefix)]


def load_profile(profile: str) -> dict[str, dict]:
    """Parameter overrides per notebook; ``fast`` is the notebooks' own defaults."""
    if profile == "fast":
        return {}
    profiles = yaml.safe_load(PROFILE_FILE.read_text()) or {}
    if profile not in profiles:
        raise KeyError(f"Unknown profile {profile!r} in {PROFILE_FILE}. Profiles: fast, {', '.join(profiles)}")
    return profiles[profile] or {}


def results_dir(notebook: str) -> Path:
    """Where a notebook writes its artefacts (claim records, tables, extxyz files).

    ``$UQLIB_RESULTS/<notebook>``; the runner points ``UQLIB_RESULTS`` at
    ``results/<profile>``, an interactive session writes to ``results/default``.
    """
    path = config.results_root() / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- parameters --------------------------------------------------------------------------------

def _conforms(value: object, annotation: object) -> bool:
    if annotation is typing.Any:
        return True
    if annotation is type(None):
        return value is None
    if annotation is float:  # an int is a fine float; a bool is not a number here
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, a) for a in args)
    if origin in (list, tuple):
        return isinstance(value, list | tuple) and all(_conforms(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, annotation) if isinstance(annotation, type) else True


def _type_name(annotation: object) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def check_parameters(namespace: dict) -> None:
    """Check every annotated parameter in ``namespace`` against its annotation.

    Call it in the cell after the ``parameters`` cell (``check_parameters(globals())``):
    papermill injects plain assignments, so the annotations of the defaults remain
    and a value of the wrong type is caught before any work is done.
    """
    annotations = namespace.get("__annotations__", {})
    wrong = [
        f"  {name}: expected {_type_name(ann)}, got {type(namespace[name]).__name__} {namespace[name]!r}"
        for name, ann in annotations.items()
        if name in namespace and not _conforms(namespace[name], ann)
    ]
    if wrong:
        raise ParameterError("Notebook parameter(s) of the wrong type:\n" + "\n".join(wrong)
                             + "\nRerun with a value of the expected type, e.g. papermill ... -p name value")


def setup(namespace: dict, notebook: str) -> Path:
    """The one call after a notebook's parameters cell: check them, set the figure style, return the results dir.

    ``namespace`` is the notebook's ``globals()``; the parameters are its annotated names.
    """
    from uqlib.paper import plots

    check_parameters(namespace)
    plots.apply_style()
    return results_dir(notebook)


def _parameters_cell(notebook: str) -> str:
    nb = nbformat.read(NOTEBOOK_DIR / f"{notebook}.ipynb", as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell.source
    raise ParameterError(f"Notebook {notebook} has no cell tagged 'parameters'")


def declared_parameters(notebook: str) -> tuple[dict[str, object], dict[str, object]]:
    """Defaults and annotations of a notebook's ``parameters`` cell (literals only)."""
    namespace: dict = {}
    # dont_inherit: this module's `from __future__ import annotations` would turn types into strings
    exec(compile(_parameters_cell(notebook), notebook, "exec", dont_inherit=True), namespace)
    annotations = namespace.pop("__annotations__", {})
    # Parameters are the annotated names; anything else (an import of Optional) is not one.
    defaults = {name: namespace[name] for name in annotations}
    return defaults, annotations


def validate_overrides(notebook: str, overrides: dict) -> None:
    """Reject overrides that the notebook does not declare, or of the wrong type."""
    defaults, annotations = declared_parameters(notebook)
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ParameterError(f"Notebook {notebook} has no parameter(s) {unknown}. "
                             f"Its parameters: {', '.join(defaults)}")
    check_parameters({**defaults, **overrides, "__annotations__": annotations})


# -- execution ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_notebook(notebook: str, overrides: dict | None = None, *, profile: str = "fast",
                 output_dir: Path = EXECUTED_DIR, progress: bool = True) -> Path:
    """Execute one notebook with papermill; returns the executed copy's path.

    Removes the notebook's previous claim record (``results/<profile>/<notebook>/claims.json``)
    before it starts. Raises :class:`NotebookError` naming the notebook and the failing cell.
    """
    overrides = overrides or {}
    if not (NOTEBOOK_DIR / f"{notebook}.ipynb").is_file():
        raise FileNotFoundError(f"No notebook {notebook}.ipynb in {NOTEBOOK_DIR}")
    validate_overrides(notebook, overrides)
    output_dir.mkdir(parents=True, exist_ok=True)
    output = output_dir / f"{notebook}.ipynb"
    # A failed run must not leave the previous run's claims for the reproduction summary to pick up.
    (RESULTS_ROOT / profile / notebook / "claims.json").unlink(missing_ok=True)
    # The kernel inherits the environment: results go to results/<profile>; no progress bars,
    # since papermill reports progress per cell and a bar would freeze at 0 % in the book.
    kernel_env = {"UQLIB_RESULTS": str(RESULTS_ROOT / profile), "UQLIB_PROGRESS": "0"}
    try:
        with _environment(kernel_env):
            papermill.execute_notebook(NOTEBOOK_DIR / f"{notebook}.ipynb", output, parameters=overrides,
                                       kernel_name="python3", cwd=str(NOTEBOOK_DIR), progress_bar=progress)
    except papermill.PapermillExecutionError as err:
        raise NotebookError(f"Notebook {notebook} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                             f"The executed copy with the traceback is {output}") from None
    hide_parameter_cells(output)
    return output


HIDDEN_PARAMETER_TAGS = ("parameters", "injected-parameters")  # papermill tags its injected cell "injected-parameters"


def hide_parameter_cells(path: Path) -> int:
    """Tag the notebook's parameters cell and papermill's injected one ``remove-cell``; returns how many.

    The rendered page then shows one run configuration, the table of :func:`run_configuration`
    built from the values actually used, instead of the defaults and the overrides one under the
    other. Papermill copies no tag of ours onto the cell it injects, so the executed copy is tagged.
    """
    nb = nbformat.read(path, as_version=4)
    tagged = 0
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if any(t in tags for t in HIDDEN_PARAMETER_TAGS):
            if "remove-cell" not in tags:
                tags.append("remove-cell")
            tagged += 1
    nbformat.write(nb, path)
    return tagged


def render(builder_dir: Path = PROJECT_ROOT) -> Path:
    """Render the book to HTML with jupyter-book 1 (notebooks are already executed)."""
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(builder_dir)]
    subprocess.run(cmd, check=True)
    return builder_dir / "_build" / "html" / "index.html"


# -- figures in the book ------------------------------------------------------------------------

FIGURE_NAME = re.compile(r"fig-[a-z0-9]+(-[a-z0-9]+)*")


def figure(fig, name: str) -> None:
    """Glue a matplotlib figure for a numbered, captioned ``{glue:figure}`` in the page, and close it.

    Call it in a code cell tagged ``hide-input``; the page's markdown then shows the
    figure with a number and caption, citable with ``{numref}`` (see
    ``tests/fixtures/figure_pattern.py``)::

        ```{glue:figure} fig-ensemble-accuracy
        :name: fig-ensemble-accuracy

        Caption naming the paper's figure and panel.
        ```

    ``name`` (``fig-`` then lowercase words joined by ``-``) is both the glue key and,
    by convention, the figure's label. The figure is closed so that the inline backend
    does not show it a second time, unnumbered, under the cell.
    """
    if not isinstance(name, str) or not FIGURE_NAME.fullmatch(name):
        raise ValueError(f"Figure name {name!r} is not a figure label: use 'fig-' then lowercase words "
                         "joined by '-', e.g. 'fig-ensemble-accuracy'")
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


# -- tables in the book -----------------------------------------------------------------------------

MISSING = "–"  # what a table shows where a value is missing (never NaN or None)


def _cell_text(places: int | None) -> typing.Callable[[object], str]:
    import numpy as np

    def text(value: object) -> str:
        if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
            return MISSING
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if isinstance(value, int | np.integer):
            return f"{value:,}".replace(",", " ")
        if isinstance(value, float | np.floating):
            return f"{value:.{places}f}" if places is not None else f"{value:.3g}"
        return str(value)
    return text


def table(frame, caption: str, *, units: dict[str, str] | None = None, digits: dict[str, int] | int | None = None,
          percent: typing.Iterable[str] = (), index: bool = True):
    """A table a reader can read: a caption, units in the headers, rounding by quantity, a dash for missing.

    ``frame``: a DataFrame. ``units`` maps a column to its unit, shown in the header as
    ``name (unit)``; ``percent`` lists the columns that hold fractions in [0, 1], shown ×100
    under "name (%)". When the names are row labels rather than columns (a table whose rows
    are quantities, one column per model), the rows are labelled and rounded instead.
    ``digits``: decimals per column (row), or one number for all; the default is three
    significant figures. NaN and None show as a dash. Returns a pandas Styler.
    """
    import pandas as pd

    frame = pd.DataFrame(frame).copy()
    units, percent = dict(units or {}), list(percent)
    named = set(units) | set(percent) | (set(digits) if isinstance(digits, dict) else set())
    by_row = bool(named) and not named & set(frame.columns) and bool(named & set(frame.index))
    labels = list(frame.index if by_row else frame.columns)
    unknown = sorted(map(str, named - set(labels)))
    if unknown:
        raise KeyError(f"table {caption!r}: no {'rows' if by_row else 'columns'} {unknown}; it has {labels}")
    for name in percent:
        if by_row:
            frame.loc[name] = pd.to_numeric(frame.loc[name], errors="coerce") * 100
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce") * 100
    styler = frame.style
    for label in dict.fromkeys(labels):
        places = digits if isinstance(digits, int) else (digits or {}).get(label)
        subset = pd.IndexSlice[[label], :] if by_row else pd.IndexSlice[:, [label]]
        styler = styler.format(_cell_text(places), subset=subset)
    header = {name: f"{name} (%)" for name in percent} | {name: f"{name} ({unit})" for name, unit in units.items()}
    styler = styler.format_index(lambda label: header.get(label, label), axis=0 if by_row else 1)
    if not index:
        styler = styler.hide(axis="index")
    return styler.set_caption(caption)


def paper_value_key(name: str) -> str:
    """The glue key of a paper's value: ``paper-`` then its name in :mod:`uqlib.paper.values`, lowercase, with ``-``."""
    return "paper-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def glue_paper_values() -> list[str]:
    """Glue every value of :mod:`uqlib.paper.values` as text for captions and prose; returns the keys.

    A caption then quotes the paper as ``{glue:md}`paper-ad-dopt-cfg-rate``` (shows "75.4 %"),
    so that no paper number is typed in a notebook.
    """
    from IPython.display import Markdown
    from myst_nb import glue

    from uqlib.paper import values

    keys = []
    for name, value in values.ALL_VALUES.items():
        keys.append(paper_value_key(name))
        glue(keys[-1], Markdown(value.text()), display=False)
    return keys


def with_paper_column(frame, column: str, paper: dict[str, object]):
    """``frame`` (rows: quantities) with a column of the paper's values, each placed on its named row.

    ``paper`` maps a row label of ``frame`` to a :class:`uqlib.paper.values.PaperValue` (shown
    as the reader sees it, e.g. "75.4 %") or to text. A label that is not a row of ``frame``
    is an error, so that renaming a row cannot silently drop the paper's value. Row labels are shown
    with runs of blank space collapsed and no leading or trailing space ("  by CBF (%)" is "by CBF (%)").
    """
    import pandas as pd

    from uqlib.paper.values import PaperValue

    frame = frame.rename(index=lambda label: " ".join(label.split()) if isinstance(label, str) else label)
    missing = [label for label in paper if label not in frame.index]
    if missing:
        raise KeyError(f"with_paper_column({column!r}): no rows {missing}; the rows are {list(frame.index)}")
    shown = {label: value.text() if isinstance(value, PaperValue) else str(value) for label, value in paper.items()}
    return frame.assign(**{column: pd.Series(shown, dtype=object).reindex(frame.index)})


# -- the run configuration of a page ------------------------------------------------------------------

_PARAMETER_LINE = re.compile(r"^(?P<name>\w+)\s*:[^=]*=[^#]*#\s*(?P<comment>.*)$")


def _parameter_comments(notebook: str) -> dict[str, str]:
    try:
        source = _parameters_cell(notebook)
    except (FileNotFoundError, ParameterError):
        return {}
    return {m["name"]: m["comment"].strip() for m in map(_PARAMETER_LINE.match, source.splitlines()) if m}


def _shown_value(value: object) -> str:
    if value is None:
        return "not set"
    if isinstance(value, list | tuple):
        return ", ".join(_shown_value(v) for v in value) if value else "empty list"
    return str(value)


def current_profile() -> str:
    """The profile this kernel runs with: the runner points ``UQLIB_RESULTS`` at ``results/<profile>``."""
    root = config.results_root()
    if root.parent == RESULTS_ROOT and root.name != "default":
        return root.name
    return "none (an interactive run with the notebook's own values)"


def run_configuration(namespace: dict, notebook: str):
    """The table "This page was computed with": the profile and every parameter's value in this run.

    ``namespace`` is the notebook's ``globals()`` after its parameters cell (and papermill's
    injected one), so the values are those actually used; each row says whether it is the
    notebook's default or set by the profile, and what the parameter means (its comment in
    the parameters cell). Call it in a ``hide-input`` cell after :func:`setup`.
    """
    import pandas as pd

    try:
        defaults, _ = declared_parameters(notebook)
    except (FileNotFoundError, ParameterError):
        defaults = {}
    comments = _parameter_comments(notebook)
    names = list(namespace.get("__annotations__", {}))
    if not names:
        raise ParameterError(f"{notebook}: no annotated parameters in the namespace given: pass globals() "
                             "after the parameters cell")
    rows = [{"parameter": "profile", "value": current_profile(), "set by": "the book runner",
             "meaning": "fast: the notebooks' defaults; full: the overrides of book/profiles.yaml"}]
    rows += [{"parameter": name, "value": _shown_value(namespace[name]),
              "set by": "default" if name not in defaults or defaults[name] == namespace[name] else "profile",
              "meaning": comments.get(name, "")} for name in names if name in namespace]
    return table(pd.DataFrame(rows), "This page was computed with", index=False)


def _cache_entries() -> int:
    """How many computed entries the compute cache holds (design matrices, labels, structures, ...)."""
    from uqlib import cache

    return cache.count_entries()  # an entry folder (one .npy per array) counts once


def _timed_step(profile: str, kind: str, step: str, run: typing.Callable[[], object], record: bool) -> None:
    """Run one step of a build, timing it and sampling its processes' memory (:mod:`uqlib.paper.performance`)."""
    start, entries = time.perf_counter(), _cache_entries()
    print(f"[uqlib.paper.book] {step} ({profile} profile, {kind} build)", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "arrays.jsonl"
        with _environment({progress.ARRAY_LOG: str(log)}), performance.MemorySampler() as memory:
            run()
        arrays = performance.read_array_log(log)
    seconds = time.perf_counter() - start
    print(f"[uqlib.paper.book] {step} done in {seconds:.0f} s", flush=True)
    if record:
        performance.record_step(RESULTS_ROOT / profile / "timings.json", kind, step, seconds, memory.peak_mib,
                                _cache_entries() - entries, arrays)



def run_benchmarks() -> None:
    """``benchmarks/run_all.py`` (every benchmark script) in a subprocess; raises when one fails."""
    script = PROJECT_ROOT / "benchmarks" / "run_all.py"
    if subprocess.run([sys.executable, str(script)], cwd=PROJECT_ROOT).returncode != 0:
        raise NotebookError(f"a benchmark failed: rerun {script.relative_to(PROJECT_ROOT)} to see which")


def build(profile: str = "full", only: list[str] | None = None, do_render: bool = True,
          directory: Path = PROJECT_ROOT, benchmarks: bool = False) -> Path | None:
    """Verify the data, run the benchmarks (if asked), execute the notebooks with ``profile``, render the
    book in ``directory``.

    Only a build of the project's own book records its steps for the performance page, as a cold
    build when the compute cache was empty at its start and as a warm one otherwise.
    """
    resolve_all()
    overrides = load_profile(profile)
    unknown = sorted(set(overrides) - set(notebooks()))
    if unknown:
        raise KeyError(f"Profile {profile!r} names notebooks not in _toc.yml: {unknown}")
    directory = Path(directory)
    record = directory == PROJECT_ROOT
    kind = "cold" if _cache_entries() == 0 else "warm"
    if record and only is None:  # a whole build: its kind's total is this build's steps alone
        performance.start_build(RESULTS_ROOT / profile / "timings.json", kind)
    if benchmarks:
        _timed_step(profile, kind, "benchmarks", run_benchmarks, record)
    for notebook in only or notebooks():
        _timed_step(profile, kind, notebook, lambda nb=notebook: run_notebook(
            nb, overrides.get(nb, {}), profile=profile, output_dir=directory / "book" / "notebooks"), record)
    if not do_render:
        return None
    index = render(directory)
    print(f"[uqlib.paper.book] book rendered: {index}")
    return index


def _parse_value(text: str) -> object:
    return yaml.safe_load(text)  # "3" -> 3, "0.1" -> 0.1, "[A, B]" -> list, "abc" -> "abc"


def main(argv: list[str] | None = None) -> int:
    """``python -m uqlib.paper.book``: exit 0 on success, 1 when a notebook fails (its executed copy holds the
    traceback), 2 for a user error (unknown notebook, profile or parameter, missing data), one line each."""
    parser = argparse.ArgumentParser(prog="python -m uqlib.paper.book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute all notebooks and render the book")
    b.add_argument("--profile", default="full")
    b.add_argument("--only", nargs="*", help="execute just these notebooks")
    b.add_argument("--no-render", action="store_true")
    b.add_argument("--benchmarks", action="store_true",
                   help="run benchmarks/run_all.py first, timed as a step (make book does not; make benchmarks "
                        "runs them on their own)")
    r = sub.add_parser("run", help="execute one notebook")
    r.add_argument("notebook")
    r.add_argument("--profile", default="fast")
    r.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.profile, args.only, do_render=not args.no_render, benchmarks=args.benchmarks)
        else:
            overrides = {**load_profile(args.profile).get(args.notebook, {}),
                         **{name: _parse_value(value) for name, value in args.p}}
            print(run_notebook(args.notebook, overrides, profile=args.profile))
    except NotebookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ParameterError, DataError, KeyError, FileNotFoundError) as err:
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {one_line(text)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


