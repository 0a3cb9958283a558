from __future__ import annotations

import nbformat
import papermill
import pytest

from uqlib.paper import book
from uqlib.paper.book import ParameterError


def test_every_toc_notebook_has_a_parameters_cell_and_no_outputs():
    names = book.notebooks()
    assert names[0] == "00_data"
    for name in names:
        nb = nbformat.read(book.NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), name
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), name
        assert nb.cells[0].cell_type == "markdown" and "## Overview" in nb.cells[0].source, name
        assert "## Summary" in nb.cells[-1].source, name


def test_full_profile_names_only_declared_parameters_of_the_right_type():
    for name, overrides in book.load_profile("full").items():
        book.validate_overrides(name, overrides)


def test_declared_parameters_reads_defaults_and_annotations():
    defaults, annotations = book.declared_parameters("00_data")
    assert defaults["seed"] == 0 and annotations["seed"] is int
    assert "max_per_subset" in defaults


def test_misspelled_parameter_lists_the_real_ones():
    with pytest.raises(ParameterError, match=r"no parameter\(s\) \['sead'\].*seed"):
        book.validate_overrides("00_data", {"sead": 1})


@pytest.mark.parametrize("overrides, expected", [
    ({"seed": "three"}, "seed: expected int, got str 'three'"),
    ({"seed": 1.5}, "seed: expected int, got float"),
    ({"max_per_subset": True}, "max_per_subset"),
    ({"subsets": ["A", "B"]}, "subsets: expected str"),
])
def test_wrong_parameter_type_is_a_clear_error(overrides, expected):
    with pytest.raises(ParameterError, match=expected):
        book.validate_overrides("00_data", overrides)


def test_right_types_pass_including_none_and_int_for_float():
    book.validate_overrides("00_data", {"max_per_subset": None, "seed": 7})
    book.check_parameters({"x": 3, "__annotations__": {"x": float}})
    with pytest.raises(ParameterError):
        book.check_parameters({"x": "3", "__annotations__": {"x": float}})


def test_unknown_profile_is_an_error():
    with pytest.raises(KeyError, match="fast, full"):
        book.load_profile("huge")


def test_the_notebook_itself_rejects_a_wrong_type_from_plain_papermill(tmp_path):
    """A reader who runs papermill directly gets the same message, before any work is done."""
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(book.NOTEBOOK_DIR / "00_data.ipynb", tmp_path / "out.ipynb",
                                   parameters={"max_per_subset": "all"}, kernel_name="python3",
                                   cwd=str(book.NOTEBOOK_DIR), progress_bar=False)
    assert err.value.ename == "ParameterError" and "max_per_subset: expected" in err.value.evalue


