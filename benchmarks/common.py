"""What every benchmark records beside its figures: the machine and the date."""

from __future__ import annotations

import json
import os
import platform
import resource
from datetime import UTC, datetime
from pathlib import Path

OUTPUT = Path(__file__).parent / "output"


def save_result(name: str, result: dict) -> Path:
    """Write ``result`` with peak memory, machine and date to ``benchmarks/output/<name>.json``."""
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux
    result = {"benchmark": name, **result, "peak_memory_mib": round(peak_kib / 1024),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
              "date": datetime.now(UTC).isoformat(timespec="seconds")}
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path
