"""`leave` stops every process of its state dir, and no other (real processes, no servers)."""

from __future__ import annotations

import subprocess
import sys

from swarmpy import bootstrap
from swarmpy.settings import StateDir

# ignores SIGTERM, as a control loops' process hung in its shutdown would
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(120)"


def stray(state_dir, command: str = "manager-loops") -> subprocess.Popen:
    """A process whose command line is that of `swarmpy <command>` (by default a manager's control
    loops) for `state_dir`."""
    process = subprocess.Popen([sys.executable, "-c", STUBBORN, "-m", "swarmpy", command,
                                "--state-dir", str(state_dir)], stdout=subprocess.PIPE)
    process.stdout.readline()  # it ignores SIGTERM from now on
    return process


def test_leave_stops_a_process_of_its_state_dir_that_no_pid_file_names_and_spares_the_others(tmp_path):
    state = StateDir(tmp_path / "cluster")
    state.run_dir.mkdir(parents=True)
    hung = stray(state.path)
    # another cluster's; one whose state dir's path is longer; a command a user runs on this one;
    # another cluster's, started elsewhere with a relative path that reads the same
    others = [stray(tmp_path / "other"), stray(f"{state.path}-2"), stray(state.path, "logs"), stray("cluster")]
    try:
        assert bootstrap.leftovers(state) == [hung.pid]
        assert bootstrap.stop(state) == []  # no part of it ran
        assert hung.wait(10) is not None
        assert all(p.poll() is None for p in others)
        assert bootstrap.leftovers(state) == []
    finally:
        for p in [hung, *others]:
            p.kill()
            p.wait()
