"""Grading on Dask: throughput of 2 local workers against 1, Dask against the serial path, identical gammas,
and peak memory of the streaming path for 100 frames against 10 (clustered set, K = 5, Func-222).

    python benchmarks/distributed_grading.py [--atoms 5000] [--frames 24] [--memory-frames 10 100]
                                             [--memory-chunk 10]

Frames are copies of a bcc W supercell of about ``--atoms`` atoms with positions rattled
(0.05 Å, seed = frame number), generated lazily one at a time, so the grading path, not a
list, decides what is held. The K = 5 active sets are MaxVol sets of five groups of rattled
and strained W cells (their content does not change the cost).

Throughput: one frame per chunk. Memory: the peak RSS of a child process that streams N
frames through :func:`uqlib.grading.iter_grades`, ``--memory-chunk`` frames per chunk,
writing each frame's gammas to disk as it comes; a third child grading one 250-atom frame
gives the fixed part. The default chunk is 10 frames of 5,096 atoms, about the issue's
50,000 atoms: single 50,000-atom frames would measure the same chunk memory, but pyace
builds a frame's neighbour environments at a cost that grows faster than its atoms (the
``projection_us_per_atom_*`` figures), which makes 100 such frames take hours on 2 cores.
Writes benchmarks/output/distributed_grading.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from common import OUTPUT, save_result
from distributed import Client, LocalCluster

from uqlib import ace, activeset, distributed, grading

LATTICE = 3.165  # Å, bcc W
RATTLE = 0.05  # Å
BASELINE_ATOMS = 250


def supercell(n_atoms: int) -> Atoms:
    """A cubic bcc W supercell of at least ``n_atoms`` atoms (2 per cubic cell), about square in x and y."""
    cells = int(np.ceil(n_atoms / 2))
    side = max(1, int(round(cells ** (1 / 3))))
    return bulk("W", "bcc", a=LATTICE, cubic=True).repeat((side, side, int(np.ceil(cells / side ** 2))))


def frames(n_frames: int, n_atoms: int) -> Iterator[Atoms]:
    """Lazily rattled copies of one supercell (frame *i* rattled with seed *i*)."""
    base = supercell(n_atoms)
    for i in range(n_frames):
        atoms = base.copy()
        atoms.rattle(RATTLE, seed=i)
        yield atoms


def clustered_set(basis, n_clusters: int, seed: int) -> activeset.ClusteredActiveSet:
    """K active sets of K groups of four rattled, strained 128-atom W cells (rattle grows with the group)."""
    rng = np.random.default_rng(seed)
    train, labels = [], []
    for cluster in range(n_clusters):
        for _ in range(4):
            atoms = bulk("W", "bcc", a=LATTICE * (1 + 0.03 * rng.normal()), cubic=True).repeat(4)
            atoms.rattle(0.1 + 0.05 * cluster, seed=int(rng.integers(1 << 30)))
            train.append(atoms)
            labels.append(cluster)
    projections = grading.species_projections(basis, train)
    owners = grading.structure_indices(train, projections)
    return activeset.fit_clustered_active_set(projections, grading.species_labels(np.array(labels), owners),
                                              progress=False)


def timed_distributed(client: Client, n_frames: int, n_atoms: int, potential: Path, sets
                      ) -> tuple[float, list, float]:
    """Wall seconds, per-frame gammas, and the CPU seconds all workers spent (shows the work that ran in parallel)."""
    cpu_before = sum(client.run(time.process_time).values())
    start = time.perf_counter()
    gammas = [g.gamma for g in distributed.grade_frames_distributed(frames(n_frames, n_atoms), potential, sets,
                                                                    chunk_size=1, client=client, progress=False)]
    seconds = time.perf_counter() - start
    return seconds, gammas, sum(client.run(time.process_time).values()) - cpu_before


def frame_size_cost(basis, sizes: tuple[int, ...] = (1024, 8192)) -> dict[str, float]:
    """CPU microseconds per atom of pyace's projections of one frame, by atoms per frame.

    pyace builds each frame's neighbour environments at a cost that grows faster than the
    frame's atoms, so the cost per atom depends on the frame size, not only on the chunk.
    """
    out = {}
    for n_atoms in sizes:
        atoms = supercell(n_atoms)
        atoms.rattle(RATTLE, seed=0)
        start = time.process_time()
        grading.species_projections(basis, [atoms])
        out[f"projection_us_per_atom_{len(atoms)}_atom_frame"] = 1e6 * (time.process_time() - start) / len(atoms)
    return out


def task_overhead(client: Client, n_tasks: int = 400) -> float:
    """Seconds of scheduling per task: wall time of ``n_tasks`` empty tasks, divided by their number."""
    client.gather(client.map(int, range(50), pure=False))  # warm-up
    start = time.perf_counter()
    client.gather(client.map(int, range(n_tasks), pure=False))
    return (time.perf_counter() - start) / n_tasks


def child_memory(n_frames: int, n_atoms: int, potential: str, sets_folder: str, out: str, chunk_size: int) -> None:
    """In a child process: stream ``n_frames`` through the serial grading path, write as it goes, print peak RSS."""
    basis = grading.load_potential(potential)
    sets = activeset.load_active_set(sets_folder)
    start = time.perf_counter()
    with open(out, "wb") as fh:
        for g in grading.iter_grades(frames(n_frames, n_atoms), basis, sets, chunk_size=chunk_size,
                                     progress=False):
            np.save(fh, g.gamma)  # written per frame; nothing accumulates
    print(json.dumps({"frames": n_frames, "seconds": time.perf_counter() - start,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure_memory(n_frames: int, n_atoms: int, potential: Path, folder: Path, tmp: Path, chunk_size: int) -> dict:
    command = [sys.executable, __file__, "--child", str(n_frames), "--atoms", str(n_atoms), "--potential",
               str(potential), "--sets", str(folder), "--out", str(tmp / f"gamma-{n_frames}.npy"),
               "--chunk-size", str(chunk_size)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="Func-222")
    parser.add_argument("--clusters", type=int, default=5)
    parser.add_argument("--atoms", type=int, default=5000, help="atoms per frame")
    parser.add_argument("--frames", type=int, default=24, help="frames of the throughput runs")
    parser.add_argument("--memory-frames", type=int, nargs=2, default=(10, 100))
    parser.add_argument("--memory-atoms", type=int, default=5000, help="atoms per frame of the memory runs")
    parser.add_argument("--memory-chunk", type=int, default=10,
                        help="frames per chunk of the memory runs (10 x 5,000: chunks of 50,000 atoms)")
    parser.add_argument("--chunk-size", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory runs, added to the saved record of an earlier throughput run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--potential", help=argparse.SUPPRESS)
    parser.add_argument("--sets", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_memory(args.child, args.atoms, args.potential, args.sets, args.out, args.chunk_size)
        return

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        potential = tmp / "potential.yaml"
        ace.get_preset(args.preset).basis_set().to_BBasisConfiguration().save(str(potential))
        basis = grading.load_potential(potential)
        sets = clustered_set(basis, args.clusters, args.seed)
        folder = sets.save(tmp / "clusters")
        result = (json.loads((OUTPUT / "distributed_grading.json").read_text()) if args.memory_only
                  else throughput(args, basis, sets, potential))
        memory = run_memory(args, potential, folder, tmp)
        # the fixed part of a worker's memory (interpreter, pyace, basis, active sets): one 250-atom frame
        baseline = measure_memory(1, BASELINE_ATOMS, potential, folder, tmp, 1)["peak_rss_mib"]
    result.update({
        "memory_atoms_per_frame": len(supercell(args.memory_atoms)),
        "memory_chunk_atoms": args.memory_chunk * len(supercell(args.memory_atoms)),
        "memory_frames": list(args.memory_frames),
        "memory_peak_rss_mib": [m["peak_rss_mib"] for m in memory],
        "memory_seconds": [m["seconds"] for m in memory],
        "memory_ratio_many_to_few": memory[1]["peak_rss_mib"] / memory[0]["peak_rss_mib"],
        "memory_baseline_rss_mib": baseline,
        "memory_kib_per_chunk_atom": 1024 * (max(m["peak_rss_mib"] for m in memory) - baseline)
        / (args.memory_chunk * len(supercell(args.memory_atoms))),
    })
    print(f"  peak RSS streaming {args.memory_frames[0]} / {args.memory_frames[1]} frames of "
          f"{result['memory_atoms_per_frame']} atoms, {result['memory_chunk_atoms']} atoms per chunk: "
          f"{memory[0]['peak_rss_mib']:.0f} / "
          f"{memory[1]['peak_rss_mib']:.0f} MiB ({result['memory_ratio_many_to_few']:.3f}x; goal <= 1.1x)")
    save_result("distributed_grading", {k: v for k, v in result.items()
                                        if k not in ("benchmark", "peak_memory_mib", "machine", "date")})


def run_memory(args: argparse.Namespace, potential: Path, folder: Path, tmp: Path) -> list[dict]:
    memory = []
    for n in args.memory_frames:
        memory.append(measure_memory(n, args.memory_atoms, potential, folder, tmp, args.memory_chunk))
        print(f"  streaming {n} frames: peak RSS {memory[-1]['peak_rss_mib']:.0f} MiB "
              f"in {memory[-1]['seconds']:.0f} s", flush=True)
    return memory


def throughput(args: argparse.Namespace, basis, sets: activeset.ClusteredActiveSet, potential: Path) -> dict:
    """Serial, 1 and 2 local Dask workers on the same frames; prints and saves the figures."""
    n_atoms = len(supercell(args.atoms))
    atom_frames = args.frames * n_atoms

    start = time.perf_counter()
    serial = [g.gamma for g in grading.iter_grades(frames(args.frames, args.atoms), basis, sets, chunk_size=1,
                                                   progress=False)]
    serial_seconds = time.perf_counter() - start

    results: dict[int, tuple[float, list, float, float, float]] = {}
    for n_workers in (1, 2):
        start = time.perf_counter()
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            with Client(cluster) as client:
                startup = time.perf_counter() - start
                overhead = task_overhead(client)
                seconds, gammas, cpu = timed_distributed(client, args.frames, args.atoms, potential, sets)
        finally:
            cluster.close()
        results[n_workers] = (seconds, gammas, startup, overhead, cpu)
    identical = all(np.array_equal(a, b) for n in results for a, b in zip(results[n][1], serial, strict=True))

    one, two = results[1][0], results[2][0]
    result = {
        "preset": args.preset, "clusters": len(sets.clusters), "atoms_per_frame": n_atoms,
        "frames": args.frames, "chunk_atoms": n_atoms, "load_average_1min": os.getloadavg()[0],
        "serial_atoms_per_s": atom_frames / serial_seconds,
        "dask_1_worker_atoms_per_s": atom_frames / one, "dask_2_workers_atoms_per_s": atom_frames / two,
        "speedup_2_workers_to_1": one / two,
        "dask_1_worker_slowdown_to_serial": one / serial_seconds - 1,
        "gamma_identical": bool(identical),
        "local_cluster_startup_s": results[2][2],
        "scheduler_overhead_s_per_task": results[2][3],
        # CPU seconds of the workers, 2 against 1: near 1 means the work split evenly and the wall-time
        # speed-up is bounded by the cores the machine could give (its load average), not by the code
        "worker_cpu_ratio_2_to_1": results[2][4] / results[1][4],
        "worker_cpu_utilisation_2_workers": results[2][4] / (2 * two),
        **frame_size_cost(basis),
    }
    print(f"{args.preset}, {result['clusters']} clusters, {args.frames} frames of {n_atoms} atoms, one frame "
          f"per chunk; load average {result['load_average_1min']:.1f} on {os.cpu_count()} cores")
    print(f"  serial:           {result['serial_atoms_per_s']:9.0f} atoms/s")
    print(f"  dask, 1 worker:   {result['dask_1_worker_atoms_per_s']:9.0f} atoms/s "
          f"({100 * result['dask_1_worker_slowdown_to_serial']:+.1f} % time against serial; goal <= +10 %)")
    print(f"  dask, 2 workers:  {result['dask_2_workers_atoms_per_s']:9.0f} atoms/s "
          f"({result['speedup_2_workers_to_1']:.2f}x 1 worker; goal >= 1.8x)")
    print(f"  workers' CPU time, 2 against 1: {result['worker_cpu_ratio_2_to_1']:.2f}x; 2 workers busy "
          f"{100 * result['worker_cpu_utilisation_2_workers']:.0f} % of the wall time")
    print(f"  gammas identical to the serial path: {identical}")
    print(f"  scheduler overhead {1e3 * result['scheduler_overhead_s_per_task']:.2f} ms per task; "
          f"LocalCluster start {result['local_cluster_startup_s']:.1f} s", flush=True)
    sizes = {int(k.split("_")[4]): v for k, v in result.items() if k.startswith("projection_us_per_atom")}
    print("  pyace projection CPU time per atom by frame size: "
          + ", ".join(f"{n} atoms {us:.0f} us" for n, us in sizes.items()), flush=True)
    save_result("distributed_grading", result)  # saved now too: the memory runs take longest
    return result


if __name__ == "__main__":
    main()
