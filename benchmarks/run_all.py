"""Run every benchmark in this folder (``make benchmarks``); each prints its figures and saves them to output/.

Each record carries the date, the machine (CPU, cores, total memory), the load average at its start and end
and the git commit (common.py). A benchmark that fails keeps its previous record (with that record's own date
and commit) and the run continues with the next; the exit status is 1 if any failed. The performance page
shows the latest records and a dash for a benchmark that has none.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from uqlib.paper.performance import BENCHMARKS

if __name__ == "__main__":
    here = Path(__file__).parent
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}.py", flush=True)
        if subprocess.run([sys.executable, str(here / f"{name}.py")]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)} (their earlier records, if any, are kept)", file=sys.stderr)
    sys.exit(1 if failed else 0)
