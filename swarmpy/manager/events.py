"""Cluster events as `swarmpy events` shows them: named, and filtered by type and name.

The store's events carry ids (a service's, a task's, a node's); a reader wants names, so each
event read through the API gets `name` (the service's, `web.2` for a task, the node's
hostname), and a task's the name of its service in `service` too: `--filter name=shop_web`
shows the service's tasks' events as well as its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmpy.model.records import EVENT_TYPES as TYPES
from swarmpy.store import Store


@dataclass(frozen=True)
class EventFilter:
    types: frozenset[str] = frozenset()  # empty: any
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, types: str, names: str) -> "EventFilter":
        """From the query's comma-separated lists; ValueError naming what is not a type."""
        wanted = frozenset(t.strip() for t in types.split(",") if t.strip())
        unknown = sorted(wanted - set(TYPES))
        if unknown:
            raise ValueError(f"type must be one of {', '.join(TYPES)}, not {unknown[0][:40]!r}")
        return cls(wanted, frozenset(n.strip() for n in names.split(",") if n.strip()))

    def __bool__(self) -> bool:
        return bool(self.types or self.names)

    def matches(self, event: dict) -> bool:
        if self.types and event.get("kind") not in self.types:
            return False
        return not self.names or bool({event.get("name"), event.get("service"), event.get("id")} & self.names)


def named(store: Store, events: list[dict]) -> list[dict]:
    """The events with the names of what they are about (read in a few batches, not one by one)."""
    service_ids = {e["id"] for e in events if e["kind"] == "service"} | \
        {e.get("service_id") for e in events if e["kind"] == "task" and e.get("service_id")}
    live, removed = store.get_services_live_or_removed(service_ids - {""})  # removed: tombstones, while they last
    services = {sid: s.name for sid, s in {**removed, **live}.items()}
    task_ids = [e["id"] for e in events if e["kind"] == "task" and e["id"] and e["id"] != e.get("service_id")]
    tasks = {t.id: t.display_name for t in store.get_tasks(task_ids)} if task_ids else {}
    nodes = {n.id: n.hostname for n in store.list_nodes()} if any(e["kind"] == "node" for e in events) else {}
    out = []
    for e in events:
        e = dict(e)
        kind, id = e["kind"], e["id"]
        if kind == "service":
            e.setdefault("name", services.get(id, ""))
        elif kind == "task":
            e["service"] = services.get(e.get("service_id", ""), "")
            e["name"] = tasks.get(id, e["service"])  # a create or assign event is about the service's tasks
        elif kind == "node":
            e["name"] = nodes.get(id, "")
        elif kind in ("stack", "secret", "config"):
            e["name"] = id
        out.append(e)
    return out
