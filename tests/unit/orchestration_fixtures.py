"""Builders for the orchestrator's pure-logic tests: services, nodes and tasks
in given states, and a small `World` that commits plans the way the
orchestrator component does, so that a test can walk a service through
several reconcile passes and assert on each plan.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

from swarmpy.manager.reconcile import Plan, is_live, reconcile, slot_of
from swarmpy.model import (Availability, Constraint, DeploySpec, DesiredState, Healthcheck, Node, NodeStatus,
                           Placement, RestartPolicy, Service, ServiceSpec, Task, TaskState, UpdateConfig)

NOW = 1000.0
_seq = itertools.count(1)


def restart_policy(condition="any", delay=0.0, max_attempts=0, window=0.0) -> RestartPolicy:
    return RestartPolicy(condition=condition, delay=delay, max_attempts=max_attempts, window=window)


def make_service(mode="replicated", replicas=3, *, spec_version=1, restart=None, update=None, rollback=None,
                 healthcheck=False, max_concurrent=None, constraints=(), previous=False, sid="svc") -> Service:
    """A service; `restart` defaults to condition any with no delay, to keep plans simple."""
    deploy = DeploySpec(mode=mode, replicas=replicas, max_concurrent=max_concurrent,
                        placement=Placement(constraints=[Constraint(*c) for c in constraints]),
                        restart_policy=restart or restart_policy(),
                        update_config=update or UpdateConfig(),
                        rollback_config=rollback or UpdateConfig())
    spec = ServiceSpec(name=sid, image=f"busybox:{spec_version}", deploy=deploy,
                       healthcheck=Healthcheck(test=["CMD", "true"]) if healthcheck else None)
    prev = spec.copy(image="busybox:previous") if previous else None
    return Service(id=sid, stack="st", name=f"st_{sid}", spec=spec, spec_version=spec_version,
                   version=spec_version, previous_spec=prev)


def bump(service: Service, **deploy_changes) -> Service:
    """A new deploy that changes the tasks' spec (image), as `stack deploy` records it."""
    v = service.spec_version + 1
    deploy = service.spec.deploy.copy(**deploy_changes)
    spec = service.spec.copy(image=f"busybox:{v}", deploy=deploy)
    return service.with_tasks_spec(spec, version=service.version + 1)


def scaled(service: Service, replicas: int) -> Service:
    """`service scale`: a new record revision, the same spec_version."""
    spec = service.spec.copy(deploy=service.spec.deploy.copy(replicas=replicas))
    return service.copy(spec=spec, version=service.version + 1)


def make_node(name, *, status=NodeStatus.READY, availability=Availability.ACTIVE, **labels) -> Node:
    return Node(id=name, hostname=name, address=f"10.0.0.{len(name)}", status=status,
                availability=availability, labels=labels)


def make_nodes(*names, **kw) -> dict[str, Node]:
    return {n: make_node(n, **kw) for n in names}


def make_task(service: Service, slot=None, *, node=None, state=TaskState.RUNNING, desired=None, version=None,
              created=None, updated=None, exit_code=None, health=None, history=()) -> Task:
    """A task of `service`. For global services pass `node` and no slot."""
    n = next(_seq)
    created = n * 0.001 if created is None else created
    job = service.spec.deploy.mode.endswith("-job")
    if desired is None:
        desired = DesiredState.COMPLETE if job else DesiredState.RUNNING
    if state in (TaskState.FAILED,) and exit_code is None:
        exit_code = 1
    if state == TaskState.COMPLETE and exit_code is None:
        exit_code = 0
    return Task(id=f"t{n}", service_id=service.id, service_name=service.name,
                spec_version=service.spec_version if version is None else version, slot=slot, node_id=node,
                desired_state=desired, state=state, exit_code=exit_code, health=health,
                created_at=created, updated_at=created if updated is None else updated,
                restart_history=list(history))


def running(service: Service, count: int, nodes=("n1", "n2", "n3"), **kw) -> list[Task]:
    """Slots 1..count running, spread round-robin over `nodes`."""
    return [make_task(service, s, node=nodes[(s - 1) % len(nodes)], **kw) for s in range(1, count + 1)]


def plan_for(service, tasks, nodes=None, status=None, now=NOW, satisfies=None) -> Plan:
    nodes = make_nodes("n1", "n2", "n3") if nodes is None else nodes
    kwargs = {"satisfies": satisfies} if satisfies else {}
    return reconcile(service, tasks, nodes, status, now, **kwargs)


