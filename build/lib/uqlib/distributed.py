"""Grading on Dask: chunk tasks on a ``dask.distributed`` cluster, bounded memory, results in order.

The clustered grade of paper Sec. 2.3 (``gamma_atom(i) = min_c max_j |(B(i) A_c^-1)_j|``,
dimensionless) is computed chunk by chunk: each task projects one chunk of frames with
pyace and grades it against the scattered :class:`uqlib.grading.GradingSet`. The driver
keeps at most ``max_in_flight`` chunks submitted at once, so its memory depends on the
chunk size and the window, not on the trajectory length; results come back in frame
order and are identical to :func:`uqlib.grading.iter_grades` (same pyace projections,
same products, per chunk).

Which cluster:

- ``scheduler="tcp://host:8786"`` (or the environment variable ``UQLIB_SCHEDULER``):
  an existing cluster (``dask scheduler`` / ``dask worker`` on other machines; uqlib
  and pyace must be importable on the workers, and the potential file readable at the
  same path);
- otherwise a :class:`distributed.LocalCluster` of ``n_workers`` processes with one
  thread each (pyace and numpy release no GIL worth sharing, so processes scale).

The grading set (the per-cluster inverses, ``n_clusters x n_func^2`` floats) is scattered
once to every worker (``client.scatter(..., broadcast=True)``); each worker loads the
potential once and keeps it in a module-level cache keyed by path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from ase import Atoms
from distributed import Client, Future, LocalCluster

from uqlib import config, grading
from uqlib.grading import FrameGrade, GradingSet, frame_chunks, load_potential
from uqlib.io import DataError
from uqlib.progress import progress_bar

SCHEDULER_ENV = "UQLIB_SCHEDULER"  # address of an existing Dask scheduler, e.g. tcp://10.0.0.1:8786
DEFAULT_WORKERS = 2

_WORKER_POTENTIALS: dict[str, object] = {}  # potential path -> ACEBBasisSet, one load per worker process


def scheduler_address(scheduler: str | None = None) -> str | None:
    """The scheduler to use: the argument, else ``$UQLIB_SCHEDULER``, else ``None`` (a local cluster)."""
    address = scheduler or config.scheduler_address()
    if address is not None and "://" not in address and ":" not in address:
        raise DataError(f"Scheduler address {address!r} has no port: give it as tcp://HOST:PORT "
                        f"(what `dask scheduler` prints), via --scheduler or {SCHEDULER_ENV}")
    return address


@contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int = DEFAULT_WORKERS,
                memory_limit: str = "auto") -> Iterator[Client]:
    """A Dask client: to ``scheduler`` (or ``$UQLIB_SCHEDULER``), else to a new LocalCluster.

    The local cluster has ``n_workers`` processes of one thread each and no dashboard; it
    is closed when the block ends, whatever happens. A remote cluster is left running.
    """
    address = scheduler_address(scheduler)
    if address is not None:
        try:
            client = Client(address, timeout="10s")
        except OSError as err:
            raise DataError(f"Cannot reach the Dask scheduler at {address}: {err}. Start one with "
                            f"`dask scheduler` and workers with `dask worker {address}`") from err
        try:
            yield client
        finally:
            client.close()
        return
    if n_workers < 1:
        raise DataError(f"n_workers (--workers) must be at least 1, got {n_workers}")
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=memory_limit)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _worker_potential(path: str):
    """The potential at ``path``, loaded once per worker process (the cache outlives tasks)."""
    basis = _WORKER_POTENTIALS.get(path)
    if basis is None:
        basis = _WORKER_POTENTIALS[path] = load_potential(path)
    return basis


def grade_chunk_task(chunk: list[Atoms], potential_path: str, grading_set: GradingSet, start: int,
                     source: str | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """One task on a worker: :func:`uqlib.grading.grade_chunk` with the worker's cached potential."""
    return grading.grade_chunk(_worker_potential(potential_path), chunk, grading_set, start=start, source=source)


def scatter_grading_set(client: Client, grading_set: GradingSet) -> Future:
    """Send the grading set to every worker once; tasks then take the returned future, not a copy."""
    return client.scatter(grading_set, broadcast=True)


def grade_frames_distributed(frames_iter: Iterable[Atoms], potential_path: str | Path, grading_set: GradingSet, *,
                             chunk_size: int = 50, client: Client | None = None, max_in_flight: int | None = None,
                             source: str | None = None, progress: bool = True) -> Iterator[FrameGrade]:
    """Grade frames on ``client``'s workers, chunk by chunk; yields one :class:`FrameGrade` per frame, in order.

    At most ``max_in_flight`` chunks (default twice the number of worker threads) are
    submitted and not yet yielded, so the driver holds at most that many chunks of
    frames and their gammas. ``frames_iter`` is read lazily (e.g. ``ase.io.iread``).
    Worker errors (a bad frame, named with its number) are raised here as they were raised there.
    Without ``client``, one is opened for the run by :func:`dask_client` (``$UQLIB_SCHEDULER``,
    else a LocalCluster of :data:`DEFAULT_WORKERS` processes) and closed at the end.
    """
    if client is None:
        with dask_client() as own:
            yield from grade_frames_distributed(frames_iter, potential_path, grading_set, chunk_size=chunk_size,
                                                client=own, max_in_flight=max_in_flight, source=source,
                                                progress=progress)
        return
    if chunk_size < 1:
        raise DataError(f"chunk_size must be at least 1, got {chunk_size}")
    potential_path = str(Path(potential_path).resolve())
    grading_set.check_covers(load_potential(potential_path).elements_name)  # a clear error before any task
    if max_in_flight is None:
        max_in_flight = 2 * max(1, sum(client.nthreads().values()))
    if max_in_flight < 1:
        raise DataError(f"max_in_flight must be at least 1, got {max_in_flight}")
    shared = scatter_grading_set(client, grading_set)
    window: deque[tuple[int, list[Atoms], Future]] = deque()
    start = 0

    def finished() -> Iterator[FrameGrade]:
        first, chunk, future = window.popleft()
        for i, (atoms, (gamma, cluster)) in enumerate(zip(chunk, future.result(), strict=True)):
            yield FrameGrade(first + i, atoms, gamma, cluster)
        future.release()

    try:
        with progress_bar(unit="frame", desc=f"grading {source or 'frames'} on dask", disable=not progress) as bar:
            for chunk in frame_chunks(frames_iter, chunk_size):
                # pure=False: two identical chunks are still two tasks (their frames are two frames)
                window.append((start, chunk, client.submit(grade_chunk_task, chunk, potential_path, shared, start,
                                                           source, pure=False)))
                start += len(chunk)
                while len(window) >= max_in_flight:
                    n = len(window[0][1])
                    yield from finished()
                    bar.update(n)
            while window:
                n = len(window[0][1])
                yield from finished()
                bar.update(n)
    finally:
        for _, _, future in window:  # an error or an abandoned generator: cancel what is left
            future.cancel()
        shared.release()
    if start == 0:
        raise DataError(f"{source or 'the input'} holds no frames to grade")
