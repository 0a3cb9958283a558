"""What grading 1e9 atom-frames takes on a Dask cluster, from the figures measured on this machine.

The plan uses four numbers of ``benchmarks/distributed_grading.py`` (record
``distributed_grading``): the throughput of one Dask worker (atoms per second, clustered
gamma with projections), the scheduler's time per task (seconds, from empty tasks), the
atoms of the measured chunk, and the peak memory of a process grading such chunks.

A single Dask scheduler handles tasks one after the other, so with ``W`` workers each
finishing a task every ``T`` seconds it is busy a fraction ``W x overhead / T`` of the
time (its *load*). The plan keeps that load at most ``MAX_SCHEDULER_LOAD`` by growing the
chunk (``T`` proportional to the chunk's atoms); memory per worker is the measured fixed
part (a process grading one small frame) plus the measured memory per atom of a chunk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET_ATOM_FRAMES = 1e9
MAX_SCHEDULER_LOAD = 0.1  # keep the scheduler 90 % idle: no queueing, room for heartbeats and stragglers
WORKER_COUNTS = (1, 2, 16, 64, 256, 1024, 4096)
RECORD = "distributed_grading"


def scale_plan(records: dict[str, dict], atom_frames: float = TARGET_ATOM_FRAMES,
               worker_counts: tuple[int, ...] = WORKER_COUNTS) -> pd.DataFrame:
    """Per number of workers: chunk size, task time, scheduler load, wall hours and memory per worker.

    ``records`` are the benchmark records (``{name: dict}``, as :func:`uqlib.paper.performance.read_records`
    returns). Columns: ``workers``, ``chunk_atoms``, ``task_s``, ``scheduler_load``,
    ``wall_hours``, ``worker_hours``, ``memory_per_worker_gib``. An empty table when the
    benchmark has not been run.
    """
    record = records.get(RECORD, {})
    needed = ("dask_1_worker_atoms_per_s", "scheduler_overhead_s_per_task", "chunk_atoms", "memory_baseline_rss_mib",
              "memory_kib_per_chunk_atom")
    if any(key not in record for key in needed):
        return pd.DataFrame(columns=["workers", "chunk_atoms", "task_s", "scheduler_load", "wall_hours",
                                     "worker_hours", "memory_per_worker_gib"])
    rate = float(record["dask_1_worker_atoms_per_s"])  # atoms per second per worker, this machine
    overhead = float(record["scheduler_overhead_s_per_task"])  # s per task in the scheduler
    measured_chunk = int(record["chunk_atoms"])
    baseline_gib = float(record["memory_baseline_rss_mib"]) / 1024  # interpreter, pyace, basis, active sets
    per_atom_gib = float(record["memory_kib_per_chunk_atom"]) / 1024 ** 2  # projections and pyace's work arrays
    rows = []
    for workers in worker_counts:
        # the smallest chunk (not below the measured one) that keeps the scheduler's load at the bound
        min_task_s = workers * overhead / MAX_SCHEDULER_LOAD
        chunk = max(measured_chunk, int(np.ceil(min_task_s * rate)))
        task_s = chunk / rate
        load = workers * overhead / task_s
        # each task costs the worker its compute plus one scheduling round trip
        throughput = workers * chunk / (task_s + overhead)
        hours = atom_frames / throughput / 3600
        rows.append({"workers": workers, "chunk_atoms": chunk, "task_s": round(task_s, 1),
                     "scheduler_load": round(load, 3), "wall_hours": round(hours, 2),
                     "worker_hours": round(hours * workers, 1),
                     "memory_per_worker_gib": round(baseline_gib + chunk * per_atom_gib, 2)})
    return pd.DataFrame(rows)
