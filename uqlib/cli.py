"""The ``uqlib`` command: fit a linear ACE model, build active sets, grade and select structures.

Exit codes (every subcommand):

- 0: success;
- 1: a bug in uqlib (an exception it did not expect): the traceback is printed; please report it;
- 2: a user error (a missing or unreadable file, a bad structure, a wrong option, a full disk):
  one line on stderr naming the file, frame, parameter or species and the fix, no traceback;
- 3: ``grade --fail-above`` found a frame with gamma above ``--gamma-hi`` (the output files are
  complete; the exit code lets a script stop an MD campaign);
- 130: interrupted (Ctrl-C, SIGINT or SIGTERM): one line; partial outputs and worker processes
  are removed.
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import os
import shutil
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import ase.io
import numpy as np

from uqlib.exceptions import DataError, UqlibError, UsageError

__all__ = ["EXAMPLES", "EXIT_CODES", "GRADE_COLUMNS", "GRADE_EXTXYZ", "SERIAL_BELOW_BYTES", "UNITS", "build_parser",
           "cmd_activeset", "cmd_fit", "cmd_grade", "cmd_select", "ensemble_members", "main",
           "refuse_overwriting_inputs", "run", "threading_main", "user_file_error", "write_yace"]

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

EXIT_OK, EXIT_BUG, EXIT_USER_ERROR, EXIT_ABOVE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# below this much input, `grade --workers N` grades in this process: a local Dask cluster of 2 workers
# was slower at every size measured (bench of `uqlib -q grade` on Ni-Al fcc cells, Func-33, 2 shared
# cores): 0.1 MB (1,408 atoms) 8.4 s serial vs 21.8 s; 1.1 MB (14,080 atoms) 10.6 vs 28.0 s; 7.3 MB
# (102,400 atoms) 19.1 vs 34.5 s; 18.3 MB (256,000 atoms) 53.2 vs 104.9 s
SERIAL_BELOW_BYTES = 20_000_000


# -- outputs written whole or not at all ---------------------------------------------------------

def _same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def refuse_overwriting_inputs(outputs: dict[str, str | Path], inputs: dict[str, Sequence[str | Path]]) -> None:
    """:class:`UsageError` when an output path is an input path (or holds one, for an output folder)."""
    for out_name, out in outputs.items():
        for in_name, paths in inputs.items():
            for path in paths:
                path = Path(path)
                if _same_path(out, path) or Path(out).resolve() in path.resolve().parents:
                    raise UsageError(f"{out_name} {out} would overwrite the input {path} ({in_name}): give another "
                                     f"output path")


def _unique_partial(target: Path) -> Path:
    """An empty file beside ``target`` with a name no other process uses (``<name>.<random>.part``)."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.", suffix=".part")
    os.close(fd)
    return Path(name)


def _publish(partial: Path, target: Path) -> None:
    """Rename a finished ``.part`` file into place, with the permissions a new file would get."""
    umask = os.umask(0)
    os.umask(umask)
    partial.chmod(0o666 & ~umask)
    partial.replace(target)


def _replace_folder(staging: Path, target: Path) -> None:
    """Put the finished folder ``staging`` at ``target``; an earlier ``target`` is replaced whole, never mixed."""
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        old.rmdir()
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)


def _check_fit_target(out: Path) -> None:
    """``fit -o`` may name a new folder, an empty one, or an earlier fit's (with fit.json), which it replaces whole."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out} is a file: give a folder for the model")
    if out.is_dir() and any(out.iterdir()) and not (out / "fit.json").is_file():
        raise UsageError(f"-o {out} is a folder that is not empty and holds no fit.json (not an earlier `uqlib fit` "
                         f"output, which would be replaced whole): give a new or empty folder")


# -- fit -----------------------------------------------------------------------------------------

def write_yace(yaml_path: Path) -> Path:
    """The C-tilde ``.yace`` of a B-basis YAML, by pyace's converter (as ``pace_yaml2yace``), for LAMMPS."""
    from pyace import ACEBBasisSet

    target = yaml_path.with_suffix(".yace")
    ACEBBasisSet(str(yaml_path)).to_ACECTildeBasisSet().save_yaml(str(target))
    return target


UNITS = {"energy": "eV", "forces": "eV/Å", "train_rmse.E_rmse": "meV/atom",
         "train_rmse.F_rmse": "meV/Å (RMSE of force components)", "kappa": "1 (force weight of the loss, in [0, 1])",
         "alpha": "1 (ridge strength on the coefficients)", "n_atoms": "atoms"}