def ids(tasks) -> set[str]:
    return {t.id for t in tasks}


def slots(tasks) -> list:
    return sorted((slot_of(t) for t in tasks), key=str)


def live_slots(tasks) -> dict:
    """slot -> live tasks (desired state not shutdown)."""
    out = defaultdict(list)
    for t in tasks:
        if is_live(t):
            out[slot_of(t)].append(t)
    return dict(out)


class World:
    """A service, its tasks and nodes; `step()` reconciles and commits the plan
    as the orchestrator does (create, desired shutdown, delete, update status).
    Tasks change state only when the test says so."""

    def __init__(self, service, tasks=(), nodes=None, now=NOW, satisfies=None):
        self.service = service
        self.nodes = make_nodes("n1", "n2", "n3") if nodes is None else nodes
        self.tasks: dict[str, Task] = {t.id: t for t in tasks}
        self.status: dict | None = None
        self.now = now
        self.satisfies = satisfies
        self.rollbacks = 0

    def step(self, dt: float = 0.0) -> Plan:
        self.now += dt
        plan = plan_for(self.service, list(self.tasks.values()), self.nodes, self.status, self.now,
                        self.satisfies)
        for t in plan.create:
            self.tasks[t.id] = t
        for t in plan.shutdown:
            self.tasks[t.id] = self.tasks[t.id].copy(desired_state=DesiredState.SHUTDOWN)
        for t in plan.delete:
            self.tasks.pop(t.id, None)
        if plan.update_status is not None:
            self.status = plan.update_status
        if plan.clear_update_status:
            self.status = None
        if plan.rollback:
            self.rollbacks += 1
        return plan

    # -- what the hosts report

    def set(self, task: Task, state: TaskState, **changes) -> Task:
        t = self.tasks[task.id].copy(state=state, updated_at=self.now, **changes)
        return self._record(t)

    def _record(self, t: Task) -> Task:
        if t.state == TaskState.RUNNING and t.health in (None, "healthy") and not t.up_at:
            t.up_at = self.now  # as the store records it: up, healthy if it has a healthcheck
        self.tasks[t.id] = t
        return t

    def run(self, task: Task, node=None, health=None) -> Task:
        """The task runs: on its node, or on `node`, or where the scheduler could put it."""
        node = self.tasks[task.id].node_id or node or self.place(len(self.tasks))
        return self.set(task, TaskState.RUNNING, node_id=node, health=health)

    def place(self, n: int) -> str:
        usable = sorted(i for i, x in self.nodes.items()
                        if x.status == NodeStatus.READY and x.availability == Availability.ACTIVE)
        return usable[n % len(usable)]

    def healthy(self, task: Task) -> Task:
        return self._record(self.tasks[task.id].copy(health="healthy"))  # a health change keeps updated_at

    def stopped(self, task: Task) -> Task:
        return self.set(task, TaskState.SHUTDOWN)

    def fail(self, task: Task, code=1) -> Task:
        return self.set(task, TaskState.FAILED, exit_code=code)

    def complete(self, task: Task) -> Task:
        return self.set(task, TaskState.COMPLETE, exit_code=0)

    def run_all_new(self, plan: Plan, **kw) -> list[Task]:
        return [self.run(t, node=self.place(i), **kw) for i, t in enumerate(plan.create)]

    def stop_all_shut(self, plan: Plan) -> None:
        for t in plan.shutdown:
            if t.id in self.tasks and not self.tasks[t.id].state.terminal:
                self.stopped(t)

    def settle(self) -> bool:
        """Every wanted task comes up and every unwanted one stops. False: nothing to do."""
        moved = False
        for i, t in enumerate(list(self.tasks.values())):
            if t.state.terminal or (t.state == TaskState.RUNNING and t.desired_state != DesiredState.SHUTDOWN):
                continue
            if t.desired_state == DesiredState.SHUTDOWN:
                self.stopped(t)
            else:
                self.run(t, node=self.place(i))
            moved = True
        return moved

    # -- views

    def get(self, task: Task) -> Task:
        return self.tasks[task.id]

    def live(self) -> dict:
        return live_slots(self.tasks.values())

    def versions(self, state=TaskState.RUNNING) -> dict:
        """slot -> spec_versions of its live tasks in `state`."""
        return {s: sorted(t.spec_version for t in ts if t.state == state) for s, ts in self.live().items()}
