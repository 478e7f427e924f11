"""The scheduler: assigns pending tasks to nodes, as Swarm's does.

`place` is a pure function from a snapshot (pending tasks, services, nodes, the
tasks already on nodes) to a `Plan`, like Nomad's scheduler: the caller commits
the plan in one Redis transaction. Nothing here touches Redis or Docker.

Filters, in SwarmKit's order: node ready and active, resource reservations,
constraints, platform, host-mode ports, max replicas per node. Ranking: spread
preferences (the value group with the fewest tasks of the service, level by
level), then the fewest tasks of the service on the node, then the fewest tasks
on the node, then the node's rank in (hostname, id) order.

How it stays fast (bench/scheduler.py measures it):
- The static filters (ready, constraints, platform) depend on no load: the
  nodes of each distinct (constraints, platforms) are selected once, by set
  operations on nodes indexed by attribute value, for all services alike.
- The nodes of such a class (split by spread values) wait in shared heaps keyed
  by (tasks on node, rank). Keys only grow, so a stale entry is mended when it
  reaches the top, and a placement costs O(log nodes), never a scan.
- A service takes first the nodes where it has no task, in that shared order;
  the nodes where it has tasks are in a small heap of its own, keyed by
  (tasks of the service, tasks on node, rank).
- The dynamic filters (resources, ports, max per node) are checked only on the
  node about to be chosen. Within one service they only get stricter, so a node
  that fails them is dropped until the next service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from swarmpy.manager.constraints import (
    NodeIndex,
    constraints_match,
    platform_matches,
    spread_supported,
)
from swarmpy.manager.ranking import Choice, Partition
from swarmpy.model import (
    Availability,
    Constraint,
    DesiredState,
    Node,
    NodeStatus,
    Platform,
    Service,
    ServiceSpec,
    Task,
)

NANO_CPUS = 1_000_000_000  # reservations are compared in integer nano-cpus, as SwarmKit does


@dataclass
class Plan:
    """What to commit: task id -> node id, and task id -> why it stays pending."""

    assignments: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def place(
    pending: Sequence[Task],
    services: Mapping[str, Service],
    nodes: Sequence[Node],
    assigned: Iterable[Task],
    now: float | None = None,
) -> Plan:
    """Assign pending tasks to nodes; the inputs are read, never changed.

    A task with a node id (a global service's) is only checked on that node.
    Tasks desired shutdown are left out of the plan. `now` is accepted for the
    control loop's sake; no rule of Swarm's ranking depends on time (SwarmKit's
    recent-failures penalty would need failed tasks, which `assigned` lacks).
    """
    del now
    cluster = _Cluster(nodes, services, assigned)
    plan = Plan()
    groups: dict[tuple[str, int], list[Task]] = {}
    preassigned: list[Task] = []
    for task in pending:
        if task.desired_state is DesiredState.SHUTDOWN:
            continue
        if task.service_id not in services:
            plan.failures[task.id] = f"service {task.service_id} not found"
        elif task.node_id:
            preassigned.append(task)
        else:
            groups.setdefault((task.service_id, task.spec_version), []).append(task)
    # Preassigned tasks first, as SwarmKit does: they cannot go elsewhere, the others can.
    for task in sorted(preassigned, key=_task_order):
        cluster.place_on_its_node(task, plan)
    for key in sorted(groups):
        cluster.place_group(sorted(groups[key], key=_task_order), plan)
    return plan


def reserved(nodes: Sequence[Node], services: Mapping[str, Service],
             assigned: Iterable[Task]) -> dict[str, tuple[float, int]]:
    """What the scheduler counts as reserved on each node, (cores, bytes): the dashboard shows
    it as the scheduler sees it."""
    cluster = _Cluster(nodes, services, assigned)
    return {n.id: ((round(n.cpus * NANO_CPUS) - cluster.cpu_free[rank]) / NANO_CPUS,
                   n.memory - cluster.memory_free[rank]) for rank, n in enumerate(cluster.nodes)}


def _task_order(task: Task) -> tuple:
    return (task.slot is None, task.slot or 0, task.id)


def _spec_of(task: Task, service: Service) -> ServiceSpec:
    """The spec a task was made from: the current one, or the one before the last update."""
    if service.previous_spec is not None and not service.runs_current(task.spec_version):
        return service.previous_spec
    return service.spec


@dataclass(frozen=True)
class _Demand:
    """What one spec asks of a node."""

    service_id: str
    cpu: int  # nano-cpus reserved
    memory: int  # bytes reserved
    ports: frozenset[tuple[str, int]]  # published host-mode ports
    max_per_node: int  # 0: no limit
    constraints: tuple[Constraint, ...]
    platforms: tuple[Platform, ...]
    spread: tuple[str, ...]  # label descriptors, outermost first
    static_key: tuple  # constraints and platforms as plain values: specs alike share feasible nodes

    @classmethod
    def of(cls, service_id: str, spec: ServiceSpec) -> _Demand:
        placement = spec.deploy.placement
        reserved = spec.deploy.resources.reservations
        return cls(
            service_id=service_id,
            cpu=round((reserved.cpus or 0) * NANO_CPUS),
            memory=reserved.memory or 0,
            ports=frozenset((p.protocol, p.published) for p in spec.ports if p.mode == "host" and p.published),
            max_per_node=placement.max_replicas_per_node or 0,
            constraints=tuple(placement.constraints),
            platforms=tuple(placement.platforms),
            spread=tuple(p.spread for p in placement.preferences if spread_supported(p.spread)),
            static_key=(
                tuple((c.field, c.operator, c.value) for c in placement.constraints),
                tuple((p.os, p.architecture) for p in placement.platforms),
            ),
        )


# Swarm's filters in its order, each with its explanation for `count` nodes.
READY, RESOURCES, CONSTRAINTS, PLATFORM, PORTS, MAX_REPLICAS = range(6)
_EXPLAIN = {
    READY: "{} not available for new tasks",
    RESOURCES: "insufficient resources on {}",
    CONSTRAINTS: "scheduling constraints not satisfied on {}",
    PLATFORM: "unsupported platform on {}",
    PORTS: "host-mode port already in use on {}",
    MAX_REPLICAS: "max replicas per node limit exceed",
}


def explain(failures: Mapping[int, int]) -> str:
    """SwarmKit's explanation: reasons by failing node count, most first (ties in
    filter order), joined by "; "."""
    ranked = sorted((f for f in sorted(failures) if failures[f]), key=lambda f: -failures[f])
    return "; ".join(
        _EXPLAIN[f].format(f"{failures[f]} node" if failures[f] == 1 else f"{failures[f]} nodes")
        for f in ranked
    )


def no_suitable_node(failures: Mapping[int, int]) -> str:
    explanation = explain(failures)
    return f"no suitable node ({explanation or '0 nodes available'})"


class _Cluster:
    """The nodes and their load, updated in memory after each placement."""

    def __init__(self, nodes: Sequence[Node], services: Mapping[str, Service], assigned: Iterable[Task]):
        self.services = services
        self.nodes: list[Node] = []
        self.index: dict[str, int] = {}  # node id -> rank, the last tie-breaker
        for node in sorted(nodes, key=attrgetter("hostname", "id")):
            if node.id not in self.index:
                self.index[node.id] = len(self.nodes)
                self.nodes.append(node)
        self.ready = [
            n.status is NodeStatus.READY and n.availability is Availability.ACTIVE for n in self.nodes
        ]
        self.ready_ranks = frozenset(rank for rank, ready in enumerate(self.ready) if ready)
        self.node_index = NodeIndex(self.nodes)
        self.total = [0] * len(self.nodes)  # active tasks on each node
        self.cpu_free = [round(n.cpus * NANO_CPUS) for n in self.nodes]
        self.memory_free = [n.memory for n in self.nodes]
        self.ports_used: dict[int, set[tuple[str, int]]] = {}
        self.by_service: dict[str, dict[int, int]] = {}  # service id -> rank -> active tasks
        self._demands: dict[tuple[str, int], _Demand] = {}  # by (service id, spec version)
        self._feasible: dict[tuple, frozenset[int]] = {}
        self._partitions: dict[tuple, Partition] = {}
        for task in assigned:
            self._load(task)

    def demand(self, task: Task) -> _Demand:
        key = (task.service_id, task.spec_version)
        demand = self._demands.get(key)
        if demand is None:
            spec = _spec_of(task, self.services[task.service_id])
            demand = self._demands[key] = _Demand.of(task.service_id, spec)
        return demand

    def _load(self, task: Task) -> None:
        rank = self.index.get(task.node_id)
        if rank is None or task.state.terminal:
            return
        ports = task.endpoints and {(e.protocol, e.port) for e in task.endpoints if e.mode == "host"}
        if task.service_id in self.services:
            demand = self.demand(task)
            self.cpu_free[rank] -= demand.cpu
            self.memory_free[rank] -= demand.memory
            ports = ports or demand.ports  # endpoints, once known, are the truth
        if ports:
            self.ports_used.setdefault(rank, set()).update(ports)
        # A task on its way out still holds resources and ports, but SwarmKit counts it no more.
        if task.desired_state is not DesiredState.SHUTDOWN:
            self.total[rank] += 1
            counts = self.by_service.setdefault(task.service_id, {})
            counts[rank] = counts.get(rank, 0) + 1

    def take(self, rank: int, demand: _Demand, counts: dict[int, int]) -> None:
        self.total[rank] += 1
        counts[rank] = counts.get(rank, 0) + 1
        self.cpu_free[rank] -= demand.cpu
        self.memory_free[rank] -= demand.memory
        if demand.ports:
            self.ports_used.setdefault(rank, set()).update(demand.ports)

    # -- filters --------------------------------------------------------------

    def dynamic_failure(self, demand: _Demand, counts: dict[int, int], rank: int) -> int | None:
        """The first load-dependent filter the node fails, or None."""
        if (demand.cpu or demand.memory) and (
            demand.cpu > self.cpu_free[rank] or demand.memory > self.memory_free[rank]
        ):
            return RESOURCES
        if demand.ports and not demand.ports.isdisjoint(self.ports_used.get(rank, ())):
            return PORTS
        if demand.max_per_node and counts.get(rank, 0) >= demand.max_per_node:
            return MAX_REPLICAS
        return None

    def first_failure(self, demand: _Demand, counts: dict[int, int], rank: int) -> int | None:
        """The first filter, in Swarm's order, that the node fails for this demand."""
        if not self.ready[rank]:
            return READY
        failure = self.dynamic_failure(demand, counts, rank)
        if failure == RESOURCES:
            return RESOURCES  # Swarm checks resources before constraints
        node = self.nodes[rank]
        if not constraints_match(demand.constraints, node):
            return CONSTRAINTS
        if not platform_matches(demand.platforms, node):
            return PLATFORM
        return failure

    def tally_failures(self, demand: _Demand, counts: dict[int, int]) -> dict[int, int]:
        """How many nodes fail each filter first, in Swarm's order: the material of a
        "no suitable node" message. Set arithmetic on the static filters; a Python
        test per node only where load decides."""
        tally = {READY: len(self.nodes) - len(self.ready_ranks)}
        left = self.ready_ranks
        if demand.cpu or demand.memory:
            short = frozenset(r for r in left if self.dynamic_failure(demand, counts, r) == RESOURCES)
            tally[RESOURCES] = len(short)
            left -= short
        constrained = left & self.node_index.matching(demand.constraints, ())
        tally[CONSTRAINTS] = len(left) - len(constrained)
        supported = constrained & self.node_index.matching((), demand.platforms)
        tally[PLATFORM] = len(constrained) - len(supported)
        for rank in supported:
            failure = self.dynamic_failure(demand, counts, rank)  # ports or max replicas by now
            if failure is not None:
                tally[failure] = tally.get(failure, 0) + 1
        return tally

    def feasible(self, demand: _Demand) -> frozenset[int]:
        """The nodes that pass the static filters, cached per (constraints, platforms)."""
        key = demand.static_key
        if key not in self._feasible:
            matching = self.node_index.matching(demand.constraints, demand.platforms)
            self._feasible[key] = self.ready_ranks & matching
        return self._feasible[key]

    def partition(self, demand: _Demand) -> Partition:
        """The feasible nodes grouped by spread values, shared by specs alike in both."""
        key = (demand.static_key, demand.spread)
        if key not in self._partitions:
            feasible = self.feasible(demand)
            self._partitions[key] = Partition(demand.spread, self.node_index, feasible, self.total)
        return self._partitions[key]

    # -- placement ------------------------------------------------------------

    def place_on_its_node(self, task: Task, plan: Plan) -> None:
        rank = self.index.get(task.node_id)
        if rank is None:
            plan.failures[task.id] = f"node {task.node_id} not found"
            return
        demand = self.demand(task)
        counts = self.by_service.setdefault(demand.service_id, {})
        failure = self.first_failure(demand, counts, rank)
        if failure is not None:
            # SwarmKit's words for a preassigned task: the bare explanation.
            plan.failures[task.id] = explain({failure: 1})
            return
        self.take(rank, demand, counts)
        plan.assignments[task.id] = task.node_id

    def place_group(self, tasks: list[Task], plan: Plan) -> None:
        """Place tasks of one service and spec, one by one, best node first."""
        demand = self.demand(tasks[0])
        counts = self.by_service.setdefault(demand.service_id, {})

        def fits(rank: int) -> bool:
            return self.dynamic_failure(demand, counts, rank) is None

        dynamic = demand.cpu or demand.memory or demand.ports or demand.max_per_node
        choice = Choice(self.partition(demand), self.total, counts, fits if dynamic else None)
        try:
            for position, task in enumerate(tasks):
                picked = choice.next()
                if picked is None:
                    message = no_suitable_node(self.tally_failures(demand, counts))
                    for unplaced in tasks[position:]:
                        plan.failures[unplaced.id] = message
                    return
                rank, path = picked
                self.take(rank, demand, counts)
                choice.placed(rank, path)
                plan.assignments[task.id] = self.nodes[rank].id
        finally:
            choice.give_back()
