"""The routing table of the mesh: for each published ingress port, the
endpoints (node address, host port) of the service's tasks that may take
traffic, built from the store's records.

A task takes traffic while it is RUNNING, desired running, and, when its
service has a healthcheck, Docker calls it healthy. A task told to stop
leaves the table at once: the mesh drains it before the container gets its
stop signal (the stop job waits for every load balancer to have applied the
change, see `applied_up_to`).

A port none of whose tasks may take traffic keeps the tasks of nodes still
declared down (orphaned) as a last resort: their containers may well still run (the
node was only cut off from the control plane), and the mesh's health checks
send nothing to those that do not answer. A dead end becomes a chance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from swarmpy.model import NodeStatus, Service, Task, TaskState, has_healthcheck, takes_traffic
from swarmpy.store import Store

STRATEGY_LABEL = "com.swarmpy.lb.strategy"
PROXY_PROTOCOL_LABEL = "com.swarmpy.lb.proxy-protocol"
PATH_LABEL = "com.swarmpy.lb.path"  # kernel (the default) | proxy


@dataclass(frozen=True)
class Endpoint:
    address: str  # the task's node
    port: int  # the task's host port there
    task_id: str
    via: str = ""  # the task's address on its first network (reached over the network's bridge on its node)


@dataclass
class Route:
    port: int
    protocol: str
    service_id: str
    service_name: str
    target: int
    strategy: str = "round-robin"  # round-robin | least-conn
    proxy_protocol: bool = False
    path: str = "kernel"  # kernel: iptables DNATs the port (see kernel.py); proxy: the asyncio proxy alone
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, str]:
        return self.port, self.protocol


def routes_of(service: Service, tasks: list[Task], down_nodes: frozenset[str] = frozenset()) -> list[Route]:
    labels = service.spec.deploy.labels
    strategy = "least-conn" if labels.get(STRATEGY_LABEL, "").lower() in ("least-conn", "leastconn") \
        else "round-robin"
    proxy = labels.get(PROXY_PROTOCOL_LABEL, "").lower() in ("true", "1", "yes", "v2")
    # what the kernel cannot do (least connections, PROXY protocol, a retry of a refused connection)
    # is the proxy's
    path = "proxy" if strategy == "least-conn" or proxy or labels.get(PATH_LABEL, "").lower() == "proxy" \
        else "kernel"
    needs_health = has_healthcheck(service.spec)
    routes = []
    for p in service.spec.ports:
        if not p.through_mesh:
            continue
        route = Route(port=p.published, protocol=p.protocol, service_id=service.id, service_name=service.name,
                      target=p.target, strategy=strategy, proxy_protocol=proxy, path=path)
        ordered = sorted(tasks, key=lambda t: (t.slot or 0, t.node_id or "", t.id))
        route.endpoints = _endpoints(p, [t for t in ordered if takes_traffic(t, needs_health)]) or \
            _endpoints(p, [t for t in ordered if t.state == TaskState.ORPHANED and t.node_id in down_nodes])
        routes.append(route)
    return routes


def _endpoints(port, tasks: list[Task]) -> list[Endpoint]:
    return [Endpoint(e.address, e.port, t.id, t.attachments[0].address if t.attachments else "")
            for t in tasks for e in t.endpoints if e.target == port.target and e.protocol == port.protocol]


def table(store: Store) -> dict[tuple[int, str], Route]:
    """The whole table, read from the store in a few round trips."""
    published = store.publishing_services()
    tasks = store.tasks_of_services([s.id for s in published])
    down = frozenset(n.id for n in store.list_nodes() if n.status == NodeStatus.DOWN) if published else frozenset()
    out: dict[tuple[int, str], Route] = {}
    for s in published:
        for route in routes_of(s, tasks.get(s.id, []), down):
            out[route.key] = route
    return out


def dump(table: dict[tuple[int, str], Route]) -> str:
    return json.dumps([asdict(route) for route in table.values()])


def load(text: str) -> dict[tuple[int, str], Route]:
    routes = [Route(**{**r, "endpoints": [Endpoint(**e) for e in r["endpoints"]]}) for r in json.loads(text)]
    return {route.key: route for route in routes}


def relevant(event: dict, served: set[str], publishing: Callable[[], set[str]]) -> bool:
    """Events that may change the table, whose services are `served` (ids): a node's; a service's that
    is in it or publishes now (`publishing()`: names, read only when asked); a task's of a service
    in it. A stack's events come with its services' own. Most events of a large cluster are none
    of these, and a table rebuilt for each cost a load balancer a millisecond of CPU per deploy."""
    kind = event.get("kind")
    if kind == "node":
        return True
    if kind == "service":
        return event.get("id") in served or event.get("name") in publishing()
    if kind == "task" and event.get("action") in ("state", "desired"):
        service_id = event.get("service_id")
        return not service_id or service_id in served
    return False


def served(table: dict[tuple[int, str], Route]) -> set[str]:
    """The ids of the services a table routes to."""
    return {route.service_id for route in table.values()}
