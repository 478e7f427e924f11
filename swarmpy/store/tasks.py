"""Tasks (spec and status halves), their indexes, the dispatch set and container removals."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable
from typing import Any

from swarmpy.model import DesiredState, Task, TaskState
from swarmpy.store.base import Conflict, NotFound, StoreBase, _dumps

# The manager's half of a task, changed in place: only its desired state and when it changed. The
# caller's copy of the record may be stale (the scheduler may have given the task a node meanwhile),
# and writing it whole would undo that. The record is `_dumps`' text (sorted keys, no spaces), whose
# top level holds each of the two keys once (no nested record has them).
_SET_DESIRED_SCRIPT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local out, n = string.gsub(raw, '"desired_state":"%a*"', '"desired_state":"' .. ARGV[2] .. '"')
local out2, m = string.gsub(out, '"desired_at":[%d%.eE%+%-]+', '"desired_at":' .. ARGV[3])
if n ~= 1 or m ~= 1 then return redis.error_reply('task ' .. ARGV[1] .. ': no single desired_state and desired_at') end
redis.call('HSET', KEYS[1], ARGV[1], out2)
return 1
"""


class TaskRecords(StoreBase):
    """Keys: tasks, task:status, tasks:pending, tasks:dispatch, service:<id>:tasks, containers:remove."""

    @functools.cached_property
    def _set_desired(self):
        return self.redis.register_script(_SET_DESIRED_SCRIPT)

    _STATUS_FIELDS = ("state", "message", "error", "container_id", "exit_code", "endpoints", "attachments", "health",
                      "stop_requested_at", "up_at", "updated_at")

    def _split(self, task: Task) -> tuple[str, str]:
        d = task.to_dict()
        status = {k: d.pop(k) for k in self._STATUS_FIELDS}
        return _dumps(d), _dumps(status)

    @staticmethod
    def _joined(spec_raw: str, status_raw: str | None) -> dict[str, Any]:
        d = json.loads(spec_raw)
        if status_raw:
            d.update(json.loads(status_raw))
        return d

    def _join(self, spec_raw: str, status_raw: str | None) -> Task:
        return Task.from_dict(self._joined(spec_raw, status_raw))

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
        return [Task.from_dict(d) for d in self._task_dicts(ids)]

    def _task_dicts(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Tasks as plain dicts, both halves joined, in one round trip."""
        ids = list(ids)
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as p:
            p.hmget(self.key("tasks"), ids)
            p.hmget(self.key("task", "status"), ids)
            specs, statuses = p.execute()
        return [self._joined(s, st) for s, st in zip(specs, statuses) if s]

    def _index_members(self, index_keys: list[str]) -> list[set[str]]:
        """The task ids in several index sets (a service's, a node's), in one round trip."""
        with self.redis.pipeline(transaction=False) as p:
            for key in index_keys:
                p.smembers(key)
            return p.execute()

    def all_tasks(self) -> list[Task]:
        with self.redis.pipeline(transaction=False) as p:
            p.hgetall(self.key("tasks"))
            p.hgetall(self.key("task", "status"))
            specs, statuses = p.execute()
        return [self._join(raw, statuses.get(i)) for i, raw in specs.items()]

    def task_ids(self) -> list[str]:
        """Every task's id (a full pass then reads them in batches)."""
        return self.redis.hkeys(self.key("task", "status"))

    def task_ids_of_service(self, service_id: str) -> set[str]:
        return self.redis.smembers(self.key("service", service_id, "tasks"))

    def tasks_of_service(self, service_id: str) -> list[Task]:
        return self.get_tasks(self.task_ids_of_service(service_id))

    def _tasks_by_index(self, index_keys: list[str]) -> list[list[Task]]:
        """Tasks of several index sets (a service's, a node's) in two round trips."""
        id_sets = self._index_members(index_keys)
        found = {t.id: t for t in self.get_tasks({i for ids in id_sets for i in ids})}
        return [[found[i] for i in ids if i in found] for ids in id_sets]

    def tasks_of_services(self, service_ids: Iterable[str]) -> dict[str, list[Task]]:
        service_ids = list(service_ids)
        groups = self._tasks_by_index([self.key("service", sid, "tasks") for sid in service_ids])
        return dict(zip(service_ids, groups))

    def task_briefs(self, service_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """What listings need of each task (states, version, slot, node), read without building
        whole records: a `service ls` of a thousand services reads ten thousand tasks."""
        id_sets = self._index_members([self.key("service", sid, "tasks") for sid in service_ids])
        out: dict[str, list[dict[str, Any]]] = {sid: [] for sid in service_ids}
        for brief in self._task_dicts({i for ids in id_sets for i in ids}):
            out.setdefault(brief["service_id"], []).append(brief)
        return out

    def tasks_on_nodes(self, node_ids: Iterable[str]) -> list[Task]:
        groups = self._tasks_by_index([self.key("node", nid, "tasks") for nid in node_ids])
        return [t for g in groups for t in g]

    def tasks_of_node(self, node_id: str) -> list[Task]:
        return self.get_tasks(self.redis.smembers(self.key("node", node_id, "tasks")))

    def pending_task_ids(self, service_ids: Iterable[str] | None = None) -> set[str]:
        """Tasks waiting for a node: all of them, or those of these services."""
        if service_ids is None:
            return self.redis.smembers(self.key("tasks", "pending"))
        with self.redis.pipeline(transaction=False) as p:
            for sid in service_ids:
                p.sinter(self.key("tasks", "pending"), self.key("service", sid, "tasks"))
            return set().union(*p.execute())

    def set_desired_state(self, tasks: Iterable[Task], desired: str, pipeline=None) -> None:
        """The manager's half of a task: what it should become (running, shutdown)."""
        p = pipeline or self.pipeline()
        changed = []
        now = time.time()
        for t in tasks:
            t = t.copy(desired_state=desired, desired_at=now)
            self._set_desired(keys=[self.key("tasks")], args=[t.id, str(desired), json.dumps(now)], client=p)
            if desired == DesiredState.SHUTDOWN:
                p.srem(self._running_key(t.service_id), t.id)
            changed.append(t)
        for t in changed:
            # an unhealthy task has failed while its container still runs: it is stopped too
            if t.node_id and (not t.state.terminal or (t.health == "unhealthy" and t.container_id)):
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
            by_service: dict[str, int] = {}
            for t in assigned:
                by_service[t.service_id] = by_service.get(t.service_id, 0) + 1
            for sid, n in by_service.items():  # the network programmers make the networks of the nodes at once
                self.publish("task", "assign", sid, pipeline=p, service_id=sid, count=n)
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
            if new.state == TaskState.RUNNING and new.health in (None, "healthy") and not new.up_at:
                new.up_at = time.time()  # up, as Swarm calls a task running: healthy when it has a healthcheck
            _, status = self._split(new)
            event = {"kind": "task", "action": "state", "id": task_id, "service_id": task.service_id,
                     "node_id": task.node_id or "", "state": state.value, "health": new.health or ""}
            if self._cas(status_key, task_id, old, status, event, self._state_indexes(task, state)):
                return new
        raise Conflict(f"task {task_id} keeps changing")

    def _state_indexes(self, task: Task, state: TaskState) -> list[tuple[str, str]]:
        """The index changes that go with a state change, written with it: pending tasks,
        and each service's running tasks still wanted (what `service ls` counts)."""
        ops = []
        if state == task.state:
            return ops
        if state == TaskState.PENDING:
            ops.append(("SADD", self.key("tasks", "pending")))
        elif task.state == TaskState.PENDING:
            ops.append(("SREM", self.key("tasks", "pending")))
        if state == TaskState.RUNNING and task.desired_state != DesiredState.SHUTDOWN:
            ops.append(("SADD", self._running_key(task.service_id)))
        elif task.state == TaskState.RUNNING:
            ops.append(("SREM", self._running_key(task.service_id)))
        return ops

    def _running_key(self, service_id: str) -> str:
        return self.key("service", service_id, "running")

    def build_running_index(self) -> None:
        """Fill the running-task indexes from the tasks, once per store (one written before
        they existed); from then on every state change keeps them."""
        if not self.redis.set(self.key("index", "running"), "1", nx=True):
            return
        with self.pipeline(transaction=False) as p:
            for t in self.all_tasks():
                if t.state == TaskState.RUNNING and t.desired_state != DesiredState.SHUTDOWN:
                    p.sadd(self._running_key(t.service_id), t.id)
            p.execute()

    def running_counts(self, service_ids: list[str]) -> dict[str, int]:
        """Running tasks of each service, not counting those on their way out."""
        with self.redis.pipeline(transaction=False) as p:
            for sid in service_ids:
                p.scard(self._running_key(sid))
            return dict(zip(service_ids, p.execute()))

    def delete_tasks(self, tasks: Iterable[Task], pipeline=None) -> None:
        """Forget tasks (history beyond the limit, tasks of removed services)."""
        p = pipeline or self.pipeline()
        for t in tasks:
            p.hdel(self.key("tasks"), t.id)
            p.hdel(self.key("task", "status"), t.id)
            p.srem(self.key("service", t.service_id, "tasks"), t.id)
            p.srem(self.key("tasks", "pending"), t.id)
            p.srem(self._running_key(t.service_id), t.id)
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
        self.publish("task", "desired", "")  # the dispatcher wakes for it (else only at its next full pass)

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
