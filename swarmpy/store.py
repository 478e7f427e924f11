"""Redis persistence: every key name of swarmpy lives here, and only here.

Records are JSON strings in hashes, one hash per kind, so that a whole kind is
one HGETALL and a batch of them one HMGET. A task is split in two, by owner
(SwarmKit's rule): `tasks` holds what the manager decides (service, slot,
node, desired state), `task_status` what the hosts report (state, container,
endpoints). Each record write is a compare-and-set against the value it was
computed from, so two writers never overwrite each other; the `version` of
nodes and services is what API clients see of that.

Writing methods take `pipeline=None` and never execute a pipeline they were
handed (rq's habit): the caller groups several writes into one transaction.
Every state change is also appended to the `events` stream, which the control
loops, the load balancers and `swarmpy events` read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis

from swarmpy.model import Node, Service, Task, TaskState, scoped_name

DEFAULT_PREFIX = "swarmpy:"
EVENTS_MAXLEN = 100_000
HISTORY_PER_SLOT = 5  # dead tasks kept per slot, as Swarm does


class StoreError(Exception):
    """Root of the store's errors."""


class Conflict(StoreError):
    """The record changed since it was read (stale version)."""


class NotFound(StoreError):
    pass


# Compare-and-set of one hash field, plus the event that says so, in one step.
# ARGV[1]: field, ARGV[2]: expected old value ("" = must not exist),
# ARGV[3]: new value ("" = delete), ARGV[4..]: event fields (k, v, ...).
_CAS_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then cur = '' end
if cur ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
if #ARGV > 3 then
  local ev = {}
  for i = 4, #ARGV do ev[#ev + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '%d', '*', unpack(ev))
