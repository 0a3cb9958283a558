"""pacemaker parity on a two-species Ni-Al set labelled by ase's EMT: the active set is pace_activeset's, clusters
keep the species they span, and the clustered gamma is the minimum over per-cluster pyace PyACECalculators."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from pyace import PyACECalculator
from synthetic import alloy_cell

from uqlib import activeset, config, grading

PACE_ACTIVESET = Path(sys.executable).with_name("pace_activeset")


def nial(seed: int, *, aluminium: float, rattle: float, a: float = 3.6, labelled: bool = True) -> Atoms:
    """A 32-atom fcc Ni-Al cell, random occupation (fraction ``aluminium`` of Al), rattled; EMT labels (eV, eV/Å)."""
    return alloy_cell("Ni", "Al", a=a, guest_fraction=aluminium, rattle=rattle, seed=seed, labelled=labelled)


KINDS = [dict(aluminium=0.15, a=3.55), dict(aluminium=0.8, a=3.9), dict(aluminium=0.5, a=3.55),
         dict(aluminium=0.5, a=3.95)]  # Ni-rich, Al-rich, 50/50 compressed, 50/50 expanded


def training_set() -> list[Atoms]:
    """The four kinds of cell, ten of each; rattled enough (0.12-0.16 Å) for well-conditioned active sets."""
    return [nial(100 * k + s, rattle=0.12 + 0.01 * (s % 5), **kind) for k, kind in enumerate(KINDS)
            for s in range(10)]


def new_frames() -> list[Atoms]:
    """One new cell of each kind (in distribution), then two hot (rattle 0.35 Å) and one squeezed cell."""
    frames = [nial(900 + k, rattle=0.12, labelled=False, **kind) for k, kind in enumerate(KINDS)]
    return frames + [nial(950 + s, aluminium=0.5, rattle=0.35, a=3.7, labelled=False) for s in range(2)] + [
        nial(960, aluminium=0.3, rattle=0.12, a=3.3, labelled=False)]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m uqlib ...`` in a fresh process (this checkout first), an isolated compute cache."""
    env = {**os.environ, "PYTHONPATH": str(config.PROJECT_ROOT), "UQLIB_COMPUTE_CACHE": str(cwd / "cache"),
           "UQLIB_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "uqlib", "-q", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """train.extxyz (40 labelled cells), new.extxyz (7 unlabelled, 3 far out), a Func-33 fit, pacemaker's data."""
    folder = tmp_path_factory.mktemp("nial")
    train = training_set()
    ase.io.write(folder / "train.extxyz", train)
    ase.io.write(folder / "new.extxyz", new_frames())
    result = run("fit", "train.extxyz", "--preset", "Func-33", "-o", "model", cwd=folder)
    assert result.returncode == 0, result.stderr
    pd.DataFrame({"ase_atoms": train, "energy": [a.get_potential_energy() for a in train],
                  "forces": [a.get_forces() for a in train]}).to_pickle(folder / "train.pckl.gzip",
                                                                       compression="gzip")
    return folder


def pyace_gamma(yaml: Path, inverses: dict[str, np.ndarray], frames: list[Atoms], path: Path) -> np.ndarray:
    """pyace's own gamma of every atom: PyACECalculator with the potential and these inverses as an .asi."""
    with open(path, "wb") as fh:
        np.savez(fh, **inverses)
    calc = PyACECalculator(str(yaml))
    calc.set_active_set(str(path))
    return activeset.calculator_gammas(calc, frames)


def selected_atoms(inverse: np.ndarray, rows: np.ndarray) -> list[int]:
    """Which training rows an active set holds: for each row of ``inverse^-1``, the nearest of ``rows``, sorted."""
    active = np.linalg.inv(inverse)
    distance = np.linalg.norm(active[:, None, :] - rows[None, :, :], axis=2)
    nearest = distance.argmin(axis=1)
    assert (distance.min(axis=1) < 1e-4 * np.abs(rows).max()).all(), "an active row is no training row"
    return sorted(nearest.tolist())


def test_default_active_set_is_pace_activesets_with_per_species_outliers(work, tmp_path):
    """pyace's own script on the same data: the same inverses, the same gamma on new frames (1e-6)."""
    result = subprocess.run([str(PACE_ACTIVESET), str(work / "model/potential.yaml"), "-d",
                             str(work / "train.pckl.gzip"), "-V"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    theirs = activeset.ActiveSet.load(work / "model/potential.asi")  # pace_activeset writes it beside the .yaml
    (work / "model/potential.asi").rename(tmp_path / "pace.asi")
    ours_run = run("activeset", "train.extxyz", "--potential", "model/potential.yaml", "-o", str(tmp_path / "u.asi"),
                   cwd=work)
    assert ours_run.returncode == 0, ours_run.stderr
    assert "per-species Q3 + 1.5 IQR" in ours_run.stdout
    ours = activeset.ActiveSet.load(tmp_path / "u.asi")
    assert ours.elements == theirs.elements == ["Al", "Ni"]
    basis = grading.load_potential(work / "model/potential.yaml")
    training = grading.species_projections(basis, ase.io.read(work / "train.extxyz", ":"))
    frames = ase.io.read(work / "new.extxyz", ":")
    projections = grading.species_projections(basis, frames)
    for element in ours.elements:
        # the same training atoms: each row of A = (A^-1)^-1 is the nearest training row of the same atom
        assert selected_atoms(ours.inverses[element], training[element]) == \
            selected_atoms(theirs.inverses[element], training[element])
        np.testing.assert_allclose(ours.grade(projections)[element], theirs.grade(projections)[element], rtol=1e-6)
    # the global rule (one threshold over both species) is another active set on this data
    global_run = run("activeset", "train.extxyz", "--potential", "model/potential.yaml", "--outliers", "global",
                     "-o", str(tmp_path / "g.asi"), cwd=work)
    assert global_run.returncode == 0, global_run.stderr
    per_species = [int(n) for n in ours_run.stdout.split(" atoms excluded")[0].split()[-3::2]]
    overall = [int(n) for n in global_run.stdout.split(" atoms excluded")[0].split()[-3::2]]
    assert per_species[1] == overall[1] == 40 * 32
    assert per_species[0] != overall[0], (ours_run.stdout, global_run.stdout)


def test_kmeans_4_on_two_species_keeps_its_clusters_and_grades_as_pyace(work, tmp_path):
    built = run("activeset", "train.extxyz", "--potential", "model/potential.yaml", "--clusters", "kmeans:4",
                "-o", str(tmp_path / "clusters"), cwd=work)
    assert built.returncode == 0, built.stderr
    index = json.loads((tmp_path / "clusters/index.json").read_text())
    if len(index["files"]) < 4:  # a dropped cluster is named, with the reason, on stderr
        assert "dropped" in built.stderr and "of the 4 clusters asked for survive" in built.stderr
    for name in index["merged"]:  # a cluster short of a species says so, in one plain line
        assert f"uqlib activeset: warning: cluster {name} " in built.stderr
    assert len(index["files"]) >= 3 and "np.str_" not in built.stderr + built.stdout
    assert set().union(*map(set, index["species"].values())) == {"Al", "Ni"}
    graded = tmp_path / "graded.extxyz"
    result = run("grade", "new.extxyz", "--potential", "model/potential.yaml", "--active-set",
                 str(tmp_path / "clusters"), "--gamma-hi", "1e9", "-o", str(graded), cwd=work)
    assert result.returncode == 0, result.stderr
    ours = np.concatenate([a.arrays["gamma"] for a in ase.io.read(graded, ":")])
    frames = ase.io.read(work / "new.extxyz", ":")
    species = np.concatenate([a.get_chemical_symbols() for a in frames])
    basis = grading.load_potential(work / "model/potential.yaml")
    n_functions = {e: rows.shape[1] for e, rows in grading.species_projections(basis, frames).items()}
    per_cluster = []
    for name, file in index["files"].items():
        inverses = dict(np.load(tmp_path / "clusters" / file))
        # pyace needs every species in an .asi: a species the cluster does not cover gets a stand-in, then inf
        full = {e: inverses.get(e, np.eye(n_functions[e])) for e in n_functions}
        gamma = pyace_gamma(work / "model/potential.yaml", full, frames, tmp_path / f"{name}.asi")
        gamma[~np.isin(species, index["species"][name])] = np.inf
        per_cluster.append(gamma)
    np.testing.assert_allclose(ours, np.min(per_cluster, axis=0), rtol=1e-6)
    print(f"kmeans:4 kept {len(index['files'])} clusters, species {index['species']}; stderr: {built.stderr!r}")
    in_distribution = np.concatenate([a.arrays["gamma"] for a in ase.io.read(graded, ":4")])
    assert in_distribution.max() < ours.max() and ours.max() > 1  # the hot and squeezed cells extrapolate more


def test_strict_makes_fewer_clusters_than_asked_an_error(work, tmp_path):
    """40 cells into 30 clusters cannot all span: a warning by default, exit 2 with --strict."""
    result = run("activeset", "train.extxyz", "--potential", "model/potential.yaml", "--clusters", "kmeans:30",
                 "-o", str(tmp_path / "many"), cwd=work)
    assert result.returncode == 0, result.stderr
    assert "uqlib activeset: warning:" in result.stderr and "of the 30 clusters asked for survive" in result.stderr
    strict = run("activeset", "train.extxyz", "--potential", "model/potential.yaml", "--clusters", "kmeans:30",
                 "--strict", "-o", str(tmp_path / "strict"), cwd=work)
    assert strict.returncode == 2 and "of the 30 clusters asked for survive" in strict.stderr
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize("inverse, message", [
    (np.full((3, 3), np.nan), "species Al holds non-finite values"),
    (np.zeros((3, 3)), "species Al is singular"),
    (np.ones((3, 2)), r"species Al is \(3, 2\), not a square matrix"),
])
def test_grade_refuses_a_damaged_asi_in_one_line(work, tmp_path, inverse, message):
    path = tmp_path / "bad.asi"
    with open(path, "wb") as fh:
        np.savez(fh, Al=inverse, Ni=np.eye(3))
    result = run("grade", "new.extxyz", "--potential", "model/potential.yaml", "--active-set", str(path),
                 "-o", str(tmp_path / "g.extxyz"), cwd=work)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert str(path) in result.stderr and re.search(message, result.stderr)
