"""Stacks and services: records, names, published ports, update status, tombstones."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

import redis

from swarmpy.model import Network, Service
from swarmpy.store.base import Conflict, NotFound, StoreBase, _dumps
from swarmpy.store.networks import overlapping

# What a stack's write checks under its WATCH, in one round trip: the records of the services it
# expects (their versions), and the ids of the networks there are.
_STACK_CHECKS_SCRIPT = """
local records = {}
for i, id in ipairs(ARGV) do records[i] = redis.call('HGET', KEYS[1], id) end
return {records, redis.call('HKEYS', KEYS[2])}
"""


class ServiceRecords(StoreBase):
    """Keys: stacks, services, services:removed, service:names, service:ports, service:update."""

    @functools.cached_property
    def _stack_checks(self):
        return self.redis.register_script(_STACK_CHECKS_SCRIPT)

    def _services_key(self) -> str:
        return self.key("services")

    def get_service(self, id: str, removed: bool = False) -> Service:
        """A service by id; with `removed`, also one removed whose tasks are still stopping."""
        raw = self._get_raw(self._services_key(), id)
        if raw is None and removed:
            raw = self._get_raw(self.key("services", "removed"), id)
        if raw is None:
            raise NotFound(f"service {id} not found")
        return Service.from_dict(json.loads(raw))

    def get_services(self, ids: Iterable[str]) -> dict[str, Service]:
        ids = list(ids)
        if not ids:
            return {}
        raws = self.redis.hmget(self._services_key(), ids)
        return {i: Service.from_dict(json.loads(r)) for i, r in zip(ids, raws) if r}

    def get_services_live_or_removed(self, ids: Iterable[str]) -> tuple[dict[str, Service], dict[str, Service]]:
        """These services' records, and the tombstones of those removed whose tasks are still
        stopping, in one round trip."""
        ids = list(ids)
        if not ids:
            return {}, {}
        with self.redis.pipeline(transaction=False) as p:
            p.hmget(self._services_key(), ids)
            p.hmget(self.key("services", "removed"), ids)
            live, removed = p.execute()
        return ({i: Service.from_dict(json.loads(r)) for i, r in zip(ids, live) if r},
                {i: Service.from_dict(json.loads(r)) for i, r, alive in zip(ids, removed, live) if r and not alive})

    def list_services(self, stack: str | None = None) -> list[Service]:
        if stack is not None:  # only the stack's own records, not every service's
            ids = (self.get_stack(stack) or {}).get("services") or []
            return self._services_of(self.redis.hmget(self._services_key(), ids) if ids else [], stack)
        return self._services_of(self.redis.hvals(self._services_key()))

    @staticmethod
    def _services_of(raws, stack: str | None = None) -> list[Service]:
        """The records, by name; with `stack`, only that stack's (a stack's record lists ids)."""
        services = (Service.from_dict(json.loads(r)) for r in raws if r)
        return sorted((s for s in services if stack is None or s.stack == stack), key=lambda s: s.name)

    def published_ports(self) -> dict[tuple[int, str], str]:
        """Ingress ports in use: (port, protocol) -> the service publishing it (they are cluster-wide)."""
        return self._ports_of(self.redis.hgetall(self.key("service", "ports")))

    @staticmethod
    def _ports_of(index: dict[str, str]) -> dict[tuple[int, str], str]:
        return {(port, protocol): name for name, listed in index.items() for port, protocol in json.loads(listed)}

    def publishing_services(self) -> list[Service]:
        """The services that publish ingress ports, found through the ports index (the mesh's
        table is rebuilt on their events: reading all services each time kept a load balancer of
        a thousand-service cluster busy)."""
        names = self.publishing_names()
        ids = [i for i in self.redis.hmget(self.key("service", "names"), names) if i] if names else []
        return sorted(self.get_services(ids).values(), key=lambda s: s.name)

    def publishing_names(self) -> list[str]:
        """The names of the services that publish ingress ports (the ports index's keys)."""
        return self.redis.hkeys(self.key("service", "ports"))

    def _index_ports(self, service: Service, p) -> None:
        """Only services that publish are in the index: every deploy reads it whole."""
        ports = [[x.published, x.protocol] for x in service.spec.ports if x.mode == "ingress" and x.published]
        if ports:
            p.hset(self.key("service", "ports"), service.name, _dumps(ports))
        else:
            p.hdel(self.key("service", "ports"), service.name)

    def service_id_by_name(self, name: str) -> str | None:
        return self.redis.hget(self.key("service", "names"), name)

    def find_service(self, ref: str) -> Service:
        """A service by name, id or id prefix."""
        sid = self.service_id_by_name(ref)
        if sid:
            return self.get_service(sid)
        ids = [i for i in self.redis.hkeys(self._services_key()) if i.startswith(ref)]
        if len(ids) == 1:
            return self.get_service(ids[0])
        raise NotFound(f"service {ref} not found" if not ids else f"service {ref} is ambiguous")

    def removed_services(self, stack: str | None = None) -> list[Service]:
        """Services removed whose tasks are still being shut down."""
        found = [Service.from_dict(json.loads(v)) for v in self.redis.hvals(self.key("services", "removed"))]
        return [s for s in found if stack is None or s.stack == stack]

    def forget_removed_service(self, service_id: str, pipeline=None) -> None:
        """The tombstone goes: the removed service's tasks are all gone (its networks may go now)."""
        (pipeline or self.redis).hdel(self.key("services", "removed"), service_id)
        self.publish("service", "forget", service_id, pipeline=pipeline)

    def list_stacks(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.redis.hgetall(self.key("stacks")).items()}

    def get_stack(self, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.key("stacks"), name)
        return json.loads(raw) if raw else None

    def write_stack(self, stack: dict[str, Any], changed: list[Service], removed: list[Service],
                    expected: dict[str, int], networks: list[Network] = ()) -> None:
        """Write a stack record, its changed/removed services and its new networks in one transaction.

        `expected` maps service id -> the version the caller read (absent: new);
        a service that moved on since, or a new network whose name or subnet was
        taken meanwhile, raises Conflict and nothing is written.
        """
        services_key, names_key = self._services_key(), self.key("service", "names")
        watched = [services_key, names_key, self.key("stacks"), *self.network_keys()]
        with self.redis.pipeline(transaction=True) as p:
            p.watch(*watched)
            # read on another connection, after the WATCH: any change since still fails the EXEC (the
            # pipeline's own would make it ask SCRIPT EXISTS at EXEC, a round trip more)
            raws, network_ids = self._stack_checks(keys=[services_key, self._networks_key()], args=list(expected))
            for (sid, version), raw in zip(expected.items(), raws):
                if raw is None or json.loads(raw)["version"] != version:
                    p.reset()
                    raise Conflict(f"service {sid} changed since version {version}")
            present = self.list_networks() if networks else []  # a redeploy makes none: no record is read
            for n in networks:
                clash = next((o for o in present if o.name == n.name), None) or overlapping(n.subnet, present)
                if clash:
                    p.reset()
                    raise Conflict(f"network {n.name} clashes with network {clash.name} made meanwhile")
            known = set(network_ids) | {n.id for n in networks}
            gone = [sn.name for s in changed for sn in s.networks if sn.id not in known]
            if gone:
                p.reset()
                raise Conflict(f"network {gone[0]} was removed meanwhile; deploy again")
            p.multi()
            self.add_networks(networks, p)
            p.hset(self.key("stacks"), stack["name"], _dumps(stack))
            for s in changed:
                p.hset(services_key, s.id, _dumps(s.to_dict()))
                p.hset(names_key, s.name, s.id)
                self._index_ports(s, p)
                self.publish("service", "update" if s.id in expected else "create", s.id, pipeline=p,
                             stack=s.stack, name=s.name, version=s.version, spec_version=s.spec_version)
            for s in removed:
                self._remove_service(s, p)
            self.publish("stack", "update", stack["name"], pipeline=p)
            try:
                p.execute()
            except redis.WatchError as e:
                raise Conflict("the stack changed while it was written; try again") from e

    def add_service(self, service: Service) -> None:
        """Write a new service of no stack (`service create`). Conflict, with nothing written, when
        its name is taken, or when the published ports or the networks it was planned with changed
        meanwhile (the caller plans again)."""
        names_key, ports_key = self.key("service", "names"), self.key("service", "ports")
        with self.redis.pipeline(transaction=True) as p:
            p.watch(names_key, ports_key, *self.network_keys())
            if p.hexists(names_key, service.name):
                p.reset()
                raise Conflict(f"service {service.name} exists already")
            known = {n.id for n in self.list_networks()}
            gone = [sn.name for sn in service.networks if sn.id not in known]
            if gone:
                p.reset()
                raise Conflict(f"network {gone[0]} was removed meanwhile")
            p.multi()
            p.hset(self._services_key(), service.id, _dumps(service.to_dict()))
            p.hset(names_key, service.name, service.id)
            self._index_ports(service, p)
            self.publish("service", "create", service.id, pipeline=p, stack=service.stack, name=service.name,
                         version=service.version, spec_version=service.spec_version)
            try:
                p.execute()
            except redis.WatchError as e:
                raise Conflict("the cluster's services changed while the service was written; try again") from e

    def put_service(self, service: Service, expected_version: int) -> None:
        """Replace a service's record if it is still at `expected_version` (the caller bumps `version`)."""
        key = self._services_key()
        old = self._get_raw(key, service.id)
        if old is None:
            raise NotFound(f"service {service.name} not found")
        if json.loads(old)["version"] != expected_version:
            raise Conflict(f"service {service.name} changed since version {expected_version}")
        event = {"kind": "service", "action": "update", "id": service.id, "stack": service.stack,
                 "name": service.name, "version": service.version}
        if not self._cas(key, service.id, old, _dumps(service.to_dict()), event):
            raise Conflict(f"service {service.name} changed concurrently")
        with self.redis.pipeline(transaction=False) as p:
            self._index_ports(service, p)
            p.execute()

    def _remove_service(self, service: Service, p) -> None:
        # a tombstone stays until the orchestrator has removed the service's tasks
        p.hset(self.key("services", "removed"), service.id, _dumps(service.to_dict()))
        p.hdel(self._services_key(), service.id)
        p.hdel(self.key("service", "names"), service.name)
        p.hdel(self.key("service", "ports"), service.name)
        p.hdel(self.key("service", "update"), service.id)
        self.publish("service", "remove", service.id, pipeline=p, stack=service.stack, name=service.name)

    def remove_services(self, services: list[Service], stack_name: str | None = None) -> None:
        """Delete service records (their tasks are shut down by the orchestrator)."""
        with self.pipeline() as p:
            for s in services:
                self._remove_service(s, p)
            if stack_name is not None:
                p.hdel(self.key("stacks"), stack_name)
                self.publish("stack", "remove", stack_name, pipeline=p)
            p.execute()

    def set_stack(self, stack: dict[str, Any], pipeline=None) -> None:
        (pipeline or self.redis).hset(self.key("stacks"), stack["name"], _dumps(stack))

    def get_update_status(self, service_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.key("service", "update"), service_id)
        return json.loads(raw) if raw else None

    def get_update_statuses(self, service_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not service_ids:
            return {}
        raws = self.redis.hmget(self.key("service", "update"), service_ids)
        return {sid: json.loads(raw) for sid, raw in zip(service_ids, raws) if raw}

    def set_update_status(self, service_id: str, status: dict[str, Any] | None, pipeline=None) -> None:
        target = pipeline or self.redis
        if status is None:
            target.hdel(self.key("service", "update"), service_id)
        else:
            target.hset(self.key("service", "update"), service_id, _dumps(status))
