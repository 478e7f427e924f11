"""Figures 6 and 8: the control plane with 1,000 services in the store.

6: latency of a `stack deploy` API call (p50, p99 over 1,000 calls: over 200,
a p99 was the second slowest call of under a second, and moved 0.6x to 1.4x
between runs) and of `service ls` (over 200 calls), against Docker Swarm's own
API (a service update, a service list) with the same 1,000 services. 8: resident memory of the manager, one worker and
the load balancer with 1,000 services and 10,000 tasks in the store, against
Docker Swarm's manager (dockerd) holding the same services and tasks."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import requests

from bench.common import Figure
from bench.env import SWARM_IMAGE, Env
from swarmpy import bootstrap
from swarmpy.model import Constraint, DeploySpec, Placement, ServiceSpec, StackSpec
from swarmpy.settings import StateDir

SERVICES = 1000
STACKS = 10
# 10 replicas each that no node can take: 10,000 tasks in the store, none started
NOWHERE = Constraint("node.labels.bench-nowhere", "==", "1")
STACK_LABEL = {"com.docker.stack.namespace": "probe"}  # what `docker stack deploy` finds a stack's parts by


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def stack_spec(index: int, per_stack: int, replicas: int) -> dict:
    """A stack of `per_stack` services whose tasks no node can take (they stay pending)."""
    services = {f"s{i}": ServiceSpec(name=f"s{i}", image="swarmpy/busybox:latest", command=["sleep", "1"],
                                     deploy=DeploySpec(replicas=replicas, placement=Placement(constraints=[NOWHERE])))
                for i in range(per_stack)}
    return StackSpec(name=f"load{index}", services=services).to_dict()


def timed_calls(call, count: int) -> list[float]:
    times = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # a child that ended since it was listed
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    kids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def swarmpy_rss(state: StateDir) -> dict[str, float]:
    """MiB resident of each part with its children: the manager with its control loops' process, the
    worker with its job processes, the load balancer (siblings under the supervisor)."""
    def tree(part: str) -> float:
        pid = bootstrap._pid(state, part)
        return rss_mb(pid) + sum(rss_mb(c) for c in children(pid)) if pid else 0.0
    return {part: tree(part) for part in ("manager", "worker", "lb")}


def swarmpy_side(env: Env, calls: int, services: int, deploy_calls: int) -> dict:
    cluster = env.cluster
    state = StateDir(cluster.state_dir)
    base = f"https://127.0.0.1:{cluster.api_port}"
    session = requests.Session()
    session.verify = str(state.ca_file)
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the cluster's CA
    session.headers["Authorization"] = f"Bearer {state.token()}"
    before = swarmpy_rss(state)
    per_stack = services // STACKS
    for i in range(STACKS):
        session.put(f"{base}/stacks/load{i}", json={"stack": stack_spec(i, per_stack, 10)}, timeout=120
                    ).raise_for_status()
    deadline = time.time() + 120  # the orchestrator makes the 10,000 tasks
    while time.time() < deadline and sum(s["desired"] for s in session.get(f"{base}/services", timeout=60).json()) \
            < services * 10:
        time.sleep(1)
    ls = timed_calls(lambda i: session.get(f"{base}/services", timeout=60).raise_for_status(), calls)
    one = StackSpec(name="probe", services={"p": ServiceSpec(name="p", image="swarmpy/busybox:latest",
                                                             deploy=DeploySpec(replicas=0))})

    def deploy(i: int) -> None:
        one.services["p"].deploy.labels = {"round": str(i)}  # a change each time, as a redeploy would be
        session.put(f"{base}/stacks/probe", json={"stack": one.to_dict()}, timeout=60).raise_for_status()
    deploy(-1)  # made before the timed calls, as Swarm's side makes its service: they time redeploys
    time.sleep(1)  # its network and address made on every node
    deploys = timed_calls(deploy, deploy_calls)
    memory = swarmpy_rss(state)
    memory["growth"] = sum(memory.values()) - sum(before.values())
    memory["redis"] = rss_mb(bootstrap._pid(state, "redis"))
    for i in range(STACKS):
        session.delete(f"{base}/stacks/load{i}", timeout=120)
    session.delete(f"{base}/stacks/probe", timeout=60)
    return {"ls": ls, "deploy": deploys, "memory": memory}


def swarm_side(env: Env, calls: int, services: int, deploy_calls: int) -> dict:
    client = docker.DockerClient(base_url=env.local_swarm, version="1.41", timeout=120)
    dockerd = int(Path("/var/run/docker.pid").read_text())
    before = rss_mb(dockerd)
    ids = [client.api.create_service({"ContainerSpec": {"Image": SWARM_IMAGE, "Command": ["sleep", "1"]},
                                      "Placement": {"Constraints": ["node.labels.bench-nowhere==1"]}},
                                     name=f"load{i}", mode={"Replicated": {"Replicas": 10}})["ID"]
           for i in range(services)]
    time.sleep(5)
    ls = timed_calls(lambda i: client.api.services(status=True), calls)  # with replica counts, as `docker service ls`
    probe = client.api.create_service({"ContainerSpec": {"Image": SWARM_IMAGE}}, name="probe",
                                      mode={"Replicated": {"Replicas": 0}}, labels=dict(STACK_LABEL))["ID"]
    time.sleep(1)  # as swarmpy's side waits after making its probe

    def update(i: int, version: int | None = None) -> None:
        if version is None:
            version = client.api.inspect_service(probe)["Version"]["Index"]
        client.api.update_service(probe, version, name="probe", task_template={"ContainerSpec": {"Image": SWARM_IMAGE}},
                                  labels={**STACK_LABEL, "round": str(i)}, mode={"Replicated": {"Replicas": 0}})

    def stack_deploy(i: int) -> None:
        """What `docker stack deploy` asks the engine for a stack of one service that exists (docker/cli's
        deployCompose, detached, --resolve-image never): is it a manager, the stack's networks, its
        services, then the update."""
        client.api.info()
        by_stack = {"label": [f"{k}={v}" for k, v in STACK_LABEL.items()]}
        client.api.networks(filters=by_stack)
        (service,) = client.api.services(filters=by_stack)
        update(i, service["Version"]["Index"])
    updates = timed_calls(update, deploy_calls)
    deploys = timed_calls(lambda i: stack_deploy(deploy_calls + i), deploy_calls)
    memory = {"total": rss_mb(dockerd), "growth": rss_mb(dockerd) - before}
    for sid in ids + [probe]:
        client.api.remove_service(sid)
    client.close()
    return {"ls": ls, "deploy": updates, "stack deploy": deploys, "memory": memory}


def figures(env: Env, calls: int = 200, services: int = SERVICES, deploy_calls: int = 1000) -> list[Figure]:
    ours = swarmpy_side(env, calls, services, deploy_calls)
    theirs = swarm_side(env, calls, services, deploy_calls)
    out = []
    for key, theirs_key, ours_name, theirs_name in (
            ("deploy", "deploy", "stack deploy API call", "service update API calls (inspect, update)"),
            ("deploy", "stack deploy", "stack deploy, as `docker stack deploy` asks",
             "`docker stack deploy`'s API calls (info, networks, services, update)"),
            ("ls", "ls", "service ls", "GET /services?status=true")):
        for pct in (50, 99):
            out.append(Figure(f"control plane, {services:,} services: {ours_name} p{pct}", "ms",
                              f"Docker Swarm, {theirs_name}", [percentile(ours[key], pct)],
                              [percentile(theirs[theirs_key], pct)],
                              note=f"{len(ours[key])} calls each" if pct == 50 else ""))
    m = ours["memory"]
    total = m["manager"] + m["worker"] + m["lb"]
    out.append(Figure(f"footprint: manager + worker + lb, {services:,} services, {services * 10:,} tasks", "MiB",
                      "Docker Swarm manager's dockerd (engine included) with the same", [total],
                      [theirs["memory"]["total"]],
                      note=f"manager with its control loops' process {m['manager']:.0f} MiB, worker with its job "
                           f"processes {m['worker']:.0f} MiB, "
                           f"load balancer {m['lb']:.0f} MiB, Redis besides {m['redis']:.0f} MiB; growth for the "
                           f"load: swarmpy {m['growth']:.0f} MiB, dockerd {theirs['memory']['growth']:.0f} MiB"))
    return out
