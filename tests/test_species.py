"""Any species: a Cu-Au alloy labelled by ase's EMT, fitted, given active sets and graded by the ``uqlib`` command.

Every gamma is checked against pyace's own ``PyACECalculator`` loaded with the exported
potential and active set; the design matrix against pyace's ``LinearACEDataset``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from pyace import ACEBBasisSet, ACECTildeBasisSet, PyACECalculator
from pyace.linearacefit import LinearACEDataset
from synthetic import alloy_cell

from uqlib import ace, activeset, cli, config
from uqlib import io as uqlib_io

ALLOY = ("Au", "Cu")  # pyace orders species alphabetically


def alloy(seed: int, rattle: float, gold: float, labelled: bool = True) -> Atoms:
    """A 32-atom fcc Cu-Au cell, random occupation (fraction ``gold`` of Au), rattled; labelled by EMT (eV, eV/Å)."""
    return alloy_cell("Cu", "Au", a=3.75, guest_fraction=gold, rattle=rattle, seed=seed, labelled=labelled)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m uqlib ...`` in a fresh process, this checkout first on the path, an isolated compute cache."""
    env = {**os.environ, "PYTHONPATH": str(config.PROJECT_ROOT), "UQLIB_COMPUTE_CACHE": str(cwd / "cache"),
           "UQLIB_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "uqlib", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def run_in_process(*args: str, cwd: Path) -> tuple[int, str]:
    """``uqlib.cli.main`` in this process (a fresh interpreter costs seconds): exit code and stderr."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.setenv("UQLIB_COMPUTE_CACHE", str(cwd / "cache"))
        patch.setenv("UQLIB_PROGRESS", "0")
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["--quiet", *args])
    return code, stderr.getvalue()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """20 training cells (extxyz), 4 unlabelled frames to grade, then fit + single and clustered active sets."""
    folder = tmp_path_factory.mktemp("alloy")
    train = [alloy(seed, rattle=0.05 + 0.01 * (seed % 10), gold=0.2 + 0.03 * seed) for seed in range(20)]
    ase.io.write(folder / "train.extxyz", train)
    ase.io.write(folder / "new.extxyz", [alloy(100 + s, rattle=0.05 + 0.1 * s, gold=0.5, labelled=False)
                                         for s in range(4)])
    # the command as a user runs it; the species come from the training file
    result = run("fit", "train.extxyz", "--preset", "Func-33", "--ensemble", "2", "-o", "model", cwd=folder)
    assert result.returncode == 0, result.stderr
    for step in [("activeset", "train.extxyz", "--potential", "model/potential.yaml", "-o", "model/potential.asi"),
                 ("activeset", "train.extxyz", "--potential", "model/potential.yaml", "--clusters", "kmeans:2",
                  "-o", "model/clusters")]:
        code, err = run_in_process(*step, cwd=folder)
        assert code == 0, err
    return folder


def pyace_gammas(yaml: Path, asi: Path, frames: list[Atoms]) -> np.ndarray:
    """pacemaker's own per-atom gamma: PyACECalculator with the potential and the active set."""
    calc = PyACECalculator(str(yaml))
    calc.set_active_set(str(asi))
    return activeset.calculator_gammas(calc, frames)


def test_w_ladder_is_unchanged_and_other_species_keep_its_limits():
    # the names count W's coefficients; for_elements keeps the limits and only changes the species
    assert [p.name for p in ace.LADDER] == [f"Func-{p.n_functions}" for p in ace.LADDER]
    assert [p.n_functions for p in ace.LADDER] == [33, 49, 72, 222, 724, 968]
    assert ace.LADDER[0].for_elements(["W"]) == ace.LADDER[0]
    alloy_preset = ace.get_preset("Func-33").for_elements(["Cu", "Au", "Cu"])
    assert alloy_preset.elements == ALLOY and alloy_preset.lmax_by_orders == ace.LADDER[0].lmax_by_orders
    assert alloy_preset.n_functions == len(alloy_preset.basis_set().basis_coeffs) > 2 * 33  # binary functions added
    assert "species differ" in ace.nesting_problem(alloy_preset, "Func-72")
    with pytest.raises(ValueError, match="chemical symbols"):
        ace.LADDER[0].for_elements(["Cu", "Xx"])


def test_alloy_design_matrix_is_pyaces_linear_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("UQLIB_COMPUTE_CACHE", str(tmp_path))
    cells = [alloy(seed, rattle=0.1, gold=0.3 + 0.2 * seed) for seed in range(3)]
    table = uqlib_io.table_from_atoms(cells)
    preset = ace.get_preset("Func-33").for_elements(ALLOY)
    dm = ace.design_matrix(table, preset, workers=1, progress=False)
    frame = pd.DataFrame({"ase_atoms": cells, "energy": table["energy"], "forces": table["forces"]})
    reference = LinearACEDataset(preset.basis_set(), frame).get_design_matrix(max_workers=1)
    np.testing.assert_allclose(np.vstack([dm.energy_rows, dm.force_rows]), reference, rtol=1e-10, atol=1e-12)
    # an atom's B values sit in its species' block only: Au first (pyace's order), Cu after
    gold = np.concatenate([a.symbols == "Au" for a in cells])
    half = preset.n_functions // 2
    assert not dm.projections[gold, half:].any() and not dm.projections[~gold, :half].any()
    assert dm.select("Func-33") is dm  # a preset named here has the design matrix's species
    with pytest.raises(ValueError, match="species"):
        ace.LinearACE("Func-33").fit(dm)


@pytest.mark.parametrize("spoil, message", [
    (lambda a: a.positions.__setitem__((2, 0), np.nan), "user-0001 has non-finite"),
    (lambda a: setattr(a, "pbc", [True, False, True]), "user-0001 is periodic in only some directions"),
    (lambda a: a.symbols.__setitem__(0, "Ag"), "user-0001 contains ['Ag']"),
])
def test_featurize_refuses_bad_structures_by_id_before_pyace(spoil, message, monkeypatch):
    cells = [alloy(seed, rattle=0.1, gold=0.5) for seed in range(2)]
    table = uqlib_io.table_from_atoms(cells)
    spoil(table["atoms"].iloc[1])
    monkeypatch.setattr(ace, "_set_worker_basis", lambda basis: pytest.fail("pyace was called"))
    with pytest.raises(uqlib_io.DataError) as err:
        ace.featurize(table, ace.get_preset("Func-33").for_elements(ALLOY), workers=1, progress=False)
    assert message in str(err.value)
    empty = table.copy()
    empty.loc[1, "atoms"] = Atoms()
    with pytest.raises(uqlib_io.DataError, match="user-0001 has no atoms"):
        ace.featurize(empty, ace.get_preset("Func-33").for_elements(ALLOY), workers=1, progress=False)


def test_fit_finds_the_species_and_writes_a_model_pyace_loads(work):
    record = json.loads((work / "model" / "fit.json").read_text())
    basis = ACEBBasisSet(str(work / "model" / "potential.yaml"))
    assert record["elements"] == list(ALLOY) == list(basis.elements_name)
    assert record["n_functions"] == len(basis.basis_coeffs) == ace.get_preset("Func-33").for_elements(ALLOY).n_functions
    assert sum(record["atoms_by_species"].values()) == record["n_atoms"] == 20 * 32
    assert len(list((work / "model" / "members").glob("member-*.yaml"))) == 2
    ACECTildeBasisSet(str(work / "model" / "potential.yace"))
    # the YAML is the fitted model: pyace's energies and forces give the recorded training errors
    calc = PyACECalculator(str(work / "model" / "potential.yaml"))
    energy_errors, force_errors, forces = [], [], []
    for atoms in ase.io.read(work / "train.extxyz", ":"):
        reference_e, reference_f = atoms.get_potential_energy() / len(atoms), atoms.get_forces()
        atoms.calc = calc
        energy_errors.append(atoms.get_potential_energy() / len(atoms) - reference_e)
        force_errors.append(atoms.get_forces() - reference_f)
        forces.append(reference_f)
    rmse_f = 1e3 * np.sqrt(np.mean(np.square(force_errors)))
    assert 1e3 * np.sqrt(np.mean(np.square(energy_errors))) == pytest.approx(record["train_rmse"]["E_rmse"], rel=1e-4)
    assert rmse_f == pytest.approx(record["train_rmse"]["F_rmse"], rel=1e-4)
    assert rmse_f < 0.5 * 1e3 * np.std(forces), "the linear model should explain most of EMT's forces"


def test_grade_reproduces_pyace_gamma_for_the_alloy(work, tmp_path):
    out = tmp_path / "graded.extxyz"
    code, err = run_in_process("grade", str(work / "new.extxyz"), "--potential", str(work / "model/potential.yaml"),
                               "--active-set", str(work / "model/potential.asi"), "--gamma-hi", "1e9", "-o", str(out),
                               cwd=tmp_path)
    assert code == 0, err
    ours = np.concatenate([a.arrays["gamma"] for a in ase.io.read(out, ":")])
    frames = ase.io.read(work / "new.extxyz", ":")
    np.testing.assert_allclose(ours, pyace_gammas(work / "model/potential.yaml", work / "model/potential.asi",
                                                  frames), rtol=1e-6)
    assert ours.max() > 1 > ours.min(), "the most rattled frame should extrapolate, the least not"


def test_clustered_grade_of_the_alloy_is_the_minimum_over_pyace_clusters(work, tmp_path):
    out = tmp_path / "graded.extxyz"
    code, err = run_in_process("grade", str(work / "new.extxyz"), "--potential", str(work / "model/potential.yaml"),
                               "--active-set", str(work / "model/clusters"), "--gamma-hi", "1e9", "-o", str(out),
                               cwd=tmp_path)
    assert code == 0, err
    graded = ase.io.read(out, ":")
    index = json.loads((work / "model/clusters/index.json").read_text())
    frames = ase.io.read(work / "new.extxyz", ":")
    species = np.concatenate([a.get_chemical_symbols() for a in frames])
    per_cluster = []
    for name, file in index["files"].items():
        # pyace needs every species in an .asi: a species this cluster does not cover gets a stand-in, graded inf
        inverses = dict(np.load(work / "model/clusters" / file))
        n_functions = {e: ace.get_preset("Func-33").for_elements(ALLOY).n_functions // 2 for e in ALLOY}
        with open(tmp_path / file, "wb") as fh:
            np.savez(fh, **{e: inverses.get(e, np.eye(n_functions[e])) for e in ALLOY})
        gamma = pyace_gammas(work / "model/potential.yaml", tmp_path / file, frames)
        gamma[~np.isin(species, index["species"][name])] = np.inf
        per_cluster.append(gamma)
    per_cluster = np.stack(per_cluster, axis=1)
    np.testing.assert_allclose(np.concatenate([a.arrays["gamma"] for a in graded]), per_cluster.min(axis=1),
                               rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([a.arrays["gamma_cluster"] for a in graded]),
                                  per_cluster.argmin(axis=1))


def test_fit_with_elements_refuses_other_species_by_file_and_frame(work, tmp_path):
    code, err = run_in_process("fit", str(work / "train.extxyz"), "--preset", "Func-33", "--elements", "Cu",
                               "-o", "out", cwd=tmp_path)
    assert code == 2 and "train.extxyz, frame 0 contains ['Au']" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
    code, err = run_in_process("fit", str(work / "train.extxyz"), "--preset", "Func-33", "--elements", "Cu,Qq",
                               "-o", "out", cwd=tmp_path)
    assert code == 2 and "chemical symbols" in err