def cmd_fit(args: argparse.Namespace) -> int:
    import pyace

    import uqlib
    from uqlib import ace, io

    if not 0.0 <= args.kappa <= 1.0:
        raise UsageError(f"--kappa must lie in [0, 1] (the force weight of the loss), got {args.kappa}")
    if not args.alpha > 0:
        raise UsageError(f"--alpha must be positive (a ridge strength), got {args.alpha}")
    if args.ensemble is not None and args.ensemble < 2:
        raise UsageError(f"--ensemble needs at least 2 members, got {args.ensemble}")
    try:
        preset = ace.get_preset(args.preset)
        chosen = None if args.elements is None else ace.check_elements(args.elements)
    except (KeyError, ValueError) as err:
        raise UsageError(f"--preset/--elements: {err.args[0]}") from None
    out = Path(args.output)
    refuse_overwriting_inputs({"-o": out}, {"training file": args.train})
    _check_fit_target(out)
    _warn_species_map_ignored(args.train, args.species_map)
    # with --elements, a structure of another species is an error naming its file and frame
    table = io.read_table(args.train, species_map=args.species_map, labelled=True, elements=chosen)
    if args.ensemble and len(table) < 2:
        raise UsageError(f"--ensemble {args.ensemble}: an ensemble needs at least 2 training structures, got "
                         f"{len(table)}")
    atom_counts = _species_counts(table)
    preset = preset.for_elements(chosen or list(atom_counts))
    elements = list(preset.elements)
    dm = ace.design_matrix(table, preset, workers=args.workers, progress=not args.quiet)
    model = ace.LinearACE(preset, kappa=args.kappa, alpha=args.alpha).fit(dm)
    out.parent.mkdir(parents=True, exist_ok=True)
    # written in a folder beside the target and renamed into place: a killed fit leaves no half model,
    # and an earlier fit's folder is replaced whole (never old members beside new ones)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        record = _write_fit(staging, args, model, dm, table, atom_counts, uqlib.__version__, pyace.__version__)
        _replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    rmse = record["train_rmse"]
    print(f"fitted {preset.name} ({'-'.join(elements)}, {preset.n_functions} functions) on "
          f"{record['n_structures']} structures ({record['n_atoms']} atoms): "
          f"E {rmse['E_rmse']:.2f} meV/atom, F {rmse['F_rmse']:.1f} meV/Å; wrote {out}/potential.yaml, "
          f"potential.yace" + (f", {args.ensemble} members" if args.ensemble else "") + ", fit.json")
    return 0


