"""Stacks and services: records, names, published ports, update status, tombstones."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

import redis

from swarmpy.model import Network, Service, behaviour_of
from swarmpy.store.base import Conflict, NotFound, StoreBase, _dumps
from swarmpy.store.networks import overlapping

# A stack's write (or one service's, `put_service`) in one round trip: what the deploy was planned
# on is checked, and only then are its writes made (a script runs alone: nothing comes between).
# It checks exactly what the plan read, where a WATCH on the services hash failed for any service
# written anywhere meanwhile (any other stack's deploy). KEYS: services, service names, service
# ports, networks, stacks. ARGV: the stack's name ('' for no check of a stack) and its record as
# read ('' for none); then counted lists: services read (id, version), new services (name, id),
# networks joined (id, name), the stack's service names, published ports claimed
# ("port/protocol"), and the writes (each: its length, then the command).
# A refusal returns what failed; success returns 'ok' and how many replicas the master has (the
# API waits for one when there are some: asking apart was a round trip more per deploy).
_GUARDED_WRITE_SCRIPT = """
local i = 0
local function take() i = i + 1 return ARGV[i] end
local stack = take()
local was = take()
if stack ~= '' and (redis.call('HGET', KEYS[5], stack) or '') ~= was then return {'stack'} end
for _ = 1, tonumber(take()) do
  local id = take()
  local version = take()
  local raw = redis.call('HGET', KEYS[1], id)
  if not raw or tostring(cjson.decode(raw).version) ~= version then return {'version', id, version} end
end
for _ = 1, tonumber(take()) do
  local name = take()
  local id = take()
  local owner = redis.call('HGET', KEYS[2], name)
  if owner and owner ~= id then return {'name', name} end
end
for _ = 1, tonumber(take()) do
  local id = take()
  local name = take()
  if redis.call('HEXISTS', KEYS[4], id) == 0 then return {'network', name} end
end
local ours = {}
for _ = 1, tonumber(take()) do ours[take()] = true end
local claims = tonumber(take())
if claims > 0 then
  local owners = {}
  local index = redis.call('HGETALL', KEYS[3])
  for j = 1, #index, 2 do
    for _, pair in ipairs(cjson.decode(index[j + 1])) do owners[pair[1] .. '/' .. pair[2]] = index[j] end
  end
  for _ = 1, claims do
    local port = take()
    if owners[port] and not ours[owners[port]] then return {'port', port, owners[port]} end
  end
end
for _ = 1, tonumber(take()) do
  local args = {}
  for a = 1, tonumber(take()) do args[a] = take() end
  redis.call(unpack(args))
end
return {'ok', tonumber(string.match(redis.call('INFO', 'replication'), 'connected_slaves:(%d+)')) or 0}
"""


def _event_fields(service: Service, record: dict) -> dict[str, Any]:
    """What a service's create or update event says of it (`behaviour`: see `behaviour_of`)."""
    return {"stack": service.stack, "name": service.name, "version": service.version,
            "spec_version": service.spec_version, "behaviour": behaviour_of(record)}


def _ingress_ports(service: Service) -> list[tuple[int, str]]:
    """(port, protocol) of each port the service publishes through the mesh."""
    return [(x.published, x.protocol) for x in service.spec.ports if x.through_mesh]


def _written(answer: list) -> int:
    """The replicas the stack write's script counted; Conflict for what it found changed (nothing
    is written then)."""
    what, *detail = answer
    if what == "ok":
        return int(detail[0])
    raise Conflict({
        "stack": lambda: "the stack changed while it was written; try again",
        "version": lambda: f"service {detail[0]} changed since version {detail[1]}",
        "name": lambda: f"service name {detail[0]} was taken meanwhile; deploy again",
        "network": lambda: f"network {detail[0]} was removed meanwhile; deploy again",
        "port": lambda: f"port {detail[0]} was published by service {detail[1]} meanwhile; deploy again",
    }[what]())


