"""What the orchestrator decides for one service: a pure function from the
service, its tasks and the nodes to a plan (tasks to create, to shut down, to
forget). The orchestrator component commits the plan; tests assert on it.

Tasks are grouped by *slot*: a replica number for replicated services, a node
id for global ones. A slot is occupied while it has a task whose desired state
is not `shutdown` (alive, or dead and not to be restarted). Swarm's rules:
a task runs once and is replaced, never restarted; the restart policy decides
whether a dead task gets a successor; a service update replaces tasks slot by
slot (`update_config`); history keeps the last 5 dead tasks of each slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swarmpy.manager import restart, update
from swarmpy.model import (Availability, DesiredState, Node, NodeStatus, Service, Task, TaskState,
                           new_id)

HISTORY_PER_SLOT = 5


@dataclass
class Plan:
    create: list[Task] = field(default_factory=list)
    shutdown: list[Task] = field(default_factory=list)  # desired state -> shutdown
    delete: list[Task] = field(default_factory=list)  # forgotten (history, removed service)
    update_status: dict[str, Any] | None = None  # the rolling update's record, when it changed
    clear_update_status: bool = False
    forget_service: bool = False  # a removed service whose tasks are all gone
    remove_containers: list[Task] = field(default_factory=list)  # dead tasks of a removed service
    rollback: bool = False  # the update failed and asks to roll back
    wake_at: float | None = None  # reconcile again at this time (restart delay, update delay)

    def wake(self, at: float | None) -> None:
        if at is not None and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at

    @property
    def empty(self) -> bool:
        return not (self.create or self.shutdown or self.delete or self.update_status is not None
                    or self.clear_update_status or self.rollback or self.forget_service or self.remove_containers)


def is_live(task: Task) -> bool:
    return task.desired_state != DesiredState.SHUTDOWN


def slot_of(task: Task):
    return task.slot if task.slot is not None else task.node_id


def node_accepts_new_tasks(node: Node) -> bool:
    return node.status == NodeStatus.READY and node.availability == Availability.ACTIVE


def reconcile(service: Service | None, tasks: list[Task], nodes: dict[str, Node],
              update_status: dict[str, Any] | None, now: float,
              satisfies: Callable[[Service, Node], bool] = lambda s, n: True,
              removed_service_id: str | None = None) -> Plan:
    """The plan for one service. `service` None: the service was removed.
    `satisfies(service, node)`: the node meets the service's constraints and platforms."""
    plan = Plan()
    if service is None:
        _remove(tasks, nodes, plan)
        return plan
    _Reconciler(service, tasks, nodes, update_status, now, satisfies, plan).run()
    return plan


def _remove(tasks: list[Task], nodes: dict[str, Node], plan: Plan) -> None:
    """A removed service's tasks stop, their containers go, then the tasks: so that a task
    still listed means a container still there (`stack rm` waits for it). A node that is
    down or gone cannot be asked: its watcher removes the containers when it is back."""
    for t in tasks:
        node = nodes.get(t.node_id) if t.node_id else None
        reachable = node is not None and node.status != NodeStatus.DOWN
        if is_live(t):
            plan.shutdown.append(t)
        elif not t.state.terminal:
            continue  # stopping
        elif t.container_id and reachable:
            plan.remove_containers.append(t)
        else:
            plan.delete.append(t)
    plan.forget_service = len(plan.delete) == len(tasks)


