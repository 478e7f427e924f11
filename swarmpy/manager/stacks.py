"""Deploying a stack: check it, work out which services change, and how.

Pure logic over the stack the client sent and the services the cluster has;
the API writes the result to the store in one transaction. A service whose
spec did not change keeps its version (a redeploy of the same file changes
nothing); one whose tasks' part changed gets a new `spec_version` (its tasks
are replaced by a rolling update); one where only the service's own settings
changed (replicas, update_config, ...) keeps its tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from swarmpy.model import Service, ServiceNetwork, ServiceSpec, StackSpec, new_id, scoped_name
from swarmpy.model.validation import Invalid

PORT_RANGE = (30000, 32767)  # Swarm's range for published ports the file leaves out
# deploy settings that belong to the service, not to its tasks: changing them keeps the tasks
_SERVICE_ONLY = ("replicas", "max_concurrent", "update_config", "rollback_config", "labels", "endpoint_mode",
                 "mode")


class StackError(Invalid):
    """The stack cannot be deployed as the cluster stands: a port another service publishes, a
    secret that exists with other content. `problems` are (field path, what is wrong)."""


@dataclass
class StackPlan:
    record: dict[str, Any]
    changed: list[Service] = field(default_factory=list)
    unchanged: list[Service] = field(default_factory=list)
    removed: list[Service] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)  # service id -> version read


def full_name(stack: str, service: str) -> str:
    """`<stack>_<service>`; a service of no stack (`service create`, stack "") is named as it is."""
    return f"{stack}_{service}" if stack else service


def task_part(spec: ServiceSpec) -> dict[str, Any]:
    d = spec.to_dict()
    for key in _SERVICE_ONLY:
        d["deploy"].pop(key, None)
    return d


def assign_published_ports(stack_name: str, stack: StackSpec, existing: dict[str, Service],
                           published: dict[tuple[int, str], str], prune: bool = False) -> list[tuple[str, str]]:
    """Ingress ports are cluster-wide: two services may not publish the same one.
    Ports the file leaves out get one from 30000-32767, kept across redeploys.
    `published`: the ingress ports in use, (port, protocol) -> service name. The stack's services
    the file lists are redone; those it no longer lists keep their ports unless `prune` removes them."""
    in_file = {full_name(stack_name, s) for s in stack.services}
    redone = {n for n in existing if n in in_file or prune}
    taken = {k: v for k, v in published.items() if v not in redone}
    problems = []
    for name, svc in stack.services.items():
        for i, p in enumerate(svc.ports):
            if not p.through_mesh:
                continue
            owner = taken.get((p.published, p.protocol))
            if owner and owner != full_name(stack_name, name):
                problems.append((f"services.{name}.ports.{i}",
                                 f"port {p.published}/{p.protocol} is already published by service {owner}; "
                                 f"services {owner} and {full_name(stack_name, name)} cannot both publish it"))
            taken[(p.published, p.protocol)] = full_name(stack_name, name)
    for name, svc in stack.services.items():
        before = existing.get(full_name(stack_name, name))
        kept = {(p.target, p.protocol): p.published for p in (before.spec.ports if before else [])
                if p.through_mesh}
        for p in svc.ports:
            if p.mode == "ingress" and p.published is None:
                reuse = kept.get((p.target, p.protocol))
                if reuse and taken.get((reuse, p.protocol)) in (None, full_name(stack_name, name)):
                    p.published = reuse
                else:
                    p.published = next(port for port in range(PORT_RANGE[0], PORT_RANGE[1] + 1)
                                       if (port, p.protocol) not in taken)
                taken[(p.published, p.protocol)] = full_name(stack_name, name)
    return problems


def object_names(stack_name: str, spec: ServiceSpec, declared: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(kind, source, cluster-wide name) of the secrets and configs a service uses: pointing one at
    another object (`name: db_password_v2`) is a new spec for its tasks, though the service's own
    spec reads the same."""
    return [(kind, ref.source, scoped_name(stack_name, ref.source, declared.get(kind + "s")))
            for kind, refs in (("secret", spec.secrets), ("config", spec.configs)) for ref in refs]


def plan_stack(name: str, stack: StackSpec, existing: list[Service], published: dict[tuple[int, str], str],
               prune: bool, now: float | None = None,
               networks: dict[str, list[ServiceNetwork]] | None = None, stored: dict | None = None) -> StackPlan:
    """`existing`: the stack's services now; `published`: the cluster's ingress ports in use;
    `networks`: each service's networks (by its key in the file), resolved to the cluster's;
    `stored`: the stack's record as it was (what its secrets and configs were)."""
    now = now or time.time()
    by_name = {s.name: s for s in existing}
    problems = assign_published_ports(name, stack, by_name, published, prune)
    if problems:
        raise StackError(problems)
    record = {"name": name, "networks": {k: v.to_dict() for k, v in stack.networks.items()},
              "volumes": {k: v.to_dict() for k, v in stack.volumes.items()},
              "secrets": {k: {**v.to_dict(), "data": None} for k, v in stack.secrets.items()},
              "configs": {k: {**v.to_dict(), "data": None} for k, v in stack.configs.items()},
              "updated_at": now}
    plan = StackPlan(record=record)
    for svc_name, spec in stack.services.items():
        fname = full_name(name, svc_name)
        before = by_name.get(fname)
        joined = (networks or {}).get(svc_name, [])
        if before is None:
            plan.changed.append(Service(id=new_id(), stack=name, name=fname, spec=spec, networks=joined,
                                        created_at=now, updated_at=now))
            continue
        files_changed = object_names(name, before.spec, stored or {}) != object_names(name, spec, plan.record)
        if before.spec == spec and before.networks == joined and not files_changed:
            plan.unchanged.append(before)
            continue
        plan.expected[before.id] = before.version
        tasks_changed = task_part(before.spec) != task_part(spec) or before.networks != joined or files_changed
        changes = {"networks": joined, "version": before.version + 1, "updated_at": now}
        plan.changed.append(before.with_tasks_spec(spec, **changes) if tasks_changed
                            else before.copy(spec=spec, **changes))
    wanted = {full_name(name, s) for s in stack.services}
    leftover = [s for s in existing if s.name not in wanted]
    if prune:
        plan.removed = leftover
    else:
        plan.unchanged += leftover
    plan.record["services"] = sorted(s.id for s in plan.changed + plan.unchanged)
    return plan


