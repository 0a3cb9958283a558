"""The on-disk caches: keys from what determines an entry; memory-mapped entries validated once when
written, checked cheaply when read, written atomically."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from uqlib import cache


def test_geometry_fingerprint_changes_with_positions_not_labels(small_table):
    moved = small_table.copy()
    atoms = moved.at[0, "atoms"].copy()
    atoms.positions[0, 0] += 1e-6
    moved.at[0, "atoms"] = atoms
    assert cache.geometry_fingerprint(small_table) == cache.geometry_fingerprint(small_table.copy())
    assert cache.geometry_fingerprint(moved) != cache.geometry_fingerprint(small_table)
    relabelled = small_table.assign(energy=small_table["energy"] + 1.0)
    assert cache.geometry_fingerprint(relabelled) == cache.geometry_fingerprint(small_table)



# -- memory-mapped entries: validated once when written, checked cheaply when read ------------------

def arrays_of(seed: int = 0, rows: int = 50) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"rows": rng.normal(size=(rows, 7)), "counts": rng.integers(0, 9, size=rows),
            "single": rng.normal(size=(rows, 3, 2)).astype(np.float32), "flags": rng.random(rows) > 0.5}


class Counting:
    """A compute function that counts its calls."""

    def __init__(self, result=None, error: Exception | None = None):
        self.calls, self.result, self.error = 0, result, error

    def __call__(self, *args):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return dict(self.result if self.result is not None else arrays_of())


def assert_same(stored: dict, expected: dict) -> None:
    assert sorted(stored) == sorted(expected)
    for name in expected:
        assert stored[name].dtype == expected[name].dtype and stored[name].shape == expected[name].shape
        np.testing.assert_array_equal(stored[name], expected[name])


def leftovers(folder: Path) -> list[str]:
    """Temporary or replaced folders a writer left behind."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".old")))


def test_an_entry_round_trips_as_read_only_memory_maps(tmp_path):
    expected = arrays_of()
    cache.write_entry(tmp_path / "e", expected)
    stored = cache.load_entry(tmp_path / "e")
    assert_same(stored, expected)
    assert all(isinstance(a, np.memmap) and not a.flags.writeable for a in stored.values())
    sidecar = json.loads((tmp_path / "e" / cache.SIDECAR).read_text())
    assert sidecar["arrays"]["rows"]["shape"] == [50, 7] and sidecar["arrays"]["single"]["dtype"] == "<f4"
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == sorted(
        [cache.SIDECAR, "rows.npy", "counts.npy", "single.npy", "flags.npy"])


def test_a_list_of_parts_is_written_as_their_concatenation(tmp_path):
    parts = [arrays_of(0, 5), arrays_of(1, 11), arrays_of(2, 1)]
    cache.write_entry(tmp_path / "e", parts)
    expected = {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}
    assert_same(cache.load_entry(tmp_path / "e"), expected)


def test_parts_that_cannot_be_stacked_or_fail_validation_write_nothing(tmp_path):
    other_width = arrays_of(1, 5)
    other_width["rows"] = other_width["rows"][:, :6]
    with pytest.raises(cache.CacheError, match="rows differ"):
        cache.write_entry(tmp_path / "e", [arrays_of(0, 5), other_width])
    with pytest.raises(cache.CacheError, match="parts hold different arrays"):
        cache.write_entry(tmp_path / "e", [arrays_of(0, 5), {"rows": np.zeros((2, 7))}])
    short = [arrays_of(0, 5), arrays_of(1, 3)]
    with pytest.raises(cache.CacheError, match="too few rows"):
        cache.write_entry(tmp_path / "e", short, validate=lambda a: "too few rows" if len(a["rows"]) < 4 else None)
    assert list(tmp_path.iterdir()) == []


def test_computed_once_then_read(tmp_path):
    compute = Counting()
    first, seconds = cache.cached_arrays(tmp_path / "e", compute)
    second, again = cache.cached_arrays(tmp_path / "e", compute)
    assert compute.calls == 1 and seconds > 0 and again == 0.0
    assert_same(first, arrays_of()) and assert_same(second, arrays_of())


def _truncate(entry: Path) -> None:
    file = entry / "rows.npy"
    file.write_bytes(file.read_bytes()[:-8])


