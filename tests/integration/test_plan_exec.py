"""Beyond Swarm, on the lab: `stack deploy --plan`, `service exec`, `events`, and `logs -f` that
takes in the tasks that start after it began. Asserted on the engines."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time

from tests.integration.cluster import wait_for
from tests.integration.test_service_cmds import NODES, running

STACK = """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    environment:
      GREETING: {greeting}
    deploy:
      replicas: 3
      update_config:
        parallelism: 1
        order: stop-first
  db:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"""


def task_ids(cluster, service: str) -> set[str]:
    """The task ids of the service's running containers, as the engines label them."""
    return {c["Config"]["Labels"]["com.swarmpy.task.id"] for c in running(cluster, service)}


def test_a_deploy_after_its_plan_changes_exactly_what_the_plan_said(cluster, tmp_path):
    first = cluster.write_stack(tmp_path, STACK.format(greeting="one"), "one.yml")
    second = cluster.write_stack(tmp_path, STACK.format(greeting="two"), "two.yml")
    cluster.deploy(first, "plx")
    try:
        wait_for(lambda: len(running(cluster, "plx_web")) == 3 and len(running(cluster, "plx_db")) == 1, 60,
                 what="the stack to run")
        web_before, db_before = task_ids(cluster, "plx_web"), task_ids(cluster, "plx_db")

        text = cluster.cli("stack", "deploy", "--plan", "-c", str(second), "plx").stdout
        assert "~ plx_web: environment.GREETING one -> two" in text
        assert "    replaces 3 tasks (plx_web.1, plx_web.2, plx_web.3) under update_config: parallelism 1, " \
               "stop-first" in text
        assert "= plx_db (unchanged)" in text and "Plan: 0 to create, 1 to update, 0 to remove; 3 tasks" in text
        assert cluster.cli("stack", "diff", "-c", str(second), "plx").stdout == text
        plan = json.loads(cluster.cli("stack", "deploy", "--plan", "--format", "json", "-c", str(second),
                                      "plx").stdout)
        # the plan changed nothing
        assert task_ids(cluster, "plx_web") == web_before and cluster.services("plx")["plx_web"]
        assert {c["Config"]["Env"][0] for c in running(cluster, "plx_web")} == {"GREETING=one"}

        cluster.deploy(second, "plx")
        web = next(s for s in plan["services"] if s["name"] == "plx_web")
        replaced = {t["id"] for t in web["replace"]}
        wait_for(lambda: len(task_ids(cluster, "plx_web") - web_before) == 3, 60, what="the update to end")
        assert web_before - task_ids(cluster, "plx_web") == replaced == web_before  # exactly those went
        assert task_ids(cluster, "plx_db") == db_before  # the plan said unchanged: its task stayed
        assert {e for c in running(cluster, "plx_web") for e in c["Config"]["Env"] if e.startswith("GREETING")} \
            == {"GREETING=two"}
        again = cluster.cli("stack", "diff", "-c", str(second), "plx").stdout
        assert "= plx_web (unchanged)" in again and "0 tasks replaced" in again
    finally:
        cluster.cli("stack", "rm", "plx", check=False)


def engine_of(cluster, container_id: str) -> str:
    return next(n for n in NODES if any(c["Id"] == container_id for c in cluster.engine(n).api.containers()))


