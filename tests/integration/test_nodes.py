"""Nodes through the CLI: joining (and refusing to), going down and coming back, drain and pause,
global services on nodes that join later."""

from __future__ import annotations

import docker
import pytest

from swarmpy import lab as swarmpy_lab
from swarmpy.lab import engine as lab_engine
from tests.integration.cluster import wait_for

WEB6 = """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 6
"""


@pytest.fixture(scope="module")
def extra_lab(lab_machine):
    """A second, one-node lab: a host that is not in the cluster yet."""
    swarmpy_lab.down("t-extra")
    try:
        yield swarmpy_lab.up(name="t-extra", nodes=1)
    finally:
        swarmpy_lab.down("t-extra")


def node_status(cluster, name: str) -> str:
    return next(n["status"] for n in cluster.json("node", "ls") if n["hostname"] == name)


def test_node_add_refuses_what_it_cannot_trust_or_reach(cluster, extra_lab):
    host = extra_lab.node("node1")
    unknown = cluster.cli("node", "add", "extra", "--ssh", f"root@{host.address}", "--identity",
                          extra_lab.identity, check=False)
    assert unknown.returncode == 1
    assert "host key of" in unknown.stderr and "unknown" in unknown.stderr
    refused = cluster.cli("node", "add", "extra", "--ssh", f"root@{host.address}:2222", "--identity",
                          extra_lab.identity, "--accept-host-key", check=False)
    assert refused.returncode == 1 and "SSH to" in refused.stderr and "failed" in refused.stderr
    # a key on record that is not the one the host shows: refused, as ssh does
    other_key = open(cluster.lab.known_hosts).read().split()[1:3]
    known = extra_lab.dir + "/known_hosts.changed"
    with open(known, "w") as f:
        f.write(f"{host.address} {other_key[0]} {other_key[1]}\n")
    changed = cluster.cli("node", "add", "extra", "--ssh", f"root@{host.address}", "--identity",
                          extra_lab.identity, "--known-hosts", known, check=False)
    assert changed.returncode == 1 and f"host key of {host.address} changed" in changed.stderr
    assert "extra" not in [n["hostname"] for n in cluster.json("node", "ls")]


def test_node_add_without_engine_says_so(cluster, extra_lab):
    host = extra_lab.node("node1")
    lab_engine.kill(host)
    wait_for(lambda: not lab_engine.ping(host.docker_socket), 10, what="the engine to stop")
    try:
        done = cluster.cli("node", "add", "extra", "--ssh", f"root@{host.address}", "--identity",
                           extra_lab.identity, "--known-hosts", extra_lab.known_hosts, check=False)
        assert done.returncode == 1 and "no Docker engine answers" in done.stderr
    finally:
        lab_engine.start(extra_lab, host)
        lab_engine.wait_ready(host)


def test_global_service_runs_on_every_node_including_one_that_joins(cluster, extra_lab, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  agent:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      mode: global
""")
    cluster.deploy(path, "glob")
    try:
        assert cluster.running("glob") == {"node1": 1, "node2": 1, "node3": 1}
        assert cluster.services("glob")["glob_agent"]["replicas"] == "3/3"
        host = extra_lab.node("node1")
        cluster.cli("node", "add", "extra", "--ssh", f"root@{host.address}", "--identity", extra_lab.identity,
                    "--known-hosts", extra_lab.known_hosts)
        extra_engine = lambda: host_containers(host, "glob")  # noqa: E731
        wait_for(lambda: extra_engine() == 1, 30, what="the global task on the new node")
        assert cluster.services("glob")["glob_agent"]["replicas"] == "4/4"
    finally:
        cluster.cli("stack", "rm", "glob", check=False)
        cluster.cli("node", "update", "--availability", "drain", "extra", check=False)
        cluster.cli("node", "rm", "--force", "extra", check=False)


def host_containers(node, stack: str) -> int:
    client = docker.DockerClient(base_url=node.docker_host)
    try:
        return len(client.containers.list(filters={"label": f"com.swarmpy.stack={stack}"}))
    finally:
        client.close()


def test_node_down_then_back(cluster, tmp_path):
    cluster.deploy(cluster.write_stack(tmp_path, WEB6), "down")
    node3 = cluster.lab.node("node3")
    before = cluster.containers("down")["node3"]
    assert len(before) == 2
    try:
        lab_engine.kill(node3)
        wait_for(lambda: node_status(cluster, "node3") == "down", 20, what="node3 down")
        # its tasks run again on the others
        wait_for(lambda: cluster.running("down", nodes=("node1", "node2")) == {"node1": 3, "node2": 3}, 30,
                 what="6 tasks on node1 and node2")
        ps = cluster.cli("service", "ps", "down_web").stdout
        assert "Orphaned" in ps and "node node3 is down" in ps
    finally:
        lab_engine.start(cluster.lab, node3)
        lab_engine.wait_ready(node3)
    wait_for(lambda: node_status(cluster, "node3") == "ready", 30, what="node3 ready again")
    # containers of tasks no longer wanted there are removed
    wait_for(lambda: cluster.containers("down", running_only=False)["node3"] == [], 30,
             what="node3 cleaned up")
    assert cluster.services("down")["down_web"]["replicas"] == "6/6"
    cluster.cli("stack", "rm", "down")


def test_drain_moves_tasks_and_pause_places_nothing_new(cluster, tmp_path):
    cluster.deploy(cluster.write_stack(tmp_path, WEB6), "drain")
    try:
        cluster.cli("node", "update", "--availability", "drain", "node2")
        wait_for(lambda: cluster.running("drain") == {"node1": 3, "node2": 0, "node3": 3}, 30,
                 what="node2 drained")
        assert next(n for n in cluster.json("node", "ls") if n["hostname"] == "node2")["availability"] == "drain"
        cluster.cli("node", "update", "--availability", "active", "node2")
        cluster.cli("node", "update", "--availability", "pause", "node1")
        cluster.cli("service", "scale", "drain_web=9")
        counts = cluster.running("drain")
        assert counts["node1"] == 3 and counts["node2"] + counts["node3"] == 6
    finally:
        cluster.cli("node", "update", "--availability", "active", "node1", check=False)
        cluster.cli("node", "update", "--availability", "active", "node2", check=False)
        cluster.cli("stack", "rm", "drain", check=False)


def test_lab_up_join_adds_every_node(cluster):
    swarmpy_lab.down("tj")
    try:
        done = cluster.cli("lab", "up", "--nodes", "2", "--name", "tj", "--join")
        assert "tj-node1 joined the cluster" in done.stdout and "tj-node2 joined the cluster" in done.stdout
        wait_for(lambda: {n["hostname"]: n["status"] for n in cluster.json("node", "ls")
                          if n["hostname"].startswith("tj-")} == {"tj-node1": "ready", "tj-node2": "ready"},
                 20, what="the joined nodes ready")
    finally:
        for name in ("tj-node1", "tj-node2"):
            cluster.cli("node", "rm", "--force", name, check=False)
        swarmpy_lab.down("tj")