class ServiceRecords(StoreBase):
    """Keys: stacks, services, services:removed, service:names, service:ports, service:update."""

    @functools.cached_property
    def _guarded_script(self):
        return self.redis.register_script(_GUARDED_WRITE_SCRIPT)

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
        ports = [list(port) for port in _ingress_ports(service)]
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
                    expected: dict[str, int], networks: list[Network] = (), stack_was: str | None = None) -> int:
        """Write a stack record, its changed/removed services and its new networks at once, if the
        store is still as the deploy was planned on; else raise Conflict, with nothing written.

        `expected` maps service id -> the version the caller read (absent: new); `stack_was` is
        the stack's record as read (None: there was none). Refused when the record, a service
        read or removed moved on since, a new service's name or a published port was taken, a
        joined network was removed, or a new network's name or subnet was taken meanwhile.
        Returns how many replicas the store's master had as it wrote.
        """
        def write(p) -> None:
            self.add_networks(networks, p)
            p.hset(self.key("stacks"), stack["name"], _dumps(stack))
            for s in changed:
                self._put_service(s, "update" if s.id in expected else "create", p)
            for s in removed:
                self._remove_service(s, p)
            self.publish("stack", "update", stack["name"], pipeline=p)
        writes = self._recorded(write)

        read = {**expected, **{s.id: s.version for s in removed}}
        new = [s for s in changed if s.id not in expected]
        made = {n.id for n in networks}
        joined = {sn.id: sn.name for s in changed for sn in s.networks if sn.id not in made}
        keys, args = self._guarded_args(stack["name"], stack_was or "", read, new, joined, changed + removed,
                                        changed, writes)
        if not networks:  # most deploys, redeploys all: one round trip
            return _written(self._guarded_script(keys=keys, args=args))
        with self.redis.pipeline(transaction=True) as p:  # subnets are checked here: under a WATCH
            p.watch(*self.network_keys())
            present = self.list_networks()
            for n in networks:
                clash = next((o for o in present if o.name == n.name), None) or overlapping(n.subnet, present)
                if clash:
                    p.reset()
                    raise Conflict(f"network {n.name} clashes with network {clash.name} made meanwhile")
            p.multi()
            p.eval(_GUARDED_WRITE_SCRIPT, len(keys), *keys, *args)
            try:
                answer, = p.execute()
            except redis.WatchError as e:
                raise Conflict("a network was made or removed while the stack was written; try again") from e
        return _written(answer)

    def _recorded(self, write) -> list[tuple]:
        """The commands `write(pipeline)` makes, recorded on a pipeline that is never sent (the
        script makes them)."""
        record = self.redis.pipeline(transaction=False)
        write(record)
        commands = [args for args, _ in record.command_stack]
        record.reset()
        return commands

    def _guarded_args(self, stack: str, stack_was: str, read: dict[str, int], new: list[Service],
                      joined: dict[str, str], ours: list[Service], claiming: list[Service],
                      writes: list[tuple]) -> tuple[list[str], list]:
        """The keys and arguments of `_GUARDED_WRITE_SCRIPT`: `writes` are made if the stack's record
        (unless `stack` is ""), the services `read` (id -> version) and the networks `joined` (id ->
        name) are as they were, no other service took a `new` one's name, and the ports `claiming`
        publish are free or held by `ours`."""
        claims = [f"{port}/{protocol}" for s in claiming for port, protocol in _ingress_ports(s)]
        args = [stack, stack_was,
                len(read), *[v for sid, version in read.items() for v in (sid, version)],
                len(new), *[v for s in new for v in (s.name, s.id)],
                len(joined), *[v for item in joined.items() for v in item],
                len(ours), *[s.name for s in ours],
                len(claims), *claims,
                len(writes), *[v for command in writes for v in (len(command), *command)]]
        keys = [self._services_key(), self.key("service", "names"), self.key("service", "ports"),
                self._networks_key(), self.key("stacks")]
        return keys, args

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
            self._put_service(service, "create", p)
            try:
                p.execute()
            except redis.WatchError as e:
                raise Conflict("the cluster's services changed while the service was written; try again") from e

    def put_service(self, service: Service, expected_version: int) -> None:
        """Replace a service's record if it is still at `expected_version` (the caller bumps
        `version`): with its ports index and its event, at once. Conflict, with nothing written,
        when it moved on or a port it publishes was published by another service meanwhile (a
        rollback to a port taken since, two updates publishing one port)."""
        writes = self._recorded(lambda p: self._put_service(service, "update", p))
        keys, args = self._guarded_args("", "", {service.id: expected_version}, [], {}, [service], [service], writes)
        answer = self._guarded_script(keys=keys, args=args)
        if answer[0] == "version":
            if self._get_raw(self._services_key(), service.id) is None:
                raise NotFound(f"service {service.name} not found")
            raise Conflict(f"service {service.name} changed since version {expected_version}")
        if answer[0] == "port":
            raise Conflict(f"port {answer[1]} was published by service {answer[2]} meanwhile; try again")
        _written(answer)

    def _put_service(self, service: Service, action: str, p) -> None:
        """A service's record, name and ports, and its event (in `p`, a pipeline)."""
        record = service.to_dict()
        p.hset(self._services_key(), service.id, _dumps(record))
        p.hset(self.key("service", "names"), service.name, service.id)
        self._index_ports(service, p)
        self.publish("service", action, service.id, pipeline=p, **_event_fields(service, record))

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