def test_exec_runs_in_a_task_on_another_node_with_its_exit_code_stdin_and_a_tty(cluster):
    cluster.cli("service", "create", "--name", "plx_exec", "--replicas", "2", "--constraint", "node.hostname==node2",
                "--stop-grace-period", "1s", "swarmpy/busybox:latest", "sleep", "3600")
    try:
        containers = running(cluster, "plx_exec")
        assert {engine_of(cluster, c["Id"]) for c in containers} == {"node2"}
        done = cluster.cli("service", "exec", "plx_exec", "--", "sh", "-c", "hostname; echo oops >&2; exit 3",
                           check=False)
        assert done.returncode == 3 and done.stderr.strip() == "oops"
        slot1 = next(c for c in containers if c["Config"]["Labels"]["com.swarmpy.task.slot"] == "1")
        assert done.stdout.strip() == slot1["Id"][:12]  # the first task's own container
        slot2 = next(c for c in containers if c["Config"]["Labels"]["com.swarmpy.task.slot"] == "2")
        assert cluster.cli("service", "exec", "plx_exec.2", "--", "hostname").stdout.strip() == slot2["Id"][:12]

        assert cluster.cli("service", "exec", "plx_exec", "--", "test", "-t", "1", check=False).returncode == 1
        assert cluster.cli("service", "exec", "-t", "plx_exec", "--", "test", "-t", "1").returncode == 0
        assert cluster.cli("service", "exec", "-i", "plx_exec", "--", "cat", input="from stdin\n").stdout \
            == "from stdin\n"
        shell = cluster.cli("service", "exec", "-it", "plx_exec", "--", "sh", input="tty && echo typed; exit 4\n",
                            check=False)
        assert shell.returncode == 4 and "/dev/pts/" in shell.stdout and "typed" in shell.stdout

        late = cluster.cli("service", "exec", "plx_exec", "--", "sh", "-c", "sleep 7; echo late")
        assert late.stdout == "late\n"  # a silence longer than the manager's beat is no end

        # -it on a terminal: raw, its keys reach the command as typed
        parent, child = pty.openpty()
        shell = subprocess.Popen([sys.executable, "-m", "swarmpy", "service", "exec", "-it", "plx_exec", "--", "sh"],
                                 env=cluster.env, stdin=child, stdout=child, stderr=child)
        os.close(child)
        try:
            seen = read_until(parent, shell, b"# ")  # the shell's prompt
            os.write(parent, b"echo in-$((6*7)); exit 5\r")
            seen += read_until(parent, shell, None)
            assert shell.wait(10) == 5 and b"in-42" in seen, seen
        finally:
            shell.kill()
            os.close(parent)

        missing = cluster.cli("service", "exec", "plx_exec.9", "--", "true", check=False)
        assert missing.returncode == 1 and "plx_exec.9 is not running" in missing.stderr
        # a stack token may not exec in a task outside its stack
        token = cluster.cli("token", "create", "--stack", "other").stdout.strip()
        refused = cluster.cli("service", "exec", "plx_exec", "--", "true", check=False, token=token)
        assert refused.returncode == 1 and "forbidden" in refused.stderr
    finally:
        cluster.cli("service", "rm", "plx_exec", check=False)


def read_until(fd: int, process: subprocess.Popen, wanted: bytes | None, timeout: float = 30) -> bytes:
    """What a terminal shows until `wanted` (None: until the process ends)."""
    seen, deadline = b"", time.time() + timeout
    while time.time() < deadline and (wanted is None or wanted not in seen) and process.poll() is None:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the terminal's other side closed
                break
    return seen


def follow(cluster, *args: str) -> tuple[subprocess.Popen, list[str]]:
    """`swarmpy ARGS` running, its lines gathered as they come."""
    process = subprocess.Popen([sys.executable, "-m", "swarmpy", *args], env=cluster.env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True).start()
    return process, lines


def test_events_stream_service_events_with_filters(cluster):
    process, lines = follow(cluster, "events", "--filter", "type=service", "--filter", "name=plx_ev",
                            "--format", "json")
    try:
        time.sleep(2)  # it follows from now on
        cluster.cli("service", "create", "-d", "--name", "plx_other", "swarmpy/busybox:latest", "sleep", "60")
        cluster.cli("service", "create", "-d", "--name", "plx_ev", "swarmpy/busybox:latest", "sleep", "60")
        cluster.cli("service", "update", "-d", "--env-add", "A=1", "plx_ev")

        def seen():
            return {(e["kind"], e["action"], e["name"]) for e in map(json.loads, list(lines))}
        wait_for(lambda: {("service", "create", "plx_ev"), ("service", "update", "plx_ev")} <= seen(), 30,
                 what=lambda: f"the events (got {lines})")
        assert {name for _, _, name in seen()} == {"plx_ev"}  # not plx_other's, nor any task's
        since = cluster.cli("events", "--since", "1m", "--until", "0s", "--filter", "name=plx_ev").stdout
        assert " service create " in since and " task " in since  # its tasks' events with it
    finally:
        process.terminate()
        process.wait(10)
        cluster.cli("service", "rm", "plx_ev", "plx_other", check=False)


def test_logs_follow_takes_in_tasks_that_start_after_it_began(cluster):
    cluster.cli("service", "create", "--name", "plx_logs", "--stop-grace-period", "1s", "swarmpy/busybox:latest",
                "sh", "-c", "while true; do echo tick-$(hostname); sleep 0.5; done")
    process, lines = follow(cluster, "service", "logs", "-f", "plx_logs")
    try:
        wait_for(lambda: any(line.startswith("plx_logs.1@") for line in lines), 30, what="the first task's lines")
        cluster.cli("service", "scale", "plx_logs=3")
        started = {c["Id"][:12] for c in running(cluster, "plx_logs")}

        def tasks_heard():
            return {line.split("@")[0] for line in list(lines) if "tick-" in line}
        wait_for(lambda: tasks_heard() == {"plx_logs.1", "plx_logs.2", "plx_logs.3"}, 30,
                 what=lambda: f"lines of the new tasks (got {tasks_heard()})")
        assert {line.rsplit("tick-", 1)[1].strip() for line in list(lines) if "tick-" in line} == started
        assert process.poll() is None  # still following
        once = cluster.cli("service", "logs", "--tail", "1", "plx_logs", timeout=30).stdout.splitlines()
        assert sorted(line.split("@")[0] for line in once) == ["plx_logs.1", "plx_logs.2", "plx_logs.3"]
    finally:
        process.terminate()
        process.wait(10)
        cluster.cli("service", "rm", "plx_logs", check=False)


