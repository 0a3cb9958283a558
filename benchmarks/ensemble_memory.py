"""Peak memory of a streamed 30-member bootstrap fit and its scoring from memory-mapped rows: n and 10n structures.

    python benchmarks/ensemble_memory.py [--structures 400] [--functions 200] [--members 30]

Synthetic design matrices (random rows; 1 to 29 atoms per structure, 15 on average) are written
as uncompressed .npy files and opened with ``np.load(mmap_mode="r")``, as the compute cache's
memory-mapped entries would be. Then, for n and for 10 n structures, one measured run:
``uqlib.ensemble.fit_ensemble(construction="bootstrap")`` (the K members' normal equations in
one streamed pass over the rows, uqlib.ace.stacked_normal_equations) and the members' eqs 1-3
computed chunk by chunk (uqlib.ensemble.ensemble_uncertainties).

Memory is measured with ``tracemalloc`` (peak of the bytes Python and numpy allocate during the
run; numpy reports its array buffers to tracemalloc). Pages of the memory-mapped files are not
allocations: they are the operating system's file cache, which it can drop, so they are not in
this figure (RSS or PSS would count the pages read so far). What must not grow with the number
of structures is what the run allocates: K Gram accumulators, one chunk of per-structure Grams
and predictions; only the per-structure and per-atom results (and the K x n_cfg bootstrap
counts) grow with n. Goal: peak(10 n) <= 1.2 peak(n). Writes benchmarks/output/ensemble_memory.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from common import save_result

from uqlib import ace, ensemble

CHUNK_BYTES = 16 * 2**20  # per-chunk memory of the streamed Grams (small, so that n structures span several chunks)
STRUCTURES_PER_CHUNK = 64  # of the scoring


def write_rows(folder: Path, n_configs: int, n_functions: int, seed: int) -> None:
    """Random design-matrix rows and labels as .npy files, written a block of structures at a time."""
    rng = np.random.default_rng(seed)
    n_atoms = rng.integers(1, 30, n_configs)
    n_atom = int(n_atoms.sum())
    np.save(folder / "n_atoms.npy", n_atoms)
    shapes = {"energy_rows": (n_configs, n_functions), "force_rows": (3 * n_atom, n_functions),
              "energy_per_atom": (n_configs,), "forces": (n_atom, 3), "projections": (n_atom, n_functions)}
    files = {name: np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", shape=shape)
             for name, shape in shapes.items()}
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    for start in range(0, n_configs, 256):
        stop = min(start + 256, n_configs)
        a, b = offsets[start], offsets[stop]
        files["energy_rows"][start:stop] = rng.normal(size=(stop - start, n_functions))
        files["energy_per_atom"][start:stop] = rng.normal(size=stop - start)
        files["force_rows"][3 * a:3 * b] = rng.normal(size=(3 * (b - a), n_functions))
        files["forces"][a:b] = rng.normal(size=(b - a, 3))
        files["projections"][a:b] = 0.0
    for array in files.values():
        array.flush()
    del files


def mapped_design_matrix(folder: Path) -> ace.DesignMatrix:
    n_atoms = np.load(folder / "n_atoms.npy")
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r")
              for name in ("energy_rows", "force_rows", "energy_per_atom", "forces", "projections")}
    return ace.DesignMatrix("synthetic", np.arange(len(n_atoms)).astype(str), n_atoms, **arrays)


def measured_run(folder: Path, n_members: int) -> dict:
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    dm = mapped_design_matrix(folder)
    fitted = ensemble.fit_ensemble(dm, n_members, construction="bootstrap", seed=0, progress=False,
                                   chunk_bytes=CHUNK_BYTES)
    scores = ensemble.ensemble_uncertainties(dm, fitted.coefficients, structures_per_chunk=STRUCTURES_PER_CHUNK)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - before
    assert np.isfinite(scores["U_F_cfg"]).all()
    return {"structures": dm.n_configs, "atoms": int(dm.n_atoms.sum()), "peak_mib": peak / 2**20,
            "row_bytes_mib": (dm.energy_rows.nbytes + dm.force_rows.nbytes) / 2**20, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--structures", type=int, default=400, help="n (the second run has 10 n)")
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--members", type=int, default=30)
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="ensemble_memory_") as tmp:
        tracemalloc.start()
        for label, n in (("n", args.structures), ("10n", 10 * args.structures)):
            folder = Path(tmp) / label
            folder.mkdir()
            write_rows(folder, n, args.functions, seed=n)
            runs[label] = measured_run(folder, args.members)
            r = runs[label]
            print(f"{r['structures']:6d} structures ({r['atoms']} atoms, rows {r['row_bytes_mib']:.0f} MiB on disk): "
                  f"peak {r['peak_mib']:.1f} MiB allocated, {r['seconds']:.1f} s", flush=True)
        tracemalloc.stop()
    ratio = runs["10n"]["peak_mib"] / runs["n"]["peak_mib"]
    print(f"peak(10n) / peak(n) = {ratio:.3f} (goal <= 1.2; tracemalloc, memory-mapped pages not counted)")
    save_result("ensemble_memory", {"functions": args.functions, "members": args.members, "measure": "tracemalloc",
                                    "chunk_bytes": CHUNK_BYTES, "runs": runs, "peak_ratio_10n_to_n": ratio})


if __name__ == "__main__":
    main()