def _write_fit(folder: Path, args: argparse.Namespace, model, dm, table, atom_counts: dict[str, int],
               uqlib_version: str, pyace_version: str) -> dict:
    """Write the model, its .yace, the ensemble's members and ``fit.json`` into ``folder``; returns the record."""
    from uqlib import ace, ensemble, io

    preset, elements = model.preset, list(model.preset.elements)
    files = {"potential": model.to_yaml(folder / "potential.yaml")}
    files["yace"] = write_yace(files["potential"])
    record = {
        "uqlib": uqlib_version, "pyace": pyace_version, "preset": preset.name, "elements": elements,
        "n_functions": preset.n_functions, "kappa": args.kappa, "alpha": args.alpha,
        "n_structures": int(len(table)), "n_atoms": int(table["n_atoms"].sum()),
        "atoms_by_species": {e: atom_counts.get(e, 0) for e in elements},
        "train": [{"path": str(Path(p).resolve()), "sha256": io.sha256sum(Path(p)),
                   "frames": int((table["subset"] == Path(p).name.split(".")[0]).sum())} for p in args.train],
        "train_rmse": model.rmse(dm),
        "units": UNITS,
    }
    if args.ensemble:
        members = ensemble.fit_ensemble(dm, args.ensemble, construction=args.construction, seed=args.seed,
                                        kappa=args.kappa, alpha=args.alpha, progress=not args.quiet)
        member_files = []
        for k, coefficients in enumerate(members.coefficients):
            member = ace.LinearACE(preset, kappa=args.kappa, alpha=args.alpha)
            member.coef_ = coefficients
            member_files.append(member.to_yaml(folder / "members" / f"member-{k:02d}.yaml"))
        record["ensemble"] = {"members": args.ensemble, "construction": args.construction, "seed": args.seed,
                              "train_rmse_of_mean": ensemble.ensemble_rmse(dm, members),
                              # `grade --ensemble` loads exactly these files and checks their checksums
                              "files": {path.relative_to(folder).as_posix(): io.sha256sum(path)
                                        for path in member_files}}
    record["files"] = {name: path.name for name, path in files.items()}
    (folder / "fit.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return record


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
    if not 2 <= k <= len(structures):
        raise UsageError(f"--clusters {spec}: K must lie in [2, {len(structures)}] (2 up to the number of training "
                         f"structures); for one active set, drop --clusters")
    if method in ("kmeans", "birch"):
        descriptors = StandardScaler().fit_transform(grading.mean_projections(projections, owners, len(structures)))
        return clustering.cluster_structures(descriptors, k, method=method, seed=seed)[0]
    if method == "soap-birch":  # SOAP of every species in the training files (dscribe)
        return clustering.soap_birch_clusters(clustering.soap_descriptors(structures, progress=False), k)[0]
    raise UsageError(f"--clusters {spec!r}: unknown method {method!r}; give soap-birch:K, kmeans:K, birch:K "
                     f"or column:NAME")


def cmd_activeset(args: argparse.Namespace) -> int:
    import warnings

    from uqlib import activeset, grading, io

    refuse_overwriting_inputs({"-o": args.output}, {"training file": args.train, "--potential": [args.potential]})
    _warn_species_map_ignored(args.train, args.species_map)
    basis = grading.load_potential(args.potential)
    if args.batch_size is not None or args.memory_limit is not None:
        return _activeset_by_batches(args, basis)
    structures: list = []
    projections: dict[str, list] = {}
    predicted: dict[str, list] = {}
    labelled = True
    for path in args.train:
        frames = io.read_structures(path, args.species_map)
        rows, forces = grading.species_projections(basis, frames, source=str(path), with_forces=True)
        for element in rows:  # one pyace pass gives the projections and the forces of the outlier filter
            projections.setdefault(element, []).append(rows[element])
            predicted.setdefault(element, []).append(forces[element])
        labelled &= io.table_from_atoms(frames, source=str(path)).attrs["labelled"]
        structures.extend(frames)
    stacked = {e: np.vstack(rows) for e, rows in projections.items() if sum(len(r) for r in rows)}
    owners = grading.structure_indices(structures, stacked)
    keep, excluded = None, "no force labels, so no outliers excluded"
    if args.keep_outliers:
        excluded = "all atoms offered to MaxVol (--keep-outliers)"
    elif labelled:
        keep = grading.outlier_keep({e: np.vstack(predicted[e]) for e in stacked}, structures, rule=args.outliers)
        dropped = {e: int((~k).sum()) for e, k in keep.items()}
        excluded = (f"{sum(dropped.values())} of {sum(len(k) for k in keep.values())} atoms excluded as force "
                    f"outliers ({args.outliers} Q3 + 1.5 IQR; " + ", ".join(f"{e} {n}" for e, n in dropped.items())
                    + ")")
    labels = None if args.clusters is None else _partition(args.clusters, structures, stacked, owners, args.seed)
    out = Path(args.output)
    if labels is None:
        if out.suffix != ".asi":
            raise UsageError(f"-o {out}: a single active set is a pacemaker .asi file; name it *.asi")
        active = activeset.ClusteredActiveSet.single(activeset.build_active_set(stacked, keep=keep))
        active.sets[0].save(out)
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", activeset.ClusterWarning)
            active = activeset.fit_clustered_active_set(stacked, grading.species_labels(labels, owners), keep=keep,
                                                        strict=args.strict, progress=not args.quiet)
        for warning in caught:  # one plain line each, no file:line prefix
            print(f"uqlib activeset: warning: {warning.message}", file=sys.stderr)
        active.save(out)
    covered = "; ".join(f"{name}: {'-'.join(s.elements)}" for name, s in zip(active.clusters, active.sets,
                                                                             strict=True))
    print(f"active set of {len(structures)} structures, species {sorted(stacked)}, "
          f"{len(active.clusters)} cluster(s) ({covered}), {excluded}: wrote {out}")
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
    try:
        active = grading.build_active_set_by_batches(basis, structures, batch_size=args.batch_size,
                                                     memory_limit=args.memory_limit, source=", ".join(args.train))
    except KeyError as err:  # pyace's batched MaxVol fails with the species type as key
        raise _batch_without_species(args, basis, structures) or err from None
    except ValueError as err:
        if "under-determined" not in str(err):
            raise
        option = "--batch-size" if args.batch_size is not None else "--memory-limit"
        raise UsageError(f"{option}: a batch has fewer atoms of a species than the basis has functions for it "
                         f"(pyace: {err}); give larger batches, more training structures, or drop {option}") from None
    active.save(out)
    print(f"active set of {len(structures)} structures by batches, species {active.elements}: wrote {out}")
    return 0


def _batch_without_species(args: argparse.Namespace, basis, structures: list) -> UsageError | None:
    """The error for a batch of pyace's batched MaxVol that lacks a species (pyace raises ``KeyError: 0``)."""
    from pyace.activelearning import compute_number_of_functions

    from uqlib import grading

    n_batches = grading.batch_count(len(structures), sum(len(a) for a in structures),
                                    max(compute_number_of_functions(basis)), batch_size=args.batch_size,
                                    memory_limit=args.memory_limit)
    everyone = set(basis.elements_name)
    # the batches pyace makes: np.array_split of the structures in file order
    for number, indices in enumerate(np.array_split(np.arange(len(structures)), n_batches)):
        present = {symbol for i in indices for symbol in structures[i].get_chemical_symbols()}
        if everyone - present:
            option = (f"--batch-size {args.batch_size}" if args.batch_size is not None
                      else f"--memory-limit {args.memory_limit}")
            return UsageError(f"{option}: batch {number} (training structures {indices[0]}-{indices[-1]} in file "
                              f"order) has no {', '.join(sorted(everyone - present))} atoms, and pyace's batched "
                              f"MaxVol needs every species in every batch: give larger batches, shuffle the "
                              f"training file so that each batch mixes the species, or drop {option.split()[0]}")
    return None


# -- grade ---------------------------------------------------------------------------------------

def cmd_grade(args: argparse.Namespace) -> int:
    from uqlib import activeset, grading

    grading.band(np.array([1.0]), args.gamma_lo, args.gamma_hi)  # checks the thresholds first
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    out = Path(args.output)
    summary_path = Path(args.summary) if args.summary else out.with_suffix(".csv")
    inputs = {"frames": args.frames, "--potential": [args.potential], "--active-set": [args.active_set]}
    refuse_overwriting_inputs({"-o": out, "--summary": summary_path}, inputs)
    if _same_path(out, summary_path):
        raise UsageError(f"--summary {summary_path} is the -o file: give another CSV path")
    _warn_species_map_ignored(args.frames, args.species_map)
    basis = grading.load_potential(args.potential)
    active_set = activeset.load_active_set(args.active_set)
    members = ensemble_members(args.ensemble, basis) if args.ensemble else []
    out.parent.mkdir(parents=True, exist_ok=True)
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    # an interrupted run never leaves files that look complete: both are written under names unique to
    # this run (<name>.<random>.part), then renamed
    partials: list[Path] = []
    try:
        partials = [_unique_partial(out), _unique_partial(summary_path)]
        with _frame_grader(args, basis, active_set) as grades:
            counts = _grade_to(partials[0], partials[1], args, grades, active_set, members)
        _publish(partials[0], out)
        _publish(partials[1], summary_path)
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)
    print(f"graded {sum(counts.values())} frames with {len(active_set.clusters)} cluster(s): {counts['below']} "
          f"below gamma-lo={args.gamma_lo}, {counts['between']} between, {counts['above']} above "
          f"gamma-hi={args.gamma_hi}; wrote {out} and {summary_path}")
    return EXIT_ABOVE if counts["above"] and args.fail_above else EXIT_OK


