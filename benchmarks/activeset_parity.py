"""pacemaker parity timings: ``uqlib activeset`` / ``uqlib select`` against ``pace_activeset`` / ``pace_select``.

    python benchmarks/activeset_parity.py [--structures 40] [--candidates 40] [--select 5] [--repeats 3]

Both tools run as a user runs them, each in a fresh process (interpreter start and imports
included), on the same two-species data: fcc Ni-Al cells of 32 atoms labelled by ase's
EMT (training: Ni-rich, Al-rich, 50/50 compressed and expanded; candidates: the same kinds
rattled harder), a Func-33 linear ACE fit by ``uqlib fit`` (not timed). The median wall
and CPU (user + system) times of ``--repeats`` runs are reported, each tool and pacemaker's
run in turn so that a change of the machine's load falls on both, and whether the two
active sets hold the same training atoms. Writes benchmarks/output/activeset_parity.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from common import save_result

from uqlib import activeset, config, grading

KINDS = [dict(aluminium=0.15, a=3.55), dict(aluminium=0.8, a=3.9), dict(aluminium=0.5, a=3.55),
         dict(aluminium=0.5, a=3.95)]  # as tests/test_pacemaker_parity.py
BIN = Path(sys.executable).parent


def nial(seed: int, *, aluminium: float, rattle: float, a: float) -> Atoms:
    """A 32-atom fcc Ni-Al cell, random occupation, rattled, labelled by EMT (eV, eV/Å)."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Ni", "fcc", a=a, cubic=True).repeat(2)
    atoms.symbols[rng.random(len(atoms)) < aluminium] = "Al"
    atoms.rattle(rattle, seed=seed)
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


def write_data(folder: Path, n_train: int, n_candidates: int) -> None:
    """train.extxyz / train.pckl.gzip and candidates.extxyz / candidates.pckl.gzip: the same structures twice."""
    train = [nial(100 * (i % 4) + i, rattle=0.12 + 0.01 * (i % 5), **KINDS[i % 4]) for i in range(n_train)]
    candidates = [nial(5000 + i, rattle=0.2 + 0.02 * (i % 5), **KINDS[i % 4]) for i in range(n_candidates)]
    for name, structures in (("train", train), ("candidates", candidates)):
        ase.io.write(folder / f"{name}.extxyz", structures)
        pd.DataFrame({"ase_atoms": structures, "energy": [a.get_potential_energy() for a in structures],
                      "forces": [a.get_forces() for a in structures]}).to_pickle(folder / f"{name}.pckl.gzip",
                                                                                 compression="gzip")


def run_once(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of ``command`` in a fresh process; an error stops the benchmark."""
    env = {**os.environ, "PYTHONPATH": str(config.PROJECT_ROOT), "UQLIB_COMPUTE_CACHE": str(cwd / "cache"),
           "UQLIB_PROGRESS": "0"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed(commands: dict[str, list[str]], cwd: Path, repeats: int, after_each: dict | None = None
          ) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each command, the commands run in turn ``repeats`` times (so that a
    change in the machine's load falls on all of them)."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            runs[name].append(run_once(command, cwd))
            (after_each or {}).get(name, lambda: None)()
    return {name: {"wall": statistics.median(w for w, _ in r), "cpu": statistics.median(c for _, c in r)}
            for name, r in runs.items()}


def same_atoms(ours: Path, theirs: Path, folder: Path) -> bool:
    """Whether two .asi files hold the same training rows (each row of A = (A^-1)^-1 matched to its nearest)."""
    basis = grading.load_potential(folder / "model/potential.yaml")
    training = grading.species_projections(basis, ase.io.read(folder / "train.extxyz", ":"))
    a, b = activeset.ActiveSet.load(ours), activeset.ActiveSet.load(theirs)

    def rows(inverse: np.ndarray, element: str) -> list[int]:
        active = np.linalg.inv(inverse)
        return sorted(np.linalg.norm(active[:, None] - training[element][None], axis=2).argmin(axis=1).tolist())

    return a.elements == b.elements and all(rows(a.inverses[e], e) == rows(b.inverses[e], e) for e in a.elements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--structures", type=int, default=40, help="training cells (32 atoms each)")
    parser.add_argument("--candidates", type=int, default=40, help="candidate cells for select")
    parser.add_argument("--select", type=int, default=5, help="structures to select")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    uqlib = [sys.executable, "-m", "uqlib", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_data(folder, args.structures, args.candidates)
        fit = subprocess.run([*uqlib, "fit", "train.extxyz", "--preset", "Func-33", "-o", "model"], cwd=folder,
                             env={**os.environ, "PYTHONPATH": str(config.PROJECT_ROOT)}, capture_output=True, text=True)
        if fit.returncode:
            raise RuntimeError(fit.stderr)
        pace_asi = folder / "model/potential.asi"  # pace_activeset writes it beside the .yaml
        times = timed({"uqlib activeset": [*uqlib, "activeset", "train.extxyz", "--potential", "model/potential.yaml",
                                           "-o", "uqlib.asi"],
                       "pace_activeset": [str(BIN / "pace_activeset"), "model/potential.yaml", "-d", "train.pckl.gzip",
                                          "-V"]}, folder, args.repeats,
                      after_each={"pace_activeset": lambda: pace_asi.replace(folder / "pace.asi")})
        times |= timed({"uqlib select": [*uqlib, "select", "candidates.extxyz", "--potential", "model/potential.yaml",
                                         "--active-set", "uqlib.asi", "--n", str(args.select), "-o", "picked.extxyz"],
                        "pace_select": [str(BIN / "pace_select"), "candidates.pckl.gzip", "-p", "model/potential.yaml",
                                        "-a", "pace.asi", "-m", str(args.select), "-o", "picked.pkl.gz", "-V"]},
                       folder, args.repeats)
        agree = same_atoms(folder / "uqlib.asi", folder / "pace.asi", folder)
    result = {"structures": args.structures, "atoms": 32 * args.structures, "candidates": args.candidates,
              "select": args.select, "repeats": args.repeats,
              "seconds_median": {k: {kind: round(v, 2) for kind, v in t.items()} for k, t in times.items()},
              "activeset_ratio_wall": round(times["uqlib activeset"]["wall"] / times["pace_activeset"]["wall"], 2),
              "activeset_ratio_cpu": round(times["uqlib activeset"]["cpu"] / times["pace_activeset"]["cpu"], 2),
              "select_ratio_wall": round(times["uqlib select"]["wall"] / times["pace_select"]["wall"], 2),
              "select_ratio_cpu": round(times["uqlib select"]["cpu"] / times["pace_select"]["cpu"], 2),
              "same_active_atoms_as_pace_activeset": agree}
    for name, seconds in times.items():
        print(f"{name:18s} {seconds['wall']:6.2f} s wall {seconds['cpu']:6.2f} s CPU")
    print(f"same active-set atoms as pace_activeset: {agree}")
    print(f"wrote {save_result('activeset_parity', result)}")


if __name__ == "__main__":
    main()
