"""Figure 5: scheduler throughput, in process, on a simulated cluster.

`run()` builds a cluster (zones, racks, varied sizes, a few drained, paused and
down nodes), 100 services with a mix of placement rules and a load already on
the nodes, then times one `place` call that assigns all pending tasks.

    python -m bench.scheduler          # 100, 1,000 and 5,000 nodes
"""

from __future__ import annotations

import random
import time

from swarmpy.manager.scheduler import place
from swarmpy.model import (
    Availability,
    Constraint,
    DeploySpec,
    Node,
    NodeStatus,
    Placement,
    Platform,
    Port,
    Preference,
    Resources,
    ResourceSet,
    Service,
    ServiceSpec,
    Task,
    TaskState,
)

GIB = 1 << 30
MIB = 1 << 20
ZONES = ("a", "b", "c", "d")


def _nodes(count: int, rng: random.Random) -> list[Node]:
    nodes = []
    for i in range(count):
        roll = rng.random()
        labels = {"zone": rng.choice(ZONES), "rack": f"r{rng.randrange(10)}"}
        if roll < 0.01:
            labels = {}  # a node nobody labelled: the "" group of a spread
        nodes.append(
            Node(
                id=f"id{i:05d}",
                hostname=f"node{i:05d}",
                address=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                role="manager" if i < 3 else "worker",
                status=NodeStatus.DOWN if 0.01 <= roll < 0.03 else NodeStatus.READY,
                availability=(
                    Availability.DRAIN if 0.03 <= roll < 0.05
                    else Availability.PAUSE if 0.05 <= roll < 0.06
                    else Availability.ACTIVE
                ),
                labels=labels,
                engine_labels={"storage": rng.choice(("ssd", "hdd"))},
                os="linux",
                architecture="arm64" if rng.random() < 0.1 else "x86_64",
                cpus=rng.choice((2, 4, 8, 16)),
                memory=rng.choice((4, 8, 16, 32)) * GIB,
            )
        )
    return nodes


def _spec(kind: int, i: int, rng: random.Random) -> ServiceSpec:
    """One of ten kinds of service, from unconstrained to reserved, spread and host ports."""
    placement, reserved, ports = Placement(), ResourceSet(), []
    zone = rng.choice(ZONES)
    if kind == 3:
        placement.constraints = [Constraint("node.labels.zone", "==", zone)]
    elif kind == 4:
        placement.constraints = [Constraint("node.labels.zone", "!=", zone)]
    elif kind == 5:
        placement.preferences = [Preference("node.labels.zone")]
    elif kind == 6:
        placement.preferences = [Preference("node.labels.zone"), Preference("node.labels.rack")]
        placement.constraints = [Constraint("engine.labels.storage", "==", "ssd")]
    elif kind == 7:
        reserved = ResourceSet(cpus=0.25, memory=256 * MIB)
    elif kind == 8:
        placement.max_replicas_per_node = 2
        reserved = ResourceSet(memory=128 * MIB)
    elif kind == 9:
        ports = [Port(target=80, published=10000 + i, mode="host")]
        placement.platforms = [Platform(os="linux", architecture="amd64")]
    deploy = DeploySpec(placement=placement, resources=Resources(reservations=reserved))
    return ServiceSpec(name=f"svc{i}", image="swarmpy/busybox:latest", ports=ports, deploy=deploy)


def _task(task_id: str, service: Service, slot: int | None, node_id: str | None, state: TaskState) -> Task:
    return Task(
        id=task_id,
        service_id=service.id,
        service_name=service.name,
        spec_version=service.version,
        slot=slot,
        node_id=node_id,
        state=state,
    )


