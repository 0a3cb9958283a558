"""The performance records: step timings per build kind, memory sampling, the goals and their bounds."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from uqlib import progress
from uqlib.paper import performance


def test_performance_goals_judge_cold_and_warm_builds_and_say_what_bounds_a_missed_goal():
    records = {"ensemble_fit": {"ratio_30_to_1": 4.0, "peak_memory_mib": 7000, "seconds": {"1": 10.0},
                                "setup_seconds_30": 9.0, "per_member_seconds_30": 1.0, "cholesky_seconds": 0.8,
                                "functions": 1561, "preset": "Func-1561", "atoms": 100, "design_matrix_gib": 1.5}}
    timings = {"cold": {"benchmarks": {"seconds": 300.0, "peak_memory_mib": 900, "cache_entries_computed": 4},
                        "01": {"seconds": 600.0, "peak_memory_mib": 7168, "cache_entries_computed": 4}},
               "warm": {"01": {"seconds": 180.0, "peak_memory_mib": 3072, "cache_entries_computed": 0}}}
    goals = performance.performance_goals(records, timings).set_index("goal")
    assert goals.loc["30-member ensemble against one fit (largest preset)", "verdict"] == "missed"
    assert "30 x 1 s per member" in goals.loc["30-member ensemble against one fit (largest preset)",
                                              "bounded by (measured)"]
    assert goals.loc["uqlib grading against PyACECalculator", "verdict"] == "no record"
    cold = goals.loc["book build, cold (2 steps)"]
    assert cold["measured"] == "15 min" and cold["verdict"] == "missed"
    assert "7 min more cold than warm" in cold["bounded by (measured)"]
    assert goals.loc["book build, warm (1 steps)", "verdict"] == "met"
    memory = goals.loc["peak memory of any notebook"]  # the benchmarks step is not a notebook
    assert memory["measured"] == "7 GiB" and memory["bounded by (measured)"].startswith("01 (7 GiB rss, cold run)")
    table = performance.step_table(timings)
    assert table.loc["01", "cold - warm s"] == 420.0 and pd.isna(table.loc["benchmarks", "warm s"])


def test_step_records_keep_the_latest_cold_and_warm_run_and_read_the_old_layout(tmp_path):
    path = tmp_path / "timings.json"
    assert performance.read_timings(path) == {"cold": {}, "warm": {}}
    performance.record_step(path, "cold", "01", 60.0, 512.0, 3)
    performance.record_step(path, "warm", "01", 20.0, 256.0, 0)
    performance.record_step(path, "warm", "01", 10.0, 128.0, 0)
    timings = performance.read_timings(path)
    assert timings["cold"]["01"]["seconds"] == 60.0 and timings["warm"]["01"]["seconds"] == 10.0
    with pytest.raises(ValueError, match="kind"):
        performance.record_step(path, "tepid", "01", 1.0, 1.0, 0)
    path.write_text(json.dumps({"01": {"seconds": 5.0, "peak_memory_mib_so_far": 100, "cache_entries_computed": 0}}))
    assert performance.read_timings(path)["warm"]["01"]["seconds"] == 5.0


def test_memory_sampler_sees_a_child_process():
    code = "import time; block = b\"x\" * (200 * 2**20); time.sleep(1.5)"
    with performance.MemorySampler(interval=0.05) as memory:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert memory.peak_mib > 200


def test_array_log_names_the_largest_array_of_a_step_and_is_silent_without_a_runner(tmp_path, monkeypatch):
    log = tmp_path / "arrays.jsonl"
    monkeypatch.delenv(progress.ARRAY_LOG, raising=False)
    progress.log_array("ignored", 2**30)
    assert not log.exists() and performance.read_array_log(log) == {}
    monkeypatch.setenv(progress.ARRAY_LOG, str(log))
    progress.log_array("A+B at Func-33", 2**29)
    progress.log_array("C+E at Func-1561", 3 * 2**30)
    assert performance.read_array_log(log) == {"largest_array": "C+E at Func-1561", "largest_array_gib": 3.0,
                                               "arrays_gib": 3.5}


def test_the_memory_goal_prefers_proportional_set_sizes_over_older_resident_set_sums():
    timings = {"cold": {"01": {"seconds": 60.0, "peak_memory_mib": 9216, "cache_entries_computed": 1}},
               "warm": {"01": {"seconds": 30.0, "peak_memory_mib": 5120, "memory_measure": "pss",
                               "cache_entries_computed": 0}}}
    memory = performance.performance_goals({}, timings).set_index("goal").loc["peak memory of any notebook"]
    assert memory["measured"] == "5 GiB" and memory["verdict"] == "met"
    assert performance.step_table(timings).loc["01", "cold peak MiB"] == "9216 (rss sum)"


def test_a_slow_dask_worker_is_explained_by_the_benchmarks_own_figures():
    record = {"dask_1_worker_slowdown_to_serial": 0.2, "serial_atoms_per_s": 5000.0,
              "dask_1_worker_atoms_per_s": 4000.0, "frames": 24, "atoms_per_frame": 5096,
              "local_cluster_startup_s": 2.5,
              "scheduler_overhead_s_per_task": 0.002, "load_average_1min": 1.6}
    goals = performance.performance_goals({"distributed_grading": record}, {}).set_index("goal")
    row = goals.loc["Dask LocalCluster against the serial path, one worker (fraction slower)"]
    assert row["verdict"] == "missed" and "overhead per task (measured with 2 workers) is 0.002 s" in \
        row["bounded by (measured)"]


def test_a_whole_build_starts_its_kind_afresh_and_a_warm_build_that_computed_entries_says_so(tmp_path):
    path = tmp_path / "timings.json"
    performance.record_step(path, "warm", "benchmarks", 300.0, 100.0, 0)
    performance.record_step(path, "cold", "01", 600.0, 100.0, 3)
    performance.start_build(path, "warm")
    assert performance.read_timings(path)["warm"] == {} and "01" in performance.read_timings(path)["cold"]
    performance.record_step(path, "warm", "05", 300.0, 100.0, 2)  # 5 min: over the warm goal
    goals = performance.performance_goals({}, performance.read_timings(path)).set_index("goal")
    warm = goals.loc["book build, warm (1 steps)"]
    assert warm["verdict"] == "missed" and "partly cold: 05 computed 2 cache entries" in warm["bounded by (measured)"]
    assert goals.loc["pyace passes per structure in a warm rebuild", "verdict"] == "no record"


def test_the_memory_goal_is_listed_without_notebook_timings():
    goals = performance.performance_goals({}, {"cold": {}, "warm": {}}).set_index("goal")
    assert goals.loc["peak memory of any notebook", "verdict"] == "no record"


def _record(**figures) -> dict:
    return {"benchmark": "ensemble_fit", **figures, "peak_memory_mib": 900, "date": "2026-12-08T03:00:00+00:00",
            "started": "2026-12-08T02:58:00+00:00", "machine": "CPU, 2 cores, Linux", "cores": 2, "memory_gib": 15.6,
            "load_average_start": [0.5, 0.6, 0.7], "load_average_end": [1.5, 1.0, 0.8], "commit": "abc123def456"}


def test_the_benchmark_provenance_shows_each_record_and_a_dash_where_there_is_none():
    records = {"ensemble_fit": _record(ratio_30_to_1=2.5), "distributed_grading": {"speedup_2_workers_to_1": 1.9}}
    table = performance.benchmark_provenance(records)
    assert list(table.index[:len(performance.BENCHMARKS)]) == list(performance.BENCHMARKS)
    fit = table.loc["ensemble_fit"]
    assert fit["status"] == "recorded" and fit["commit"] == "abc123def456" and fit["cores"] == "2"
    assert fit["memory GiB"] == "15.6" and fit["load at start (1/5/15 min)"] == "0.50 / 0.60 / 0.70"
    assert fit["load at end (1/5/15 min)"] == "1.50 / 1.00 / 0.80"
    missing = table.loc["grading_throughput"]
    assert missing["status"] == "not run" and (missing.drop("status") == performance.NOT_RUN).all()
    older = table.loc["distributed_grading"]  # a record from before the provenance fields
    assert older["status"] == "recorded" and older["commit"] == performance.NOT_RUN
    assert not table.isna().any().any()


def test_the_benchmark_figures_leave_out_provenance_and_show_a_dash_for_none_nan_or_no_record():
    records = {"ensemble_fit": _record(ratio_30_to_1=2.5, cholesky_seconds=None, spread=float("nan"),
                                       seconds={"1": 1.0})}
    figures = performance.benchmark_figures(records)
    fit = figures[figures["benchmark"] == "ensemble_fit"].set_index("figure")["value"]
    assert fit.to_dict() == {"ratio_30_to_1": 2.5, "cholesky_seconds": performance.NOT_RUN,
                             "spread": performance.NOT_RUN}
    not_run = figures[figures["benchmark"] == "cache_reads"]
    assert not_run[["figure", "value"]].values.tolist() == [[performance.NOT_RUN, performance.NOT_RUN]]
    assert set(figures["benchmark"]) == set(performance.BENCHMARKS)
    assert not figures.isna().any().any()


def test_make_book_runs_no_benchmarks_and_make_benchmarks_runs_every_one():
    from uqlib.paper.data import PROJECT_ROOT

    makefile = (PROJECT_ROOT / "Makefile").read_text()
    book_recipe = makefile.split("\nbook:", 1)[1].split("\n\n", 1)[0]
    assert "uqlib.paper.book build" in book_recipe and "--benchmarks" not in book_recipe
    assert "benchmarks/run_all.py" in makefile.split("\nbenchmarks:", 1)[1].split("\n\n", 1)[0]
    scripts = {p.stem for p in (PROJECT_ROOT / "benchmarks").glob("*.py")} - {"common", "run_all"}
    assert scripts == set(performance.BENCHMARKS)


def test_a_benchmark_record_carries_date_machine_load_and_commit(tmp_path, monkeypatch):
    from uqlib.paper.data import PROJECT_ROOT

    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "benchmarks"))
    import common

    monkeypatch.setattr(common, "OUTPUT", tmp_path)
    record = json.loads(common.save_result("probe", {"figure": 1.0}).read_text())
    assert record["figure"] == 1.0 and record["benchmark"] == "probe"
    assert record["cores"] >= 1 and record["memory_gib"] > 0 and len(record["load_average_start"]) == 3
    assert len(record["load_average_end"]) == 3 and record["date"] >= record["started"]
    assert record["commit"] != "unknown" and len(record["commit"].split("+")[0]) == 12


def test_the_cache_read_goal_judges_the_benchmarks_fraction_of_bytes_read():
    goal = "bytes read to open a large cached design matrix (memory-mapped, cheap check), fraction of its size"
    met = performance.performance_goals({"cache_reads": {"mmap_read_fraction": 0.003}}, {}).set_index("goal")
    missed = performance.performance_goals({"cache_reads": {"mmap_read_fraction": 1.0}}, {}).set_index("goal")
    assert met.loc[goal, "verdict"] == "met" and missed.loc[goal, "verdict"] == "missed"
