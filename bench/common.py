"""What every figure shares: runs, medians, ratios, the results table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


class BenchError(Exception):
    """A benchmark found a wrong result (or could not set up): it stops and says so."""


@dataclass
class Figure:
    """One line of the table: swarmpy's measurements against a reference measured in the same run."""

    name: str
    unit: str
    reference_name: str
    swarmpy: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    aim: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.swarmpy or not self.reference or not statistics.median(self.reference):
            return None
        return statistics.median(self.swarmpy) / statistics.median(self.reference)

    def row(self) -> list[str]:
        def spread(values):
            if not values:
                return "-"
            return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"
        ratio = self.ratio
        return [self.name, f"{spread(self.swarmpy)} {self.unit}", f"{spread(self.reference)} {self.unit}",
                self.reference_name, f"{ratio:.2f}x" if ratio is not None else "-",
                str(max(len(self.swarmpy), len(self.reference))), self.aim]


def fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


COLUMNS = ["figure", "swarmpy median (min-max)", "reference median (min-max)", "reference", "ratio", "runs",
           "aim"]


def table(figures: list[Figure]) -> str:
    rows = [COLUMNS] + [f.row() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    cores = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    docker = subprocess.run(["dockerd", "--version"], capture_output=True, text=True).stdout.strip()
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2:3]
    from swarmpy import __version__
    return (f"{cores} cores, {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()}, "
            f"{docker}, Redis {' '.join(redis)}, swarmpy {__version__}")


def write_results(figures: list[Figure], notes: list[str], path: Path = RESULTS) -> None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = ["# swarmpy benchmarks", "", f"Run on {now}: {machine()}.", "",
            "Every figure is measured in the same run as its reference, alternating, "
            "and timed as an outside observer sees it (polling the engines, not swarmpy's state). "
            "Ratio = swarmpy median / reference median.", "", table(figures), ""]
    for f in figures:
        if f.note:
            text.append(f"- **{f.name}**: {f.note}")
    text += [""] + notes
    path.write_text("\n".join(text).rstrip() + "\n")


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def wait_until(check, timeout: float, what: str, interval: float = 0.02) -> float:
    """Poll until `check()` holds; return when it did (perf_counter). Raise BenchError on timeout."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