class _Reconciler:
    def __init__(self, service, tasks, nodes, update_status, now, satisfies, plan):
        self.service, self.spec, self.nodes, self.now, self.plan = service, service.spec, nodes, now, plan
        self.satisfies = satisfies
        self.update_status = update_status
        self.mode = self.spec.deploy.mode
        self.job = self.mode.endswith("-job")
        self.global_mode = self.mode.startswith("global")
        self.slots: dict[Any, list[Task]] = defaultdict(list)
        for t in tasks:
            self.slots[slot_of(t)].append(t)
        for ts in self.slots.values():
            ts.sort(key=lambda t: t.created_at)

    # -- helpers

    def live(self, slot) -> list[Task]:
        return [t for t in self.slots.get(slot, ()) if is_live(t) and t not in self.plan.shutdown]

    def current(self, slot) -> Task | None:
        live = self.live(slot)
        return live[-1] if live else None

    def new_task(self, slot, not_before: float = 0.0, history: tuple[float, ...] = ()) -> Task:
        task = Task(
            id=new_id(), service_id=self.service.id, service_name=self.service.name,
            spec_version=self.service.spec_version, image=self.service.spec.image,
            slot=None if self.global_mode else slot,
            node_id=slot if self.global_mode else None,
            desired_state=DesiredState.COMPLETE if self.job else DesiredState.RUNNING,
            state=TaskState.PENDING, message="pending", created_at=self.now, updated_at=self.now,
            not_before=not_before, restart_history=list(history))
        self.plan.create.append(task)
        self.slots[slot].append(task)
        if not_before > self.now:
            self.plan.wake(not_before)
        return task

    def shutdown(self, task: Task) -> None:
        if task in self.plan.create:  # made by this pass (a restart in a slot scaled away): never made
            self.plan.create.remove(task)
            self.slots[slot_of(task)].remove(task)
        elif task not in self.plan.shutdown:
            self.plan.shutdown.append(task)

    def succeeded(self, slot) -> bool:
        """A job's slot is done once a task of the current version completed."""
        return any(t.state == TaskState.COMPLETE and t.exit_code in (None, 0)
                   and self.service.runs_current(t.spec_version) for t in self.slots.get(slot, ()))

    # -- the steps

    def run(self) -> None:
        self.replace_dead_tasks()
        self.move_off_unusable_nodes()
        if self.global_mode:
            self.place_global()
        else:
            self.scale()
        if self.job:
            self.rerun_outdated_jobs()
        else:
            update.advance(self)
        self.prune_history()

    def replace_dead_tasks(self) -> None:
        policy = self.spec.deploy.restart_policy
        for slot in list(self.slots):
            replaced = False
            for t in reversed(self.live(slot)):  # newest first: its successor carries its history
                if not t.state.terminal or (self.job and self.succeeded(slot)):
                    continue
                decision = restart.decide(t, policy, self.now, job=self.job)
                if not decision.restart:
                    continue  # the dead task keeps its slot: nothing replaces it
                self.shutdown(t)
                if replaced or (self.global_mode and not self.node_usable(slot)):
                    continue  # one successor per slot; a global task comes back when its node does
                self.new_task(slot, decision.not_before, decision.history)
                replaced = True

    def node_usable(self, node_id) -> bool:
        node = self.nodes.get(node_id)
        return node is not None and node_accepts_new_tasks(node) and self.satisfies(self.service, node)

    def move_off_unusable_nodes(self) -> None:
        """Tasks on drained or removed nodes (or, for global services, nodes that
        no longer qualify) are shut down; replicated ones get a successor at once."""
        for slot in list(self.slots):
            for t in self.live(slot):
                if t.state.terminal or t.node_id is None:
                    continue
                node = self.nodes.get(t.node_id)
                gone = node is None or node.availability == Availability.DRAIN
                if self.global_mode:
                    gone = gone or not self.satisfies(self.service, node)
                if gone:
                    self.shutdown(t)
                    if not self.global_mode:
                        self.new_task(slot)

    def place_global(self) -> None:
        for node_id, node in self.nodes.items():
            if not self.node_usable(node_id):
                continue
            if self.live(node_id) or (self.job and self.succeeded(node_id)):
                continue
            if self.waiting_for_stop(node_id):
                continue
            self.new_task(node_id)

    def waiting_for_stop(self, slot) -> bool:
        """A stop-first update stopped this slot's old task, which has not stopped yet."""
        return any(not is_live(t) and not t.state.terminal and not self.service.runs_current(t.spec_version)
                   and t not in self.plan.create for t in self.slots.get(slot, ()))

    def scale(self) -> None:
        want = self.spec.deploy.replicas
        if self.job:
            self.fill_job_slots(want)
            return
        occupied = [s for s in self.slots if self.live(s) or self.waiting_for_stop(s)]
        if len(occupied) > want:
            for slot in self.slots_to_remove(occupied, len(occupied) - want):
                for t in self.live(slot):
                    self.shutdown(t)
        free = (s for s in range(1, want + len(occupied) + 1) if s not in occupied)
        for _ in range(want - len(occupied)):
            self.new_task(next(free))

    def slots_to_remove(self, occupied: list, count: int) -> list:
        """Scale down where it keeps the spread: tasks not running first, then
        from the nodes holding the most tasks of the service, highest slot first."""
        per_node: dict[str | None, int] = defaultdict(int)
        for s in occupied:
            cur = self.current(s)
            per_node[cur.node_id if cur else None] += 1
        chosen = []
        for _ in range(count):
            def weight(s):
                cur = self.current(s)
                running = cur is not None and cur.state == TaskState.RUNNING
                return (running, -per_node[cur.node_id if cur else None], -s)
            slot = min((s for s in occupied if s not in chosen), key=weight)
            chosen.append(slot)
            cur = self.current(slot)
            per_node[cur.node_id if cur else None] -= 1
        return chosen

    def fill_job_slots(self, total: int) -> None:
        limit = self.spec.deploy.max_concurrent or total
        active = sum(1 for s in self.slots for t in self.live(s) if not t.state.terminal)
        for slot in range(1, total + 1):
            if active >= limit:
                break
            if self.live(slot) or self.succeeded(slot):
                continue
            self.new_task(slot)
            active += 1

    def rerun_outdated_jobs(self) -> None:
        """A job's new version runs again: old-version tasks leave their slots."""
        for slot in list(self.slots):
            for t in self.live(slot):
                if not self.service.runs_current(t.spec_version) and t not in self.plan.create:
                    self.shutdown(t)
        if not self.global_mode:
            self.fill_job_slots(self.spec.deploy.replicas)
        else:
            self.place_global()

    def prune_history(self) -> None:
        for slot, ts in self.slots.items():
            dead = [t for t in ts if (not is_live(t) or t in self.plan.shutdown) and t.state.terminal]
            keep = HISTORY_PER_SLOT
            if self.slot_removed(slot, ts):  # Swarm deletes the tasks of slots it scaled away
                dead, keep = [t for t in dead if not is_live(t)], 0
            for t in dead[:len(dead) - keep]:
                if t not in self.plan.delete:
                    self.plan.delete.append(t)

    def slot_removed(self, slot, ts: list[Task]) -> bool:
        """A replica slot left with no task that runs or may still run: scaled away."""
        return (not self.global_mode and not self.job and not self.live(slot)
                and all(t.state.terminal for t in ts))
