"""The routing table of the mesh: for each published ingress port, the
endpoints (node address, host port) of the service's tasks that may take
traffic, built from the store's records.

A task takes traffic while it is RUNNING, desired running, and, when its
service has a healthcheck, Docker calls it healthy. A task told to stop
leaves the table at once: the mesh drains it before the container gets its
stop signal (the stop job waits for every load balancer to have applied the
change, see `applied_up_to`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmpy.model import Service, Task, has_healthcheck, takes_traffic
from swarmpy.store import Store

STRATEGY_LABEL = "com.swarmpy.lb.strategy"
PROXY_PROTOCOL_LABEL = "com.swarmpy.lb.proxy-protocol"


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    task_id: str


@dataclass
class Route:
    port: int
    protocol: str
    service_id: str
    service_name: str
    target: int
    strategy: str = "round-robin"  # round-robin | least-conn
    proxy_protocol: bool = False
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, str]:
        return self.port, self.protocol


def routes_of(service: Service, tasks: list[Task]) -> list[Route]:
    labels = service.spec.deploy.labels
    strategy = "least-conn" if labels.get(STRATEGY_LABEL, "").lower() in ("least-conn", "leastconn") \
        else "round-robin"
    proxy = labels.get(PROXY_PROTOCOL_LABEL, "").lower() in ("true", "1", "yes", "v2")
    needs_health = has_healthcheck(service.spec)
    routes = []
    for p in service.spec.ports:
        if p.mode != "ingress" or not p.published:
            continue
        route = Route(port=p.published, protocol=p.protocol, service_id=service.id, service_name=service.name,
                      target=p.target, strategy=strategy, proxy_protocol=proxy)
        for t in sorted(tasks, key=lambda t: (t.slot or 0, t.node_id or "", t.id)):
            if not takes_traffic(t, needs_health):
                continue
            for e in t.endpoints:
                if e.target == p.target and e.protocol == p.protocol:
                    route.endpoints.append(Endpoint(e.address, e.port, t.id))
        routes.append(route)
    return routes


def table(store: Store) -> dict[tuple[int, str], Route]:
    """The whole table, read from the store in a few round trips."""
    services = store.list_services()
    published = [s for s in services if any(p.mode == "ingress" and p.published for p in s.spec.ports)]
    tasks = store.tasks_of_services([s.id for s in published])
    out: dict[tuple[int, str], Route] = {}
    for s in published:
        for route in routes_of(s, tasks.get(s.id, [])):
            out[route.key] = route
    return out


def relevant(event: dict) -> bool:
    """Events that may change the table."""
    kind = event.get("kind")
    return kind in ("service", "stack", "node") or (kind == "task" and event.get("action") in ("state", "desired"))