def name_clashes(plan: StackPlan, id_by_name) -> list[tuple[str, str]]:
    """New services of the plan whose name a service outside the stack has (`service create web_api`
    before a deploy of stack web with a service api): names are cluster-wide."""
    return [(f"services.{s.spec.name}", f"service name {s.name} is taken by a service outside the stack")
            for s in plan.changed if s.id not in plan.expected and id_by_name(s.name) not in (None, s.id)]


def rolled_back(service: Service, now: float | None = None) -> Service:
    """The service on its previous spec again, as a new version of its tasks (`service rollback`,
    `failure_action: rollback`); the spec it leaves becomes the previous one."""
    return service.rolled_back(version=service.version + 1, updated_at=now or time.time())


def scale(service: Service, replicas: int) -> Service:
    mode = service.spec.deploy.mode
    if mode not in ("replicated", "replicated-job"):
        raise StackError([("replicas", f"scale can only be used with replicated mode (service {service.name} "
                                       f"is {mode})")])
    if replicas < 0:
        raise StackError([("replicas", "must not be negative")])
    spec = service.spec.copy(deploy=service.spec.deploy.copy(replicas=replicas))
    return service.copy(spec=spec, version=service.version + 1, updated_at=time.time())


# ------------------------------------------------------------------ `stack deploy --plan`

def field_changes(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """What differs between two specs (as dicts), field by field: dicts are gone into, any other
    value (a list, a command) is compared whole. Each change is {field, old, new}."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in list(before) + [k for k in after if k not in before]:
            out += field_changes(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if before == after else [{"field": path, "old": before, "new": after}]


def _running(tasks: list) -> list:
    return sorted((t for t in tasks if t.desired_state.value == "running"),
                  key=lambda t: (t.slot if t.slot is not None else 0, t.node_id or ""))


def _task_refs(tasks: list) -> list[dict[str, str]]:
    return [{"id": t.id, "name": t.display_name} for t in tasks]


def describe_plan(plan: StackPlan, stack: StackSpec, existing: list[Service], tasks: dict[str, list],
                  stored: dict | None, new_objects: list = ()) -> dict[str, Any]:
    """What a deploy of `plan` would do, without doing it (`stack deploy --plan`): per service,
    the fields that change and the tasks it would replace, start or stop.
    `tasks`: the current tasks of the stack's services, by service id."""
    before = {s.id: s for s in existing}
    services = []
    for s in plan.changed:
        old = before.get(s.id)
        if old is None:
            services.append({"name": s.name, "action": "create", "mode": s.spec.deploy.mode,
                             "replicas": s.spec.deploy.replicas, "changes": []})
            continue
        changes = field_changes(old.spec.to_dict(), s.spec.to_dict())
        if old.networks != s.networks:
            changes.append({"field": "networks", "old": [n.name for n in old.networks],
                            "new": [n.name for n in s.networks]})
        was, now = object_names(s.stack, old.spec, stored or {}), object_names(s.stack, s.spec, plan.record)
        if was != now:
            changes.append({"field": "secrets/configs", "old": [n for _, _, n in was], "new": [n for _, _, n in now]})
        running, entry = _running(tasks.get(s.id, [])), {"name": s.name, "action": "update", "changes": changes}
        if s.spec.deploy.mode in ("replicated", "replicated-job"):
            kept_slots = s.spec.deploy.replicas  # slots past the new count stop, new ones start
            stays = [t for t in running if t.slot is None or t.slot <= kept_slots]
            entry["stop"] = _task_refs([t for t in running if t not in stays])
            entry["start"] = max(0, kept_slots - len(stays))
        else:
            stays, entry["stop"], entry["start"] = running, [], 0
        replaces = s.spec_version != old.spec_version
        entry["replace"] = _task_refs(stays) if replaces else []
        uc = s.spec.deploy.update_config
        entry["update_config"] = {"parallelism": uc.parallelism, "order": uc.order, "delay": uc.delay,
                                  "failure_action": uc.failure_action}
        services.append(entry)
    for s in plan.removed:
        services.append({"name": s.name, "action": "remove", "stop": _task_refs(_running(tasks.get(s.id, [])))})
    in_file = {full_name(plan.record["name"], key) for key in stack.services}
    for s in plan.unchanged:
        services.append({"name": s.name, "action": "unchanged" if s.name in in_file else "keep"})
    return {"stack": plan.record["name"], "services": services,
            "objects": [{"kind": o.kind, "name": o.name} for o in new_objects]}
