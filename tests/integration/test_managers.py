"""Managers: a node promoted over SSH runs a manager; when the leader's process dies another
takes over the control loops and the cluster keeps converging."""

from __future__ import annotations

import os
import signal

from swarmpy import bootstrap
from swarmpy.settings import StateDir
from tests.integration.cluster import wait_for

WEB = """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sleep", "{seconds}"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
"""


def manager_status(cluster, host=None) -> dict[str, str]:
    return {n["hostname"]: n["manager_status"] for n in cluster.json("node", "ls", host=host)}


def pid_of(state: StateDir, part: str) -> int:
    try:
        return int((state.run_dir / f"{part}.pid").read_text())
    except (OSError, ValueError):
        return 0  # between a death and the next start


def loops_of(manager: int) -> int:
    """The pid of a manager's control loops' process (0 when it has none just now)."""
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read()
            cmdline = open(f"/proc/{entry}/cmdline").read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == manager and "manager-loops" in cmdline:
            return int(entry)
    return 0


def test_promote_then_the_leader_hangs_and_is_killed(cluster, tmp_path):
    node3 = cluster.lab.node("node3")
    done = cluster.cli("node", "promote", "node3")
    assert "Node node3 promoted to a manager" in done.stdout
    status = manager_status(cluster)
    assert status["node3"] == "Reachable" and status[cluster.local_node] == "Leader"
    node3_api = f"https://{node3.address}:{cluster.api_port}"
    # the new manager answers the API itself, and node ls shows what runs there
    assert manager_status(cluster, host=node3_api)["node3"] == "Reachable"
    listed = {n["hostname"]: n for n in cluster.json("node", "ls")}
    assert {p: v["state"] for p, v in listed["node3"]["parts"].items()} == \
        {"redis": "running", "sentinel": "running", "manager": "running", "lb": "running", "worker": "running"}
    # what promote wrote stays in the lab node's own directory, not in this machine's /var/lib/swarmpy
    node3_id = listed["node3"]["id"]
    assert os.path.exists(os.path.join(node3.dir, "swarmpy", f"node-{node3_id}", "cluster.json"))
    assert not os.path.exists(f"/var/lib/swarmpy/node-{node3_id}")

    state = StateDir(cluster.state_dir)
    local_manager, its_lb = pid_of(state, "manager"), pid_of(state, "lb")
    its_loops = loops_of(local_manager)
    assert its_loops
    for pid in (its_loops, local_manager):
        os.kill(pid, signal.SIGSTOP)  # the leader hangs: it renews its lease no more
    try:
        # within 3.5 s (3 s lease + 0.5 s renewal) the other manager leads
        wait_for(lambda: manager_status(cluster, host=node3_api)["node3"] == "Leader", 8, interval=0.25,
                 what="node3 to lead")
        path = cluster.write_stack(tmp_path, WEB.format(seconds=3600))
        cluster.cli("stack", "deploy", "-c", str(path), "fo", host=node3_api)
        assert sum(cluster.running("fo").values()) == 3
        changed = cluster.write_stack(tmp_path, WEB.format(seconds=3601), "changed.yml")
        cluster.cli("stack", "deploy", "-c", str(changed), "fo", host=node3_api)
        commands = {tuple(c.attrs["Config"]["Cmd"]) for n in ("node1", "node2", "node3")
                    for c in cluster.engine(n).containers.list(filters={"label": "com.swarmpy.stack=fo"})}
        assert commands == {("sleep", "3601")}
    finally:
        for pid in (local_manager, its_loops):
            os.kill(pid, signal.SIGKILL)
    # its supervisor starts it again; the load balancer beside it never stopped
    wait_for(lambda: bootstrap.alive(pid_of(state, "manager")) and pid_of(state, "manager") != local_manager,
             10, what="the local manager to be started again")
    wait_for(lambda: manager_status(cluster, host=node3_api).get(cluster.local_node) == "Reachable", 20,
             what="the local manager back")
    assert pid_of(state, "lb") == its_lb and bootstrap.alive(its_lb)
    cluster.cli("stack", "rm", "fo")
    cluster.cli("node", "demote", "node3")
    wait_for(lambda: manager_status(cluster)["node3"] == "", 10, what="node3 demoted")
    # demoted, it keeps none of the cluster's keys, token or Redis password
    wait_for(lambda: not os.path.exists(os.path.join(node3.dir, "swarmpy", f"node-{node3_id}")), 20,
             what="node3's manager state to be removed")
    wait_for(lambda: not {n["hostname"]: n for n in cluster.json("node", "ls")}["node3"]["parts"], 10,
             what="node ls to show no swarmpy process on node3")


def test_the_control_loops_process_is_started_again_when_it_dies(cluster, tmp_path):
    """The leader's loops run in a child of its manager: killed, the manager starts them again,
    and they lead again; the API (the manager's own process) never stopped."""
    state = StateDir(cluster.state_dir)
    manager = pid_of(state, "manager")
    killed = loops_of(manager)
    assert killed
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: loops_of(manager) not in (0, killed), 10, what="a new control loops' process")
    assert manager_status(cluster)[cluster.local_node] == "Leader"
    path = cluster.write_stack(tmp_path, WEB.format(seconds=3600))
    cluster.cli("stack", "deploy", "-c", str(path), "again")
    wait_for(lambda: sum(cluster.running("again").values()) == 3, 30, what="the stack's 3 tasks running")
    assert pid_of(state, "manager") == manager
    cluster.cli("stack", "rm", "again")
