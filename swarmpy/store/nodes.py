"""Nodes: records, engine reports, SSH identities."""

from __future__ import annotations

import json
import time
from typing import Any

from swarmpy.model import Node
from swarmpy.store.base import Conflict, NotFound, StoreBase, _dumps

class NodeRecords(StoreBase):
    """Keys: nodes, node:report, node:identity, node:<id>:tasks."""

    def _nodes_key(self) -> str:
        return self.key("nodes")

    def get_node(self, id: str) -> Node:
        raw = self._get_raw(self._nodes_key(), id)
        if raw is None:
            raise NotFound(f"node {id} not found")
        return Node.from_dict(json.loads(raw))

    def list_nodes(self) -> list[Node]:
        return self._nodes_of(self.redis.hvals(self._nodes_key()))

    @staticmethod
    def _nodes_of(raws) -> list[Node]:
        return sorted((Node.from_dict(json.loads(v)) for v in raws), key=lambda n: (n.hostname, n.id))

    def local_node_id(self, machine: str) -> str | None:
        """The node of `machine`'s own engine (the one reached without SSH), if registered."""
        return next((n.id for n in self.list_nodes() if n.ssh_user is None and n.machine == machine), None)

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

    def record_heartbeat(self, node_id: str, ok: bool, message: str = "", pipeline=None,
                         conclusive: bool = True, since: float | None = None) -> None:
        """What a watcher saw of a node's engine: reachable (`ok`) or not, and when. A failure is
        `conclusive` when it is evidence about the node (its engine refused, its host vanished), not
        when the engine only answered too slowly while its host still answers (then `since`: when
        that began)."""
        now = time.time()
        report = {"ok": ok, "time": now, "message": message}
        if not ok and not conclusive:
            report.update(conclusive=False, since=since or now)
        report = _dumps(report)
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
