"""The network allocator (leader): the addresses handed out on the cluster's networks,
and the networks a stack no longer uses (SwarmKit's allocator, for what swarmpy keeps).

A task's addresses go back when it ends (its start job took them); a service's
virtual IPs when it is removed, leaves a network, or turns to `dnsrr`, and a
`vip` service that lacks one gets it. A stack's network goes once no service
uses it and no task is on it (`stack rm`, or a redeploy that dropped it); the
programmers then take it off the nodes. A full pass (when events may have been
missed, and every minute) catches whatever the events did not say.
"""

from __future__ import annotations

import logging

from swarmpy.manager.component import Component
from swarmpy.manager.networks import ensure_vips, vip_shape
from swarmpy.model import Network, Service, TaskState
from swarmpy.store import NotFound, vip_owner

log = logging.getLogger(__name__)

_ENDED = {s.value for s in TaskState if s.terminal}


class NetworkAllocator(Component):
    name = "allocator"
    # A last resort only (a pass reads every service and address): the loop makes one at once when it
    # may have missed events.
    full_pass_every = 60.0

    def __init__(self, store):
        super().__init__(store)
        # service id -> its networks and endpoint mode when its virtual IPs were last put right: most
        # redeploys change neither, and need no address read (nor a look for networks left unused)
        self.settled: dict[str, tuple[frozenset[str], str]] = {}
        self.reshaped: set[str] = set()  # stacks with a service whose networks changed, until their event
        # network id -> the tasks still on a stack network no service uses any more (a redeploy dropped
        # it while they stop): the last one's end is when the network can go
        self.draining: dict[str, set[str]] = {}

    def handle(self, events) -> None:
        ended: dict[str, set[str]] = {}  # service id -> tasks that ended
        services: set[str] = set()
        deployed: set[str] = set()  # stacks deployed again
        gc = False
        for _, e in events:
            kind, action = e.get("kind"), e.get("action")
            if kind == "task" and action == "state" and e.get("state") in _ENDED:
                ended.setdefault(e.get("service_id", ""), set()).add(e["id"])
            elif kind == "service" and action in ("create", "update"):
                services.add(e["id"])
            elif kind == "stack" and action == "update":
                deployed.add(e["id"])
            elif kind in ("stack", "network") or (kind == "service" and action in ("remove", "forget")):
                self.settled.pop(e.get("id", ""), None)
                gc = True
        live = self.store.get_services(services) if services else {}
        moved = [s for s in live.values() if self.settled.get(s.id) != vip_shape(s)]
        self.reshaped |= {s.stack for s in moved if s.stack}
        # a full pass reads every service: a deploy asks for one only when it left a network of
        # its stack unused (most deploys do not, and one pass per deploy would keep a manager of
        # thousands of services busy)
        looked_at = deployed & self.reshaped
        networks = self.store.list_networks() if looked_at or moved else []
        gc = gc or any(self.left_unused(stack, networks) for stack in looked_at)
        self.reshaped -= looked_at
        for sid, task_ids in ended.items():
            self.release_task_addresses(sid, task_ids)
        gc = gc or self.drained(set().union(*ended.values()))
        if moved:
            ensure_vips(self.store, moved)
            network_ids = [n.id for n in networks]
            for service in moved:
                self.release_stale_vips(service, network_ids)
                self.settled[service.id] = vip_shape(service)
        if gc:
            self.reconcile_all()

    def left_unused(self, stack: str, networks: list[Network]) -> bool:
        """Whether a network the stack made is used by none of its services now."""
        made = {n.id for n in networks if n.stack == stack}
        used = {sn.id for s in self.store.list_services(stack=stack) for sn in s.networks}
        return bool(made - used)

    def drained(self, ended: set[str]) -> bool:
        """Whether the tasks that ended were the last on a network waiting to go."""
        emptied = False
        for network_id, tasks in list(self.draining.items()):
            if tasks & ended:
                tasks -= ended
                emptied = emptied or not tasks
        return emptied

    def release_task_addresses(self, service_id: str, task_ids: set[str]) -> None:
        try:
            service = self.store.get_service(service_id, removed=True)
        except NotFound:
            return  # the full pass finds them
        for network in service.networks:
            for task_id in task_ids:
                self.store.release_address(network.id, task_id)

    def release_stale_vips(self, service: Service, network_ids: list[str]) -> None:
        keep = set() if service.spec.deploy.endpoint_mode == "dnsrr" else {n.id for n in service.networks}
        held = self.store.addresses_of(vip_owner(service.id), network_ids)
        for network_id in held.keys() - keep:  # one read for all, a write only where one goes
            self.store.release_address(network_id, vip_owner(service.id))

    def reconcile_all(self) -> None:
        store = self.store
        live = store.list_services()
        removed = store.removed_services()
        ensure_vips(store, live)
        vip_networks = {vip_owner(s.id): {n.id for n in s.networks} for s in live
                        if s.spec.deploy.endpoint_mode != "dnsrr"}
        in_use = {n.id for s in live + removed for n in s.networks}
        self.draining = {}
        for network in store.list_networks():
            owners = store.address_owners(network.id)
            task_ids = [o for o in owners if not o.startswith("vip:")]
            alive = {t.id for t in store.get_tasks(task_ids) if not t.state.terminal}
            for owner in owners:
                if owner.startswith("vip:"):
                    if network.id not in vip_networks.get(owner, ()):
                        store.release_address(network.id, owner)
                elif owner not in alive:
                    store.release_address(network.id, owner)
            if not network.stack or network.id in in_use:
                continue
            if alive:
                self.draining[network.id] = alive
            elif store.delete_unused_network(network):
                log.warning("allocator: removed network %s, no longer used by stack %s", network.name, network.stack)
        self.settled = {s.id: vip_shape(s) for s in live}