def test_failing_notebook_stops_with_its_name_and_cell(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x: int = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("raise ValueError(f'broken with x={x}')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "99_broken.ipynb")
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path)
    monkeypatch.setattr(book, "RESULTS_ROOT", tmp_path / "results")
    # cell 3: papermill injects the parameters as cell 2
    with pytest.raises(book.NotebookError, match=r"99_broken failed in cell 3: ValueError: broken with x=5"):
        book.run_notebook("99_broken", {"x": 5}, output_dir=tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "99_broken.ipynb").is_file()


def test_results_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UQLIB_RESULTS", str(tmp_path))
    assert book.results_dir("00_data") == tmp_path / "00_data" and (tmp_path / "00_data").is_dir()


def test_cli_reports_a_missing_mirror_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UQLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("UQLIB_DATA_MIRROR", str(tmp_path / "no-such-mirror"))
    assert book.main(["build", "--profile", "fast", "--no-render"]) == 2
    err = capsys.readouterr().err
    assert "not a directory" in err and err.count("\n") == 1


def test_cli_reports_an_unknown_parameter_with_exit_code_2(capsys):
    assert book.main(["run", "00_data", "-p", "descriptor_presett", "Func-72"]) == 2
    err = capsys.readouterr().err
    assert "has no parameter(s) ['descriptor_presett']" in err and err.count("\n") == 1


def test_a_run_removes_the_old_claim_record_before_it_starts(tmp_path, monkeypatch):
    """A failed run must not leave the previous run's claims for the reproduction summary."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x: int = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("raise ValueError('broken')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "97_claims.ipynb")
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path)
    monkeypatch.setattr(book, "RESULTS_ROOT", tmp_path / "results")
    old = tmp_path / "results" / "fast" / "97_claims" / "claims.json"
    old.parent.mkdir(parents=True)
    old.write_text("[]")
    with pytest.raises(book.NotebookError):
        book.run_notebook("97_claims", output_dir=tmp_path / "out", progress=False)
    assert not old.exists()


# -- one run configuration per page, readable tables ------------------------------------------------

def test_run_configuration_shows_the_values_used_and_who_set_them(monkeypatch, tmp_path):
    monkeypatch.setenv("UQLIB_RESULTS", str(book.RESULTS_ROOT / "full"))
    defaults, annotations = book.declared_parameters("00_data")
    namespace = {**defaults, "seed": defaults["seed"] + 5, "__annotations__": annotations}
    view = book.run_configuration(namespace, "00_data")
    rows = view.data.set_index("parameter")
    assert rows.loc["profile", "value"] == "full"
    assert rows.loc["seed", "value"] == str(defaults["seed"] + 5) and rows.loc["seed", "set by"] == "profile"
    other = next(name for name in annotations if name != "seed")
    assert rows.loc[other, "set by"] == "default" and rows.loc["seed", "meaning"]  # the parameter's comment
    assert "This page was computed with" in view.to_html()
    with pytest.raises(book.ParameterError, match="globals"):
        book.run_configuration({}, "00_data")


def test_the_runner_tags_both_parameters_cells_remove_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("seed = 3", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(seed)")])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert book.hide_parameter_cells(path) == 2
    tags = [c.metadata.get("tags", []) for c in nbformat.read(path, as_version=4).cells]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], []]


def test_every_notebook_removes_its_parameters_cell_and_shows_its_run_configuration():
    for name in book.notebooks():
        nb = nbformat.read(book.NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert "remove-cell" in parameters[0].metadata["tags"], name
        assert any(f'book.run_configuration(globals(), "{name}")' in c.source for c in nb.cells), name


def test_table_puts_units_in_headers_rounds_by_quantity_and_shows_a_dash_for_missing():
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"F_RMSE": [12.345, np.nan], "rate": [0.1234, None], "what": ["a", None]})
    html = book.table(frame, "A caption", units={"F_RMSE": "meV/Å"}, percent=["rate"], digits={"F_RMSE": 1}).to_html()
    assert "<caption>A caption</caption>" in html
    assert ">F_RMSE (meV/Å)<" in html and ">rate (%)<" in html
    assert ">12.3<" in html and ">12.35<" not in html and ">12.345<" not in html
    assert "nan" not in html.lower() and "None" not in html and html.count(">–<") == 3
    by_row = pd.DataFrame({"m1": [1.0, 0.5]}, index=["F_RMSE", "rate"])
    html = book.table(by_row, "Rows", units={"F_RMSE": "meV/Å"}, percent=["rate"]).to_html()
    assert ">F_RMSE (meV/Å)<" in html and ">50<" in html
    with pytest.raises(KeyError, match="no columns"):
        book.table(frame, "x", units={"E_RMSE": "meV/atom"})


def test_with_paper_column_places_values_by_row_and_refuses_a_renamed_row():
    import pandas as pd

    from uqlib.paper import values

    frame = pd.DataFrame({"K = 6": [0.1, 0.2]}, index=["by CBF (%)", "atoms flagged (%)"])
    out = book.with_paper_column(frame, "paper", {"by CBF (%)": values.AD_ENSEMBLE_CFG_RATE})
    assert out.loc["by CBF (%)", "paper"] == "0.076 %" and pd.isna(out.loc["atoms flagged (%)", "paper"])
    with pytest.raises(KeyError, match="atoms flagged"):
        book.with_paper_column(frame, "paper", {"atoms flagged": values.AD_ENSEMBLE_ATOM_RATE})
    spaced = frame.rename(index={"by CBF (%)": "  by CBF (%)"})  # as studies.flagged_fractions names its rows
    assert "by CBF (%)" in book.with_paper_column(spaced, "paper", {"by CBF (%)": values.AD_ENSEMBLE_CFG_RATE}).index


def test_glue_paper_values_glues_every_value_under_its_key(monkeypatch):
    import myst_nb

    from uqlib.paper import values

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display=True: glued.update({key: value.data}))
    keys = book.glue_paper_values()
    assert len(keys) == len(values.ALL_VALUES) == len(glued)
    assert glued["paper-ad-dopt-cfg-rate"] == "75.4 %" and glued["paper-f-rmse-func15"] == "171.62 meV/Å"
