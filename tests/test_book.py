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
