from __future__ import annotations

import gzip
import re
import urllib.request

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from uqlib import io, tables
from uqlib.io import DataError
from uqlib.paper import data


def test_manifest_lists_every_subset_with_pinned_url_and_checksum():
    manifest = data.load_manifest()
    assert set(data.subset_files()) == {"A", "B", "C", "D", "E", "F", "PRM2020"}
    for entry in manifest.values():
        # subset F's bytes were never available here: it is verified by its git blob hash, size unknown
        verifiable = re.fullmatch(r"[0-9a-f]{64}", entry.sha256) or re.fullmatch(r"[0-9a-f]{40}", entry.git_blob_sha1)
        assert verifiable, entry.key
        assert re.match(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/", entry.url), entry.key
        assert (entry.size > 0 or entry.optional) and entry.description


def test_resolve_verifies_the_mirror_copy():
    path = data.resolve("elastic")
    assert data.sha256sum(path) == data.load_manifest()["elastic"].sha256


def test_corrupt_cached_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("UQLIB_CACHE", str(tmp_path))
    entry = data.load_manifest()["sphere"]
    (tmp_path / entry.path).parent.mkdir(parents=True)
    (tmp_path / entry.path).write_bytes(b"not the sphere data")
    with pytest.raises(DataError) as err:
        data.resolve("sphere")
    message = str(err.value)
    assert "Checksum mismatch" in message and entry.sha256 in message
    assert "UQLIB_DATA_MIRROR" in message and entry.url in message and str(tmp_path / entry.path) in message


def test_missing_file_names_checksum_and_three_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv("UQLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("UQLIB_DATA_MIRROR", raising=False)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        data.resolve("elastic")
    message = str(err.value)
    assert "elastic" in message and data.load_manifest()["elastic"].sha256 in message
    assert all(f"{i}." in message for i in (1, 2, 3)) and "network is unreachable" in message
    assert not list((tmp_path / "cache").rglob("*.gzip")), "a failed download must not leave a file"


def test_mirror_that_is_not_a_directory_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("UQLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("UQLIB_DATA_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="not a directory"):
        data.resolve("elastic")


def test_unknown_file_key_lists_known_ones():
    with pytest.raises(DataError, match="Known files: .*elastic"):
        data.resolve("elastik")


def test_unreadable_pickle_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pckl.gzip"
    bad.write_bytes(gzip.compress(b"definitely not a pickle"))
    with pytest.raises(DataError, match=r"Cannot read data file 'bad'"):
        io.read_pacemaker_pickle(bad, "bad")


def _frame(atoms, energy=-10.0, forces=None):
    forces = np.zeros((len(atoms), 3)) if forces is None else forces
    return pd.DataFrame({"ase_atoms": [atoms], "energy": [energy], "forces": [forces]})


def test_non_tungsten_structure_is_rejected_by_name():
    frame = _frame(Atoms("WMo", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[3, 3, 3], pbc=True))
    with pytest.raises(DataError, match=r"Structure X-0000 contains \['Mo'\]"):
        io.tidy_table(frame, "X")


def test_nan_labels_and_bad_force_shapes_are_rejected():
    atoms = Atoms("W2", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[3, 3, 3], pbc=True)
    with pytest.raises(DataError, match="X-0000 has a NaN"):
        io.tidy_table(_frame(atoms, energy=np.nan), "X")
    forces = np.zeros((2, 3))
    forces[1, 2] = np.nan
    with pytest.raises(DataError, match="X-0000 has a NaN"):
        io.tidy_table(_frame(atoms, forces=forces), "X")
    with pytest.raises(DataError, match=r"shape \(1, 3\), expected \(2, 3\)"):
        io.tidy_table(_frame(atoms, forces=np.zeros((1, 3))), "X")


def test_load_subsets_concatenates_with_stable_ids():
    table = data.load_subsets("A+B")
    assert list(table.columns) == io.TABLE_COLUMNS
    counts = table.groupby("subset")["n_atoms"].agg(["size", "sum"])
    assert counts.loc["A"].tolist() == [121, 242] and counts.loc["B"].tolist() == [557, 48519]
    assert table["structure_id"].is_unique and table["structure_id"].iloc[0] == "A-0000"
    assert table["structure_id"].iloc[-1] == "B-0556"
    row = table.iloc[130]
    assert row["forces"].shape == (row["n_atoms"], 3)
    assert row["energy_per_atom"] == pytest.approx(row["energy"] / row["n_atoms"])


@pytest.mark.parametrize("spec, match", [("A+X", "Unknown subset"), ("A+A", "twice"), ("", "non-empty")])
def test_bad_subset_expressions(spec, match):
    with pytest.raises(DataError, match=match):
        data.parse_subsets(spec)


def test_subsample_is_seeded_and_keeps_order():
    table = data.load_subsets("A+D")
    first, again = tables.subsample(table, 5, seed=3), tables.subsample(table, 5, seed=3)
    other = tables.subsample(table, 5, seed=4)
    assert first["structure_id"].tolist() == again["structure_id"].tolist()
    assert first["structure_id"].tolist() != other["structure_id"].tolist()
    assert first.groupby("subset").size().tolist() == [5, 5]
    assert first["structure_id"].tolist() == sorted(first["structure_id"])
    with pytest.raises(DataError, match="at least 1"):
        tables.subsample(table, 0, seed=0)


def test_subset_summary_counts_and_ranges():
    summary = tables.subset_summary(data.load_subsets("A+D"))
    assert summary.loc["D", "configs"] == 31 and summary.loc["D", "atoms"] == 3503
    assert summary.loc["A", "atoms_min"] == summary.loc["A", "atoms_max"] == 2
    assert summary.loc["A", "e_min"] < summary.loc["A", "e_max"] < 0


def test_subset_runs_split_consecutive_subsets():
    table = data.load_subsets("A+D")
    runs = tables.subset_runs(table)
    assert [(r.start, r.stop) for r in runs] == [(0, 121), (121, 152)]


def test_prm2020_blocks_follow_the_atom_counts():
    table = data.load_subsets("PRM2020")
    blocks = data.prm2020_blocks(table)
    assert blocks.nunique() == 23 and blocks.iloc[0] == "P00" and (blocks.iloc[:1996] == "P00").all()
    per_block = table.groupby(blocks)["n_atoms"].nunique()
    assert (per_block == 1).all()
    sample = tables.subsample(table.assign(group=blocks), 2, seed=0, by="group")
    assert sample.groupby("group").size().max() == 2 and sample["group"].nunique() == 23
    with pytest.raises(DataError, match="PRM2020 structures only"):
        data.prm2020_blocks(data.load_subsets("A"))


def test_per_atom_is_the_inverse_of_per_structure_max():
    n_atoms = np.array([2, 1, 3])
    spread = tables.per_atom(np.array(["a", "b", "c"]), n_atoms)
    assert spread.tolist() == ["a", "a", "b", "c", "c", "c"]
    values = np.array([1.0, 5.0, 2.0])
    np.testing.assert_array_equal(tables.per_structure_max(tables.per_atom(values, n_atoms), n_atoms), values)
    with pytest.raises(ValueError, match="2 values for 3 configurations"):
        tables.per_atom(values[:2], n_atoms)


def test_holdout_split_keeps_every_subset_fitted():
    table = tables.subsample(data.load_subsets("A+D"), 5, seed=0)
    fit, held = tables.holdout_split(table, 0.2, seed=1)
    assert len(fit) + len(held) == 10 and set(fit["subset"]) == {"A", "D"} and len(held) == 2
    assert not set(fit["structure_id"]) & set(held["structure_id"])
    with pytest.raises(io.DataError, match="holdout_fraction"):
        tables.holdout_split(table, 1.0, seed=0)


def test_atom_offsets_and_atoms_of():
    n_atoms = np.array([2, 3, 1])
    np.testing.assert_array_equal(tables.atom_offsets(n_atoms), [0, 2, 5, 6])
    np.testing.assert_array_equal(tables.atoms_of(np.array([2, 0]), n_atoms), [5, 0, 1])
    assert tables.atoms_of(np.array([], int), n_atoms).size == 0


def test_git_blob_hash_is_the_hash_git_records(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert data.git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`


def _with_subset_f(monkeypatch, tmp_path, blob: str) -> None:
    """Point the cache at tmp_path and give subset F the git blob hash ``blob``."""
    monkeypatch.setenv("UQLIB_CACHE", str(tmp_path))
    manifest = dict(data.load_manifest())
    manifest["validation"] = data.DataFile(**{**manifest["validation"].__dict__, "git_blob_sha1": blob})
    monkeypatch.setattr(data, "load_manifest", lambda: manifest)
    data.test_subsets.cache_clear()


def test_subset_f_absent_means_test_set_c_plus_e_with_the_reason(monkeypatch, tmp_path):
    _with_subset_f(monkeypatch, tmp_path, data.load_manifest()["validation"].git_blob_sha1)
    spec, reason = data.test_subsets(allow_download=False)
    data.test_subsets.cache_clear()
    assert spec == "C+E" and "validation.pckl.gzip" in reason and "c9c37a42" in reason
    assert "validation" not in data.resolve_all(allow_download=False)  # optional: skipped, not an error


def test_subset_f_verified_by_git_blob_hash_makes_the_paper_test_set(monkeypatch, tmp_path):
    fake = tmp_path / "uq-ace" / "validation.pckl.gzip"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"stand-in bytes")
    _with_subset_f(monkeypatch, tmp_path, data.git_blob_sha1(fake))
    spec, reason = data.test_subsets(allow_download=False)
    data.test_subsets.cache_clear()
    assert spec == "C+E+F" and "git blob hash" in reason


def test_subset_f_with_wrong_content_is_a_checksum_error(monkeypatch, tmp_path):
    fake = tmp_path / "uq-ace" / "validation.pckl.gzip"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the validation set")
    _with_subset_f(monkeypatch, tmp_path, "c9c37a426eb5e7887a3d70b113efaf9e3962ff80")
    with pytest.raises(DataError, match="expected git blob c9c37a42"):
        data.test_subsets(allow_download=False)
    data.test_subsets.cache_clear()

# -- your own structures --------------------------------------------------------------------------

def _w2(**kwargs) -> Atoms:
    return Atoms("W2", positions=[[0, 0, 0], [1.58, 1.58, 1.58]], cell=[3.16] * 3, pbc=True, **kwargs)


def _labelled(atoms: Atoms, energy: float = -25.0, forces=None) -> Atoms:
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms.calc = SinglePointCalculator(atoms, energy=energy,
                                       forces=np.zeros((len(atoms), 3)) if forces is None else forces)
    return atoms


def _nan(atoms: Atoms) -> Atoms:
    atoms.positions[1, 2] = np.nan
    return atoms


@pytest.mark.parametrize("spoil, message", [
    (_nan, r"md.extxyz, frame 1 has non-finite \(NaN or infinite\) positions for atom\(s\) \[1\]"),
    (lambda a: Atoms("W", cell=np.full((3, 3), np.nan), pbc=True), "md.extxyz, frame 1 has a non-finite .* cell"),
    (lambda a: setattr(a, "pbc", [True, False, True]) or a, "md.extxyz, frame 1 is periodic in only some"),
    (lambda a: Atoms(), "md.extxyz, frame 1 has no atoms"),
    (lambda a: Atoms("WMo", positions=[[0, 0, 0], [1, 1, 1]]), r"md.extxyz, frame 1 contains \['Mo'\]"),
])
def test_validate_structures_names_the_file_and_frame(spoil, message):
    with pytest.raises(DataError, match=message):
        io.validate_structures([_w2(), spoil(_w2())], "md.extxyz", elements=["W"])


def test_validate_structures_names_the_structure_id_of_a_table():
    table = io.table_from_atoms([_w2(), _w2()], subset="mine")
    table.at[1, "atoms"] = _nan(_w2())
    with pytest.raises(DataError, match="structure mine-0001 has non-finite"):
        io.validate_structures(table)
    with pytest.raises(DataError, match="holds no structures"):
        io.validate_structures([], "empty.extxyz")


def test_table_from_atoms_with_and_without_labels():
    labelled = io.table_from_atoms([_labelled(_w2()), _labelled(_w2(), energy=-26.0)], subset="mine")
    assert list(labelled.columns) == io.TABLE_COLUMNS and labelled.attrs["labelled"]
    assert labelled["energy_per_atom"].tolist() == [-12.5, -13.0] and labelled["structure_id"][1] == "mine-0001"
    unlabelled = io.table_from_atoms([_labelled(_w2()), _w2()])
    assert not unlabelled.attrs["labelled"] and np.isnan(unlabelled["energy"]).all()
    assert np.isnan(unlabelled["forces"][0]).all() and unlabelled["forces"][0].shape == (2, 3)
    with pytest.raises(DataError, match="train.extxyz, frame 1 has no energy and forces"):
        io.table_from_atoms([_labelled(_w2()), _w2()], source="train.extxyz", labelled=True)
    with pytest.raises(DataError, match="frame 0 has a NaN or infinite energy"):
        io.table_from_atoms([_labelled(_w2(), energy=np.nan)], source="t.extxyz")


def test_read_structures_reads_extxyz_pickles_and_lammps_dumps(tmp_path):
    import ase.io

    ase.io.write(tmp_path / "a.extxyz", [_labelled(_w2(), energy=-20.0), _labelled(_w2())])
    frames = io.read_structures(tmp_path / "a.extxyz")
    assert len(frames) == 2 and frames[0].get_potential_energy() == -20.0
    pd.DataFrame({"ase_atoms": [_w2()], "energy": [-21.0], "forces": [np.ones((2, 3))]}).to_pickle(
        tmp_path / "b.pckl.gzip", compression="gzip")
    table = io.read_table([tmp_path / "b.pckl.gzip"], labelled=True)
    assert table["energy"].tolist() == [-21.0] and table["subset"][0] == "b"
    dump = ("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n0 3.16\n0 3.16\n0 3.16\n"
            "ITEM: ATOMS id type x y z\n1 1 0 0 0\n2 2 1.58 1.58 1.58\n")
    (tmp_path / "md.lammpstrj").write_text(dump)
    with pytest.raises(DataError, match="without an element column: give the species map"):
        io.read_structures(tmp_path / "md.lammpstrj")
    assert io.read_structures(tmp_path / "md.lammpstrj", "1=W,2=Mo")[0].get_chemical_symbols() == ["W", "Mo"]
    with pytest.raises(DataError, match="must name every LAMMPS type from 1"):
        io.read_structures(tmp_path / "md.lammpstrj", "2=W")
    with pytest.raises(DataError, match="not chemical elements"):
        io.read_structures(tmp_path / "md.lammpstrj", "1=W,2=Xx")


def test_unreadable_and_missing_structure_files_are_named(tmp_path):
    (tmp_path / "junk.extxyz").write_text("this is not\nan extxyz file\n")
    with pytest.raises(DataError, match="Cannot read .*junk.extxyz as a structure file"):
        io.read_structures(tmp_path / "junk.extxyz")
    with pytest.raises(DataError, match="No such file: .*nope.extxyz"):
        io.read_structures(tmp_path / "nope.extxyz")
    (tmp_path / "empty.extxyz").write_text("")
    with pytest.raises(DataError, match="empty.extxyz"):
        io.read_structures(tmp_path / "empty.extxyz")


def test_main_reports_a_corrupt_file_in_one_line_with_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UQLIB_CACHE", str(tmp_path))
    entry = data.load_manifest()["elastic"]
    (tmp_path / entry.path).parent.mkdir(parents=True)
    (tmp_path / entry.path).write_bytes(b"corrupt")
    data._verified.clear()
    assert data.main() == 2
    err = capsys.readouterr().err
    assert "Checksum mismatch" in err and "UQLIB_DATA_MIRROR" in err and err.count("\n") == 1


class _Response:
    """A stand-in for urlopen's response: ``payload`` bytes, then (optionally) a dropped connection."""

    def __init__(self, payload: bytes, fail: bool = False):
        self.payload, self.fail, self.sent = payload, fail, False

    def read(self, size=-1):
        if self.sent:
            if self.fail:
                raise OSError("connection reset by peer")
            return b""
        self.sent = True
        return self.payload

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("kind", ["cut short", "wrong bytes"])
def test_a_bad_download_is_never_renamed_into_the_cache_and_a_later_run_succeeds(tmp_path, monkeypatch, kind):
    payload = data.resolve("elastic").read_bytes()  # the verified bytes, from the mirror
    monkeypatch.setenv("UQLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("UQLIB_DATA_MIRROR", raising=False)
    entry = data.load_manifest()["elastic"]
    first = _Response(payload[: len(payload) // 2], fail=True) if kind == "cut short" else _Response(b"x" * 100)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: first)
    with pytest.raises(DataError) as err:
        data.resolve("elastic")
    target = tmp_path / "cache" / entry.path
    assert not target.exists(), "an unverified download must not appear in the cache"
    assert not list(target.parent.glob("*.part")), "no partial file is left behind"
    if kind == "wrong bytes":
        assert "incomplete or not the pinned version" in str(err.value) and entry.url in str(err.value)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _Response(payload))
    assert data.resolve("elastic") == target and data.sha256sum(target) == entry.sha256



# -- incomplete frames, coincident atoms, species maps (uqlib.io) -------------------------------------------------

def _cells(n: int = 3) -> list[Atoms]:
    from ase.build import bulk

    frames = []
    for seed in range(n):
        atoms = bulk("W", "bcc", a=3.165, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=seed)
        frames.append(atoms)
    return frames


def _dump_lines(frames: list[Atoms], types: list[int] | None = None) -> list[str]:
    lines = []
    for step, atoms in enumerate(frames):
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(atoms)), "ITEM: BOX BOUNDS pp pp pp",
                  *(f"0.0 {atoms.cell[i, i]}" for i in range(3)), "ITEM: ATOMS id type x y z"]
        kinds = types or [1] * len(atoms)
        lines += [f"{i + 1} {kinds[i]} {x} {y} {z}" for i, (x, y, z) in enumerate(atoms.positions)]
    return lines


def test_a_truncated_last_dump_frame_is_skipped_with_a_warning_naming_it(tmp_path):
    path = tmp_path / "md.lammpstrj"
    path.write_text("\n".join(_dump_lines(_cells(3))[:-9]) + "\n")  # frame 2: 7 of 16 atom rows
    with pytest.warns(io.TruncatedFrameWarning, match=r"md.lammpstrj, frame 2 is incomplete \(7 of 16 atom rows"):
        frames = list(io.iter_structures(path, "1=W"))
    assert [len(a) for a in frames] == [16, 16]


def test_a_truncated_dump_frame_in_the_middle_is_an_error_naming_it(tmp_path):
    lines = _dump_lines(_cells(3))
    per_frame = len(lines) // 3
    path = tmp_path / "md.lammpstrj"
    path.write_text("\n".join(lines[:per_frame - 5] + lines[per_frame:]) + "\n")  # frame 0 loses 5 rows
    with pytest.raises(DataError, match=r"md.lammpstrj, frame 0 declares 16 atoms but has 11 atom rows"):
        list(io.iter_structures(path, "1=W"))


def test_a_truncated_last_extxyz_frame_keeps_the_frames_before_it(tmp_path):
    import ase.io

    whole = tmp_path / "whole.extxyz"
    ase.io.write(whole, _cells(3))
    path = tmp_path / "md.extxyz"
    path.write_text("".join(whole.read_text().splitlines(keepends=True)[:2 * 18 + 2 + 5]))
    with pytest.warns(io.TruncatedFrameWarning, match=r"md.extxyz, frame 2 is incomplete \(5 of 16 atom rows"):
        frames = list(io.iter_structures(path))
    assert len(frames) == 2


def test_an_incomplete_species_map_names_the_missing_type(tmp_path):
    path = tmp_path / "md.lammpstrj"
    path.write_text("\n".join(_dump_lines(_cells(1), types=[1] * 15 + [2])) + "\n")
    with pytest.raises(DataError, match=r"frame 0 has LAMMPS atom type\(s\) \[2\] that --species-map 1=W does not "
                                        r"name.*1=W,2=X"):
        list(io.iter_structures(path, "1=W"))


@pytest.mark.parametrize("pbc, offset", [(True, 0.0), (True, 2e-4), (False, 0.0)])
def test_coincident_atoms_are_named_before_pyace_sees_them(pbc, offset):
    atoms = _cells(1)[0]
    atoms.pbc = pbc
    atoms.positions[7] = atoms.positions[3] + [offset, 0, 0]
    assert io.coincident_atoms(atoms)[:2] == (3, 7)
    with pytest.raises(DataError, match=r"md.extxyz, frame 4 has atoms 3 and 7 .* Å apart \(closer than 0.001 Å"):
        io.validate_structures([atoms], "md.extxyz", start=4)


def test_coincident_atoms_across_the_periodic_boundary_are_found_and_near_ones_are_not():
    atoms = _cells(1)[0]
    atoms.positions[7] = atoms.positions[3] + atoms.cell[0] + [3e-4, 0, 0]  # the same site, one cell over
    assert io.coincident_atoms(atoms)[:2] == (3, 7)
    atoms.positions[7] = atoms.positions[3] + [5e-3, 0, 0]
    assert io.coincident_atoms(atoms) is None


@pytest.mark.parametrize("has, says", [("energy", "has no forces (it has an energy but"),
                                       ("forces", "has no energy (it has forces but")])
def test_fitting_a_file_with_one_label_says_which_is_missing(has, says):
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = _cells(1)[0]
    labels = {"energy": -1.0} if has == "energy" else {"forces": np.zeros((len(atoms), 3))}
    atoms.calc = SinglePointCalculator(atoms, **labels)
    with pytest.raises(DataError, match=re.escape(f"train.extxyz, frame 0 {says}")):
        io.table_from_atoms([atoms], source="train.extxyz", labelled=True)