def ensemble_members(folder: str | Path, basis) -> list:
    """PyACECalculators of exactly the members that ``folder/fit.json`` lists, checked.

    Refuses a folder without ``fit.json`` (a killed or unfinished fit), a member file that is
    missing or changed since the fit (sha256), a count that differs from the record, and a
    member whose basis (species, functions per species) is not that of ``basis``.
    """
    from pyace import PyACECalculator
    from pyace.activelearning import compute_number_of_functions

    from uqlib import grading, io

    folder = Path(folder)
    record_path = folder / "fit.json"
    if not folder.is_dir():
        raise UsageError(f"--ensemble {folder} is not a folder: give the output folder of `uqlib fit --ensemble K`")
    if not record_path.is_file():
        raise UsageError(f"--ensemble {folder} holds no fit.json, so it is not a finished `uqlib fit` (killed, or "
                         f"not a fit folder): run `uqlib fit ... --ensemble K -o {folder}` again")
    try:
        record = json.loads(record_path.read_text())
        listed = record["ensemble"]
        files = listed.get("files") or {f"members/member-{k:02d}.yaml": None for k in range(listed["members"])}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise UsageError(f"--ensemble {folder}: {record_path} records no ensemble ({type(err).__name__}: {err}): "
                         f"fit with --ensemble K (K >= 2)") from None
    if len(files) != listed.get("members") or len(files) < 2:
        raise DataError(f"{record_path} lists {len(files)} member files for an ensemble of {listed.get('members')}: "
                        f"the record is damaged; fit again")
    expected = (list(basis.elements_name), list(compute_number_of_functions(basis)))
    calculators = []
    for name, checksum in files.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"--ensemble {folder}: member {name} that fit.json lists is missing: fit again")
        if checksum is not None and io.sha256sum(path) != checksum:
            raise DataError(f"--ensemble {folder}: member {name} changed after the fit (its sha256 differs from "
                            f"fit.json): fit again")
        member = grading.load_potential(path)
        found = (list(member.elements_name), list(compute_number_of_functions(member)))
        if found != expected:
            raise DataError(f"--ensemble {folder}: member {name} has species and functions {found}, the potential "
                            f"{expected}: give the ensemble fitted with this potential")
        calculators.append(PyACECalculator(str(path)))
    return calculators


def _input_bytes(paths: Sequence[str | Path]) -> int:
    return sum(Path(p).stat().st_size for p in paths if Path(p).is_file())


@contextmanager
def _frame_grader(args: argparse.Namespace, basis, active_set):
    """``grades(frames, source)``: in this process, or on Dask with --scheduler, $UQLIB_SCHEDULER or --workers > 1.

    ``--workers N`` below ``SERIAL_BELOW_BYTES`` of input grades in this process (with a note):
    starting the local cluster costs more than it saves there.
    """
    from uqlib import distributed, grading

    remote = distributed.scheduler_address(args.scheduler) is not None
    workers = args.workers
    if not remote and workers > 1 and _input_bytes(args.frames) < SERIAL_BELOW_BYTES:
        warnings.warn(f"--workers {workers}: {_input_bytes(args.frames) / 1e6:.1f} MB of frames is below "
                      f"{SERIAL_BELOW_BYTES / 1e6:.0f} MB, where a local Dask cluster is slower than one process; "
                      f"grading in this process", UserWarning, stacklevel=2)
        workers = 1
    if not remote and workers == 1:
        yield lambda frames, source: grading.iter_grades(frames, basis, active_set, chunk_size=args.chunk_size,
                                                         source=source, progress=not args.quiet)
        return
    with distributed.dask_client(args.scheduler, n_workers=workers) as client:
        yield lambda frames, source: distributed.grade_frames_distributed(
            frames, args.potential, active_set, chunk_size=args.chunk_size, client=client, source=source,
            progress=not args.quiet)


