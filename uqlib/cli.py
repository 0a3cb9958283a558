"""The ``uqlib`` command: fit a linear ACE model, build active sets, grade and select structures.

Exit codes (every subcommand):

- 0: success;
- 1: a result condition: ``grade`` found a frame with gamma above ``--gamma-hi``
  (the output files are complete; the exit code lets a script stop an MD campaign);
- 2: a user error (a missing or unreadable file, a bad structure, a wrong option):
  one line on stderr naming the file, frame or option and the fix, no traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import ase.io
import numpy as np

from uqlib.exceptions import UsageError

EXAMPLES = {
    "fit": ("uqlib fit train.extxyz --preset Func-33 --ensemble 6 -o model/\n"
            "  uqlib fit alloy.extxyz --preset Func-33 --elements Cu,Au -o alloy-model/"),
    "activeset": ("uqlib activeset train.extxyz --potential model/potential.yaml -o model/potential.asi\n"
                  "  uqlib activeset train.extxyz --potential model/potential.yaml --clusters kmeans:4 "
                  "-o model/clusters/"),
    "grade": ("uqlib grade md.lammpstrj --species-map 1=W --potential model/potential.yaml "
              "--active-set model/clusters/ --ensemble model/ -o graded.extxyz"),
    "select": ("uqlib select md.extxyz --potential model/potential.yaml --active-set model/potential.asi "
               "--n 10 -o picked.extxyz"),
}



# -- fit -----------------------------------------------------------------------------------------

def write_yace(yaml_path: Path) -> Path:
    """The C-tilde ``.yace`` of a B-basis YAML, by pyace's converter (as ``pace_yaml2yace``), for LAMMPS."""
    from pyace import ACEBBasisSet

    target = yaml_path.with_suffix(".yace")
    ACEBBasisSet(str(yaml_path)).to_ACECTildeBasisSet().save_yaml(str(target))
    return target


def cmd_fit(args: argparse.Namespace) -> int:
    import pyace

    import uqlib
    from uqlib import ace, ensemble, io

    if not 0.0 <= args.kappa <= 1.0:
        raise UsageError(f"--kappa must lie in [0, 1] (the force weight of the loss), got {args.kappa}")
    if args.ensemble is not None and args.ensemble < 2:
        raise UsageError(f"--ensemble needs at least 2 members, got {args.ensemble}")
    preset = ace.get_preset(args.preset)
    chosen = None if args.elements is None else ace.check_elements(args.elements)
    # with --elements, a structure of another species is an error naming its file and frame
    table = io.read_table(args.train, species_map=args.species_map, labelled=True, elements=chosen)
    atom_counts = _species_counts(table)
    preset = preset.for_elements(chosen or list(atom_counts))
    elements = list(preset.elements)
    dm = ace.design_matrix(table, preset, workers=args.workers, progress=not args.quiet)
    model = ace.LinearACE(preset, kappa=args.kappa, alpha=args.alpha).fit(dm)
    out = Path(args.output)
    files = {"potential": model.to_yaml(out / "potential.yaml")}
    files["yace"] = write_yace(files["potential"])
    record = {
        "uqlib": uqlib.__version__, "pyace": pyace.__version__, "preset": preset.name, "elements": elements,
        "n_functions": preset.n_functions, "kappa": args.kappa, "alpha": args.alpha,
        "n_structures": int(len(table)), "n_atoms": int(table["n_atoms"].sum()),
        "atoms_by_species": {e: atom_counts.get(e, 0) for e in elements},
        "train": [{"path": str(Path(p).resolve()), "sha256": io.sha256sum(Path(p)),
                   "frames": int((table["subset"] == Path(p).name.split(".")[0]).sum())} for p in args.train],
        "train_rmse": model.rmse(dm),
    }
    if args.ensemble:
        members = ensemble.fit_ensemble(dm, args.ensemble, construction=args.construction, seed=args.seed,
                                        kappa=args.kappa, alpha=args.alpha, progress=not args.quiet)
        for k, coefficients in enumerate(members.coefficients):
            member = ace.LinearACE(preset, kappa=args.kappa, alpha=args.alpha)
            member.coef_ = coefficients
            member.to_yaml(out / "members" / f"member-{k:02d}.yaml")
        record["ensemble"] = {"members": args.ensemble, "construction": args.construction, "seed": args.seed,
                              "train_rmse_of_mean": ensemble.ensemble_rmse(dm, members)}
    record["files"] = {name: path.name for name, path in files.items()}
    (out / "fit.json").write_text(json.dumps(record, indent=2))
    rmse = record["train_rmse"]
    print(f"fitted {preset.name} ({'-'.join(elements)}, {preset.n_functions} functions) on "
          f"{record['n_structures']} structures ({record['n_atoms']} atoms): "
          f"E {rmse['E_rmse']:.2f} meV/atom, F {rmse['F_rmse']:.1f} meV/Å; wrote {out}/potential.yaml, "
          f"potential.yace" + (f", {args.ensemble} members" if args.ensemble else "") + ", fit.json")
    return 0


