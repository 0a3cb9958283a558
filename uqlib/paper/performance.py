"""Speed and memory of the book: what the book runner records and what the performance page judges.

The runner (:func:`uqlib.paper.book.build`) times each *step* of a build (each notebook; ``make book``
runs no benchmarks, ``make benchmarks`` runs them on their own and each saves a record with its
provenance, :func:`benchmark_provenance`) and samples the resident memory of the step's processes
(:class:`MemorySampler`). A build that starts from an empty compute cache is **cold**; any other
is **warm**. The latest record of each step is kept per kind in ``results/<profile>/timings.json``::

    {"cold": {"benchmarks": {...}, "00_data": {...}, ...}, "warm": {...}}

so one cold and one warm build of the same code give the cost of computing the caches, step by
step, as the difference of the two (:func:`step_table`). The page sets these and the benchmark
records against the project's goals (:data:`GOALS`) and, where a goal is missed, says what bounds
the figure, from measured records only (:func:`performance_goals`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import TracebackType

import pandas as pd
import psutil

KINDS = ("cold", "warm")
# the benchmark scripts make benchmarks runs (benchmarks/run_all.py), in order; each saves a record of this name
BENCHMARKS = ("cache_reads", "featurization_passes", "design_matrix_throughput", "ensemble_fit", "ensemble_memory",
              "pacemaker_bfgs", "grading_throughput", "clustered_grading", "distributed_grading", "activeset_parity")
NOT_RUN = "—"  # what the page shows where a benchmark has no record (or a record lacks a field)
MEMORY_MEASURE = "pss"  # what MemorySampler sums over a step's processes (older records: "rss")
COLD_BUILD_MINUTES, WARM_BUILD_MINUTES, NOTEBOOK_MEMORY_GIB = 12.0, 4.0, 6.0

# (name, target text, record, key, comparison, bound, unit)
GOALS = [("bytes read to open a large cached design matrix (memory-mapped, cheap check), fraction of its size",
          "<= 0.01", "cache_reads", "mmap_read_fraction", "<=", 0.01, ""),
         ("pyace passes per structure in a build", "1", "featurization_passes", "cold_passes_per_structure",
          "<=", 1.0, ""),
         ("pyace passes per structure in a warm rebuild", "0", "featurization_passes", "warm_passes_per_structure",
          "<=", 0.0, ""),
         ("30-member ensemble against one fit (largest preset)", "<= 3x", "ensemble_fit", "ratio_30_to_1", "<=", 3.0,
          "x"),
         ("peak memory of the ensemble benchmark (largest preset, all of A+B)", "<= 6144 MiB", "ensemble_fit",
          "peak_memory_mib", "<=", 6144.0, "MiB"),
         ("clustered grading against one active set", "<= 1.5x", "clustered_grading", "ratio_k_sets_to_one_set",
          "<=", 1.5, "x"),
         ("uqlib grading against PyACECalculator", ">= 1x", "grading_throughput", "speedup", ">=", 1.0, "x"),
         ("grading throughput, 2 local Dask workers against 1 (K = 5, Func-222)", ">= 1.8x", "distributed_grading",
          "speedup_2_workers_to_1", ">=", 1.8, "x"),
         ("peak memory grading 100 frames against 10 (50,000-atom chunks, streaming)", "<= 1.1x",
          "distributed_grading", "memory_ratio_many_to_few", "<=", 1.1, "x"),
         ("Dask LocalCluster against the serial path, one worker (fraction slower)", "<= 0.1",
          "distributed_grading", "dask_1_worker_slowdown_to_serial", "<=", 0.1, ""),
         ("gamma of the distributed path equal to the serial path (1 = identical)", "1", "distributed_grading",
          "gamma_identical", ">=", 1.0, "")]


class MemorySampler:
    """Largest memory (MiB) of this process's descendants while the ``with`` block runs.

    A notebook runs in a kernel that papermill starts as a child process (and the kernel may
    start workers of its own: forked featurization workers, Dask, LAMMPS), so the sum of the
    descendants' proportional set sizes (PSS), sampled every ``interval`` seconds, is the
    notebook's memory. PSS, not the resident set: a forked worker maps its parent's pages,
    and summing resident sets would count those pages once per worker. A peak shorter than
    the interval can be missed.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        total = 0
        for child in psutil.Process().children(recursive=True):
            try:
                total += child.memory_full_info().pss  # /proc/PID/smaps_rollup: cheap
            except psutil.Error:  # the child ended between listing and reading
                continue
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