def _flip_data_byte(entry: Path) -> None:
    file = entry / "rows.npy"
    data = bytearray(file.read_bytes())
    data[len(data) // 2 + 3] ^= 0x01  # in the data region, past the 128-byte header
    file.write_bytes(bytes(data))


def _drop_sidecar(entry: Path) -> None:
    (entry / cache.SIDECAR).unlink()


def _rewrite_header(entry: Path) -> None:
    # a readable .npy of the same size that claims another shape: (50, 7) -> (70, 5)
    file = entry / "rows.npy"
    data = file.read_bytes()
    file.write_bytes(data.replace(b"(50, 7)", b"(70, 5)", 1))


def _swap_file(entry: Path) -> None:
    np.save(entry / "rows.npy", np.zeros((50, 7)))  # well-formed, right size and header, other numbers


def _drop_array(entry: Path) -> None:
    (entry / "counts.npy").unlink()


def _garble_sidecar(entry: Path) -> None:
    (entry / cache.SIDECAR).write_text('{"format": 1, "arr')


@pytest.mark.parametrize("damage", [_truncate, _flip_data_byte, _drop_sidecar, _rewrite_header, _swap_file,
                                    _drop_array, _garble_sidecar])
def test_a_damaged_entry_is_detected_and_recomputed(tmp_path, damage):
    compute = Counting()
    cache.cached_arrays(tmp_path / "e", compute)
    damage(tmp_path / "e")
    with pytest.warns(UserWarning, match="not what it claims"):
        again, seconds = cache.cached_arrays(tmp_path / "e", compute)
    assert compute.calls == 2 and seconds > 0
    assert_same(again, arrays_of())
    assert cache.entry_problem(tmp_path / "e") is None  # the recomputed entry replaced the damaged one
    assert leftovers(tmp_path) == []


def test_a_large_entry_is_read_with_a_sampled_digest_and_a_full_one_on_request(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "FULL_DIGEST_BYTES", 0)  # every entry counts as large
    matrix = np.arange(2**17, dtype=float).reshape(-1, 64)  # 1 MiB: 256 blocks of 4 KiB, 16 sampled
    cache.write_entry(tmp_path / "e", {"matrix": matrix})
    before = cache.check_bytes_read()
    assert cache.load_entry(tmp_path / "e") is not None
    assert cache.check_bytes_read() - before == cache.SAMPLE_BLOCKS * cache.SAMPLE_BLOCK_BYTES  # not the 1 MiB

    file = tmp_path / "e" / "matrix.npy"
    data = bytearray(file.read_bytes())
    data[128 + 5 * cache.SAMPLE_BLOCK_BYTES + 7] ^= 0x10  # block 5: between the 1st and 2nd sampled blocks
    file.write_bytes(bytes(data))
    assert cache.entry_problem(tmp_path / "e") is None  # what the cheap check cannot see ...
    assert "digest of its data" in cache.entry_problem(tmp_path / "e", full=True)  # ... the full one sees
    monkeypatch.setenv("UQLIB_CACHE_VERIFY", "full")
    assert "digest of its data" in cache.entry_problem(tmp_path / "e")
    monkeypatch.delenv("UQLIB_CACHE_VERIFY")

    data[-1] ^= 0x10  # the last block is always sampled
    file.write_bytes(bytes(data))
    assert "sampled blocks" in cache.entry_problem(tmp_path / "e")


def test_a_failed_compute_leaves_no_entry(tmp_path):
    compute = Counting(error=RuntimeError("worker died"))
    with pytest.raises(RuntimeError, match="worker died"):
        cache.cached_arrays(tmp_path / "e", compute)
    assert list(tmp_path.iterdir()) == []
    compute.error = None
    cache.cached_arrays(tmp_path / "e", compute)
    assert compute.calls == 2 and cache.entry_problem(tmp_path / "e") is None


@pytest.mark.parametrize("bad", ["nan", "inf_late", "object", "validate"])
def test_an_invalid_result_raises_and_is_not_cached(tmp_path, bad, monkeypatch):
    monkeypatch.setattr(cache, "_COPY_BYTES", 1024)  # several slices per array: a late non-finite value too
    result = arrays_of()
    if bad == "nan":
        result["rows"][3, 2] = np.nan
    elif bad == "inf_late":
        result["single"][-1, 2, 1] = np.inf
    elif bad == "object":
        result["counts"] = np.array([None] * 50)
    validate = (lambda arrays: "rows has too few columns") if bad == "validate" else None
    compute = Counting(result)
    with pytest.raises(cache.CacheError, match="not cached"):
        cache.cached_arrays(tmp_path / "e", compute, validate=validate)
    assert not any(tmp_path.rglob("*")), "nothing written, not even a temporary folder"
    with pytest.raises(cache.CacheError):  # checked the same way without the cache
        cache.cached_arrays(tmp_path / "e", compute, validate=validate, use_cache=False)


def test_a_full_disk_names_the_entry_and_leaves_nothing(tmp_path, monkeypatch):
    def full(file, blocks):
        file.write_bytes(b"\x93NUMPY")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache, "_write_npy", full)
    with pytest.raises(OSError, match=f"Could not write the cache entry {tmp_path / 'e'} .No space left") as err:
        cache.cached_arrays(tmp_path / "e", Counting())
    assert err.value.errno == errno.ENOSPC and "UQLIB_COMPUTE_CACHE" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_the_caller_validates_once_when_written_not_when_read(tmp_path):
    checks = []
    validate = lambda arrays: checks.append(1)  # noqa: E731
    cache.cached_arrays(tmp_path / "e", Counting(), validate=validate)
    cache.cached_arrays(tmp_path / "e", Counting(), validate=validate)
    assert len(checks) == 1


