"""The ``uqlib`` command, called as a user would: in a subprocess, on files ase writes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.eam import EAM
from ase.calculators.singlepoint import SinglePointCalculator
from pyace import ACECTildeBasisSet, PyACECalculator

from uqlib import activeset, cli, config
from uqlib.cli import EXAMPLES
from uqlib.ensemble import atom_force_uncertainty
from uqlib.paper import data

ROOT = config.PROJECT_ROOT


def run_in_process(*args: str, cache: Path, cwd: Path, monkeypatch, capsys) -> tuple[int, str]:
    """``uqlib.cli.main`` in this process (fast, for the many error cases): exit code and stderr."""
    monkeypatch.setenv("UQLIB_COMPUTE_CACHE", str(cache))
    monkeypatch.setenv("UQLIB_PROGRESS", "0")
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def run(*args: str, cache: Path, cwd: Path, command: list[str] | None = None) -> subprocess.CompletedProcess:
    """``python -m uqlib ...`` with this checkout on the path and an isolated compute cache."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UQLIB_COMPUTE_CACHE": str(cache), "UQLIB_PROGRESS": "0"}
    command = command or [sys.executable, "-m", "uqlib"]
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def tungsten(eam: EAM, seed: int, strain: float, rattle: float, labelled: bool = True) -> Atoms:
    """A 16-atom bcc W cell, strained and rattled, labelled by the Zhou04 EAM (eV, eV/Å) or not."""
    atoms = bulk("W", "bcc", a=3.165 * (1 + strain), cubic=True).repeat(2)
    atoms.rattle(rattle, seed=seed)
    if labelled:
        atoms.calc = eam
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    return atoms


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Training cells and MD-like frames in extxyz, a fitted model with 3 members, single and clustered sets."""
    folder = tmp_path_factory.mktemp("cli")
    eam = EAM(potential=str(data.resolve("eam_zhou04")), form="alloy")
    settings = [(0, .05), (.01, .1), (-.01, .1), (.02, .15), (0, .2), (-.02, .05), (.03, .1), (0, .12)]
    ase.io.write(folder / "train.extxyz", [tungsten(eam, s, st, r) for s, (st, r) in enumerate(settings)])
    ase.io.write(folder / "md.extxyz", [tungsten(eam, 100 + s, 0.0, 0.03 + 0.04 * s, labelled=False)
                                        for s in range(5)])
    cache = folder / "cache"
    steps = [
        ("fit", "train.extxyz", "--preset", "Func-33", "--ensemble", "3", "-o", "model"),
        ("activeset", "train.extxyz", "--potential", "model/potential.yaml", "-o", "model/potential.asi"),
        ("activeset", "train.extxyz", "--potential", "model/potential.yaml", "--clusters", "kmeans:2",
         "-o", "model/clusters"),
    ]
    for step in steps:
        result = run(*step, cache=cache, cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


def pyace_gammas(yaml: Path, asi: Path, frames: list[Atoms]) -> np.ndarray:
    """pacemaker's own gamma of every atom: PyACECalculator with the potential and the active set."""
    calc = PyACECalculator(str(yaml))
    calc.set_active_set(str(asi))
    return activeset.calculator_gammas(calc, frames)


def test_help_shows_an_example_for_each_subcommand(tmp_path):
    top = run("--help", cache=tmp_path, cwd=tmp_path)
    assert top.returncode == 0
    for name, example in EXAMPLES.items():
        assert f"uqlib {name} " in top.stdout and example.splitlines()[0] in top.stdout
        sub = run(name, "--help", cache=tmp_path, cwd=tmp_path)
        assert sub.returncode == 0 and "example:" in sub.stdout and f"uqlib {name} " in sub.stdout
    assert "exit codes: 0" in top.stdout