def read_array_log(path: Path) -> dict[str, object]:
    """The largest array a step logged (``largest_array``, ``largest_array_gib``) and the sum of all
    (``arrays_gib``); empty when the step logged none."""
    path = Path(path)
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    if not entries:
        return {}
    largest = max(entries, key=lambda e: e["gib"])
    return {"largest_array": largest["what"], "largest_array_gib": round(largest["gib"], 3),
            "arrays_gib": round(sum(e["gib"] for e in entries), 3)}


def read_timings(path: Path) -> dict[str, dict[str, dict]]:
    """``{"cold": {step: record}, "warm": {...}}`` from ``path`` (empty when there is none).

    A file in the older flat layout (``{step: record}``) is read as warm records.
    """
    path = Path(path)
    if not path.is_file():
        return {kind: {} for kind in KINDS}
    stored = json.loads(path.read_text())
    if stored and not set(stored) <= set(KINDS):
        stored = {"warm": stored}
    return {kind: stored.get(kind, {}) for kind in KINDS}


def start_build(path: Path, kind: str) -> None:
    """Forget the records of ``kind`` before a whole build, so its total is that build's steps only."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    timings = read_timings(path)
    if timings[kind]:
        timings[kind] = {}
        Path(path).write_text(json.dumps(timings, indent=2))


def record_step(path: Path, kind: str, step: str, seconds: float, peak_mib: float, computed: int,
                arrays: dict[str, object] | None = None) -> None:
    """Save one step's wall time (s), peak memory (MiB), cache entries computed and arrays built
    (:func:`read_array_log`) under ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    timings = read_timings(path)
    timings[kind][step] = {"seconds": round(seconds, 1), "date": time.strftime("%Y-%m-%d %H:%M"),
                           "peak_memory_mib": round(peak_mib), "memory_measure": MEMORY_MEASURE,
                           "cache_entries_computed": computed, **(arrays or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timings, indent=2))