def build(nodes: int = 1000, services: int = 100, tasks: int = 10000, seed: int = 0):
    """A simulated cluster: (pending, services by id, nodes, assigned)."""
    rng = random.Random(seed)
    node_list = _nodes(nodes, rng)
    eligible = [n for n in node_list if n.status is NodeStatus.READY and n.availability is Availability.ACTIVE]
    by_id: dict[str, Service] = {}
    for i in range(services):
        global_mode = i < 2 and services >= 10
        spec = _spec(i % 10, i, rng)
        spec.deploy.mode = "global" if global_mode else "replicated"
        by_id[f"s{i:03d}"] = Service(id=f"s{i:03d}", stack="bench", name=f"bench_svc{i}", spec=spec)
    service_list = list(by_id.values())

    pending: list[Task] = []
    # Global services: one task per node, on a sample of nodes (the orchestrator's choice).
    globals_ = [s for s in service_list if s.spec.deploy.mode == "global"]
    per_global = min(len(eligible), tasks // 50)
    for service in globals_:
        for node in rng.sample(eligible, per_global):
            pending.append(_task(f"{service.id}.{node.id}", service, None, node.id, TaskState.PENDING))
    replicated = [s for s in service_list if s.spec.deploy.mode != "global"]
    left = max(tasks - len(pending), 0)
    for n, service in enumerate(replicated):
        replicas = left // len(replicated) + (n < left % len(replicated))
        for slot in range(1, replicas + 1):
            pending.append(_task(f"{service.id}.{slot}", service, slot, None, TaskState.PENDING))

    # A load already running: one background task on every other node.
    background = Service(id="bg", stack="bench", name="bench_bg", spec=_spec(0, -1, rng))
    by_id["bg"] = background
    assigned = [
        _task(f"bg.{k}", background, k, node.id, TaskState.RUNNING)
        for k, node in enumerate(rng.sample(node_list, nodes // 2))
    ]
    return pending, by_id, node_list, assigned


def run(nodes: int = 1000, services: int = 100, tasks: int = 10000, seed: int = 0) -> dict:
    """Time one `place` call over a simulated cluster; placements/s and µs per placement."""
    pending, by_id, node_list, assigned = build(nodes, services, tasks, seed)
    started = time.perf_counter()
    plan = place(pending, by_id, node_list, assigned)
    seconds = time.perf_counter() - started
    _check(plan, pending, node_list)
    placed = len(plan.assignments)
    return {
        "nodes": nodes,
        "services": services,
        "tasks": len(pending),
        "placed": placed,
        "failed": len(plan.failures),
        "seconds": seconds,
        "placements_per_s": placed / seconds,
        "us_per_placement": seconds / placed * 1e6 if placed else float("nan"),
    }


def _check(plan, pending: list[Task], nodes: list[Node]) -> None:
    """Stop on a wrong plan (correctness itself is the unit tests' business)."""
    usable = {n.id for n in nodes if n.status is NodeStatus.READY and n.availability is Availability.ACTIVE}
    decided = set(plan.assignments) | set(plan.failures)
    if decided != {t.id for t in pending} or not set(plan.assignments.values()) <= usable:
        raise RuntimeError("the scheduler's plan is wrong: a task left out or placed on an unusable node")


def main() -> None:
    print(f"{'nodes':>6} {'tasks':>7} {'placed':>7} {'failed':>6} {'seconds':>8} {'placements/s':>13} {'µs/placement':>13}")
    for nodes in (100, 1000, 5000):
        best = min((run(nodes=nodes) for _ in range(3)), key=lambda r: r["seconds"])  # best of 3: least noise
        print(
            f"{best['nodes']:>6} {best['tasks']:>7} {best['placed']:>7} {best['failed']:>6} "
            f"{best['seconds']:>8.3f} {best['placements_per_s']:>13,.0f} {best['us_per_placement']:>13.1f}"
        )


if __name__ == "__main__":
    main()


def figures(runs: int = 3, sizes: tuple[int, ...] = (100, 1000, 5000), tasks: int = 10000) -> list:
    """Figure 5 for the table: placements/s against the aim, and how the cost grows with the nodes."""
    import math

    from bench.common import Figure
    results = {n: [run(nodes=n, tasks=tasks) for _ in range(runs)] for n in sizes}
    out = []
    for n in sizes:
        rates = [r["placements_per_s"] for r in results[n]]
        out.append(Figure(f"scheduler: {tasks:,} tasks on {n:,} nodes", "placements/s",
                          "the aim: 10,000/s", rates, [10_000.0] * len(rates), aim=">= 1.0x at 1,000 nodes"))
    small, large = sizes[0], sizes[-1]
    # A pass indexes the nodes once (linear in nodes), then each placement costs O(log nodes):
    # the difference between a pass of twice the tasks and a pass of the tasks is the
    # placements' own cost, without the indexing.
    # A difference of two short times is noisy: each side is the fastest of three passes.
    def fastest(n: int, count: int) -> dict:
        return min((run(nodes=n, tasks=count) for _ in range(3)), key=lambda r: r["seconds"])

    def marginal(n: int) -> list[float]:
        pairs = [(fastest(n, tasks), fastest(n, 2 * tasks)) for _ in range(runs)]
        return [(d["seconds"] - r["seconds"]) / (d["placed"] - r["placed"]) * 1e6 for r, d in pairs]
    growth = math.log(large) / math.log(small)
    out.append(Figure(f"scheduler: cost per placement, {large:,} vs {small:,} nodes", "us", f"{small:,} nodes",
                      marginal(large), marginal(small), aim=f"<= {growth:.2f}x (log growth)",
                      note=f"the fastest of 3 passes of {2 * tasks:,} tasks less the fastest of 3 of {tasks:,}"))
    out.append(Figure(f"scheduler: whole pass of {tasks:,} tasks, {large:,} vs {small:,} nodes", "us/placement",
                      f"{small:,} nodes", [r["us_per_placement"] for r in results[large]],
                      [r["us_per_placement"] for r in results[small]],
                      note="indexing the nodes once per pass is linear in nodes; Kubernetes' scheduler benchmark "
                           "floor is about 700-1,100 pods/s at 5,000 nodes, Nomad placed 1,500-3,750 containers/s"))
    return out
