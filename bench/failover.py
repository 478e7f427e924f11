"""Figure: a manager host of three lost. swarmpy: every process of the host of the store's master
SIGKILLed at once (Redis master, Sentinel, manager, load balancer, worker), on a cluster of its
own made on the lab for each run (init here, node1 and node2 promoted). Docker Swarm: the leader's
dockerd SIGKILLed (node1 of the lab's swarm, node2 and node3 promoted for the run). Timed: a new
store master and a new leader; counted: requests that failed through the surviving managers'
meshes (swarmpy only: Swarm's ingress needs IPVS, which this kernel lacks)."""

from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
import time
from pathlib import Path

import redis

from bench.common import BenchError, Figure, wait_until
from bench.env import ADDR_POOL, Env, sh
from swarmpy import bootstrap
from swarmpy.lab import engine as lab_engine
from swarmpy.settings import StateDir
from swarmpy.store import Store, replication
from tests.integration.cluster import Cluster
from tests.integration.test_mesh import WEB as MESH_WEB, RequestStream

PORT = 18490
WEB = MESH_WEB.format(port=PORT, replicas=3)


def swarmpy_loss(env: Env) -> tuple[float, float, int, int]:
    """(s to a new master, s to a new leader, failed requests, requests) of one run."""
    lab = env.lab
    node1, node2 = lab.node("node1"), lab.node("node2")
    state = Path(tempfile.mkdtemp(prefix="swarmpy-bench-ha-"))
    cluster = Cluster(lab, state, addr_pool=ADDR_POOL)
    api1 = None
    try:
        cluster.start()
        for node in ("node1", "node2"):
            cluster.cli("node", "promote", node)
        api1 = f"https://{node1.address}:{cluster.api_port}"
        with tempfile.TemporaryDirectory() as tmp:
            cluster.deploy(cluster.write_stack(Path(tmp), WEB), "ha")
        config = StateDir(state).load()
        port = replication.address(config.sentinels[0])[1]
        survivors = dataclasses.replace(config, sentinels=[f"{n.address}:{port}" for n in (node1, node2)])
        store = Store.from_config(survivors, socket_timeout=1, socket_connect_timeout=1)
        managers = {m["node_id"]: mid for mid, m in store.alive("manager").items()}
        new_leaders = {managers[n["id"]] for n in cluster.json("node", "ls") if n["hostname"] in ("node1", "node2")}
        streams = [RequestStream(PORT, n.address) for n in (node1, node2)]
        for s in streams:
            s.start()
        time.sleep(2)
        os.kill(int((state / "run" / "supervisor.pid").read_text()), signal.SIGKILL)
        lost = time.perf_counter()

        def master_moved() -> bool:
            try:
                return replication.master_address(survivors)[0] in (node1.address, node2.address)
            except (redis.RedisError, OSError):
                return False

        def led() -> bool:
            try:
                return store.lease_holder("leader") in new_leaders
            except redis.RedisError:
                return False
        master = wait_until(master_moved, 60, "a new store master") - lost
        leader = wait_until(led, 60, "a new leader") - lost
        time.sleep(3)
        for s in streams:
            s.stop()
        return master, leader, sum(len(s.failures) for s in streams), \
            sum(len(s.failures) + len(s.served) for s in streams)
    finally:
        if api1:
            wait_until(lambda: cluster.cli("stack", "rm", "ha", host=api1, check=False).returncode == 0, 60,
                       "a surviving manager to take `stack rm`", 1.0)
            try:
                wait_until(lambda: not any(cluster.containers("ha", running_only=False).values()), 60,
                           "the stack to go", 0.2)
            except BenchError as e:
                left = cluster.cli("stack", "ps", "ha", host=api1, check=False)
                raise BenchError(f"{e}: {left.stdout}{left.stderr}") from None
        for node in (node1, node2):  # the promoted managers (their supervisors' parts die with them)
            for pid_file in Path(node.dir, "swarmpy").glob("node-*/run/supervisor.pid"):
                pid = int(pid_file.read_text())
                if bootstrap.alive(pid):
                    os.kill(pid, signal.SIGKILL)
        cluster.stop()
        for node in (node1, node2):
            sh("rm", "-rf", *map(str, Path(node.dir, "swarmpy").glob("node-*")), check=False)
        sh("rm", "-rf", str(state), check=False)


