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
import shutil
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
    return output


def render(builder_dir: Path = PROJECT_ROOT) -> Path:
    """Render the book to HTML with jupyter-book 1 (notebooks are already executed)."""
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(builder_dir)]
    subprocess.run(cmd, check=True)
    return builder_dir / "_build" / "html" / "index.html"


def build_elsewhere(directory: Path, profile: str = "fast") -> Path:
    """Build the whole book in ``directory`` (a copy of its pages), leaving the project's book as it is.

    Used by the rendered-book check, so that a fast build never replaces the full one.
    """
    directory = Path(directory)
    (directory / "book").mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(PROJECT_ROOT / name, directory / name)
    for pattern in ("*.md", "*.bib"):  # pages, and the bibliography they cite from
        for page in (PROJECT_ROOT / "book").glob(pattern):
            shutil.copy(page, directory / "book" / page.name)
    if (PROJECT_ROOT / "book" / "_static").is_dir():
        shutil.copytree(PROJECT_ROOT / "book" / "_static", directory / "book" / "_static", dirs_exist_ok=True)
    return build(profile, directory=directory)


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


def _cache_entries() -> int:
    """How many computed entries the compute cache holds (design matrices, labels, structures, ...)."""
    from uqlib import cache

    root = cache.cache_root()
    return sum(1 for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp")) if root.is_dir() else 0


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
    b.add_argument("--benchmarks", action="store_true", help="run benchmarks/run_all.py first (timed)")
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