def step_table(timings: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """One row per step: cold and warm wall time (s), their difference (the cost of computing the
    caches), the cache entries each computed and each one's peak memory (MiB)."""
    steps = list(dict.fromkeys([*timings.get("cold", {}), *timings.get("warm", {})]))
    rows = []
    for step in steps:
        row = {"step": step}
        for kind in KINDS:
            record = timings.get(kind, {}).get(step, {})
            row[f"{kind} s"] = record.get("seconds")
            row[f"{kind} entries computed"] = record.get("cache_entries_computed")
            row[f"{kind} peak MiB"] = record.get("peak_memory_mib", record.get("peak_memory_mib_so_far"))
            if record and record.get("memory_measure", "rss") != MEMORY_MEASURE:
                row[f"{kind} peak MiB"] = f"{row[f'{kind} peak MiB']} (rss sum)"
        rows.append(row)
    table = pd.DataFrame(rows, columns=["step", *[f"{k} {c}" for k in KINDS for c in
                                                  ("s", "entries computed", "peak MiB")]]).set_index("step")
    table.insert(2, "cold - warm s", table["cold s"] - table["warm s"])
    return table


def step_table_view(timings: dict[str, dict[str, dict]]):
    """:func:`step_table` as the book shows it: units in the headers, "not run" where a build kind has no record
    of a step (never NaN or None), wall times to the second and memory to the MiB. Returns a pandas Styler."""
    from uqlib.paper import book

    table = step_table(timings)
    if table.empty:
        return book.table(table, "No build has recorded its steps for this profile yet.")
    names = {}
    for kind in KINDS:
        names |= {f"{kind} s": f"{kind} wall time (s)", f"{kind} entries computed": f"{kind} cache entries computed",
                  f"{kind} peak MiB": f"{kind} peak memory (MiB)"}
    names["cold - warm s"] = "cold - warm wall time (s)"
    shown = table.rename(columns=names).astype(object)
    shown = shown.where(shown.notna(), "not run")
    return book.table(shown, "Each step of the latest cold and warm build of this profile: wall time, cache entries "
                      "computed and peak memory; \"not run\": the step was not run in a build of that kind.",
                      digits={c: 0 for c in shown.columns if not c.endswith("computed")})


def _goal_row(name: str, target: str, value: float | None, met: bool | None, unit: str, bound: str = "") -> dict:
    return {"goal": name, "target": target, "measured": "no record" if value is None else f"{value:.3g} {unit}".strip(),
            "verdict": "no record" if met is None else "met" if met else "missed",
            "bounded by (measured)": "" if met in (None, True) else bound}


def _ensemble_bound(record: dict) -> str:
    if "per_member_seconds_30" not in record:
        return "the benchmark did not record its cost split"
    return (f"one fit {record['seconds']['1']:.3g} s; 30 members = shared unit Grams "
            f"{record['setup_seconds_30']:.3g} s + 30 x {record['per_member_seconds_30']:.3g} s per member, of which "
            f"one {record['functions']}x{record['functions']} Cholesky alone takes {record['cholesky_seconds']:.3g} s")


def _dask_bound(record: dict) -> str:
    if "dask_1_worker_atoms_per_s" not in record:
        return ""
    return (f"serial {record['serial_atoms_per_s']:.3g} atoms/s against {record['dask_1_worker_atoms_per_s']:.3g} "
            f"on one Dask worker over {record['frames']} frames of {record['atoms_per_frame']} atoms; the "
            f"scheduler's overhead per task (measured with 2 workers) is "
            f"{record['scheduler_overhead_s_per_task']:.2g} s; load average {record['load_average_1min']:.2g} "
            f"during the benchmark")


def _memory_bound(records: dict[str, dict]) -> str:
    ensemble = records.get("ensemble_fit", {})
    if "design_matrix_gib" not in ensemble:
        return ""
    return (f"the design matrix of A+B alone at {ensemble['preset']} ({ensemble['atoms']} atoms) holds "
            f"{ensemble['design_matrix_gib']:.3g} GiB (energy rows, force rows and projections, 8-byte floats)")


def _build_rows(records: dict[str, dict], timings: dict[str, dict[str, dict]]) -> list[dict]:
    rows = []
    steps = step_table(timings)
    for kind, goal in (("cold", COLD_BUILD_MINUTES), ("warm", WARM_BUILD_MINUTES)):
        recorded = timings.get(kind, {})
        if not recorded:
            rows.append(_goal_row(f"book build, {kind} ({'empty' if kind == 'cold' else 'filled'} compute cache)",
                                  f"<= {goal:g} min", None, None, "min"))
            continue
        minutes = sum(r["seconds"] for r in recorded.values()) / 60
        slowest = pd.Series({s: r["seconds"] for s, r in recorded.items()}).nlargest(3) / 60
        parts = ["the slowest steps: " + ", ".join(f"{s} {m:.3g} min" for s, m in slowest.items())]
        computed = {s: r.get("cache_entries_computed", 0) for s, r in recorded.items()}
        if kind == "warm" and any(computed.values()):
            parts.append("partly cold: " + ", ".join(f"{s} computed {n} cache entries"
                                                    for s, n in computed.items() if n))
        if kind == "cold":
            both = steps[pd.to_numeric(steps["warm s"], errors="coerce").notna() & steps["cold s"].notna()]
            if len(both):
                parts.append(f"computing the caches: those {len(both)} steps took "
                             f"{both['cold - warm s'].sum() / 60:.3g} min more cold than warm")
            throughput = records.get("design_matrix_throughput", {}).get("rows", [])
            if throughput:
                last = throughput[-1]
                parts.append(f"featurizing at {last['preset']} runs at {last['atoms_per_s']:.3g} atoms/s "
                             f"with {records['design_matrix_throughput'].get('workers', '?')} workers")
        rows.append(_goal_row(f"book build, {kind} ({len(recorded)} steps)", f"<= {goal:g} min", minutes,
                              minutes <= goal, "min", "; ".join(parts)))
    notebooks = [(s, kind, r) for kind in KINDS for s, r in timings.get(kind, {}).items() if s != "benchmarks"]
    # judge the sampler's own measure when there is one; resident-set sums count forked workers' shared pages again
    measured = [n for n in notebooks if n[2].get("memory_measure") == MEMORY_MEASURE] or notebooks
    peaks = {(s, kind): r.get("peak_memory_mib", r.get("peak_memory_mib_so_far", 0)) for s, kind, r in measured}
    if peaks:
        step, kind = max(peaks, key=peaks.get)
        gib = peaks[step, kind] / 1024
        record = timings[kind][step]
        held = (f"it loaded or built design matrices of {record['arrays_gib']:.3g} GiB (cumulative, not all held "
                f"at once), the largest {record['largest_array_gib']:.3g} GiB ({record['largest_array']})"
                ) if "arrays_gib" in record else ""
        measure = timings[kind][step].get("memory_measure", "rss")
        bound = "; ".join(filter(None, [f"{step} ({gib:.3g} GiB {measure}, {kind} run)", held, _memory_bound(records)]))
        rows.append(_goal_row("peak memory of any notebook", f"<= {NOTEBOOK_MEMORY_GIB:g} GiB", gib,
                              gib <= NOTEBOOK_MEMORY_GIB, "GiB", bound))
    else:
        rows.append(_goal_row("peak memory of any notebook", f"<= {NOTEBOOK_MEMORY_GIB:g} GiB", None, None, "GiB"))
    return rows


def performance_goals(records: dict[str, dict], timings: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """The project's speed and memory goals against the measured figures, with what bounds each missed one.

    ``records``: benchmark records ``{name: dict}``; ``timings``: :func:`read_timings`. A goal without
    a record is listed as "no record".
    """
    rows = []
    for name, target, record, key, comparison, bound, unit in GOALS:
        value = records.get(record, {}).get(key)
        met = None if value is None else (value <= bound if comparison == "<=" else value >= bound)
        reason = ""
        if value is not None and record == "ensemble_fit":
            reason = _ensemble_bound(records[record]) if key == "ratio_30_to_1" else _memory_bound(records)
        elif value is not None and record == "distributed_grading" and "slowdown" in key:
            reason = _dask_bound(records[record])
        rows.append(_goal_row(name, target, value, met, unit, reason))
    return pd.DataFrame(rows + _build_rows(records, timings))


def read_records(benchmark_dir: Path, profile_dir: Path) -> tuple[dict[str, dict], dict[str, dict[str, dict]]]:
    """The benchmark records (``*.json`` in ``benchmark_dir``) and the step timings of a profile."""
    records = {p.stem: json.loads(p.read_text()) for p in sorted(Path(benchmark_dir).glob("*.json"))}
    return records, read_timings(Path(profile_dir) / "timings.json")


def _load_text(load: object) -> str:
    return " / ".join(f"{x:.2f}" for x in load) if isinstance(load, list | tuple) else NOT_RUN


def benchmark_provenance(records: dict[str, dict]) -> pd.DataFrame:
    """One row per benchmark (:data:`BENCHMARKS`, then any other record): when its latest record was
    made (UTC), from which commit, on what machine (cores, total memory), under what load (the 1, 5 and
    15 minute load averages at its start and at its end) and its peak memory. A benchmark without a
    record shows :data:`NOT_RUN` in every column; an older record without a field shows it in that one."""
    rows = []
    for name in [*BENCHMARKS, *sorted(set(records) - set(BENCHMARKS))]:
        record = records.get(name)
        if record is None:
            rows.append({"benchmark": name, "status": "not run", **{c: NOT_RUN for c in _PROVENANCE_COLUMNS}})
            continue
        memory = record.get("memory_gib")
        rows.append({"benchmark": name, "status": "recorded", "date (UTC)": record.get("date", NOT_RUN),
                     "commit": record.get("commit", NOT_RUN),
                     "cores": str(record["cores"]) if "cores" in record else NOT_RUN,
                     "memory GiB": f"{memory:g}" if memory is not None else NOT_RUN,
                     "load at start (1/5/15 min)": _load_text(record.get("load_average_start")),
                     "load at end (1/5/15 min)": _load_text(record.get("load_average_end")),
                     "peak MiB": str(record["peak_memory_mib"]) if "peak_memory_mib" in record else NOT_RUN,
                     "machine": record.get("machine", NOT_RUN)})
    return pd.DataFrame(rows, columns=["benchmark", "status", *_PROVENANCE_COLUMNS]).set_index("benchmark")


_PROVENANCE_COLUMNS = ["date (UTC)", "commit", "cores", "memory GiB", "load at start (1/5/15 min)",
                       "load at end (1/5/15 min)", "peak MiB", "machine"]
_PROVENANCE_KEYS = {"benchmark", "date", "started", "commit", "cores", "memory_gib", "load_average_start",
                    "load_average_end", "peak_memory_mib", "machine"}


def benchmark_figures(records: dict[str, dict]) -> pd.DataFrame:
    """Every figure of every benchmark's latest record (``benchmark``, ``figure``, ``value``), provenance
    aside; a benchmark without a record is one row whose figure and value are :data:`NOT_RUN`, and a
    figure recorded as ``None`` or NaN shows :data:`NOT_RUN` too. Nested figures (lists, dicts) are left out."""
    rows = []
    for name in [*BENCHMARKS, *sorted(set(records) - set(BENCHMARKS))]:
        if name not in records:
            rows.append({"benchmark": name, "figure": NOT_RUN, "value": NOT_RUN})
            continue
        for key, value in records[name].items():
            if key in _PROVENANCE_KEYS or isinstance(value, list | dict):
                continue
            missing = value is None or (isinstance(value, float) and value != value)  # None or NaN
            rows.append({"benchmark": name, "figure": key, "value": NOT_RUN if missing else value})
    return pd.DataFrame(rows, columns=["benchmark", "figure", "value"])
