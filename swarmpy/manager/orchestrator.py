"""The orchestrator (leader): turns services into tasks and keeps them so.

For each service whose state may have changed (an event said so, a timer came
due, or a full pass), it reads the service, its tasks and the nodes,
asks `reconcile` for a plan, and commits every plan of the pass in one Redis
transaction. Restart delays and update delays come back as timers.
"""

from __future__ import annotations

import logging
import time

from swarmpy.manager import reconcile, stacks
from swarmpy.manager.metrics import RECONCILE
from swarmpy.manager.component import Component
from swarmpy.manager.constraints import placement_matches
from swarmpy.model import DesiredState, Node, Service, TaskState

log = logging.getLogger(__name__)

ROLLBACK_RETRY = 1.0  # seconds: a rollback that lost a race with another write is tried again

# Task states whose arrival can change what the orchestrator wants.
_STATES_OF_INTEREST = {s.value for s in TaskState if s.terminal} | {TaskState.RUNNING.value}


def satisfies(service: Service, node: Node) -> bool:
    return placement_matches(service.spec.deploy.placement, node)


class Orchestrator(Component):
    name = "orchestrator"
    batch_window = 0.005
    # A last resort only (a pass reads every service and task): the loop makes one at once when it
    # may have missed events.
    full_pass_every = 60.0

    def __init__(self, store):
        super().__init__(store)
        self.timers: dict[str, float] = {}

    def reconcile_all(self) -> None:
        ids = ({s.id for s in self.store.list_services()} | self.store.service_ids_with_tasks()
               | {s.id for s in self.store.removed_services()})
        for batch in self.batches(ids):
            self.reconcile_services(set(batch))

    def handle(self, events) -> None:
        dirty: set[str] = set()
        everything = False
        for _, e in events:
            kind, action = e.get("kind"), e.get("action")
            if kind == "service" and action != "forget":  # a forgotten service is done with
                dirty.add(e["id"])
            elif kind == "task" and action == "state" and (
                    e.get("state") in _STATES_OF_INTEREST or e.get("health")):
                dirty.add(e["service_id"])
            elif kind == "task" and action == "health":
                dirty.add(e["service_id"])
            elif kind == "node":
                everything = True
        if everything:
            self.reconcile_all()
        elif dirty:
            self.reconcile_services(dirty)

    def on_timer(self, now: float) -> None:
        due = {sid for sid, at in self.timers.items() if at <= now}
        for sid in due:
            del self.timers[sid]
        if due:
            self.reconcile_services(due)
        if self.timers:
            self.wake(min(self.timers.values()))

    @RECONCILE.time()
    def reconcile_services(self, service_ids: set[str]) -> None:
        now = time.time()
        services = self.store.get_services(service_ids)
        tasks = self.store.tasks_of_services(service_ids)
        updates = self.store.get_update_statuses(list(services))
        nodes = {n.id: n for n in self.store.list_nodes()}
        plans = {}
        for sid in service_ids:
            service = services.get(sid)
            plan = reconcile.reconcile(service, tasks.get(sid, []), nodes, updates.get(sid), now,
                                       satisfies=satisfies)
            if plan.wake_at is not None:
                self.timers[sid] = min(plan.wake_at, self.timers.get(sid, plan.wake_at))
                self.wake(self.timers[sid])
            if not plan.empty:
                plans[sid] = (service, plan)
        if plans:
            self.commit(plans)

    def commit(self, plans: dict[str, tuple[Service | None, reconcile.Plan]]) -> None:
        with self.store.pipeline() as p:
            for sid, (service, plan) in plans.items():
                if plan.create:
                    self.store.create_tasks(plan.create, pipeline=p)
                if plan.shutdown:
                    self.store.set_desired_state(plan.shutdown, DesiredState.SHUTDOWN, pipeline=p)
                if plan.delete:
                    self.store.delete_tasks(plan.delete, pipeline=p)
                    self.store.request_container_removal(plan.delete, pipeline=p)
                if plan.update_status is not None:
                    self.store.set_update_status(sid, plan.update_status, pipeline=p)
                if plan.remove_containers:
                    self.store.dispatch_now([t.id for t in plan.remove_containers], pipeline=p)
                if plan.forget_service:
                    self.store.forget_removed_service(sid, pipeline=p)
            p.execute()
        for sid, (service, plan) in plans.items():
            if plan.rollback and service is not None:
                self.roll_back(service)
            log.debug("orchestrator: %s: +%d -%d forget %d", sid, len(plan.create), len(plan.shutdown),
                      len(plan.delete))

    def roll_back(self, service: Service) -> None:
        """`failure_action: rollback`: the previous spec becomes the service's spec again."""
        rolled = stacks.rolled_back(service)
        status = self.store.get_update_status(service.id) or {}
        status.pop("slots", None)  # the rollback counts the slots it has to change
        try:
            self.store.put_service(rolled, service.version)
        except Exception as e:  # someone deployed or scaled meanwhile: a pass in a second fails over again
            log.info("orchestrator: rollback of %s skipped: %s", service.name, e)
            # (the write that won may wake no loop: one that changed a label only says nothing new)
            self.timers[service.id] = min(time.time() + ROLLBACK_RETRY, self.timers.get(service.id, float("inf")))
            self.wake(self.timers[service.id])
            return
        self.store.set_update_status(service.id, {**status, "version": rolled.spec_version, "mode": "rollback",
                                                  "state": "rollback_started", "started_at": time.time()})