def engine_connections(cluster, node: str) -> set[str]:
    """The worker's open connections to a node's engine: over SSH, each one is a `docker system
    dial-stdio` process on the node (in its network namespace); their pids."""
    pids = subprocess.run(["ip", "netns", "pids", cluster.lab.node(node).netns], capture_output=True, text=True,
                          check=True).stdout.split()
    found = set()
    for pid in pids:
        try:
            if b"dial-stdio" in open(f"/proc/{pid}/cmdline", "rb").read():
                found.add(pid)
        except OSError:  # ended meanwhile
            pass
    return found


def test_a_logs_follow_that_ends_closes_its_streams_of_quiet_tasks(cluster):
    """A task's followed log is a stream over its node's SSH session. When the client goes, the
    node's streams close, though the tasks never write again: the API learns the client went at a
    write, and a silent follow still writes a beat every few seconds (before, it held its API thread
    and the streams until the next line). The SDK cannot cancel a stream over SSH: its channel is
    closed instead."""
    cluster.cli("service", "create", "--name", "plx_quiet", "--replicas", "2", "--constraint", "node.hostname==node2",
                "--stop-grace-period", "1s", "swarmpy/busybox:latest", "sh", "-c", "echo hello; exec sleep 3600")
    process = None
    try:
        process, lines = follow(cluster, "service", "logs", "-f", "plx_quiet")
        wait_for(lambda: sum("hello" in line for line in list(lines)) == 2, 30, what="both tasks' first line")
        # the two streams are among these: new connections, or idle ones the pool gave them
        open_now = engine_connections(cluster, "node2")
        process.terminate()
        process.wait(10)
        wait_for(lambda: len(open_now - engine_connections(cluster, "node2")) >= 2, 30,
                 what=lambda: f"the two streams to close (of {sorted(open_now)}, "
                              f"{sorted(open_now & engine_connections(cluster, 'node2'))} still open)")
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        cluster.cli("service", "rm", "plx_quiet", check=False)


def test_logs_right_after_a_nodes_engine_connections_ended_show_every_task(cluster):
    """When a node's engine restarts, the `docker system dial-stdio` behind each of the worker's
    pooled connections to it ends. The SDK's pool handed them out as they were, and the requests
    given them failed: a task's logs said `(no logs: ... Socket is closed)`."""
    cluster.cli("service", "create", "--name", "plx_ended", "--replicas", "4", "--constraint", "node.hostname==node2",
                "--stop-grace-period", "1s", "swarmpy/busybox:latest", "sh", "-c", "echo hello; exec sleep 3600")
    try:
        def hellos():
            lines = cluster.cli("service", "logs", "plx_ended", timeout=30).stdout.splitlines()
            return sorted(line.split("@")[0] for line in lines if line.endswith("| hello")), lines
        wait_for(lambda: len(hellos()[0]) == 4, 30, what="every task's line")
        for pid in engine_connections(cluster, "node2"):  # as an engine restart ends them
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        heard, lines = hellos()
        assert heard == [f"plx_ended.{slot}" for slot in (1, 2, 3, 4)], lines
    finally:
        cluster.cli("service", "rm", "plx_ended", check=False)


def test_many_logs_follow_do_not_hold_up_task_starts(cluster):
    """Each `logs -f` holds a worker thread for as long as it runs: more of them than a node has job
    slots (2 job processes x 4) must still leave the node's task starts alone."""
    pin = ["--constraint", "node.hostname==node2", "--stop-grace-period", "1s"]
    cluster.cli("service", "create", "--name", "plx_chatty", *pin, "swarmpy/busybox:latest",
                "sh", "-c", "while true; do echo tick; sleep 0.5; done")
    followers = [follow(cluster, "service", "logs", "-f", "plx_chatty") for _ in range(10)]
    try:
        wait_for(lambda: all(lines for _, lines in followers), 60, what="every follower to hear the task")
        assert all(process.poll() is None for process, _ in followers)
        cluster.cli("service", "create", "-d", "--name", "plx_late", *pin, "swarmpy/busybox:latest",
                    "sleep", "3600")
        wait_for(lambda: len(running(cluster, "plx_late")) == 1, 30, what="a task to start beside 10 followers")
    finally:
        for process, _ in followers:
            process.terminate()
        for process, _ in followers:
            process.wait(10)
        cluster.cli("service", "rm", "plx_chatty", "plx_late", check=False)
