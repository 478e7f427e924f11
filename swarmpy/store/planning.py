"""What planning a deploy reads, in one round trip.

A deploy reads the cluster's settings, the stack's record and services, the
networks, the nodes and what their programmers report, and the published ports.
One call each was twenty round trips to Redis over TLS per deploy; a script
reads them all (the stack's services by the ids its record lists, the
programmers' reports by the nodes' ids).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from swarmpy.model import Network, Node, Service
from swarmpy.store.networks import NetworkRecords
from swarmpy.store.nodes import NodeRecords
from swarmpy.store.services import ServiceRecords

# KEYS: cluster, networks, nodes, service ports, stacks, services. ARGV: the stack's name ('' for
# none), the prefix of the programmers' reports' keys (a node's id follows).
_PLAN_FACTS_SCRIPT = """
local record = ARGV[1] ~= '' and redis.call('HGET', KEYS[5], ARGV[1]) or false
local node_ids = redis.call('HKEYS', KEYS[3])
local statuses = {}
for i, id in ipairs(node_ids) do statuses[i] = redis.call('GET', ARGV[2] .. id) end
local services = {}
local ids = record and cjson.decode(record).services
if type(ids) == 'table' then
  for i, id in ipairs(ids) do services[i] = redis.call('HGET', KEYS[6], id) end
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HVALS', KEYS[2]), node_ids, redis.call('HVALS', KEYS[3]),
        redis.call('HGETALL', KEYS[4]), record, statuses, services}
"""


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
    @functools.cached_property
    def _plan_facts(self):
        return self.redis.register_script(_PLAN_FACTS_SCRIPT)

    def plan_facts(self, stack: str | None = None) -> PlanFacts:
        keys = [self.key("cluster"), self._networks_key(), self._nodes_key(), self.key("service", "ports"),
                self.key("stacks"), self._services_key()]
        cluster, networks, node_ids, nodes, ports, record, statuses, services = self._plan_facts(
            keys=keys, args=[stack or "", self.key("net", "status", "")])
        return PlanFacts(cluster=_pairs(cluster), networks=self._networks_of(networks), nodes=self._nodes_of(nodes),
                         net_statuses={i: json.loads(v) for i, v in zip(node_ids, statuses) if v},
                         published=self._ports_of(_pairs(ports)), stack=json.loads(record) if record else None,
                         stack_raw=record, services=self._services_of(services, stack) if services else [])


def _pairs(flat: list) -> dict:
    """An HGETALL's answer as a script returns it (field, value, ...) as a dict."""
    return dict(zip(flat[::2], flat[1::2]))
