"""Redis persistence: every key name of swarmpy lives in this package, and only here.

Records are JSON strings in hashes, one hash per kind, so that a whole kind is
one HGETALL and a batch of them one HMGET. A task is split in two, by owner
(SwarmKit's rule): `tasks` holds what the manager decides (service, slot,
node, desired state), `task:status` what the hosts report (state, container,
endpoints). Each record write is a compare-and-set against the value it was
computed from, so two writers never overwrite each other; the `version` of
nodes and services is what API clients see of that.

Writing methods take `pipeline=None` and never execute a pipeline they were
handed (rq's habit): the caller groups several writes into one transaction.
Every state change is also appended to the `events` stream, which the control
loops, the load balancers and `swarmpy events` read.
"""

from __future__ import annotations

from swarmpy.store.base import DEFAULT_PREFIX, EVENTS_MAXLEN, Conflict, NotFound, StoreError
from swarmpy.store.changes import ReadPace, SeenBehaviour
from swarmpy.store.coordination import Coordination
from swarmpy.store.metrics import MetricRecords
from swarmpy.store.networks import AddressesExhausted, NetworkRecords, vip_owner
from swarmpy.store.nodes import NodeRecords
from swarmpy.store.objects import ObjectRecords
from swarmpy.store.planning import PlanFacts, PlanningReads
from swarmpy.store.services import ServiceRecords
from swarmpy.store.tasks import TaskRecords
from swarmpy.store.tokens import TokenRecords

__all__ = ["DEFAULT_PREFIX", "EVENTS_MAXLEN", "AddressesExhausted", "Conflict", "NotFound", "PlanFacts",
           "ReadPace", "SeenBehaviour", "Store", "StoreError", "vip_owner"]


class Store(PlanningReads, NodeRecords, ServiceRecords, TaskRecords, ObjectRecords, NetworkRecords, TokenRecords,
            MetricRecords, Coordination):
    """All of swarmpy's state in Redis; one mixin per kind of record."""