GRADE_COLUMNS = {
    "file": "the input file",
    "frame": "frame index in that file, from 0",
    "n_atoms": "atoms in the frame",
    "gamma_max": "largest per-atom gamma of the frame, gamma_cfg (dimensionless)",
    "cluster_of_max": "index of the cluster whose active set gave gamma_max (the order of index.json's files; "
                      "0 for a single .asi)",
    "force_spread_max": "with --ensemble: largest per-atom force spread of the members (eV/Å, eq 3)",
    "band": "below (gamma_max < gamma-lo), between, or above (gamma_max > gamma-hi)",
}
GRADE_EXTXYZ = {
    "gamma": "per atom: extrapolation grade (dimensionless)",
    "gamma_cluster": "per atom: index of the cluster that gave gamma (as cluster_of_max)",
    "force_spread": "per atom, with --ensemble: the members' force spread (eV/Å, eq 3)",
    "ensemble_forces": "per atom, with --ensemble: the members' mean force (eV/Å)",
    "ensemble_energy": "per frame, with --ensemble: the members' mean energy (eV)",
    "gamma_max, band, source, frame": "per frame: as the CSV",
    "energy, forces, ...": "the input's own labels and per-atom arrays, kept as they were",
}


def _grade_to(target: Path, summary: Path, args: argparse.Namespace, grades, active_set, members: list
              ) -> dict[str, int]:
    """Grade every frame of ``args.frames``, writing each as it comes to the extxyz ``target`` and the CSV
    ``summary`` (memory bounded by one chunk); returns the number of frames in each band."""
    from uqlib import grading, io

    columns = ["file", "frame", "n_atoms", "gamma_max", "cluster_of_max", *(["force_spread_max"] if members else []),
               "band"]
    counts = dict.fromkeys(grading.BANDS, 0)
    with open(target, "w") as fh, open(summary, "w", newline="") as summary_fh:
        writer = csv.DictWriter(summary_fh, fieldnames=columns)
        writer.writeheader()
        for path in args.frames:
            isolated: list[tuple[int, int]] = []  # (frame, atom) with gamma exactly 0
            for g in grades(io.iter_structures(path, args.species_map), str(path)):
                atoms = _with_labels(g.atoms)
                atoms.arrays["gamma"] = g.gamma
                atoms.arrays["gamma_cluster"] = g.cluster
                row = {"file": str(path), "frame": g.frame, "n_atoms": len(atoms), "gamma_max": g.gamma_max,
                       "cluster_of_max": int(g.cluster[g.gamma.argmax()])}
                if members:
                    energies, forces = _member_predictions(members, g.atoms)
                    atoms.arrays["force_spread"] = _force_spread(forces)
                    atoms.arrays["ensemble_forces"] = forces.mean(axis=0)
                    atoms.info["ensemble_energy"] = float(energies.mean())
                    row["force_spread_max"] = float(atoms.arrays["force_spread"].max())
                row["band"] = str(grading.band(np.array([g.gamma_max]), args.gamma_lo, args.gamma_hi)[0])
                atoms.info.update({"gamma_max": g.gamma_max, "band": row["band"], "source": str(path),
                                   "frame": g.frame})
                isolated += [(g.frame, int(i)) for i in np.flatnonzero(g.gamma == 0)]
                ase.io.write(fh, atoms, format="extxyz")
                writer.writerow(row)
                counts[row["band"]] += 1
            if isolated:
                frames = sorted({f for f, _ in isolated})
                warnings.warn(f"{path}: {len(isolated)} atom(s) in {len(frames)} frame(s) (first: frame "
                              f"{isolated[0][0]}, atom {isolated[0][1]}) have gamma 0: they have no neighbour "
                              f"within the potential's cutoff (isolated atoms), so their grade says nothing about "
                              f"extrapolation; check those frames", UserWarning, stacklevel=2)
    return counts


