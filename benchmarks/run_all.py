"""Run every benchmark in this folder; each prints its figures and saves them to output/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = ["featurization_passes.py", "design_matrix_throughput.py", "ensemble_fit.py", "ensemble_memory.py",
              "grading_throughput.py", "clustered_grading.py", "distributed_grading.py"]

if __name__ == "__main__":
    here = Path(__file__).parent
    for script in BENCHMARKS:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(here / script)], check=True)