def test_concurrent_writers_keep_their_own_temporary_folders(tmp_path, monkeypatch):
    """A second writer of the same entry starts and finishes while the first is halfway."""
    real = cache._write_npy
    seen: list[Path] = []

    def first_writer_pauses(file, blocks):
        seen.append(file.parent)
        if len(seen) == 1:  # the first writer, mid-entry: the second runs to the end now
            cache.write_entry(tmp_path / "e", arrays_of(0))
        return real(file, blocks)

    monkeypatch.setattr(cache, "_write_npy", first_writer_pauses)
    cache.write_entry(tmp_path / "e", arrays_of(0))
    assert seen[0] != seen[1] and seen[0].name.startswith(f"e.{os.getpid()}.")  # first writer, second writer
    assert cache.entry_problem(tmp_path / "e", full=True) is None
    assert_same(cache.load_entry(tmp_path / "e"), arrays_of(0))
    assert leftovers(tmp_path) == []


def _write_many(folder: str, barrier) -> None:
    barrier.wait()
    for _ in range(5):
        cache.write_entry(Path(folder) / "e", {"big": np.arange(2**20, dtype=float)})


def test_concurrent_processes_writing_one_entry_leave_a_sound_one(tmp_path):
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(3)
    workers = [context.Process(target=_write_many, args=(str(tmp_path), barrier)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert cache.entry_problem(tmp_path / "e", full=True) is None
    assert leftovers(tmp_path) == []


def test_a_killed_writers_temporary_folder_is_removed_a_live_ones_kept(tmp_path):
    dead = multiprocessing.get_context("fork").Process(target=lambda: None)
    dead.start()
    dead.join()
    (tmp_path / f"e.{dead.pid}.abc.tmp").mkdir()
    (tmp_path / f"e.{os.getppid()}.abc.tmp").mkdir()  # a process that still runs
    cache.write_entry(tmp_path / "e", arrays_of())
    assert leftovers(tmp_path) == [f"e.{os.getppid()}.abc.tmp"]
    assert cache.count_entries(tmp_path) == 1


def test_an_older_npz_entry_is_ignored_and_removed(tmp_path):
    old = tmp_path / "e.npz"
    cache.save_arrays(old, rows=np.zeros((2, 2)))
    (tmp_path / "trajectory").mkdir()
    (tmp_path / "trajectory" / "frame-0.extxyz").write_text("1\n\nW 0 0 0\n")
    assert cache.count_entries(tmp_path) == 1  # a build that finds only older entries is a cold one
    compute = Counting()
    stored, _ = cache.cached_arrays(tmp_path / "e", compute)
    assert compute.calls == 1 and not old.exists()
    assert_same(stored, arrays_of())
    assert cache.count_entries(tmp_path) == 2


def test_verify_on_request_finds_what_the_cheap_read_check_misses_and_removes_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UQLIB_COMPUTE_CACHE", str(tmp_path))
    monkeypatch.setattr(cache, "FULL_DIGEST_BYTES", 0)
    matrix = np.arange(2**17, dtype=float).reshape(-1, 64)
    cache.write_entry(tmp_path / "design" / "sound", {"matrix": matrix})
    cache.write_entry(tmp_path / "design" / "damaged", {"matrix": matrix})
    cache.save_arrays(tmp_path / "design" / "older.npz", matrix=matrix)
    file = tmp_path / "design" / "damaged" / "matrix.npy"
    data = bytearray(file.read_bytes())
    data[128 + 5 * cache.SAMPLE_BLOCK_BYTES] ^= 0x01  # outside the sampled blocks
    file.write_bytes(bytes(data))
    assert cache.entry_problem(tmp_path / "design" / "damaged") is None
    assert cache.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "damaged: matrix: the digest of its data differs" in out and "older.npz: older .npz format" in out
    assert not any(line.startswith(str(tmp_path / "design" / "sound")) for line in out.splitlines())
    assert [p.name for p, _ in cache.verify_cache(remove=True)] == ["damaged", "older.npz"]
    assert sorted(p.name for p in (tmp_path / "design").iterdir()) == ["sound"]
    assert cache.main(["verify"]) == 0


# -- per-subset entries: shared runs, one stacked entry, nothing stacked in memory ------------------

def synthetic_table(subsets: list[str]) -> pd.DataFrame:
    rows = []
    for k, subset in enumerate(subsets):
        atoms = Atoms("W2", positions=[[0, 0, 0], [1.4 + 0.01 * k, 1.5, 1.6]], cell=np.eye(3) * 3.2, pbc=True)
        rows.append({"structure_id": f"{subset}-{k}", "subset": subset, "atoms": atoms, "n_atoms": 2})
    return pd.DataFrame(rows)


def per_structure(run: pd.DataFrame) -> dict[str, np.ndarray]:
    """Arrays determined by the structures (the positions): one row per structure, two per atom."""
    positions = np.concatenate([a.positions for a in run["atoms"]])
    return {"energy": positions[::2, 1].copy(), "forces": positions * 2.0}


@pytest.fixture
def counted():
    calls = []

    def compute(run):
        calls.append(list(run["structure_id"]))
        return per_structure(run)

    return compute, calls


def test_per_subset_entries_are_stacked_once_on_disk_and_shared(compute_cache, counted):
    compute, calls = counted
    table = synthetic_table(["A", "A", "B", "B", "B"])
    in_memory, _ = cache.cached_per_subset(table, "labels", "m", {"v": 1}, compute, use_cache=False)
    assert len(calls) == 2 and in_memory["forces"].shape == (10, 3)
    calls.clear()
    stacked, seconds = cache.cached_per_subset(table, "labels", "m", {"v": 1}, compute)
    assert len(calls) == 2 and seconds > 0  # one compute per run
    assert_same(stacked, in_memory)
    assert isinstance(stacked["forces"], np.memmap) and not stacked["forces"].flags.writeable
    assert cache.count_entries(compute_cache) == 3  # A, B and their stack
    assert cache.is_cached(table, "labels", "m", {"v": 1}) and not cache.is_cached(table, "labels", "m", {"v": 2})

    again, seconds = cache.cached_per_subset(table, "labels", "m", {"v": 1}, compute)
    assert len(calls) == 2 and seconds == 0.0
    assert_same(again, in_memory)
    only_b, seconds = cache.cached_per_subset(table.iloc[2:], "labels", "m", {"v": 1}, compute)
    assert len(calls) == 2 and seconds == 0.0  # B's own entry
    np.testing.assert_array_equal(only_b["forces"], in_memory["forces"][4:])


def test_a_damaged_stacked_entry_is_rebuilt_from_the_runs_without_recomputing(compute_cache, counted):
    compute, calls = counted
    table = synthetic_table(["A", "B"])
    first, _ = cache.cached_per_subset(table, "labels", "m", {}, compute)
    expected = {n: np.array(a) for n, a in first.items()}
    stack = next(p for p in (compute_cache / "labels").iterdir() if "-stack-" in p.name)
    _flip_data_byte_of(stack / "forces.npy")
    with pytest.warns(UserWarning, match="not what it claims"):
        again, seconds = cache.cached_per_subset(table, "labels", "m", {}, compute)
    assert len(calls) == 2 and seconds == 0.0  # the runs' entries were sound
    assert_same(again, expected)


def test_a_damaged_run_entry_is_recomputed_alone(compute_cache, counted):
    compute, calls = counted
    table = synthetic_table(["A", "B", "B"])
    cache.cached_per_subset(table, "labels", "m", {}, compute)
    b_entry = cache.entry_path(table.iloc[1:], "labels", "m", {})
    _truncate_file(b_entry / "forces.npy")
    calls.clear()
    with pytest.warns(UserWarning, match="not what it claims"):
        only_b, _ = cache.cached_per_subset(table.iloc[1:], "labels", "m", {}, compute)
    assert calls == [["B-1", "B-2"]]
    np.testing.assert_array_equal(only_b["forces"], per_structure(table.iloc[1:])["forces"])


def test_a_run_failing_validation_writes_neither_it_nor_the_stack(compute_cache):
    table = synthetic_table(["A", "B"])

    def validate(run, arrays):
        return "B is wrong" if run["subset"].iat[0] == "B" else None

    with pytest.raises(cache.CacheError, match="B is wrong"):
        cache.cached_per_subset(table, "labels", "m", {}, per_structure, validate=validate)
    assert [p.name.split("-")[0] for p in (compute_cache / "labels").iterdir()] == ["m"]  # A's entry only
    assert not cache.is_cached(table, "labels", "m", {})


def test_cached_runs_gives_each_runs_maps(compute_cache, counted):
    compute, _ = counted
    table = synthetic_table(["A", "B", "B", "C"])
    parts, _ = cache.cached_runs(table, "labels", "m", {}, compute)
    assert [len(p["energy"]) for p in parts] == [1, 2, 1]
    assert all(isinstance(a, np.memmap) for p in parts for a in p.values())
    assert not any("-stack-" in p.name for p in (compute_cache / "labels").iterdir())


def _flip_data_byte_of(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[-5] ^= 0x01
    file.write_bytes(bytes(data))


def _truncate_file(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:-8])