def _with_labels(atoms):
    """A copy of ``atoms`` that keeps its labels (``Atoms.copy`` drops the calculator and with it the energy)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    copy = atoms.copy()
    results = getattr(atoms.calc, "results", None) or {}
    kept = {k: v for k, v in results.items() if k in ("energy", "free_energy", "forces", "stress", "magmom")}
    if kept:
        copy.calc = SinglePointCalculator(copy, **kept)
    return copy


def _member_predictions(members: list, atoms) -> tuple[np.ndarray, np.ndarray]:
    """Energies (eV, ``(K,)``) and forces (eV/Å, ``(K, n_atoms, 3)``) of each ensemble member on ``atoms``."""
    energies, forces = [], []
    for calc in members:
        copy = atoms.copy()
        copy.calc = calc
        energies.append(copy.get_potential_energy())
        forces.append(copy.get_forces())
    return np.array(energies), np.array(forces)


def _force_spread(forces: np.ndarray) -> np.ndarray:
    from uqlib.ensemble import atom_force_uncertainty

    return atom_force_uncertainty(forces)


# -- select --------------------------------------------------------------------------------------

def cmd_select(args: argparse.Namespace) -> int:
    from uqlib import activeset, grading, io

    refuse_overwriting_inputs({"-o": args.output}, {"frames": args.frames, "--potential": [args.potential],
                                                    "--active-set": [args.active_set]})
    _warn_species_map_ignored(args.frames, args.species_map)
    basis = grading.load_potential(args.potential)
    active_set = activeset.load_active_set(args.active_set)
    candidates, origin = [], []
    for path in args.frames:
        for g in grading.iter_grades(io.iter_structures(path, args.species_map), basis, active_set,
                                     source=str(path), progress=not args.quiet):
            if g.gamma_max > args.gamma_lo:  # only extrapolating frames are worth labelling
                atoms = g.atoms.copy()
                atoms.info.update({"gamma_max": g.gamma_max, "source": str(path), "frame": g.frame})
                candidates.append(atoms)
                origin.append((str(path), g.frame))
    picked = grading.select_frames(candidates, basis, active_set, args.n) if candidates else []
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = _unique_partial(out)
    try:
        ase.io.write(partial, [candidates[i] for i in picked], format="extxyz")
        _publish(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    print(f"{len(candidates)} frames above gamma-lo={args.gamma_lo}; picked {len(picked)} by MaxVol "
          f"(D-optimal, no near duplicates): wrote {args.output}")
    return 0


def _warn_species_map_ignored(paths: Sequence[str | Path], species_map: str | None) -> None:
    """``--species-map`` applies to LAMMPS dumps only: say so for every other file it is given with."""
    from uqlib import io

    if species_map is None:
        return
    for path in paths:
        if Path(path).is_file() and io._lammps_dump_columns(Path(path)) is None:
            warnings.warn(f"--species-map {species_map} is ignored for {path}: it is not a LAMMPS dump, and its "
                          f"species come from the file", UserWarning, stacklevel=2)


# -- the parser ----------------------------------------------------------------------------------

class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples as written, and every option's default in its help (unless the help already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if unset or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _columns_help(columns: dict[str, str]) -> str:
    return "\n".join(f"  {name}: {meaning}" for name, meaning in columns.items())


def _add_frames_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--potential", required=True, help="pacemaker B-basis potential (.yaml)")
    p.add_argument("--active-set", required=True, help="a pacemaker .asi file or a clustered folder (index.json)")
    p.add_argument("--species-map", help="LAMMPS type = element for dumps without an element column, e.g. 1=W,2=Mo "
                                         "(ignored, with a warning, for other files)")


EXIT_CODES = ("exit codes: 0 success; 1 a bug in uqlib (a traceback: please report it); 2 user error (one line "
              "naming the file, frame, parameter or species and the fix, no traceback); 3 grade --fail-above found "
              "frames above --gamma-hi; 130 interrupted (Ctrl-C or SIGTERM; partial outputs removed)")


def build_parser() -> argparse.ArgumentParser:
    from uqlib import ace, io

    raw = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog="uqlib", formatter_class=raw,
        description="Uncertainty of linear ACE potentials on your own structures (arXiv:2508.03405).",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES.values())
        + f"\n\n{EXIT_CODES}\n\nincomplete frames (extxyz, LAMMPS dumps): {io.TRUNCATION_POLICY}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars and no Dask log lines (warnings and errors still show)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{fit,activeset,grade,select}")

    fit = sub.add_parser("fit", formatter_class=raw, help="fit a linear ACE model (and an ensemble)",
                         epilog=f"example:\n  {EXAMPLES['fit']}\n\nwrites potential.yaml (PyACECalculator, LAMMPS "
                                f"29Aug2024+), potential.yace (older LAMMPS), members/member-*.yaml, fit.json (with "
                                f"units: energies eV, forces eV/Å, RMSEs meV/atom and meV/Å). The folder is written "
                                f"beside -o and renamed into place; an earlier fit's folder at -o is replaced whole "
                                f"(its active sets too: they belong to the old potential).")
    fit.add_argument("train", nargs="+", help="labelled structures: extxyz with energy and forces, pacemaker pickles")
    fit.add_argument("--preset", required=True,
                     help=f"basis preset: {', '.join(ace.PRESETS)} (named by W's function count; the same "
                          f"limits for other species)")
    fit.add_argument("--elements", metavar="A,B",
                     help="species of the potential, e.g. Cu,Au (default: the species in the training files); "
                          "a training structure of another species is an error")
    fit.add_argument("--kappa", type=float, default=ace.DEFAULT_KAPPA,
                     help="force weight of the loss, in [0, 1] (dimensionless)")
    fit.add_argument("--alpha", type=float, default=ace.DEFAULT_ALPHA, help="ridge strength (> 0)")
    fit.add_argument("--ensemble", type=int, metavar="K", help="also fit K >= 2 members")
    fit.add_argument("--construction", "--method", dest="construction",
                     choices=("pacemaker", "bootstrap", "subsample", "posterior"), default="bootstrap",
                     help="how the members differ (uqlib.ensemble): pacemaker's BFGS from random starts, a "
                          "bootstrap of the structures, 90 %% subsamples or posterior draws; --method is the old name")
    fit.add_argument("--seed", type=int, default=0, help="seed of the ensemble's members")
    fit.add_argument("--workers", type=int, default=2, help="processes that compute pyace's features")
    fit.add_argument("--species-map", help="LAMMPS type = element for dumps, e.g. 1=W (ignored for other files)")
    fit.add_argument("-o", "--output", required=True, help="output folder (new, empty, or an earlier fit's)")
    fit.set_defaults(run=cmd_fit)

    act = sub.add_parser("activeset", formatter_class=raw, help="MaxVol active set(s) of training structures",
                         epilog=f"example:\n  {EXAMPLES['activeset']}")
    act.add_argument("train", nargs="+", help="training structures (labels not needed)")
    act.add_argument("--potential", required=True, help="pacemaker B-basis potential (.yaml)")
    act.add_argument("--clusters",
                     help="soap-birch:K, kmeans:K, birch:K (K from 2 to the number of training structures) or "
                          "column:NAME (default: one set); any species. Each cluster covers the species its atoms "
                          "span; an atom's gamma is the minimum over the clusters covering its species; a cluster "
                          "spanning none is dropped with a warning")
    act.add_argument("--strict", action="store_true",
                     help="fewer clusters surviving than asked is an error (default: a warning on stderr)")
    act.add_argument("--keep-outliers", action="store_true",
                     help="offer every atom to MaxVol (by default, with force labels, atoms whose force error is "
                          "an outlier, Q3 + 1.5 IQR, are left out as pace_activeset does)")
    act.add_argument("--outliers", choices=("per-species", "global"), default="per-species",
                     help="outlier threshold per species (default, as pace_activeset) or one over all atoms")
    act.add_argument("--seed", type=int, default=0, help="seed of the clustering")
    act.add_argument("--batch-size", type=int, metavar="N",
                     help="batched MaxVol (pyace), N structures per batch: bounded memory for large training sets; "
                          "every batch must hold every species")
    act.add_argument("--memory-limit", metavar="SIZE",
                     help="batched MaxVol with at most SIZE of projections per batch, e.g. 2GB (as pace_activeset)")
    act.add_argument("--species-map", help="LAMMPS type = element for dumps, e.g. 1=W (ignored for other files)")
    act.add_argument("-o", "--output", required=True, help="a .asi file, or a folder with --clusters")
    act.set_defaults(run=cmd_activeset)

    grade = sub.add_parser(
        "grade", formatter_class=raw, help="per-atom gamma of frames (labels not needed)",
        epilog=f"example:\n  {EXAMPLES['grade']}\n\n"
               f"CSV columns (one row per frame):\n{_columns_help(GRADE_COLUMNS)}\n\n"
               f"extxyz keys:\n{_columns_help(GRADE_EXTXYZ)}\n\n"
               f"gamma-lo/gamma-hi default to 1 and 10 (the defaults of pyace's PyACECalculator, gamma_lower_bound "
               f"and gamma_upper_bound, are 1.1 and 5).\n"
               f"incomplete frames: {io.TRUNCATION_POLICY}.\n"
               f"--workers: below {SERIAL_BELOW_BYTES / 1e6:.0f} MB of input frames grading stays in this process, "
               f"with a note: on 2 shared cores a local cluster of 2 workers was about 2x slower than one process at "
               f"every size measured (0.1 MB: 8.4 s vs 21.8 s; 18.3 MB, 256,000 atoms: 53 s vs 105 s). It pays with "
               f"free cores and large inputs, or on a remote --scheduler.\n"
               f"outputs are written as <name>.<random>.part and renamed when complete; -o or --summary equal to "
               f"an input is refused.\n{EXIT_CODES}")
    grade.add_argument("frames", nargs="+", help="extxyz, LAMMPS dumps, pacemaker pickles, anything ase reads")
    _add_frames_options(grade)
    grade.add_argument("--ensemble", metavar="DIR",
                       help="folder of `uqlib fit --ensemble K`: adds the members' force spread (eV/Å) and mean "
                            "energy (eV) and forces (eV/Å); only the members its fit.json lists are loaded")
    grade.add_argument("--gamma-lo", type=float, default=1.0, help="below: interpolation (dimensionless)")
    grade.add_argument("--gamma-hi", type=float, default=10.0, help="above: unreliable (dimensionless)")
    grade.add_argument("--chunk-size", type=int, default=50, help="frames per block of projections")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on an existing Dask cluster, e.g. tcp://host:8786 (default: $UQLIB_SCHEDULER)")
    grade.add_argument("--workers", type=int, default=1,
                       help="N > 1: grade on a local Dask cluster of N processes (1: in this process)")
    grade.add_argument("--summary", help="CSV of per-frame results (default: OUT with .csv)")
    grade.add_argument("--fail-above", action="store_true",
                       help="exit with code 3 when a frame is above --gamma-hi (to stop an MD campaign); without "
                            "it, a finished grade exits 0")
    grade.add_argument("-o", "--output", required=True, help="extxyz with per-atom gamma")
    grade.set_defaults(run=cmd_grade)

    select = sub.add_parser("select", formatter_class=raw, help="D-optimal batch of extrapolating frames",
                            epilog=f"example:\n  {EXAMPLES['select']}\n\nwrites the picked frames with gamma_max "
                                   f"(dimensionless), source and frame in their info")
    select.add_argument("frames", nargs="+", help="extxyz, LAMMPS dumps, pacemaker pickles, anything ase reads")
    _add_frames_options(select)
    select.add_argument("--n", type=int, required=True, help="at most this many frames")
    select.add_argument("--gamma-lo", type=float, default=1.0, help="candidates have gamma_max above this")
    select.add_argument("-o", "--output", required=True, help="extxyz of the picked frames")
    select.set_defaults(run=cmd_select)
    return parser


# -- errors, interrupts and the entry point -------------------------------------------------------

def _user_paths(args: argparse.Namespace) -> list[Path]:
    """Every path the user gave on the command line (inputs and outputs)."""
    paths: list[Path] = []
    for name in ("train", "frames", "potential", "active_set", "ensemble", "output", "summary"):
        value = getattr(args, name, None)
        if value is not None:
            paths += [Path(v) for v in (value if isinstance(value, list) else [value])]
    return paths


def _on_user_path(filename: str | os.PathLike, args: argparse.Namespace) -> bool:
    """Whether ``filename`` is a path the user gave, inside one, beside one (its temporary file) or above one."""
    path = Path(os.fsdecode(filename)).resolve()
    for given in _user_paths(args):
        given = given.resolve()
        if path == given or given in path.parents or path in given.parents:
            return True
        if path.parent == given.parent and (path.name.startswith(given.name) or path.name.startswith(f".{given.name}")):
            return True
    return False


def user_file_error(err: OSError, args: argparse.Namespace) -> str | None:
    """The one-line message for a file error caused by the user's paths or disk, or ``None`` (a bug)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        where = err.filename or args.output
        return (f"no space left on the device while writing {os.fsdecode(where)} (-o {args.output}): free space, "
                f"or give -o on another disk; nothing was published")
    user_kinds = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
    if isinstance(err, user_kinds) and err.filename is not None and _on_user_path(err.filename, args):
        fix = {FileNotFoundError: "check the path", PermissionError: "check its permissions or choose another path",
               IsADirectoryError: "give a file, not a folder", NotADirectoryError: "give a folder, not a file",
               FileExistsError: "a file is in the way of a folder: give another path"}
        return f"{err.strerror}: {os.fsdecode(err.filename)}; {fix[type(err)]}"
    return None


