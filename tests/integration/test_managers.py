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


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def test_promote_then_kill_the_leader(cluster, tmp_path):
    node3 = cluster.lab.node("node3")
    done = cluster.cli("node", "promote", "node3")
    assert "Node node3 promoted to a manager" in done.stdout
    status = manager_status(cluster)
    assert status["node3"] == "Reachable" and status[cluster.local_node] == "Leader"
    node3_api = f"http://{node3.address}:{cluster.api_port}"
    # the new manager answers the API itself
    assert manager_status(cluster, host=node3_api)["node3"] == "Reachable"

    state = StateDir(cluster.state_dir)
    local_manager = int((state.run_dir / "manager.pid").read_text())
    its_lb = children_of(local_manager)
    assert its_lb, "the manager runs a load balancer"
    os.kill(local_manager, signal.SIGKILL)
    try:
        # the load balancer does not outlive its manager (it would answer with a stale table)
        wait_for(lambda: not any(bootstrap.alive(pid) for pid in its_lb), 5, what="the orphaned lb to exit")
        # within 6 s (5 s lease + 1 s renewal) the other manager leads
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
        bootstrap.spawn(state, "manager", ["manager"])
        wait_for(lambda: cluster.cli("node", "ls", check=False).returncode == 0, 20, what="the local manager")
    cluster.cli("stack", "rm", "fo")
    cluster.cli("node", "demote", "node3")
    wait_for(lambda: manager_status(cluster)["node3"] == "", 10, what="node3 demoted")