end
return 1
"""

# Lease: set if absent or already ours, with expiry. Returns 1 when held.
_LEASE_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# Pop the members of a sorted set whose score is due (<= ARGV[1]).
_POP_DUE_SCRIPT = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class Store:
    def __init__(self, connection: redis.Redis, prefix: str = DEFAULT_PREFIX):
        self.redis = connection
        self.prefix = prefix
        self._cas_script = connection.register_script(_CAS_SCRIPT % EVENTS_MAXLEN)
        self._lease = connection.register_script(_LEASE_SCRIPT)
        self._release = connection.register_script(_RELEASE_SCRIPT)
        self._pop_due = connection.register_script(_POP_DUE_SCRIPT)

    @classmethod
    def from_url(cls, url: str, prefix: str = DEFAULT_PREFIX, **kwargs) -> "Store":
        kwargs.setdefault("health_check_interval", 10)
        kwargs.setdefault("socket_keepalive", True)
        kwargs.setdefault("retry_on_timeout", True)
        return cls(redis.Redis.from_url(url, decode_responses=True, **kwargs), prefix)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def pipeline(self, transaction: bool = True):
        return self.redis.pipeline(transaction=transaction)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # ------------------------------------------------------------------ job queues (rq)

    def queue_name(self, node_id: str) -> str:
        """The rq queue of a node's task actions: one per node, so one slow host delays no other."""
        return f"{self.prefix}node:{node_id}"

    @property
    def control_queue(self) -> str:
        """The rq queue of work any worker can do (probing a host before it joins)."""
        return f"{self.prefix}control"

    # ------------------------------------------------------------------ events

    @property
    def events_key(self) -> str:
        return self.key("events")

    def publish(self, kind: str, action: str, id: str, pipeline=None, **fields: Any) -> None:
        """Append an event: `kind` (node, service, task, stack, secret, config), `action`, `id`."""
        entry = {"kind": kind, "action": action, "id": id, "time": f"{time.time():.6f}"}
        entry.update({k: "" if v is None else str(v) for k, v in fields.items()})
        (pipeline or self.redis).xadd(self.events_key, entry, maxlen=EVENTS_MAXLEN, approximate=True)

    def last_event_id(self) -> str:
        last = self.redis.xrevrange(self.events_key, count=1)
        return last[0][0] if last else "0-0"

    def read_events(self, after: str, block_ms: int | None = None, count: int = 1000) -> list[tuple[str, dict]]:
        """Events after `after` (an event id); waits up to `block_ms` when there are none."""
        answer = self.redis.xread({self.events_key: after}, count=count, block=block_ms)
        return answer[0][1] if answer else []

    # ------------------------------------------------------------------ records

    def _cas(self, hash_key: str, field: str, old: str | None, new: str | None,
             event: dict[str, Any] | None = None) -> bool:
        args = [field, old or "", new or ""]
        if event:
            event = {"time": f"{time.time():.6f}", **event}
            for k, v in event.items():
                args += [k, "" if v is None else str(v)]
        return bool(self._cas_script(keys=[hash_key, self.events_key], args=args))

    def _get_raw(self, hash_key: str, id: str) -> str | None:
        return self.redis.hget(hash_key, id)

    # ------------------------------------------------------------------ cluster

    def cluster_info(self) -> dict[str, str]:
        return self.redis.hgetall(self.key("cluster"))

    def set_cluster_info(self, pipeline=None, **fields: Any) -> None:
        (pipeline or self.redis).hset(self.key("cluster"), mapping={k: str(v) for k, v in fields.items()})

    # ------------------------------------------------------------------ nodes

    def _nodes_key(self) -> str:
        return self.key("nodes")

    def get_node(self, id: str) -> Node:
        raw = self._get_raw(self._nodes_key(), id)
        if raw is None:
            raise NotFound(f"node {id} not found")
        return Node.from_dict(json.loads(raw))

    def list_nodes(self) -> list[Node]:
        nodes = [Node.from_dict(json.loads(v)) for v in self.redis.hvals(self._nodes_key())]
        return sorted(nodes, key=lambda n: (n.hostname, n.id))

    def find_node(self, ref: str) -> Node:
        """A node by id, id prefix or hostname, as `docker node` commands accept."""
        nodes = self.list_nodes()
        for match in (lambda n: n.id == ref, lambda n: n.hostname == ref, lambda n: n.id.startswith(ref)):
            found = [n for n in nodes if match(n)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise NotFound(f"node {ref} is ambiguous ({len(found)} matches)")
        raise NotFound(f"node {ref} not found")

    def put_node(self, node: Node, expected_version: int | None, action: str = "update") -> Node:
        """Write a node if it is still at `expected_version` (None: must be new). Returns it at its new version."""
        key = self._nodes_key()
        old_raw = self._get_raw(key, node.id)
        if expected_version is None:
            if old_raw is not None:
                raise Conflict(f"node {node.id} exists")
        else:
            if old_raw is None:
                raise NotFound(f"node {node.id} not found")
            if json.loads(old_raw)["version"] != expected_version:
                raise Conflict(f"node {node.hostname} changed since version {expected_version}")
        new = node.copy(version=(expected_version or 0) + 1, updated_at=time.time())
        if not new.created_at:
            new.created_at = new.updated_at
        event = {"kind": "node", "action": "create" if old_raw is None else action, "id": node.id,
                 "status": new.status.value}
        if not self._cas(key, node.id, old_raw, _dumps(new.to_dict()), event):
            raise Conflict(f"node {node.hostname} changed concurrently")
        return new

    def update_node(self, id: str, change, retries: int = 20) -> Node:
        """Read-modify-write a node: `change(node)` edits a copy; retried on conflicts."""
        for _ in range(retries):
            node = self.get_node(id)
            edited = node.copy()
            change(edited)
            if edited == node:
                return node
            try:
                return self.put_node(edited, node.version)
            except Conflict:
                continue
        raise Conflict(f"node {id} keeps changing")

    def delete_node(self, id: str) -> None:
        with self.pipeline() as p:
            p.hdel(self._nodes_key(), id)
            p.hdel(self.key("node", "heartbeat"), id)
            p.hdel(self.key("node", "report"), id)
            p.delete(self.key("node", id, "tasks"))
            p.hdel(self.key("node", "identity"), id)
            self.publish("node", "remove", id, pipeline=p)
            p.execute()

    def record_heartbeat(self, node_id: str, ok: bool, message: str = "", pipeline=None) -> None:
        """What a watcher saw of a node's engine: reachable (`ok`) or not, and when."""
        report = _dumps({"ok": ok, "time": time.time(), "message": message})
        (pipeline or self.redis).hset(self.key("node", "report"), node_id, report)

    def heartbeats(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.redis.hgetall(self.key("node", "report")).items()}

    def node_identity(self, node_id: str) -> str | None:
        """A node's SSH private key, encrypted by the vault."""
        return self.redis.hget(self.key("node", "identity"), node_id)

    def set_node_identity(self, node_id: str, token: str | None, pipeline=None) -> None:
        target = pipeline or self.redis
        if token is None:
            target.hdel(self.key("node", "identity"), node_id)
        else:
            target.hset(self.key("node", "identity"), node_id, token)

    # ------------------------------------------------------------------ stacks and services

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

    def list_services(self, stack: str | None = None) -> list[Service]:
        if stack is not None:  # only the stack's own records, not every service's
            ids = (self.get_stack(stack) or {}).get("services") or []
            services = [s for s in self.get_services(ids).values() if s.stack == stack]
        else:
            services = [Service.from_dict(json.loads(v)) for v in self.redis.hvals(self._services_key())]
        return sorted(services, key=lambda s: s.name)

    def published_ports(self) -> dict[tuple[int, str], str]:
        """Ingress ports in use: (port, protocol) -> the service publishing it (they are cluster-wide)."""
        taken = {}
        for name, ports in self.redis.hgetall(self.key("service", "ports")).items():
            for port, protocol in json.loads(ports):
                taken[(port, protocol)] = name
        return taken

    def _index_ports(self, service: Service, p) -> None:
        ports = [[x.published, x.protocol] for x in service.spec.ports if x.mode == "ingress" and x.published]
        p.hset(self.key("service", "ports"), service.name, _dumps(ports))

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
        (pipeline or self.redis).hdel(self.key("services", "removed"), service_id)

    def list_stacks(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.redis.hgetall(self.key("stacks")).items()}

    def get_stack(self, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.key("stacks"), name)
        return json.loads(raw) if raw else None

    def write_stack(self, stack: dict[str, Any], changed: list[Service], removed: list[Service],
                    expected: dict[str, int]) -> None:
        """Write a stack record and its changed/removed services in one transaction.

        `expected` maps service id -> the version the caller read (absent: new);
        a service that moved on since raises Conflict and nothing is written.
        """
        services_key, names_key = self._services_key(), self.key("service", "names")
        watched = [services_key, names_key, self.key("stacks")]
        with self.redis.pipeline(transaction=True) as p:
            p.watch(*watched)
            for sid, version in expected.items():
                raw = p.hget(services_key, sid)
                if raw is None or json.loads(raw)["version"] != version:
                    p.reset()
                    raise Conflict(f"service {sid} changed since version {version}")
            p.multi()
            p.hset(self.key("stacks"), stack["name"], _dumps(stack))
            for s in changed:
                p.hset(services_key, s.id, _dumps(s.to_dict()))
                p.hset(names_key, s.name, s.id)
                self._index_ports(s, p)
                self.publish("service", "update" if s.id in expected else "create", s.id, pipeline=p,
                             stack=s.stack, version=s.version, spec_version=s.spec_version)
            for s in removed:
                self._remove_service(s, p)
            self.publish("stack", "update", stack["name"], pipeline=p)
            try:
                p.execute()
            except redis.WatchError as e:
                raise Conflict("the stack changed while it was written; try again") from e

    def put_service(self, service: Service, expected_version: int) -> None:
        """Replace a service's record if it is still at `expected_version` (the caller bumps `version`)."""
        key = self._services_key()
        old = self._get_raw(key, service.id)
        if old is None:
            raise NotFound(f"service {service.name} not found")
        if json.loads(old)["version"] != expected_version:
            raise Conflict(f"service {service.name} changed since version {expected_version}")
        event = {"kind": "service", "action": "update", "id": service.id, "stack": service.stack,
                 "version": service.version}
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
        self.publish("service", "remove", service.id, pipeline=p, stack=service.stack)

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

    # ------------------------------------------------------------------ tasks

    _STATUS_FIELDS = ("state", "message", "error", "container_id", "exit_code", "endpoints", "health",
                      "stop_requested_at", "updated_at")

    def _split(self, task: Task) -> tuple[str, str]:
        d = task.to_dict()
        status = {k: d.pop(k) for k in self._STATUS_FIELDS}
        return _dumps(d), _dumps(status)

    @staticmethod
    def _join(spec_raw: str, status_raw: str | None) -> Task:
        d = json.loads(spec_raw)
        if status_raw:
            d.update(json.loads(status_raw))
        return Task.from_dict(d)

    def create_tasks(self, tasks: Iterable[Task], pipeline=None) -> None:
        """New tasks (state NEW or PENDING) with their indexes. One event per service."""
        p = pipeline or self.pipeline()
        by_service: dict[str, int] = {}
        for t in tasks:
            spec, status = self._split(t)
            p.hset(self.key("tasks"), t.id, spec)
            p.hset(self.key("task", "status"), t.id, status)
            p.sadd(self.key("service", t.service_id, "tasks"), t.id)
            if t.node_id:
                p.sadd(self.key("node", t.node_id, "tasks"), t.id)
            if t.state == TaskState.PENDING:
                p.sadd(self.key("tasks", "pending"), t.id)
            by_service[t.service_id] = by_service.get(t.service_id, 0) + 1
        for sid, n in by_service.items():
            self.publish("task", "create", sid, pipeline=p, service_id=sid, count=n)
        if pipeline is None:
            p.execute()

    def get_task(self, id: str) -> Task:
        found = self.get_tasks([id])
        if not found:
            raise NotFound(f"task {id} not found")
        return found[0]

    def get_tasks(self, ids: Iterable[str]) -> list[Task]:
        ids = list(ids)
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as p:
            p.hmget(self.key("tasks"), ids)
            p.hmget(self.key("task", "status"), ids)
            specs, statuses = p.execute()
        return [self._join(s, st) for s, st in zip(specs, statuses) if s]

    def all_tasks(self) -> list[Task]:
        with self.redis.pipeline(transaction=False) as p:
            p.hgetall(self.key("tasks"))
            p.hgetall(self.key("task", "status"))
            specs, statuses = p.execute()
        return [self._join(raw, statuses.get(i)) for i, raw in specs.items()]

    def task_ids_of_service(self, service_id: str) -> set[str]:
        return self.redis.smembers(self.key("service", service_id, "tasks"))

    def tasks_of_service(self, service_id: str) -> list[Task]:
        return self.get_tasks(self.task_ids_of_service(service_id))

    def _tasks_by_index(self, index_keys: list[str]) -> list[list[Task]]:
        """Tasks of several index sets (a service's, a node's) in two round trips."""
        with self.redis.pipeline(transaction=False) as p:
            for key in index_keys:
                p.smembers(key)
            id_sets = p.execute()
        found = {t.id: t for t in self.get_tasks({i for ids in id_sets for i in ids})}
        return [[found[i] for i in ids if i in found] for ids in id_sets]

    def tasks_of_services(self, service_ids: Iterable[str]) -> dict[str, list[Task]]:
        service_ids = list(service_ids)
        groups = self._tasks_by_index([self.key("service", sid, "tasks") for sid in service_ids])
        return dict(zip(service_ids, groups))

    def task_briefs(self, service_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """What listings need of each task (states, version, slot, node), read without building
        whole records: a `service ls` of a thousand services reads ten thousand tasks."""
        with self.redis.pipeline(transaction=False) as p:
            for sid in service_ids:
                p.smembers(self.key("service", sid, "tasks"))
            id_sets = p.execute()
        ids = [i for ids in id_sets for i in ids]
        out: dict[str, list[dict[str, Any]]] = {sid: [] for sid in service_ids}
        if not ids:
            return out
        with self.redis.pipeline(transaction=False) as p:
            p.hmget(self.key("tasks"), ids)
            p.hmget(self.key("task", "status"), ids)
            specs, statuses = p.execute()
        for spec, status in zip(specs, statuses):
            if spec:
                brief = json.loads(spec)
                brief.update(json.loads(status) if status else {})
                out.setdefault(brief["service_id"], []).append(brief)
        return out

    def tasks_on_nodes(self, node_ids: Iterable[str]) -> list[Task]:
        groups = self._tasks_by_index([self.key("node", nid, "tasks") for nid in node_ids])
        return [t for g in groups for t in g]

    def tasks_of_node(self, node_id: str) -> list[Task]:
        return self.get_tasks(self.redis.smembers(self.key("node", node_id, "tasks")))

    def pending_task_ids(self) -> set[str]:
        return self.redis.smembers(self.key("tasks", "pending"))

    def set_desired_state(self, tasks: Iterable[Task], desired: str, pipeline=None) -> None:
        """The manager's half of a task: what it should become (running, shutdown)."""
        p = pipeline or self.pipeline()
        changed = []
        now = time.time()
        for t in tasks:
            t = t.copy(desired_state=desired, desired_at=now)
            spec, _ = self._split(t)
            p.hset(self.key("tasks"), t.id, spec)
            changed.append(t)
        for t in changed:
            if t.node_id and not t.state.terminal:
                p.zadd(self.key("tasks", "dispatch"), {t.id: now})
            self.publish("task", "desired", t.id, pipeline=p, service_id=t.service_id, node_id=t.node_id,
                         desired=desired)
        if pipeline is None:
            p.execute()

    def assign_tasks(self, assignments: dict[str, str], failures: dict[str, str]) -> list[Task]:
        """Commit a scheduler plan in one transaction: node and ASSIGNED for placed
        tasks, the reason for the rest (they stay PENDING). Returns the assigned tasks."""
        ids = list(assignments) + list(failures)
        current = {t.id: t for t in self.get_tasks(ids)}
        now = time.time()
        assigned = []
        with self.pipeline() as p:
            for task_id, node_id in assignments.items():
                t = current.get(task_id)
                if t is None or t.state != TaskState.PENDING:
                    continue
                t = t.copy(node_id=node_id, state=TaskState.ASSIGNED, message="assigned", error="",
                           updated_at=now)
                spec, status = self._split(t)
                p.hset(self.key("tasks"), t.id, spec)
                p.hset(self.key("task", "status"), t.id, status)
                p.sadd(self.key("node", node_id, "tasks"), t.id)
                p.srem(self.key("tasks", "pending"), t.id)
                p.zadd(self.key("tasks", "dispatch"), {t.id: max(now, t.not_before)})
                assigned.append(t)
            for task_id, reason in failures.items():
                t = current.get(task_id)
                if t is None or t.state != TaskState.PENDING or t.error == reason:
                    continue
                _, status = self._split(t.copy(error=reason, message="pending task scheduling"))
                p.hset(self.key("task", "status"), t.id, status)
            if assigned:
                self.publish("task", "assign", "", pipeline=p, count=len(assigned))
            p.execute()
        return assigned

    def update_task_status(self, task_id: str, state: TaskState, retries: int = 20, **fields: Any) -> Task | None:
        """The hosts' half of a task: its observed state. States only move forward:
        a report older than what is recorded is dropped (returns None)."""
        status_key = self.key("task", "status")
        for _ in range(retries):
            spec_raw, old = self.redis.hget(self.key("tasks"), task_id), self.redis.hget(status_key, task_id)
            if spec_raw is None:
                return None
            task = self._join(spec_raw, old)
            if state.rank < task.state.rank or (state.rank == task.state.rank and state != task.state):
                return None
            changes = {k: v for k, v in fields.items() if getattr(task, k) != v}
            if state == task.state and not changes:
                return task
            new = task.copy(state=state, **changes)
            if state != task.state:
                new.updated_at = time.time()
            _, status = self._split(new)
            event = {"kind": "task", "action": "state", "id": task_id, "service_id": task.service_id,
                     "node_id": task.node_id or "", "state": state.value, "health": new.health or ""}
            if self._cas(status_key, task_id, old, status, event):
                if state == TaskState.PENDING:
                    self.redis.sadd(self.key("tasks", "pending"), task_id)
                elif task.state == TaskState.PENDING:
                    self.redis.srem(self.key("tasks", "pending"), task_id)
                return new
        raise Conflict(f"task {task_id} keeps changing")

    def delete_tasks(self, tasks: Iterable[Task], pipeline=None) -> None:
        """Forget tasks (history beyond the limit, tasks of removed services)."""
        p = pipeline or self.pipeline()
        for t in tasks:
            p.hdel(self.key("tasks"), t.id)
            p.hdel(self.key("task", "status"), t.id)
            p.srem(self.key("service", t.service_id, "tasks"), t.id)
            p.srem(self.key("tasks", "pending"), t.id)
            p.zrem(self.key("tasks", "dispatch"), t.id)
            if t.node_id:
                p.srem(self.key("node", t.node_id, "tasks"), t.id)
        if pipeline is None:
            p.execute()

    def service_ids_with_tasks(self) -> set[str]:
        """Services that still have tasks, removed ones included (their tasks are being shut down)."""
        pattern = self.key("service", "*", "tasks")
        head, tail = len(self.key("service", "")), len(":tasks")
        return {k[head:-tail] for k in self.redis.scan_iter(pattern, count=1000)}

    # ------------------------------------------------------------------ dispatch

    def due_dispatch(self, now: float, limit: int = 10_000) -> list[str]:
        """Take the tasks whose action (start, stop) is due; the dispatcher sends them."""
        return self._pop_due(keys=[self.key("tasks", "dispatch")], args=[now, limit])

    def dispatch_at(self, task_id: str, when: float) -> None:
        """Look at a task again at `when` (a stop's grace period running out)."""
        self.redis.zadd(self.key("tasks", "dispatch"), {task_id: when})

    def dispatch_now(self, task_ids: list[str], pipeline=None) -> None:
        """Have the dispatcher look at these tasks (their containers to remove)."""
        if task_ids:
            (pipeline or self.redis).zadd(self.key("tasks", "dispatch"), {t: time.time() for t in task_ids})
            self.publish("task", "desired", "", pipeline=pipeline)

    def service_removed(self, service_id: str) -> bool:
        return not self.redis.hexists(self._services_key(), service_id)

    def dispatch_pending(self, task_ids: list[str]) -> set[str]:
        """Which of these tasks have an action waiting in the dispatch set."""
        if not task_ids:
            return set()
        scores = self.redis.zmscore(self.key("tasks", "dispatch"), task_ids)
        return {t for t, score in zip(task_ids, scores) if score is not None}

    def next_dispatch_time(self) -> float | None:
        first = self.redis.zrange(self.key("tasks", "dispatch"), 0, 0, withscores=True)
        return first[0][1] if first else None

    def request_container_removal(self, tasks: Iterable[Task], pipeline=None) -> None:
        """Containers of forgotten tasks go too (history pruned, service removed)."""
        p = pipeline or self.pipeline()
        entries = [f"{t.node_id}|{t.container_id}" for t in tasks if t.node_id and t.container_id]
        if entries:
            p.sadd(self.key("containers", "remove"), *entries)
            self.publish("container", "remove", "", pipeline=p, count=len(entries))
        if pipeline is None:
            p.execute()

    def take_container_removals(self, limit: int = 1000) -> list[tuple[str, str]]:
        entries = self.redis.spop(self.key("containers", "remove"), limit) or []
        return [tuple(e.split("|", 1)) for e in entries]

    # ------------------------------------------------------------------ secrets and configs

    def list_objects(self, kind: str) -> dict[str, dict[str, Any]]:
        """Metadata of secrets or configs (`kind`: secret | config), never their content."""
        return {k: json.loads(v) for k, v in self.redis.hgetall(self.key(kind + "s")).items()}

    def get_object(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.key(kind + "s"), name)
        return json.loads(raw) if raw else None

    def put_object(self, kind: str, meta: dict[str, Any], data: str, pipeline=None) -> None:
        """Store a secret or config: metadata, and its content (already encrypted for secrets)."""
        p = pipeline or self.pipeline()
        p.hset(self.key(kind + "s"), meta["name"], _dumps(meta))
        p.hset(self.key(kind, "data"), meta["name"], data)
        self.publish(kind, "create", meta["name"], pipeline=p)
        if pipeline is None:
            p.execute()

    def resolve_object_name(self, kind: str, stack: str, source: str) -> str:
        """The cluster-wide name of a secret or config a stack's service refers to by `source`."""
        return scoped_name(stack, source, (self.get_stack(stack) or {}).get(kind + "s"))

    def object_data(self, kind: str, name: str) -> str | None:
        return self.redis.hget(self.key(kind, "data"), name)

    def delete_object(self, kind: str, name: str) -> None:
        with self.pipeline() as p:
            p.hdel(self.key(kind + "s"), name)
            p.hdel(self.key(kind, "data"), name)
            self.publish(kind, "remove", name, pipeline=p)
            p.execute()

    # ------------------------------------------------------------------ log requests

    def append_log_line(self, request_id: str, line: str | None = None, end: str | None = None) -> None:
        """A line of `service logs` (or the end mark of one node's part) for the API to forward."""
        key = self.key("logs", request_id)
        with self.redis.pipeline(transaction=False) as p:
            p.xadd(key, {"end": end} if end else {"line": line or ""}, maxlen=10_000, approximate=True)
            p.expire(key, 300)
            p.execute()

    def read_log_lines(self, request_id: str, after: str, block_ms: int) -> list[tuple[str, dict]]:
        answer = self.redis.xread({self.key("logs", request_id): after}, count=500, block=block_ms)
        return answer[0][1] if answer else []

    def stop_log_request(self, request_id: str) -> None:
        with self.redis.pipeline(transaction=False) as p:
            p.set(self.key("logs", request_id, "stop"), "1", ex=300)
            p.delete(self.key("logs", request_id))
            p.execute()

    def log_request_stopped(self, request_id: str) -> bool:
        return bool(self.redis.exists(self.key("logs", request_id, "stop")))

    # ------------------------------------------------------------------ leases and liveness

    def acquire_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or renew a lease (the leader's, a node watcher's). True while we hold it."""
        return bool(self._lease(keys=[self.key("lease", name)], args=[holder, ttl_ms]))

    def release_lease(self, name: str, holder: str) -> None:
        self._release(keys=[self.key("lease", name)], args=[holder])

    def lease_holder(self, name: str) -> str | None:
        return self.redis.get(self.key("lease", name))

    def mark_alive(self, kind: str, name: str, info: dict[str, Any], ttl_s: float) -> None:
        """A process says it is alive (managers, workers, load balancers); gone when it stops saying so."""
        self.redis.set(self.key("alive", kind, name), _dumps(info), px=int(ttl_s * 1000))

    def alive(self, kind: str) -> dict[str, dict[str, Any]]:
        keys = list(self.redis.scan_iter(self.key("alive", kind, "*"), count=1000))
        values = self.redis.mget(keys) if keys else []
        prefix = len(self.key("alive", kind, ""))
        return {k[prefix:]: json.loads(v) for k, v in zip(keys, values) if v}

    def is_alive(self, kind: str, name: str) -> bool:
        return bool(self.redis.exists(self.key("alive", kind, name)))

    def forget_alive(self, kind: str, name: str) -> None:
        self.redis.delete(self.key("alive", kind, name))

    # ------------------------------------------------------------------ load balancers

    def put_lb_status(self, lb_id: str, status: dict[str, Any], ttl_s: float = 10) -> None:
        self.redis.set(self.key("lb", "status", lb_id), _dumps(status), px=int(ttl_s * 1000))

    def lb_statuses(self) -> dict[str, dict[str, Any]]:
        keys = list(self.redis.scan_iter(self.key("lb", "status", "*"), count=1000))
        values = self.redis.mget(keys) if keys else []
        prefix = len(self.key("lb", "status", ""))
        return {k[prefix:]: json.loads(v) for k, v in zip(keys, values) if v}

    # ------------------------------------------------------------------ housekeeping

    def iter_keys(self) -> Iterator[str]:
        return self.redis.scan_iter(self.prefix + "*", count=1000)

    def flush(self) -> None:
        """Delete every key of this prefix (tests, `swarmpy leave` of an embedded store)."""
        keys = list(self.iter_keys())
        for i in range(0, len(keys), 1000):
            self.redis.delete(*keys[i:i + 1000])
