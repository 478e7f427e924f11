"""What the API shows of the cluster: summaries built from store records
(service replicas as `running/desired`, ports, manager status of nodes)."""

from __future__ import annotations

from typing import Any

from swarmpy.manager.constraints import placement_matches
from swarmpy.manager.reconcile import node_accepts_new_tasks
from swarmpy.model import DesiredState, Node, Service, Task, TaskState


def ports_text(service: Service) -> str:
    return ", ".join(f"*:{p.published}->{p.target}/{p.protocol}" if p.mode == "ingress"
                     else f"{p.published}:{p.target}/{p.protocol} (host)" for p in service.spec.ports if p.published)


_ENDED = {s.value for s in TaskState if s.terminal}


def replicas(service: Service, tasks: list[dict], nodes: list[Node],
             running: int | None = None) -> tuple[int, int, str]:
    """(running, desired, text) as `docker service ls` shows them, from task briefs (see
    `Store.task_briefs`) or, for a replicated service, the count of its running tasks.
    A global service wants a task on each node that may take one, and keeps those it
    has on paused nodes."""
    mode = service.spec.deploy.mode
    live = [t for t in tasks if t["desired_state"] != DesiredState.SHUTDOWN.value]
    if running is None:
        running = sum(1 for t in live if t["state"] == TaskState.RUNNING.value)
    if mode == "replicated":
        desired = service.spec.deploy.replicas
        return running, desired, f"{running}/{desired}"
    eligible = {n.id for n in nodes if node_accepts_new_tasks(n)
                and placement_matches(service.spec.deploy.placement, n)}
    if mode == "global":
        desired = len(eligible | {t["node_id"] for t in live if t["state"] not in _ENDED})
        return running, desired, f"{running}/{desired}"
    current = [t for t in tasks if service.runs_current(t["spec_version"])]
    done = len({t["slot"] if t["slot"] is not None else t["node_id"] for t in current
                if t["state"] == TaskState.COMPLETE.value and t.get("exit_code") in (None, 0)})
    total = service.spec.deploy.replicas if mode == "replicated-job" else len(
        eligible | {t["node_id"] for t in current})
    return running, total, f"{running}/{total} ({done}/{total} completed)"


def service_summary(service: Service, tasks: list[dict], nodes: list[Node],
                    update: dict | None = None, running: int | None = None) -> dict[str, Any]:
    running, desired, text = replicas(service, tasks, nodes, running)
    return {
        "id": service.id, "name": service.name, "stack": service.stack, "mode": service.spec.deploy.mode,
        "replicas": text, "running": running, "desired": desired, "image": service.spec.image,
        "ports": ports_text(service), "version": service.version, "spec_version": service.spec_version,
        "current_versions": service.current_versions,
        "update_status": update,
    }


def task_view(task: Task, nodes: dict[str, Node], image: str | None) -> dict[str, Any]:
    node = nodes.get(task.node_id) if task.node_id else None
    d = task.to_dict()
    d.update(name=task.display_name, node=node.hostname if node else "", image=image or "")
    return d


def manager_status(node: Node, managers: dict[str, dict], leader: str | None) -> str:
    """`docker node ls`'s MANAGER STATUS: Leader, Reachable, Unreachable, or empty."""
    if node.role != "manager":
        return ""
    here = [mid for mid, info in managers.items() if info.get("node_id") == node.id]
    if leader and leader in here:
        return "Leader"
    return "Reachable" if here else "Unreachable"


def node_parts(node: Node, supervisors: dict[str, dict]) -> dict[str, dict]:
    """The swarmpy processes running on the node, as its supervisor reports them (a node without
    one runs none: a worker node is reached over SSH)."""
    parts = {}
    for info in supervisors.values():
        if info.get("node_id") == node.id:
            parts.update(info.get("parts", {}))
    return parts


def node_view(node: Node, managers: dict[str, dict], leader: str | None,
              supervisors: dict[str, dict] | None = None) -> dict[str, Any]:
    d = node.to_dict()
    d["manager_status"] = manager_status(node, managers, leader)
    d["parts"] = node_parts(node, supervisors or {})
    return d