def test_fit_writes_the_model_pyace_loads_and_a_record(work):
    record = json.loads((work / "model" / "fit.json").read_text())
    assert record["preset"] == "Func-33" and record["n_structures"] == 8 and record["ensemble"]["members"] == 3
    assert len(list((work / "model" / "members").glob("member-*.yaml"))) == 3
    # the YAML is the fitted model: PyACECalculator's energies give the recorded training RMSE
    calc = PyACECalculator(str(work / "model" / "potential.yaml"))
    errors = []
    for atoms in ase.io.read(work / "train.extxyz", ":"):
        reference = atoms.get_potential_energy() / len(atoms)
        atoms.calc = calc
        errors.append(atoms.get_potential_energy() / len(atoms) - reference)
    assert 1e3 * np.sqrt(np.mean(np.square(errors))) == pytest.approx(record["train_rmse"]["E_rmse"], rel=1e-4)
    ACECTildeBasisSet(str(work / "model" / "potential.yace"))  # pyace's converter wrote a loadable .yace


def test_grade_reproduces_pyace_gamma_and_writes_extxyz_and_csv(work, tmp_path):
    result = run("grade", "md.extxyz", "--potential", "model/potential.yaml", "--active-set", "model/potential.asi",
                 "--gamma-hi", "1e9", "-o", str(tmp_path / "graded.extxyz"), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0, result.stderr
    graded = ase.io.read(tmp_path / "graded.extxyz", ":")
    frames = ase.io.read(work / "md.extxyz", ":")
    ours = np.concatenate([a.arrays["gamma"] for a in graded])
    np.testing.assert_allclose(ours, pyace_gammas(work / "model/potential.yaml", work / "model/potential.asi",
                                                  frames), rtol=1e-6)
    assert ours.max() > 1, "the most rattled frames should extrapolate"
    with open(tmp_path / "graded.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["gamma_max"]) for r in rows] == pytest.approx([a.arrays["gamma"].max() for a in graded])
    assert graded[0].info["band"] in ("below", "between")


def test_clustered_grade_is_the_minimum_over_clusters_and_the_exit_code_flags_high_gamma(work, tmp_path):
    out = tmp_path / "graded.extxyz"
    result = run("grade", "md.extxyz", "--potential", "model/potential.yaml", "--active-set", "model/clusters",
                 "--ensemble", "model", "--gamma-lo", "1", "--gamma-hi", "1.5", "-o", str(out),
                 cache=tmp_path / "c", cwd=work)
    graded = ase.io.read(out, ":")
    gamma = np.concatenate([a.arrays["gamma"] for a in graded])
    assert result.returncode == (1 if gamma.max() > 1.5 else 0), result.stdout
    index = json.loads((work / "model/clusters/index.json").read_text())
    frames = ase.io.read(work / "md.extxyz", ":")
    per_cluster = np.stack([pyace_gammas(work / "model/potential.yaml", work / "model/clusters" / name, frames)
                            for name in index["files"].values()], axis=1)
    np.testing.assert_allclose(gamma, per_cluster.min(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([a.arrays["gamma_cluster"] for a in graded]),
                                  per_cluster.argmin(axis=1))
    # eq 3 force spread of the three members, from pyace
    members = [PyACECalculator(str(p)) for p in sorted((work / "model/members").glob("*.yaml"))]
    forces = []
    for calc in members:
        atoms = frames[-1].copy()
        atoms.calc = calc
        forces.append(atoms.get_forces())
    # extxyz stores 8 decimals
    np.testing.assert_allclose(graded[-1].arrays["force_spread"], atom_force_uncertainty(np.array(forces)),
                               rtol=1e-6, atol=1e-8)


def test_grade_reads_a_lammps_dump_with_a_species_map(work, tmp_path):
    frames = ase.io.read(work / "md.extxyz", ":2")
    lines = []
    for step, atoms in enumerate(frames):
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(atoms)),
                  "ITEM: BOX BOUNDS pp pp pp", *(f"0.0 {atoms.cell[i, i]}" for i in range(3)),
                  "ITEM: ATOMS id type x y z"]
        lines += [f"{i + 1} 1 {x} {y} {z}" for i, (x, y, z) in enumerate(atoms.positions)]
    (tmp_path / "md.lammpstrj").write_text("\n".join(lines) + "\n")
    common = ["--potential", str(work / "model/potential.yaml"), "--active-set", str(work / "model/potential.asi"),
              "--gamma-hi", "1e9", "-o", str(tmp_path / "g.extxyz")]
    missing = run("grade", "md.lammpstrj", *common, cache=tmp_path / "c", cwd=tmp_path)
    assert missing.returncode == 2 and "--species-map" in missing.stderr and "Traceback" not in missing.stderr
    result = run("grade", "md.lammpstrj", "--species-map", "1=W", *common, cache=tmp_path / "c", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    gamma = np.concatenate([a.arrays["gamma"] for a in ase.io.read(tmp_path / "g.extxyz", ":")])
    np.testing.assert_allclose(gamma, pyace_gammas(work / "model/potential.yaml", work / "model/potential.asi",
                                                   frames), rtol=1e-6)


def test_select_writes_at_most_n_extrapolating_frames(work, tmp_path):
    out = tmp_path / "picked.extxyz"
    result = run("select", "md.extxyz", "--potential", "model/potential.yaml", "--active-set", "model/potential.asi",
                 "--n", "2", "-o", str(out), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0, result.stderr
    picked = ase.io.read(out, ":")
    assert 1 <= len(picked) <= 2 and all(a.info["gamma_max"] > 1 for a in picked)


def _spoil(kind: str, atoms: Atoms) -> Atoms:
    if kind == "nan":
        atoms.positions[3, 1] = np.nan
    elif kind == "mixed periodicity":
        atoms.pbc = [True, True, False]
    elif kind == "unknown species":
        atoms.symbols[0] = "Mo"
    elif kind == "no atoms":
        atoms = Atoms()
    return atoms


BAD = {"nan": "frame 1 has non-finite", "mixed periodicity": "frame 1 is periodic in only some directions",
       "unknown species": "frame 1 contains ['Mo']", "no atoms": "frame 1 has no atoms"}


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("command", ["fit", "grade"])
def test_bad_structures_are_one_line_errors_and_nothing_is_cached(work, tmp_path, kind, command, monkeypatch, capsys):
    frames = ase.io.read(work / "train.extxyz", ":2")
    frames[1] = _spoil(kind, frames[1])
    ase.io.write(tmp_path / "bad.extxyz", frames)
    cache = tmp_path / "cache"
    if command == "fit":
        args = ["fit", "bad.extxyz", "--preset", "Func-33", "--elements", "W", "-o", "out"]  # W only: Mo is unknown
    else:
        args = ["grade", "bad.extxyz", "--potential", str(work / "model/potential.yaml"),
                "--active-set", str(work / "model/potential.asi"), "-o", "out.extxyz"]
    code, err = run_in_process(*args, cache=cache, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and f"bad.extxyz, {BAD[kind]}" in err and err.count("\n") == 1
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))
    assert not (tmp_path / "out.extxyz").exists() and not (tmp_path / "out.extxyz.part").exists()


def test_a_bad_structure_in_a_subprocess_prints_no_traceback(work, tmp_path):
    frames = ase.io.read(work / "train.extxyz", ":2")
    frames[1].positions[0, 0] = np.nan
    ase.io.write(tmp_path / "bad.extxyz", frames)
    result = run("fit", "bad.extxyz", "--preset", "Func-33", "-o", "out", cache=tmp_path / "cache", cwd=tmp_path)
    assert result.returncode == 2 and "bad.extxyz, frame 1 has non-finite" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists() or not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


@pytest.mark.parametrize("args, message", [
    (["fit", "train.extxyz", "--preset", "Func-33", "--kappa", "1.5", "-o", "x"], "--kappa must lie in [0, 1]"),
    (["fit", "train.extxyz", "--preset", "Func-34", "-o", "x"], "Unknown basis preset 'Func-34'"),
    (["fit", "md.extxyz", "--preset", "Func-33", "-o", "x"], "md.extxyz, frame 0 has no energy and forces"),
    (["grade", "nothing.extxyz", "--potential", "model/potential.yaml", "--active-set", "model/potential.asi",
      "-o", "x.extxyz"], "No such file: nothing.extxyz"),
    (["grade", "md.extxyz", "--potential", "model/potential.yace", "--active-set", "model/potential.asi",
      "-o", "x.extxyz"], "give its .yaml"),
    (["grade", "md.extxyz", "--potential", "model/potential.yaml", "--active-set", "model", "-o", "x.extxyz"],
     "No active set at model"),
    (["grade", "md.extxyz", "--potential", "model/potential.yaml", "--active-set", "model/potential.asi",
      "--gamma-lo", "5", "--gamma-hi", "2", "-o", "x.extxyz"], "gamma-lo <= gamma-hi"),
    (["activeset", "train.extxyz", "--potential", "model/potential.yaml", "--clusters", "kmeans:x", "-o", "y"],
     "give soap-birch:K, kmeans:K"),
    (["activeset", "train.extxyz", "--potential", "model/potential.yaml", "-o", "y"], "name it *.asi"),
])
def test_user_errors_exit_2_with_one_line(work, tmp_path, args, message, monkeypatch, capsys):
    code, err = run_in_process(*args, cache=tmp_path / "c", cwd=work, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_python_m_uqlib_data_reports_a_missing_mirror_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UQLIB_CACHE": str(tmp_path / "cache"),
           "UQLIB_DATA_MIRROR": str(tmp_path / "nowhere")}
    result = subprocess.run([sys.executable, "-m", "uqlib.paper.data"], env=env, capture_output=True, text=True)
    assert result.returncode == 2 and "not a directory" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def _installed_uqlib() -> str | None:
    """The ``uqlib`` executable on PATH if its Python imports this checkout's uqlib."""
    executable = shutil.which("uqlib")
    if executable is None:
        return None
    shebang = Path(executable).read_text().splitlines()[0].removeprefix("#!").strip()
    probe = subprocess.run([shebang, "-c", "import uqlib; print(uqlib.__file__)"], capture_output=True, text=True)
    return executable if Path(probe.stdout.strip()).resolve().parent.parent == ROOT else None


@pytest.mark.skipif(_installed_uqlib() is None, reason="no `uqlib` console script of this checkout on PATH")
def test_the_installed_command_grades_like_pyace(work, tmp_path):
    result = run("grade", "md.extxyz", "--potential", "model/potential.yaml", "--active-set", "model/potential.asi",
                 "--gamma-hi", "1e9", "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work,
                 command=[_installed_uqlib()])
    assert result.returncode == 0, result.stderr
    gamma = np.concatenate([a.arrays["gamma"] for a in ase.io.read(tmp_path / "g.extxyz", ":")])
    np.testing.assert_allclose(gamma, pyace_gammas(work / "model/potential.yaml", work / "model/potential.asi",
                                                   ase.io.read(work / "md.extxyz", ":")), rtol=1e-6)


def test_activeset_leaves_out_force_outliers_as_pace_activeset(work, tmp_path, monkeypatch, capsys):
    from uqlib.activeset import force_outlier_mask

    calc = PyACECalculator(str(work / "model/potential.yaml"))
    predicted, reference = [], []
    for atoms in ase.io.read(work / "train.extxyz", ":"):
        reference.append(atoms.get_forces())
        atoms.calc = calc
        predicted.append(atoms.get_forces())
    mask = force_outlier_mask(np.concatenate(predicted), np.concatenate(reference))
    args = ["activeset", "train.extxyz", "--potential", "model/potential.yaml", "-o", str(tmp_path / "a.asi")]
    monkeypatch.chdir(work)
    assert cli.main(args) == 0
    assert f"{int((~mask).sum())} of {len(mask)} atoms excluded as force outliers" in capsys.readouterr().out
    assert cli.main([*args, "--keep-outliers"]) == 0
    assert "all atoms offered to MaxVol (--keep-outliers)" in capsys.readouterr().out
