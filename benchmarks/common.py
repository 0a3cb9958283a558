"""What every benchmark records beside its figures: when, on what machine, under what load, from which commit."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psutil

OUTPUT = Path(__file__).parent / "output"
ROOT = Path(__file__).resolve().parent.parent
# the load average when the benchmark's process started (this module is imported first), to set beside the end's
_STARTED = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "load": os.getloadavg()}


def git_commit() -> str:
    """The checkout's commit, ``+dirty`` when tracked files differ from it; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict:
    """Date (start and end, UTC), machine (CPU, cores, total memory), load averages (1, 5, 15 min) at the
    benchmark's start and end, and the git commit."""
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "started": _STARTED["date"],
            "machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()}",
            "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_start": [round(x, 2) for x in _STARTED["load"]],
            "load_average_end": [round(x, 2) for x in os.getloadavg()], "commit": git_commit()}


def save_result(name: str, result: dict) -> Path:
    """Write ``result`` with peak memory and :func:`provenance` to ``benchmarks/output/<name>.json``."""
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux
    result = {"benchmark": name, **result, "peak_memory_mib": round(peak_kib / 1024), **provenance()}
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path
