"""Bytes read and time to read a cached design matrix: the memory-mapped entries against the older ``.npz``.

    python benchmarks/cache_reads.py [--atoms 20000] [--functions 200] [--runs 2]

Writes synthetic design-matrix arrays (energy rows, force rows ``(3 n_atoms, p)``, projections
``(n_atoms, p)``) of ``--runs`` subset runs into a fresh compute cache and reads them back as a warm
build does, both ways:

* **npz** (the older cache): each run's ``.npz`` loaded into memory, every array checked finite
  (as the design-matrix check did on every read), the runs stacked in memory;
* **mmap** (:mod:`uqlib.cache`): :func:`uqlib.cache.cached_per_subset` maps the one stacked entry
  after a cheap check (sizes, headers, sampled digests; all the data's digest for an entry of at
  most 64 MiB), then one pass over the mapped data (its column sums) stands for a consumer that
  uses all of it; and the two together.

Before each read the files are dropped from the page cache (``posix_fadvise(DONTNEED)``), so the
bytes read from disk (``/proc/self/io`` ``read_bytes``) are what the read itself costs. Writes
benchmarks/output/cache_reads.json.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from ase import Atoms
from common import save_result

from uqlib import cache


def io_bytes() -> dict[str, int]:
    """This process's ``rchar`` (bytes asked of read calls) and ``read_bytes`` (bytes fetched from storage)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {"rchar": int(fields["rchar"]), "read_bytes": int(fields["read_bytes"])}


def drop_from_page_cache(folder: Path) -> None:
    for file in folder.rglob("*"):
        if file.is_file():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())  # only clean pages can be dropped: write the dirty ones first
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def measured(folder: Path, read) -> tuple[object, dict]:
    """``read()`` with the cache folder cold in the page cache: its seconds, bytes read and memory growth."""
    drop_from_page_cache(folder)
    before, rss, start = io_bytes(), psutil.Process().memory_info().rss, time.perf_counter()
    result = read()
    seconds, after = time.perf_counter() - start, io_bytes()
    return result, {"seconds": round(seconds, 4),
                    "read_mib": round((after["read_bytes"] - before["read_bytes"]) / 2**20, 3),
                    "read_call_mib": round((after["rchar"] - before["rchar"]) / 2**20, 3),
                    "rss_growth_mib": round((psutil.Process().memory_info().rss - rss) / 2**20, 1)}


def table_of(runs: int, atoms_per_structure: int, structures_per_run: int) -> pd.DataFrame:
    rows = []
    for r in range(runs):
        for s in range(structures_per_run):
            atoms = Atoms(f"W{atoms_per_structure}", positions=np.full((atoms_per_structure, 3), 0.1 * s),
                          cell=np.eye(3) * (10.0 + r), pbc=True)
            rows.append({"structure_id": f"{'ABCDE'[r]}-{s}", "subset": "ABCDE"[r], "atoms": atoms,
                         "n_atoms": atoms_per_structure})
    return pd.DataFrame(rows)


def arrays_of(run: pd.DataFrame, functions: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(len(run) + int(run["atoms"].iat[0].cell[0, 0]))
    n_atoms = int(run["n_atoms"].sum())
    return {"energy_rows": rng.normal(size=(len(run), functions)),
            "force_rows": rng.normal(size=(3 * n_atoms, functions)),
            "projections": rng.normal(size=(n_atoms, functions))}


def read_npz(paths: list[Path]) -> dict[str, np.ndarray]:
    parts = [cache.load_arrays(path) for path in paths]
    for part in parts:
        assert all(np.isfinite(a).all() for a in part.values())  # the per-read check of the older cache
    return cache._stack_releasing(parts)


def column_sums(arrays: dict[str, np.ndarray]) -> float:
    return float(sum(a.sum(axis=0).sum() for a in arrays.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--atoms", type=int, default=20000, help="atoms per subset run")
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2, help="subset runs stacked into one table")
    args = parser.parse_args()
    structures_per_run = 100
    table = table_of(args.runs, args.atoms // structures_per_run, structures_per_run)
    key = {"benchmark": "cache_reads", "functions": args.functions}
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["UQLIB_COMPUTE_CACHE"] = scratch
        root = Path(scratch)

        def compute(run):
            return arrays_of(run, args.functions)

        start = time.perf_counter()
        cache.cached_per_subset(table, "design", "synthetic", key, compute)  # cold: the runs' entries and the stack
        cold_seconds = time.perf_counter() - start
        npz = [root / "npz" / f"{k}.npz" for k in range(args.runs)]
        for path, rows in zip(npz, cache.subset_runs(table), strict=True):
            cache.save_arrays(path, **compute(table.iloc[rows]))
        data_mib = sum(a.nbytes for a in cache.cached_per_subset(table, "design", "synthetic", key,
                                                                  compute)[0].values()) / 2**20

        stacked, npz_read = measured(root, lambda: read_npz(npz))
        npz_total = column_sums(stacked)
        del stacked
        check_before = cache.check_bytes_read()

        def read_mmap():
            return cache.cached_per_subset(table, "design", "synthetic", key, compute)[0]

        mapped, mmap_read = measured(root, read_mmap)
        mmap_read["check_mib"] = round((cache.check_bytes_read() - check_before) / 2**20, 3)
        total, mmap_use = measured(root, functools.partial(column_sums, mapped))  # the first use of the maps, cold
        assert np.isclose(total, npz_total), "the two ways read different numbers"
        del mapped
        _, mmap_read_and_use = measured(root, lambda: column_sums(read_mmap()))
    result = {"atoms": args.atoms * args.runs, "functions": args.functions, "runs": args.runs,
              "data_mib": round(data_mib, 1), "cold_write_seconds": round(cold_seconds, 2),
              "npz_read": npz_read, "mmap_read": mmap_read, "mmap_first_full_pass": mmap_use,
              "mmap_read_and_full_pass": mmap_read_and_use,
              "npz_read_mib": npz_read["read_mib"], "mmap_read_mib": mmap_read["read_mib"],
              "mmap_read_fraction": round(mmap_read["read_mib"] / data_mib, 5),
              "mmap_read_seconds": mmap_read["seconds"], "npz_read_seconds": npz_read["seconds"]}
    print(result)
    save_result("cache_reads", result)


if __name__ == "__main__":
    main()
