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
    stack_raw: str | None = None  # the same as stored: a stack's write checks it is unchanged
    services: list[Service] = field(default_factory=list)  # the stack's services


class PlanningReads(NodeRecords, ServiceRecords, NetworkRecords):
    def plan_facts(self, stack: str | None = None) -> PlanFacts:
        p = self.redis.pipeline(transaction=False)
        p.hgetall(self.key("cluster"))
        p.hvals(self._networks_key())
        p.hvals(self._nodes_key())
        p.hgetall(self.key("service", "ports"))
        if stack is not None:
            p.hget(self.key("stacks"), stack)
        cluster, networks, nodes, ports, *record = p.execute()
        nodes = self._nodes_of(nodes)
        stored = json.loads(record[0]) if record and record[0] else None
        ids = (stored or {}).get("services") or []
        p = self.redis.pipeline(transaction=False)
        if nodes:
            p.mget([self.key("net", "status", n.id) for n in nodes])
        if ids:
            p.hmget(self._services_key(), ids)
        answers = p.execute()
        statuses = answers.pop(0) if nodes else []
        return PlanFacts(cluster=cluster, networks=self._networks_of(networks), nodes=nodes,
                         net_statuses={n.id: json.loads(v) for n, v in zip(nodes, statuses) if v},
                         published=self._ports_of(ports), stack=stored, stack_raw=record[0] if record else None,
                         services=self._services_of(answers[0], stack) if ids else [])