def _species_counts(table) -> dict[str, int]:
    """Atoms of each species in a structure table, species sorted (pyace's order)."""
    from collections import Counter

    counts = Counter(symbol for atoms in table["atoms"] for symbol in atoms.get_chemical_symbols())
    return {element: int(counts[element]) for element in sorted(counts)}


# -- activeset -----------------------------------------------------------------------------------

def _partition(spec: str, structures: list, projections: dict, owners: dict, seed: int) -> np.ndarray:
    """Cluster labels of training structures from ``kmeans:K``, ``birch:K``, ``soap-birch:K`` or ``column:NAME``."""
    from sklearn.preprocessing import StandardScaler

    from uqlib import clustering, grading

    method, _, value = spec.partition(":")
    if method == "column":
        missing = [i for i, a in enumerate(structures) if value not in a.info]
        if not value or missing:
            raise UsageError(f"--clusters column:{value}: structure {missing[0] if missing else 0} has no "
                             f"'{value}' in its info (extxyz comment line); name a per-structure column")
        return np.array([str(a.info[value]) for a in structures])
    try:
        k = int(value)
    except ValueError:
        raise UsageError(f"--clusters {spec!r}: give soap-birch:K, kmeans:K, birch:K or column:NAME") from None
    if method in ("kmeans", "birch"):
        descriptors = StandardScaler().fit_transform(grading.structure_descriptors(projections, owners,
                                                                                   len(structures)))
        return clustering.cluster_structures(descriptors, k, method=method, seed=seed)[0]
    if method == "soap-birch":
        if not hasattr(clustering, "soap_birch_clusters"):
            raise UsageError("--clusters soap-birch needs uqlib.clustering.soap_birch_clusters, not in this "
                             "version of uqlib; use kmeans:K")
        return clustering.soap_birch_clusters(clustering.soap_descriptors(structures, progress=False), k)[0]
    raise UsageError(f"--clusters {spec!r}: unknown method {method!r}; give soap-birch:K, kmeans:K, birch:K "
                     f"or column:NAME")


def _force_inliers(potential: str, structures: list) -> tuple[dict[str, np.ndarray], str]:
    """Per species, the atoms whose force error is not an outlier (Q3 + 1.5 IQR), as ``pace_activeset``."""
    from pyace import PyACECalculator

    from uqlib import grading
    from uqlib.dopt import force_outlier_mask

    calc = PyACECalculator(str(potential))
    predicted, reference = [], []
    for atoms in structures:
        reference.append(atoms.get_forces())
        copy = atoms.copy()
        copy.calc = calc
        predicted.append(copy.get_forces())
    mask = force_outlier_mask(np.concatenate(predicted), np.concatenate(reference))
    species = grading.atom_species(structures)
    keep = {e: mask[species == e] for e in set(species)}
    return keep, f"{int((~mask).sum())} of {len(mask)} atoms excluded as force outliers"


def cmd_activeset(args: argparse.Namespace) -> int:
    from uqlib import grading, io

    basis = grading.load_potential(args.potential)
    if args.batch_size is not None or args.memory_limit is not None:
        return _activeset_by_batches(args, basis)
    structures: list = []
    projections: dict[str, list] = {}
    labelled = True
    for path in args.train:
        frames = io.read_structures(path, args.species_map)
        for element, rows in grading.species_projections(basis, frames, source=str(path)).items():
            projections.setdefault(element, []).append(rows)
        labelled &= io.table_from_atoms(frames, source=str(path)).attrs["labelled"]
        structures.extend(frames)
    stacked = {e: np.vstack(rows) for e, rows in projections.items() if sum(len(r) for r in rows)}
    owners = grading.structure_indices(structures, stacked)
    keep, excluded = None, "no force labels, so no outliers excluded"
    if args.keep_outliers:
        excluded = "all atoms offered to MaxVol (--keep-outliers)"
    elif labelled:
        keep, excluded = _force_inliers(args.potential, structures)
    labels = None if args.clusters is None else _partition(args.clusters, structures, stacked, owners, args.seed)
    grading_set = grading.build_grading_set(stacked, owners, labels, keep=keep, progress=not args.quiet)
    out = Path(args.output)
    if labels is None:
        if out.suffix != ".asi":
            raise UsageError(f"-o {out}: a single active set is a pacemaker .asi file; name it *.asi")
        grading_set.sets[0].save(out)
    else:
        grading_set.save(out)
    merged = f", merged {grading_set.merged}" if grading_set.merged else ""
    print(f"active set of {len(structures)} structures, species {sorted(stacked)}, "
          f"{len(grading_set.clusters)} cluster(s){merged}, {excluded}: wrote {out}")
    return 0