def swarm_managers(manager: str) -> dict[str, str]:
    out = sh("docker", "-H", manager, "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}", check=False)
    return {line.split()[0]: (line.split() + [""])[1] for line in out.stdout.splitlines() if line.strip()}


def swarm_loss(env: Env) -> float:
    """s to a new leader after the leader's engine (of three managers) was killed."""
    lab, first = env.lab, env.lab_swarm
    node1, node2 = lab.node("node1"), lab.node("node2")
    sh("docker", "-H", first, "node", "promote", "node2", "node3")
    wait_until(lambda: sorted(swarm_managers(first).values()) == ["Leader", "Reachable", "Reachable"], 60,
               "Swarm's three managers", 0.2)
    lab_engine.kill(node1)
    lost = time.perf_counter()
    try:
        return wait_until(lambda: swarm_managers(node2.docker_host).get("node2") == "Leader"
                          or swarm_managers(node2.docker_host).get("node3") == "Leader", 60,
                          "Swarm's new leader", 0.05) - lost
    finally:
        lab_engine.start(lab, node1)
        lab_engine.wait_ready(node1)
        try:
            wait_until(lambda: swarm_managers(node2.docker_host).get("node1") in ("Reachable", "Leader"), 120,
                       "node1 back among Swarm's managers", 0.5)
            for name in ("node2", "node3"):  # one at a time, through node1: Raft keeps its quorum throughout
                wait_until(lambda n=name: sh("docker", "-H", node1.docker_host, "node", "demote", n,
                                             check=False).returncode == 0
                           and swarm_managers(node1.docker_host).get(n) == "", 60, f"Swarm to demote {name}", 1.0)
        except BenchError as e:  # the next runs need one manager and every engine: Swarm made anew
            print(f"bench: failover: Swarm not back as it was ({e}); making it anew", flush=True)
            env.remake_lab_swarm()


def run(env: Env, runs: int = 3) -> list[Figure]:
    masters, leaders, failed, sent, swarm = [], [], [], [], []
    swarm_missed = 0
    env.lab_swarm  # noqa: B018 (made before the first loss)
    for _ in range(runs):
        master, leader, lost, total = swarmpy_loss(env)
        masters.append(master)
        leaders.append(leader)
        failed.append(lost)
        sent.append(total)
        try:
            swarm.append(swarm_loss(env))
        except BenchError as e:  # Swarm elected no leader in time: say so, keep the other runs
            print(f"bench: failover: Swarm: {e}", flush=True)
            swarm_missed += 1
    if any(failed):
        print(f"bench: failover: {failed} requests failed through the surviving managers", flush=True)
    note = ("swarmpy: every process of the master's host SIGKILLed; Swarm: the leader's dockerd SIGKILLed; "
            "3 managers each" + (f"; in {swarm_missed} of {runs} runs Swarm had no new leader within 60 s (not "
                                 "counted)" if swarm_missed else ""))
    return [
        Figure("manager host lost, 3 managers: new store master", "s", "Docker Swarm, new Raft leader",
               masters, swarm, aim="< 10 s", note=note),
        Figure("manager host lost, 3 managers: new leader", "s", "Docker Swarm, new Raft leader",
               leaders, swarm, aim="< 10 s", note=note),
        Figure("manager host lost: failed requests via the surviving managers", "requests", "requests sent",
               failed, sent, aim="0",
               note="swarmpy's mesh on node1 and node2 during the loss; Swarm's ingress cannot run here (no IPVS)"),
    ]

