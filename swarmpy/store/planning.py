"""What planning a deploy reads, in two round trips.

A deploy reads the cluster's settings, the stack's record and services, the
networks, the nodes and what their programmers report, and the published ports.
One call each was twenty round trips to Redis over TLS per deploy; batched they
are two (the stack's services are found by the ids its record lists).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from swarmpy.model import Network, Node, Service
from swarmpy.store.networks import NetworkRecords
from swarmpy.store.nodes import NodeRecords
from swarmpy.store.services import ServiceRecords


@dataclass
class PlanFacts:
    cluster: dict[str, str]
    networks: list[Network]
    nodes: list[Node]
    net_statuses: dict[str, dict[str, Any]]  # node id -> its programmer's last report
    published: dict[tuple[int, str], str]  # (port, protocol) -> the service publishing it
    stack: dict[str, Any] | None = None  # the stack's record, when a stack was asked for
    services: list[Service] = field(default_factory=list)  # the stack's services


class PlanningReads(NodeRecords, ServiceRecords, NetworkRecords):
    def plan_facts(self, stack: str | None = None) -> PlanFacts:
        p = self.redis.pipeline(transaction=False)
        p.hgetall(self.key("cluster"))
        p.hvals(self._networks_key())
        p.hvals(self._nodes_key())
        p.hgetall(self.key("service", "ports"))
        p.hget(self.key("stacks"), stack or "")
        cluster, networks, nodes, ports, record = p.execute()
        nodes = sorted((Node.from_dict(json.loads(v)) for v in nodes), key=lambda n: (n.hostname, n.id))
        stored = json.loads(record) if stack and record else None
        ids = (stored or {}).get("services") or []
        p = self.redis.pipeline(transaction=False)
        p.mget([self.key("net", "status", n.id) for n in nodes] or [self.key("net", "status", "")])
        p.hmget(self._services_key(), ids or [""])
        statuses, services = p.execute()
        published = {(port, protocol): name for name, listed in ports.items() for port, protocol in json.loads(listed)}
        return PlanFacts(
            cluster=cluster,
            networks=sorted((Network.from_dict(json.loads(v)) for v in networks), key=lambda n: n.name),
            nodes=nodes,
            net_statuses={n.id: json.loads(v) for n, v in zip(nodes, statuses) if v},
            published=published, stack=stored,
            services=sorted((s for s in (Service.from_dict(json.loads(r)) for r in services if r) if s.stack == stack),
                            key=lambda s: s.name))
