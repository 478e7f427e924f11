"""The scheduler's control loop (leader): whenever tasks are pending and
something changed that could let them fit (a node's state, a task that freed
its resources) or new tasks came, take a snapshot, ask `scheduler.place` for a plan
and commit it in one transaction. Tasks that fit nowhere stay pending with
Swarm's explanation, and are tried again at the next change."""

from __future__ import annotations

import logging

from swarmpy.manager import scheduler
from swarmpy.manager.component import Component
from swarmpy.manager.metrics import SCHEDULING
from swarmpy.model import DesiredState, TaskState

log = logging.getLogger(__name__)


class SchedulerLoop(Component):
    name = "scheduler"
    batch_window = 0.002
    # A last resort only: the full pass reads every pending task (10,000 that fit nowhere cost a
    # second of CPU), and the loop makes one at once when it may have missed events.
    full_pass_every = 60.0

    def reconcile_all(self) -> None:
        self.schedule()

    def handle(self, events) -> None:
        # What could let a waiting task fit: a node changed, a task ended (its resources are
        # free) or was given up. New tasks are tried alone: the tasks that waited before them
        # still fit nowhere (re-reading thousands of unplaceable tasks on every change would
        # keep the manager busy for nothing).
        services: set[str] = set()
        for _, e in events:
            kind, action = e.get("kind"), e.get("action")
            if kind == "node" or (kind == "task" and (
                    (action == "state" and TaskState(e.get("state") or "new").terminal)
                    or (action == "desired" and e.get("desired") == DesiredState.SHUTDOWN))):
                self.schedule()
                return
            if kind == "task" and action == "create" and e.get("service_id"):
                services.add(e["service_id"])
        if services:
            self.schedule(services)

    def schedule(self, services: set[str] | None = None) -> None:
        """Place the pending tasks (of these services only, when given)."""
        ids = self.store.pending_task_ids(services)
        if ids:
            self.place(ids)

    @SCHEDULING.time()  # only passes with tasks to place: the figure is the time placing takes
    def place(self, ids) -> None:
        pending = [t for t in self.store.get_tasks(ids) if t.state == TaskState.PENDING]
        unwanted = [t for t in pending if t.desired_state == DesiredState.SHUTDOWN]
        for t in unwanted:  # shut down before it was ever placed
            self.store.update_task_status(t.id, TaskState.SHUTDOWN, message="shutdown")
        pending = [t for t in pending if t.desired_state != DesiredState.SHUTDOWN]
        if not pending:
            return
        nodes = self.store.list_nodes()
        assigned = [t for t in self.store.tasks_on_nodes(n.id for n in nodes) if not t.state.terminal]
        records = self.store.get_services({t.service_id for t in pending} | {t.service_id for t in assigned})
        plan = scheduler.place(pending, records, nodes, assigned)
        # a task still waiting for the reason it had needs no write (and assign_tasks re-reads each
        # task it writes): with 10,000 that fit nowhere, that re-read was two thirds of a full pass
        had = {t.id: t.error for t in pending}
        news = {task_id: why for task_id, why in plan.failures.items() if had.get(task_id) != why}
        placed = self.store.assign_tasks(plan.assignments, news)
        if placed or plan.failures:
            log.debug("scheduler: %d placed, %d pending", len(placed), len(plan.failures))
