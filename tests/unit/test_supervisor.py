"""The supervisor's rules, on real (tiny) processes: a dead part starts again after a pause that
doubles while it keeps dying quickly, what it does is reported, and stopping leaves nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from swarmpy import supervisor
from swarmpy.settings import StateDir
from swarmpy.supervisor import FIRST_BACKOFF, Part, Supervisor


def make(tmp_path, *commands: list[str]) -> Supervisor:
    state = StateDir(tmp_path)
    state.run_dir.mkdir(parents=True)
    parts = [Part(f"p{i}", c, log_file=str(state.run_dir / f"p{i}.log")) for i, c in enumerate(commands)]
    return Supervisor(state, parts)


def until(check, seconds=10.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_a_part_that_keeps_dying_is_restarted_ever_later(tmp_path):
    sup = make(tmp_path, ["sh", "-c", "exit 3"])
    part = sup.parts[0]
    sup.check()
    first = part.process.pid
    until(lambda: sup.check() and part.restarts == 1)
    assert part.last_exit == "exited with code 3"
    assert part.view()["state"] == "restarting" and part.due - time.time() <= FIRST_BACKOFF
    until(lambda: sup.check() and part.restarts == 3, 15)
    assert part.backoff == FIRST_BACKOFF * 8  # 0.5, 1, 2 waited; 4 next
    assert part.process is None or part.process.pid != first


def test_a_killed_part_comes_back_and_its_pid_file_follows(tmp_path):
    sup = make(tmp_path, ["sleep", "60"])
    part = sup.parts[0]
    sup.check()
    pid_file = sup.state.run_dir / "p0.pid"
    assert int(pid_file.read_text()) == part.process.pid
    part.process.kill()
    until(lambda: sup.check() and part.process is not None and part.process.poll() is None and part.restarts == 1)
    assert part.last_exit == "killed by SIGKILL"
    assert int(pid_file.read_text()) == part.process.pid
    status = sup.report()
    assert status["parts"]["p0"]["state"] == "running" and status["parts"]["p0"]["restarts"] == 1
    assert sup.state.read_parts()["parts"]["p0"]["pid"] == part.process.pid
    sup.stopping.set()
    sup.stop_all()
    assert part.process.poll() is not None and not pid_file.exists()


def test_parts_start_in_order_with_their_command_lines(tmp_path):
    state = StateDir(tmp_path)
    parts = supervisor.commands(state, ["worker", "manager", "redis", "lb"], "n1", local_node=True)
    assert [p.name for p in parts] == ["redis", "manager", "lb", "worker"]
    manager = parts[1].command
    assert manager[-6:] == ["manager", "--no-lb", "--node-id", "n1", "--state-dir", str(tmp_path)]
    assert "--local-node" in parts[3].command


def test_a_systemd_unit_runs_the_supervisor_and_restarts_it(tmp_path):
    from swarmpy.bootstrap import unit_name, unit_text
    state = StateDir(tmp_path / "a")
    text = unit_text(state, ["redis", "sentinel", "manager", "lb", "worker"])
    service = dict(line.split("=", 1) for line in text.split("[Service]")[1].split("[Install]")[0].split("\n")
                   if "=" in line)
    assert service["ExecStart"].endswith(" -m swarmpy supervise --local-node --part=redis --part=sentinel "
                                         f"--part=manager --part=lb --part=worker --state-dir {tmp_path / 'a'}")
    assert service["Restart"] == "always" and service["KillMode"] == "mixed"
    assert unit_name(state) != unit_name(StateDir(tmp_path / "b"))  # clusters side by side


def test_init_with_systemd_where_there_is_none_says_so_and_makes_nothing(tmp_path):
    import subprocess
    import sys

    from swarmpy.bootstrap import has_systemd
    if has_systemd():
        import pytest
        pytest.skip("this machine runs systemd")
    done = subprocess.run([sys.executable, "-m", "swarmpy", "init", "--systemd", "--state-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "does not run systemd" in done.stderr + done.stdout
    assert not (tmp_path / "s").exists()


CHILD = """
import threading
from swarmpy.lifetime import StopSignals
stops = StopSignals()
print("ready", flush=True)
while not stops.wait(1.0):
    pass
for _ in range(2000):  # what a process does as it stops: threads, events, locks
    threading.Event().wait(0.0001)
print("stopped", flush=True)
"""


def test_a_burst_of_stop_signals_stops_a_process_and_never_hangs_it():
    """Event.set() in a handler hung such a process in about half of these bursts (the signal landed
    while the main thread held the Event's lock, waking from its wait)."""
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        for _ in range(300):
            if child.poll() is not None:
                break
            child.send_signal(signal.SIGTERM)
        try:
            assert child.wait(10) == 0
        finally:
            child.kill()
        assert child.stdout.read().strip() == "stopped"
