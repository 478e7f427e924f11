"""The benchmarks cannot rot: each figure once, at a tiny size, against its references."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_runs_at_a_tiny_size(lab_machine, capfd):
    done = subprocess.run([sys.executable, "-m", "bench", "all", "--small"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in ("converge, one node", "converge, three nodes", "self-heal", "node loss", "scheduler",
                   "control plane", "footprint", "mesh, kernel, 8 conn: requests/s", "manager host lost"):
        assert figure in done.stdout, f"{figure} missing:\n{done.stdout}"
    # every row has a swarmpy number, a reference and a ratio
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "figure" not in line]
    assert rows and all(line.count(" - ") == 0 for line in rows), done.stdout
