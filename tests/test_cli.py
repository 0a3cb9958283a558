"""The ``uqlib`` command, called as a user would: in a subprocess, on files ase writes."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import signal
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
                 "--ensemble", "model", "--gamma-lo", "1", "--gamma-hi", "1.5", "--fail-above", "-o", str(out),
                 cache=tmp_path / "c", cwd=work)
    graded = ase.io.read(out, ":")
    gamma = np.concatenate([a.arrays["gamma"] for a in graded])
    assert gamma.max() > 1.5, "the drill needs a frame above --gamma-hi"
    assert result.returncode == cli.EXIT_ABOVE == 3, result.stderr
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


# -- the error contract, atomic outputs, checked inputs, readable outputs (issues 23 and 24) ------------------------

POTENTIAL = ["--potential", "model/potential.yaml", "--active-set", "model/potential.asi"]


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The single stderr line of a failed command, checked: exit code, one line, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_drill_coincident_atoms_name_the_file_frame_and_atoms(work, tmp_path):
    frames = ase.io.read(work / "md.extxyz", ":2")
    frames[1].positions[9] = frames[1].positions[2]
    ase.io.write(tmp_path / "dup.extxyz", frames)
    result = run("grade", str(tmp_path / "dup.extxyz"), *POTENTIAL, "-o", str(tmp_path / "g.extxyz"),
                 cache=tmp_path / "c", cwd=work)
    assert "dup.extxyz, frame 1 has atoms 2 and 9 0 Å apart" in one_line_error(result)


def test_drill_fit_on_energies_without_forces_says_forces_are_missing(work, tmp_path):
    frames = ase.io.read(work / "train.extxyz", ":3")
    for atoms in frames:
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy())
    ase.io.write(tmp_path / "e_only.extxyz", frames)
    result = run("fit", "e_only.extxyz", "--preset", "Func-33", "-o", "m", cache=tmp_path / "c", cwd=tmp_path)
    assert "e_only.extxyz, frame 0 has no forces (it has an energy but fitting needs both" in one_line_error(result)
    assert not (tmp_path / "m").exists()


def test_drill_kmeans_0_gives_the_valid_range(work, tmp_path):
    result = run("activeset", "train.extxyz", "--potential", "model/potential.yaml", "--clusters", "kmeans:0",
                 "-o", str(tmp_path / "cl"), cache=tmp_path / "c", cwd=work)
    assert "--clusters kmeans:0: K must lie in [2, 8]" in one_line_error(result)


def _dump(frames: list[Atoms], path: Path, types: list[int] | None = None, drop_last_rows: int = 0) -> Path:
    lines = []
    for step, atoms in enumerate(frames):
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(atoms)), "ITEM: BOX BOUNDS pp pp pp",
                  *(f"0.0 {atoms.cell[i, i]}" for i in range(3)), "ITEM: ATOMS id type x y z"]
        kinds = types or [1] * len(atoms)
        lines += [f"{i + 1} {kinds[i]} {x} {y} {z}" for i, (x, y, z) in enumerate(atoms.positions)]
    path.write_text("\n".join(lines[:len(lines) - drop_last_rows]) + "\n")
    return path


def test_drill_an_incomplete_species_map_names_the_type_it_misses(work, tmp_path):
    _dump(ase.io.read(work / "md.extxyz", ":1"), tmp_path / "md.lammpstrj", types=[1] * 15 + [2])
    result = run("grade", str(tmp_path / "md.lammpstrj"), "--species-map", "1=W", *POTENTIAL,
                 "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work)
    assert "md.lammpstrj, frame 0 has LAMMPS atom type(s) [2] that --species-map 1=W does not name" in \
        one_line_error(result)


def test_drill_a_truncated_last_dump_frame_is_skipped_with_a_warning_and_the_rest_graded(work, tmp_path):
    frames = ase.io.read(work / "md.extxyz", ":3")
    _dump(frames, tmp_path / "md.lammpstrj", drop_last_rows=9)  # the last frame: 7 of 16 rows, as in the issue
    result = run("grade", str(tmp_path / "md.lammpstrj"), "--species-map", "1=W", *POTENTIAL, "--gamma-hi", "1e9",
                 "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "md.lammpstrj, frame 2 is incomplete (7 of 16 atom rows" in result.stderr
    graded = ase.io.read(tmp_path / "g.extxyz", ":")
    assert [len(a) for a in graded] == [16, 16]
    np.testing.assert_allclose(np.concatenate([a.arrays["gamma"] for a in graded]),
                               pyace_gammas(work / "model/potential.yaml", work / "model/potential.asi", frames[:2]),
                               rtol=1e-6)


def test_drill_a_truncated_extxyz_keeps_the_frames_before_it(work, tmp_path):
    text = (work / "md.extxyz").read_text().splitlines(keepends=True)
    (tmp_path / "cut.extxyz").write_text("".join(text[:3 * 18 + 2 + 4]))  # frame 3: 4 of 16 rows
    result = run("grade", str(tmp_path / "cut.extxyz"), *POTENTIAL, "--gamma-hi", "1e9",
                 "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0 and "cut.extxyz, frame 3 is incomplete (4 of 16 atom rows" in result.stderr
    assert len(ase.io.read(tmp_path / "g.extxyz", ":")) == 3


def test_drill_species_map_with_an_extxyz_says_it_is_ignored(work, tmp_path):
    result = run("grade", "md.extxyz", "--species-map", "1=W", *POTENTIAL, "--gamma-hi", "1e9",
                 "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "uqlib grade: warning: --species-map 1=W is ignored for md.extxyz: it is not a LAMMPS dump" in result.stderr


def test_drill_an_isolated_atom_grades_0_with_a_warning(work, tmp_path):
    atoms = ase.io.read(work / "md.extxyz", 0)
    atoms.pbc = False
    atoms.cell = [0, 0, 0]
    atoms += Atoms("W", positions=[[40.0, 40.0, 40.0]])
    ase.io.write(tmp_path / "iso.extxyz", atoms)
    result = run("grade", str(tmp_path / "iso.extxyz"), *POTENTIAL, "--gamma-hi", "1e9",
                 "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0, result.stderr
    assert ase.io.read(tmp_path / "g.extxyz").arrays["gamma"][16] == 0
    assert "iso.extxyz: 1 atom(s) in 1 frame(s) (first: frame 0, atom 16) have gamma 0" in result.stderr


@pytest.fixture(scope="module")
def alloy(tmp_path_factory):
    """32-atom Ni-Al cells labelled by ase's EMT: the first three Ni only, then three Ni-Al; a model with 2 members."""
    from ase.calculators.emt import EMT

    folder = tmp_path_factory.mktemp("alloy")
    frames = []
    for seed in range(6):
        atoms = bulk("Ni", "fcc", a=3.52, cubic=True).repeat(2)
        if seed >= 3:
            atoms.symbols[np.random.default_rng(seed).permutation(len(atoms))[:16]] = "Al"
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(atoms)
    ase.io.write(folder / "train.extxyz", frames)
    result = run("fit", "train.extxyz", "--preset", "Func-33", "--ensemble", "2", "-o", "model", cache=folder / "c",
                 cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def test_drill_a_batch_without_a_species_names_the_batch_and_the_fix(alloy, tmp_path):
    result = run("activeset", "train.extxyz", "--potential", "model/potential.yaml", "--batch-size", "3",
                 "-o", str(tmp_path / "a.asi"), cache=tmp_path / "c", cwd=alloy)
    line = one_line_error(result)
    assert "batch" in line and "Al" in line and "--batch-size" in line, line
    assert not (tmp_path / "a.asi").exists()


def test_drill_an_ensemble_of_another_basis_is_refused(work, alloy, tmp_path):
    result = run("grade", "md.extxyz", *POTENTIAL, "--ensemble", str(alloy / "model"),
                 "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work)
    assert "member members/member-00.yaml has species and functions" in one_line_error(result)


def test_drill_output_equal_to_input_is_refused_and_the_input_kept(work, tmp_path):
    shutil.copy(work / "md.extxyz", tmp_path / "md.extxyz")
    before = (tmp_path / "md.extxyz").read_bytes()
    for args in (["-o", "md.extxyz"], ["-o", "g.extxyz", "--summary", "md.extxyz"]):
        result = run("grade", "md.extxyz", "--potential", str(work / "model/potential.yaml"), "--active-set",
                     str(work / "model/potential.asi"), *args, cache=tmp_path / "c", cwd=tmp_path)
        assert "would overwrite the input md.extxyz" in one_line_error(result)
    result = run("select", "md.extxyz", "--potential", str(work / "model/potential.yaml"), "--active-set",
                 str(work / "model/potential.asi"), "--n", "1", "-o", "md.extxyz", cache=tmp_path / "c", cwd=tmp_path)
    assert "would overwrite the input md.extxyz" in one_line_error(result)
    assert (tmp_path / "md.extxyz").read_bytes() == before


def test_drill_a_path_under_a_file_is_a_user_error(work, tmp_path):
    result = run("grade", "md.extxyz", *POTENTIAL, "-o", str(work / "md.extxyz" / "g.extxyz"),
                 cache=tmp_path / "c", cwd=work)
    assert "md.extxyz" in one_line_error(result)


DRIVER = """
import errno, sys
import uqlib.cli as cli
{patch}
sys.exit(cli.main(sys.argv[1:]))
"""


def run_patched(patch: str, *args: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``uqlib ...`` in a subprocess after ``patch`` (Python) has replaced a function: faults a user cannot make."""
    return run(*args, cache=cache, cwd=cwd, command=[sys.executable, "-c", DRIVER.format(patch=patch)])


def test_drill_a_full_disk_names_the_output_and_publishes_nothing(work, tmp_path):
    patch = ("import ase.io\n"
             "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')\n"
             "ase.io.write = full")
    out = tmp_path / "g.extxyz"
    result = run_patched(patch, "grade", "md.extxyz", *POTENTIAL, "-o", str(out), cache=tmp_path / "c", cwd=work)
    assert f"no space left on the device while writing {out}" in one_line_error(result)
    assert list(tmp_path.glob("g.*")) == []


@pytest.mark.parametrize("error", ["ValueError('boom')", "KeyError('boom')",
                                   "FileNotFoundError(2, 'No such file', '/nonexistent/uqlib-internal.json')"])
def test_a_bug_is_a_traceback_and_exit_code_1(work, tmp_path, error):
    patch = f"import uqlib.grading\ndef bug(*a, **k): raise {error}\nuqlib.grading.load_potential = bug"
    result = run_patched(patch, "grade", "md.extxyz", *POTENTIAL, "-o", str(tmp_path / "g.extxyz"),
                         cache=tmp_path / "c", cwd=work)
    assert result.returncode == 1 and "Traceback" in result.stderr and "boom" in result.stderr or \
        "uqlib-internal.json" in result.stderr, result.stderr
    assert result.returncode == 1
    assert list(tmp_path.glob("g.*")) == []


def test_help_says_bugs_exit_1_and_interruptions_130(tmp_path):
    top = run("--help", cache=tmp_path, cwd=tmp_path).stdout
    assert "1 a bug in uqlib (a traceback" in top and "130 interrupted" in top and "2 user error" in top


def _long_trajectory(work: Path, folder: Path, n: int = 3000) -> Path:
    frames = ase.io.read(work / "md.extxyz", ":")
    path = folder / "long.extxyz"
    ase.io.write(path, [frames[i % len(frames)] for i in range(n)])
    return path


def _descendants(pid: int) -> set[int]:
    import psutil

    try:
        return {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _alive(pids: set[int]) -> set[int]:
    import psutil

    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.parametrize("signum, workers", [(signal.SIGINT, "1"), (signal.SIGTERM, "1"), (signal.SIGTERM, "2")])
def test_an_interrupted_grade_exits_130_with_one_line_and_leaves_no_part_file_or_worker(work, tmp_path, signum,
                                                                                         workers):
    import time

    path = _long_trajectory(work, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UQLIB_COMPUTE_CACHE": str(tmp_path / "c"), "UQLIB_PROGRESS": "0"}
    driver = DRIVER.format(patch="cli.SERIAL_BELOW_BYTES = 0  # a local Dask cluster even for this file")
    command = [sys.executable, "-c", driver, "-q", "grade", str(path), *POTENTIAL, "--workers", workers,
               "--chunk-size", "20", "-o", str(tmp_path / "g.extxyz")]
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 0 for p in tmp_path.glob("g.extxyz.*.part")):  # grading has begun
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    children = _descendants(process.pid)
    assert workers == "1" or children, "a local Dask cluster runs worker processes"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "uqlib grade: interrupted; partial outputs and worker processes removed"
    assert "Traceback" not in stderr
    time.sleep(1)
    assert not list(tmp_path.glob("g.*")), "no .part and no half output"
    assert not _alive(children), "no orphaned worker process"


def test_an_interrupted_fit_leaves_no_tmp_folder_and_no_pool_worker(work, tmp_path):
    import time

    big = []
    for atoms in ase.io.read(work / "train.extxyz", ":"):
        bigger = atoms.repeat((2, 2, 2))  # ase tiles the atoms image by image, so the forces tile alike
        bigger.calc = SinglePointCalculator(bigger, energy=8 * atoms.get_potential_energy(),
                                            forces=np.tile(atoms.get_forces(), (8, 1)))
        big.append(bigger)
    ase.io.write(tmp_path / "big.extxyz", big * 6)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UQLIB_COMPUTE_CACHE": str(tmp_path / "c"), "UQLIB_PROGRESS": "0"}
    command = [sys.executable, "-m", "uqlib", "-q", "fit", "big.extxyz", "--preset", "Func-968", "--workers", "2",
               "-o", "model"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 120
    while not _descendants(process.pid):  # the feature pool has started
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    time.sleep(0.5)
    children = _descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stderr.strip().splitlines()[-1].startswith("uqlib fit: interrupted"), stderr
    time.sleep(1)
    assert not _alive(children)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.extxyz", "c"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["big.extxyz"]


def test_a_fit_killed_while_writing_keeps_the_earlier_model_whole(work, tmp_path, monkeypatch, capsys):
    shutil.copytree(work / "model", tmp_path / "model", ignore=shutil.ignore_patterns("clusters", "*.asi"))
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "model").rglob("*") if p.is_file()}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_replace_folder", killed)
    code, err = run_in_process("fit", str(work / "train.extxyz"), "--preset", "Func-33", "--ensemble", "2", "-o",
                               "model", cache=tmp_path / "c", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 130 and "interrupted" in err
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "model").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "c") == ["model"], "the .tmp folder is removed"


def test_fit_into_an_earlier_fit_replaces_it_whole(work, tmp_path):
    shutil.copytree(work / "model", tmp_path / "model")  # 3 members, active sets
    result = run("fit", str(work / "train.extxyz"), "--preset", "Func-33", "--ensemble", "2", "-o", "model",
                 cache=tmp_path / "c", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "model" / "members").iterdir()) == ["member-00.yaml", "member-01.yaml"]
    assert not (tmp_path / "model" / "clusters").exists()
    record = json.loads((tmp_path / "model" / "fit.json").read_text())
    assert list(record["ensemble"]["files"]) == ["members/member-00.yaml", "members/member-01.yaml"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_fit_refuses_a_folder_that_is_not_an_earlier_fit_or_holds_its_training_file(work, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    result = run("fit", str(work / "train.extxyz"), "--preset", "Func-33", "-o", "notes", cache=tmp_path / "c",
                 cwd=tmp_path)
    assert "-o notes is a folder that is not empty and holds no fit.json" in one_line_error(result)
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "precious"
    shutil.copytree(work / "model", tmp_path / "model")
    shutil.copy(work / "train.extxyz", tmp_path / "model" / "train.extxyz")
    result = run("fit", "model/train.extxyz", "--preset", "Func-33", "-o", "model", cache=tmp_path / "c",
                 cwd=tmp_path)
    assert "would overwrite the input model/train.extxyz" in one_line_error(result)


def _ensemble_copy(work: Path, folder: Path) -> Path:
    shutil.copytree(work / "model", folder, ignore=shutil.ignore_patterns("clusters"))
    return folder


def test_grade_loads_exactly_the_members_fit_json_lists(work, tmp_path):
    clean = run("grade", "md.extxyz", *POTENTIAL, "--ensemble", "model", "--gamma-hi", "1e9",
                "-o", str(tmp_path / "clean.extxyz"), cache=tmp_path / "c", cwd=work)
    assert clean.returncode == 0, clean.stderr
    mixed = _ensemble_copy(work, tmp_path / "mixed")
    for k in range(3, 6):  # an older, larger fit's members left beside the listed three
        shutil.copy(mixed / "members" / "member-00.yaml", mixed / "members" / f"member-{k:02d}.yaml")
    result = run("grade", "md.extxyz", *POTENTIAL, "--ensemble", str(mixed), "--gamma-hi", "1e9",
                 "-o", str(tmp_path / "mixed.extxyz"), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "clean.csv") as a, open(tmp_path / "mixed.csv") as b:
        assert [r["force_spread_max"] for r in csv.DictReader(a)] == [r["force_spread_max"] for r in csv.DictReader(b)]


@pytest.mark.parametrize("damage, message", [
    ("no fit.json", "holds no fit.json, so it is not a finished `uqlib fit`"),
    ("member missing", "member members/member-02.yaml that fit.json lists is missing"),
    ("member changed", "member members/member-01.yaml changed after the fit"),
])
def test_grade_refuses_a_killed_or_damaged_ensemble(work, tmp_path, damage, message):
    folder = _ensemble_copy(work, tmp_path / "model")
    if damage == "no fit.json":
        (folder / "fit.json").unlink()
    elif damage == "member missing":
        (folder / "members" / "member-02.yaml").unlink()
    else:
        shutil.copy(folder / "members" / "member-00.yaml", folder / "members" / "member-01.yaml")
    result = run("grade", "md.extxyz", *POTENTIAL, "--ensemble", str(folder), "-o", str(tmp_path / "g.extxyz"),
                 cache=tmp_path / "c", cwd=work)
    assert message in one_line_error(result)


def test_temporary_names_are_unique_per_run(tmp_path):
    target = tmp_path / "g.extxyz"
    first, second = cli._unique_partial(target), cli._unique_partial(target)
    assert first != second and first.name.startswith("g.extxyz.") and first.suffix == ".part"


def test_two_grades_with_the_same_output_both_leave_a_complete_file(work, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UQLIB_COMPUTE_CACHE": str(tmp_path / "c"), "UQLIB_PROGRESS": "0"}
    path = _long_trajectory(work, tmp_path, n=200)
    command = [sys.executable, "-m", "uqlib", "-q", "grade", str(path), *POTENTIAL, "--gamma-hi", "1e9",
               "-o", str(tmp_path / "g.extxyz")]
    processes = [subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    assert len(ase.io.read(tmp_path / "g.extxyz", ":")) == 200
    assert not list(tmp_path.glob("*.part"))


def test_the_graded_extxyz_keeps_the_input_labels_and_adds_the_ensemble_mean(work, tmp_path):
    result = run("grade", "train.extxyz", "--potential", "model/potential.yaml", "--active-set", "model/clusters",
                 "--ensemble", "model", "--gamma-hi", "1e9", "-o", str(tmp_path / "g.extxyz"),
                 cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0, result.stderr
    graded = ase.io.read(tmp_path / "g.extxyz", ":")
    given = ase.io.read(work / "train.extxyz", ":")
    members = [PyACECalculator(str(p)) for p in sorted((work / "model/members").glob("*.yaml"))]
    for ours, theirs in zip(graded, given, strict=True):
        assert ours.get_potential_energy() == pytest.approx(theirs.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(ours.get_forces(), theirs.get_forces(), atol=1e-7)
        energies, forces = [], []
        for calc in members:
            atoms = theirs.copy()
            atoms.calc = calc
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
        assert ours.info["ensemble_energy"] == pytest.approx(np.mean(energies), abs=1e-6)
        np.testing.assert_allclose(ours.arrays["ensemble_forces"], np.mean(forces, axis=0), atol=1e-7)
    with open(tmp_path / "g.csv") as fh:
        rows = list(csv.DictReader(fh))
    for row, atoms in zip(rows, graded, strict=True):  # one naming: the cluster index in both files
        assert int(row["cluster_of_max"]) == atoms.arrays["gamma_cluster"][atoms.arrays["gamma"].argmax()]


def test_fit_json_gives_units(work):
    units = json.loads((work / "model" / "fit.json").read_text())["units"]
    assert units["energy"] == "eV" and units["forces"] == "eV/Å" and units["train_rmse.E_rmse"] == "meV/atom"


def test_help_lists_every_default_and_every_output_column_with_units(work, tmp_path):
    grade = run("grade", "--help", cache=tmp_path, cwd=tmp_path).stdout
    flat = " ".join(grade.split())
    for text in ("--gamma-lo", "(default: 1.0)", "(default: 10.0)", "are 1.1 and 5", "(default: 50)", "eV/Å", "(eV)",
                 "exit with code 3"):
        assert text in flat, text
    result = run("grade", "md.extxyz", *POTENTIAL, "--ensemble", "model", "--gamma-hi", "1e9",
                 "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0, result.stderr
    header = (tmp_path / "g.csv").read_text().splitlines()[0].split(",")
    assert all(f"{column}:" in grade for column in header)
    keys = set(ase.io.read(tmp_path / "g.extxyz").arrays) | set(ase.io.read(tmp_path / "g.extxyz").info)
    assert {"gamma", "gamma_cluster", "force_spread", "ensemble_forces", "ensemble_energy"} <= keys
    assert all(f"{key}:" in grade for key in ("gamma", "gamma_cluster", "force_spread", "ensemble_forces",
                                              "ensemble_energy"))
    fit = " ".join(run("fit", "--help", cache=tmp_path, cwd=tmp_path).stdout.split())
    for default in (f"(default: {ace_default})" for ace_default in ("0.01", "1e-08", "bootstrap", "0", "2")):
        assert default in fit, default
    activeset = " ".join(run("activeset", "--help", cache=tmp_path, cwd=tmp_path).stdout.split())
    assert "(default: 0)" in activeset and "any species" in activeset and "--strict" in activeset


def test_quiet_prints_no_dask_log_lines(work, tmp_path):
    out = str(tmp_path / "g.extxyz")
    patch = "cli.SERIAL_BELOW_BYTES = 0  # a local Dask cluster even for this small file"
    loud = run_patched(patch, "grade", "md.extxyz", *POTENTIAL, "--gamma-hi", "1e9", "--workers", "2", "-o", out,
                       cache=tmp_path / "c", cwd=work)
    quiet = run_patched(patch, "-q", "grade", "md.extxyz", *POTENTIAL, "--gamma-hi", "1e9", "--workers", "2",
                        "-o", out, cache=tmp_path / "c", cwd=work)
    assert loud.returncode == quiet.returncode == 0, quiet.stderr
    assert "distributed" in loud.stderr, "the drill needs Dask's log lines without -q"
    assert quiet.stderr == "", quiet.stderr


def test_workers_fall_back_to_serial_below_the_measured_size(work, tmp_path):
    assert (work / "md.extxyz").stat().st_size < cli.SERIAL_BELOW_BYTES
    result = run("-q", "grade", "md.extxyz", *POTENTIAL, "--gamma-hi", "1e9", "--workers", "2",
                 "-o", str(tmp_path / "g.extxyz"), cache=tmp_path / "c", cwd=work)
    assert result.returncode == 0 and "--workers 2:" in result.stderr and "grading in this process" in result.stderr


def test_the_readme_example_runs_under_set_e(work, tmp_path):
    block = (ROOT / "README.md").read_text().split("## Your own data: the `uqlib` command")[1].split("```bash")[1]
    commands = [line for line in block.split("```")[0].splitlines() if line.startswith("uqlib ")]
    assert len(commands) >= 3
    shutil.copy(work / "train.extxyz", tmp_path / "train.extxyz")
    hot = bulk("W", "bcc", a=3.165 * 0.8, cubic=True).repeat(2)  # squeezed by 20 %: far above gamma-hi
    hot.rattle(0.3, seed=1)
    ase.io.write(tmp_path / "md.extxyz", [*ase.io.read(work / "md.extxyz", ":"), hot])
    uqlib = f"{shlex.quote(sys.executable)} -m uqlib"
    script = "set -e\n" + "\n".join(uqlib + line.removeprefix("uqlib") for line in commands) + "\necho finished\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UQLIB_COMPUTE_CACHE": str(tmp_path / "c"), "UQLIB_PROGRESS": "0"}
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.rstrip().endswith("finished"), result.stderr
    with open(tmp_path / "graded.csv") as fh:
        assert max(float(row["gamma_max"]) for row in csv.DictReader(fh)) > 10, "the drill needs a frame above 10"


@pytest.mark.parametrize("error, filename, expected", [
    (PermissionError, "out/g.extxyz.abc123.part", "Permission denied: out/g.extxyz.abc123.part; check its permissions"),
    (IsADirectoryError, "md.extxyz", "Is a directory: md.extxyz; give a file, not a folder"),
    (FileNotFoundError, "out", "No such file or directory: out; check the path"),
    (PermissionError, "/usr/lib/python3/site.py", None),  # not a path the user gave: a bug
    (FileNotFoundError, None, None),
])
def test_file_errors_on_the_users_paths_are_user_errors_and_others_are_bugs(tmp_path, monkeypatch, error, filename,
                                                                            expected):
    monkeypatch.chdir(tmp_path)
    args = cli.build_parser().parse_args(["grade", "md.extxyz", *POTENTIAL, "-o", "out/g.extxyz"])
    strerror = {PermissionError: "Permission denied", IsADirectoryError: "Is a directory",
                FileNotFoundError: "No such file or directory"}[error]
    message = cli.user_file_error(error(13, strerror, filename), args)
    assert message is None if expected is None else expected in message