def _activeset_by_batches(args: argparse.Namespace, basis) -> int:
    """One active set by pyace's batched MaxVol: only one batch of projections in memory at once."""
    from uqlib import grading, io

    if args.clusters is not None:
        raise UsageError("--batch-size/--memory-limit build one active set; drop --clusters (or them)")
    out = Path(args.output)
    if out.suffix != ".asi":
        raise UsageError(f"-o {out}: a single active set is a pacemaker .asi file; name it *.asi")
    structures = [atoms for path in args.train for atoms in io.read_structures(path, args.species_map)]
    active = grading.build_active_set_by_batches(basis, structures, batch_size=args.batch_size,
                                                 memory_limit=args.memory_limit, source=", ".join(args.train))
    active.save(out)
    print(f"active set of {len(structures)} structures by batches, species {active.elements}: wrote {out}")
    return 0


# -- grade ---------------------------------------------------------------------------------------

def cmd_grade(args: argparse.Namespace) -> int:
    from pyace import PyACECalculator

    from uqlib import grading

    grading.band(np.array([1.0]), args.gamma_lo, args.gamma_hi)  # checks the thresholds first
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    basis = grading.load_potential(args.potential)
    grading_set = grading.load_grading_set(args.active_set)
    member_files = grading.member_potentials(args.ensemble) if args.ensemble else []
    for path in member_files:
        grading.load_potential(path)  # a clear error for a damaged member before any work
    members = [PyACECalculator(str(path)) for path in member_files]
    out = Path(args.output)
    summary_path = Path(args.summary) if args.summary else out.with_suffix(".csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    # an interrupted run never leaves files that look complete: both are written as .part, then renamed
    partials = [path.with_name(path.name + ".part") for path in (out, summary_path)]
    try:
        with _frame_grader(args, basis, grading_set) as grades:
            counts = _grade_to(partials[0], partials[1], args, grades, grading_set, members)
    except BaseException:
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise
    partials[0].replace(out)
    partials[1].replace(summary_path)
    print(f"graded {sum(counts.values())} frames with {len(grading_set.clusters)} cluster(s): {counts['below']} "
          f"below gamma-lo={args.gamma_lo}, {counts['between']} between, {counts['above']} above "
          f"gamma-hi={args.gamma_hi}; wrote {out} and {summary_path}")
    return 1 if counts["above"] else 0


@contextmanager
def _frame_grader(args: argparse.Namespace, basis, grading_set):
    """``grades(frames, source)``: in this process, or on Dask with --scheduler, $UQLIB_SCHEDULER or --workers > 1."""
    from uqlib import distributed, grading

    if distributed.scheduler_address(args.scheduler) is None and args.workers == 1:
        yield lambda frames, source: grading.iter_grades(frames, basis, grading_set, chunk_size=args.chunk_size,
                                                         source=source, progress=not args.quiet)
        return
    with distributed.dask_client(args.scheduler, n_workers=args.workers) as client:
        yield lambda frames, source: distributed.grade_frames_distributed(
            frames, args.potential, grading_set, chunk_size=args.chunk_size, client=client, source=source,
            progress=not args.quiet)


def _grade_to(target: Path, summary: Path, args: argparse.Namespace, grades, grading_set, members: list
              ) -> dict[str, int]:
    """Grade every frame of ``args.frames``, writing each as it comes to the extxyz ``target`` and the CSV
    ``summary`` (memory bounded by one chunk); returns the number of frames in each band."""
    from uqlib import grading, io
    from uqlib.ensemble import atom_force_uncertainty

    columns = ["file", "frame", "n_atoms", "gamma_max", "cluster_of_max", *(["force_spread_max"] if members else []),
               "band"]
    counts = dict.fromkeys(grading.BANDS, 0)
    with open(target, "w") as fh, open(summary, "w", newline="") as summary_fh:
        writer = csv.DictWriter(summary_fh, fieldnames=columns)
        writer.writeheader()
        for path in args.frames:
            for g in grades(io.iter_structures(path, args.species_map), str(path)):
                atoms = g.atoms.copy()
                atoms.arrays["gamma"] = g.gamma
                atoms.arrays["gamma_cluster"] = g.cluster
                row = {"file": str(path), "frame": g.frame, "n_atoms": len(atoms), "gamma_max": g.gamma_max,
                       "cluster_of_max": grading_set.clusters[int(g.cluster[g.gamma.argmax()])]}
                if members:
                    atoms.arrays["force_spread"] = atom_force_uncertainty(grading.member_forces(members, g.atoms))
                    row["force_spread_max"] = float(atoms.arrays["force_spread"].max())
                row["band"] = str(grading.band(np.array([g.gamma_max]), args.gamma_lo, args.gamma_hi)[0])
                atoms.info.update({"gamma_max": g.gamma_max, "band": row["band"], "source": str(path),
                                   "frame": g.frame})
                ase.io.write(fh, atoms, format="extxyz")
                writer.writerow(row)
                counts[row["band"]] += 1
    return counts


# -- select --------------------------------------------------------------------------------------

def cmd_select(args: argparse.Namespace) -> int:
    from uqlib import grading, io

    basis = grading.load_potential(args.potential)
    grading_set = grading.load_grading_set(args.active_set)
    candidates, origin = [], []
    for path in args.frames:
        for g in grading.iter_grades(io.iter_structures(path, args.species_map), basis, grading_set,
                                     source=str(path), progress=not args.quiet):
            if g.gamma_max > args.gamma_lo:  # only extrapolating frames are worth labelling
                atoms = g.atoms.copy()
                atoms.info.update({"gamma_max": g.gamma_max, "source": str(path), "frame": g.frame})
                candidates.append(atoms)
                origin.append((str(path), g.frame))
    picked = grading.select_frames(candidates, basis, grading_set, args.n) if candidates else []
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(args.output, [candidates[i] for i in picked], format="extxyz")
    print(f"{len(candidates)} frames above gamma-lo={args.gamma_lo}; picked {len(picked)} by MaxVol "
          f"(D-optimal, no near duplicates): wrote {args.output}")
    return 0


# -- the parser ----------------------------------------------------------------------------------

def _add_frames_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--potential", required=True, help="pacemaker B-basis potential (.yaml)")
    p.add_argument("--active-set", required=True, help="a pacemaker .asi file or a clustered folder (index.json)")
    p.add_argument("--species-map", help="LAMMPS type = element for dumps without an element column, e.g. 1=W,2=Mo")


def build_parser() -> argparse.ArgumentParser:
    from uqlib import ace

    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="uqlib", formatter_class=raw,
        description="Uncertainty of linear ACE potentials on your own structures (arXiv:2508.03405).",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES.values())
        + "\n\nexit codes: 0 success; 1 grade found frames above --gamma-hi; 2 user error (one line, no traceback)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{fit,activeset,grade,select}")

    fit = sub.add_parser("fit", formatter_class=raw, help="fit a linear ACE model (and an ensemble)",
                         epilog=f"example:\n  {EXAMPLES['fit']}\n\nwrites potential.yaml (PyACECalculator, LAMMPS "
                                f"29Aug2024+), potential.yace (older LAMMPS), members/member-*.yaml, fit.json")
    fit.add_argument("train", nargs="+", help="labelled structures: extxyz with energy and forces, pacemaker pickles")
    fit.add_argument("--preset", required=True,
                     help=f"basis preset: {', '.join(ace.PRESETS)} (named by W's function count; the same "
                          f"limits for other species)")
    fit.add_argument("--elements", metavar="A,B",
                     help="species of the potential, e.g. Cu,Au (default: the species in the training files); "
                          "a training structure of another species is an error")
    fit.add_argument("--kappa", type=float, default=ace.DEFAULT_KAPPA, help="force weight in [0, 1]")
    fit.add_argument("--alpha", type=float, default=ace.DEFAULT_ALPHA, help="ridge strength")
    fit.add_argument("--ensemble", type=int, metavar="K", help="also fit K members")
    fit.add_argument("--construction", "--method", dest="construction",
                     choices=("pacemaker", "bootstrap", "subsample", "posterior"), default="bootstrap",
                     help="how the members differ (uqlib.ensemble); --method is the old name")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--workers", type=int, default=2)
    fit.add_argument("--species-map", help="LAMMPS type = element, e.g. 1=W")
    fit.add_argument("-o", "--output", required=True, help="output folder")
    fit.set_defaults(run=cmd_fit)

    act = sub.add_parser("activeset", formatter_class=raw, help="MaxVol active set(s) of training structures",
                         epilog=f"example:\n  {EXAMPLES['activeset']}")
    act.add_argument("train", nargs="+", help="training structures (labels not needed)")
    act.add_argument("--potential", required=True, help="pacemaker B-basis potential (.yaml)")
    act.add_argument("--clusters", help="soap-birch:K, kmeans:K, birch:K or column:NAME (default: one set)")
    act.add_argument("--keep-outliers", action="store_true",
                     help="offer every atom to MaxVol (by default, with force labels, atoms whose force error is "
                          "an outlier, Q3 + 1.5 IQR, are left out as pace_activeset does)")
    act.add_argument("--seed", type=int, default=0)
    act.add_argument("--batch-size", type=int, metavar="N",
                     help="batched MaxVol (pyace), N structures per batch: bounded memory for large training sets")
    act.add_argument("--memory-limit", metavar="SIZE",
                     help="batched MaxVol with at most SIZE of projections per batch, e.g. 2GB (as pace_activeset)")
    act.add_argument("--species-map")
    act.add_argument("-o", "--output", required=True, help="a .asi file, or a folder with --clusters")
    act.set_defaults(run=cmd_activeset)

    grade = sub.add_parser("grade", formatter_class=raw, help="per-atom gamma of frames (labels not needed)",
                           epilog=f"example:\n  {EXAMPLES['grade']}\n\nexit code 1 when a frame is above --gamma-hi")
    grade.add_argument("frames", nargs="+", help="extxyz, LAMMPS dumps, pacemaker pickles, anything ase reads")
    _add_frames_options(grade)
    grade.add_argument("--ensemble", help="folder of `uqlib fit --ensemble K`: adds the force spread (eV/Å)")
    grade.add_argument("--gamma-lo", type=float, default=1.0)
    grade.add_argument("--gamma-hi", type=float, default=10.0)
    grade.add_argument("--chunk-size", type=int, default=50, help="frames per block of projections")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on an existing Dask cluster, e.g. tcp://host:8786 (default: $UQLIB_SCHEDULER)")
    grade.add_argument("--workers", type=int, default=1,
                       help="N > 1: grade on a local Dask cluster of N processes (default 1: in this process)")
    grade.add_argument("--summary", help="CSV of per-frame results (default: OUT with .csv)")
    grade.add_argument("-o", "--output", required=True, help="extxyz with per-atom gamma")
    grade.set_defaults(run=cmd_grade)

    select = sub.add_parser("select", formatter_class=raw, help="D-optimal batch of extrapolating frames",
                            epilog=f"example:\n  {EXAMPLES['select']}")
    select.add_argument("frames", nargs="+")
    _add_frames_options(select)
    select.add_argument("--n", type=int, required=True, help="at most this many frames")
    select.add_argument("--gamma-lo", type=float, default=1.0, help="candidates have gamma_max above this")
    select.add_argument("-o", "--output", required=True)
    select.set_defaults(run=cmd_select)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``uqlib`` console script; returns the exit code (module docstring)."""
    from uqlib import config
    from uqlib.io import DataError, one_line

    args = build_parser().parse_args(argv)
    if args.quiet:
        config.set_progress(False)
    try:
        return args.run(args)
    except (DataError, UsageError, ValueError, KeyError, OSError) as err:
        # user errors: a bad file, structure, option or active set (ActiveSetError is a ValueError)
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(f"uqlib {args.command}: error: {one_line(text)}", file=sys.stderr)
        return 2


def run(command: str, cwd: str | Path) -> int:
    """Run ``uqlib <command>`` in ``cwd`` as a shell would (a fresh process), print what it prints.

    For notebooks and scripts that show the command at work. Returns the exit code (0 or 1,
    see the module docstring); a user error (exit code 2) raises ``RuntimeError`` with its message.
    """
    import shlex
    import subprocess

    print(f"$ uqlib {command}")
    result = subprocess.run([sys.executable, "-m", "uqlib", "--quiet", *shlex.split(command)], cwd=cwd,
                            capture_output=True, text=True)
    print(result.stdout + result.stderr + f"(exit code {result.returncode})")
    if result.returncode == 2:
        raise RuntimeError(f"uqlib {command} failed: {result.stderr.strip()}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