@contextmanager
def _interrupts() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise :class:`KeyboardInterrupt` in this process, so cleanup code runs.

    A process forked from this one (pyace feature workers) inherits the handler: there SIGINT
    is ignored (the parent stops it) and SIGTERM ends it as by default, so ``Pool.terminate`` works.
    """
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:
            if signum == signal.SIGTERM:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            return
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)} if threading_main() else {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@contextmanager
def _warnings_on_stderr(prefix: str, quiet: bool) -> Iterator[None]:
    """Every warning as one line ``<prefix>: warning: ...`` on stderr (no file:line of uqlib's code);
    with ``quiet``, none of Dask's (its port notes)."""
    from uqlib.io import one_line

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prefix}: warning: {one_line(str(message))}", file=sys.stderr)

    with warnings.catch_warnings():
        # every one of uqlib's (one per file or frame); others once per place, as Python does by default
        warnings.filterwarnings("always", category=UserWarning, module=r"uqlib(\.|$)")
        if quiet:
            warnings.filterwarnings("ignore", module=r"distributed(\.|$)")
        warnings.showwarning = show
        yield


def _quiet_dask() -> None:
    """No Dask log lines in this process or in the local cluster's worker processes (they copy dask's config)."""
    import logging

    import dask

    for name in ("distributed", "dask"):
        logging.getLogger(name).setLevel(logging.ERROR)
    dask.config.set({"logging": {"distributed": "error", "distributed.client": "error", "distributed.nanny": "error",
                                 "distributed.scheduler": "error", "distributed.worker": "error",
                                 "bokeh": "error", "tornado": "critical"}})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``uqlib`` console script; returns the exit code (module docstring)."""
    from uqlib import config
    from uqlib.io import one_line

    args = build_parser().parse_args(argv)
    prefix = f"uqlib {args.command}"
    if args.quiet:
        config.set_progress(False)
        _quiet_dask()
    with _warnings_on_stderr(prefix, args.quiet), _interrupts():
        try:
            return args.run(args)
        except UqlibError as err:
            print(f"{prefix}: error: {one_line(err)}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print(f"{prefix}: interrupted; partial outputs and worker processes removed", file=sys.stderr)
            return EXIT_INTERRUPTED
        except OSError as err:
            message = user_file_error(err, args)
            if message is None:
                raise  # not the user's file: a bug, with its traceback (exit code 1)
            print(f"{prefix}: error: {one_line(message)}", file=sys.stderr)
            return EXIT_USER_ERROR


def run(command: str, cwd: str | Path) -> int:
    """Run ``uqlib <command>`` in ``cwd`` as a shell would (a fresh process), print what it prints.

    For notebooks and scripts that show the command at work. Returns the exit code (0, or 3
    for ``grade --fail-above``, see the module docstring); any other code (a user error, a bug,
    an interruption) raises ``RuntimeError`` with its message.
    """
    import shlex
    import subprocess

    print(f"$ uqlib {command}")
    result = subprocess.run([sys.executable, "-m", "uqlib", "--quiet", *shlex.split(command)], cwd=cwd,
                            capture_output=True, text=True)
    print(result.stdout + result.stderr + f"(exit code {result.returncode})")
    if result.returncode not in (EXIT_OK, EXIT_ABOVE):
        raise RuntimeError(f"uqlib {command} failed: {result.stderr.strip()}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
