"""Services made and changed one at a time: `service create | update | rollback`.

A service made with `service create` belongs to no stack (its `stack` is ""): it
is named as it is, and its secrets, configs, volumes and networks are the
cluster's own, by name (made with `secret create`, `network create`). `service
update` takes the whole new spec of any service, a stack's too: what changes is
planned as a stack deploy plans it (`stacks.plan_stack`), so a change to the
tasks rolls out under `update_config`, and a change to the service alone
(replicas, labels, update_config) keeps its tasks. The same rules hold as for a
deploy: the cluster's limits, names, ports, and objects that must exist.
"""

from __future__ import annotations

import time

from swarmpy.manager import networks, stacks
from swarmpy.model import ObjectSpec, Service, ServiceSpec, StackSpec, validation
from swarmpy.model.validation import Invalid
from swarmpy.store import Conflict, Store

STACKLESS = ""  # the stack of a service made by `service create`


class ServiceError(Invalid):
    """A service the cluster cannot take as it stands (a missing secret, a taken name)."""


def _missing_objects(store: Store, stack: str, spec: ServiceSpec) -> list[tuple[str, str]]:
    """The secrets and configs the service uses that the cluster does not have."""
    problems = []
    for kind, refs in (("secret", spec.secrets), ("config", spec.configs)):
        for i, ref in enumerate(refs):
            name = store.resolve_object_name(kind, stack, ref.source)
            if store.get_object(kind, name) is None:
                made = f"`swarmpy {kind} create {name}`" if not stack else f"stack {stack}'s file"
                problems.append((f"spec.{kind}s.{i}", f"{kind} not found: {name} (made with {made})"))
    return problems


def _declared(stored: dict | None) -> StackSpec:
    """The stack's secrets and configs as its last deploy declared them: they name the objects."""
    stored = stored or {}
    return StackSpec(**{kind: {k: ObjectSpec.from_dict(v) for k, v in (stored.get(kind) or {}).items()}
                        for kind in ("secrets", "configs")})


def _plan(store: Store, stack: str, spec: ServiceSpec, before: Service | None, joined, now: float):
    stored = store.get_stack(stack) if stack else None
    one = _declared(stored)
    one.services = {spec.name: spec}
    try:
        return stacks.plan_stack(stack, one, [before] if before else [], store.published_ports(), prune=False,
                                 now=now, networks={spec.name: joined}, stored=stored)
    except stacks.StackError as e:  # named from the body: `spec.ports.0`, not `services.web.ports.0`
        prefix = f"services.{spec.name}"
        raise ServiceError([("spec" + p[len(prefix):] if p.startswith(prefix) else p, m) for p, m in e.problems],
                           status=409) from None


def _check(store: Store, stack: str, spec: ServiceSpec, full_name: str, limits: dict) -> None:
    problems = validation.service_problems(spec, full_name, spec.name if stack else full_name, **limits)
    if problems:
        raise Invalid(problems)
    if problems := _missing_objects(store, stack, spec):
        raise ServiceError(problems, status=404)


def create(store: Store, spec: ServiceSpec, limits: dict) -> Service:
    """A new service of no stack; `limits`: the cluster's, as `validation.service_problems` takes them."""
    _check(store, STACKLESS, spec, spec.name, limits)
    for attempt in range(3):  # ports or networks taken meanwhile: plan again
        if store.service_id_by_name(spec.name):
            raise ServiceError([("spec.name", f"service {spec.name} exists already")], status=409)
        try:
            joined = networks.join_existing(store, spec)
        except networks.NetworkError as e:
            raise ServiceError([(e.field or "spec.networks", str(e))], status=e.status) from None
        plan = _plan(store, STACKLESS, spec.copy(ports=[p.copy() for p in spec.ports]), None, joined, time.time())
        service = plan.changed[0]
        try:
            store.add_service(service)
            break
        except Conflict:
            if attempt == 2:
                raise
    networks.ensure_vips(store, [service])
    return service


def update(store: Store, service: Service, spec: ServiceSpec, force: bool, limits: dict) -> Service:
    """`service update`: the service with `spec`, a new version of its tasks if their part changed
    (or `force`). Its networks stay (`--network-add` is not supported)."""
    _check(store, service.stack, spec, service.name, limits)
    if spec.name != service.spec.name:
        raise Invalid([("spec.name", f"a service cannot be renamed (it is {service.spec.name!r})")])
    if list(spec.networks) != list(service.spec.networks):
        raise Invalid([("spec.networks", "service update cannot change a service's networks: "
                                         "remove the service and create it again")])
    now = time.time()
    plan = _plan(store, service.stack, spec, service, service.networks, now)
    updated = plan.changed[0] if plan.changed else service
    if force:  # Docker's ForceUpdate: the tasks are replaced although nothing changed
        changes = {"version": service.version + 1, "updated_at": now}
        bumped = updated.spec_version == service.spec_version
        updated = service.with_tasks_spec(updated.spec, networks=updated.networks, **changes) if bumped \
            else updated.copy(**changes)
    if updated is not service:
        store.put_service(updated, service.version)
    return updated


def rollback(store: Store, service: Service) -> Service:
    """`service rollback`: back to the spec before the last change to its tasks, rolled out under
    its `rollback_config`. Rolling back again goes forward again, as in Swarm."""
    if service.previous_spec is None:
        raise ServiceError([("(service)", f"service {service.name} does not have a previous spec")], status=409)
    rolled = stacks.rolled_back(service)
    store.put_service(rolled, service.version)
    store.set_update_status(service.id, {"version": rolled.spec_version, "mode": "rollback",
                                         "state": "rollback_started", "started_at": rolled.updated_at,
                                         "message": "manually requested rollback"})
    return rolled
