"""The node monitor (leader): turns what the watchers report into node states.

A node is `Ready` while its engine answers its heartbeats. It is `Down` when
the watcher confirmed it unreachable (its event stream broke and quick pings
failed: seconds, not three heartbeat periods), or when no report came for
three heartbeat periods (the watcher itself is gone or cut off). The tasks of
a node that goes down become `Orphaned`, and the orchestrator places them
again elsewhere at once.
"""

from __future__ import annotations

import logging
import time

from swarmpy.manager.component import Component
from swarmpy.model import Node, NodeStatus, TaskState

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3


class NodeMonitor(Component):
    name = "monitor"
    full_pass_every = 0.25

    def reconcile_all(self) -> None:
        now = time.time()
        heartbeat = float(self.store.cluster_info().get("heartbeat", 5))
        reports = self.store.heartbeats()
        for node in self.store.list_nodes():
            status, message = self.judge(node, reports.get(node.id), heartbeat, now)
            if status != node.status:
                self.set_status(node, status, message)

    @staticmethod
    def judge(node: Node, report: dict | None, heartbeat: float, now: float) -> tuple[NodeStatus, str]:
        limit = MISSED_HEARTBEATS * heartbeat
        if report is None:
            if now - node.created_at <= limit:
                return node.status, node.message
            return NodeStatus.DOWN, "heartbeat failure: no watcher reached this node"
        if not report["ok"]:
            return NodeStatus.DOWN, report.get("message") or "engine unreachable"
        if now - report["time"] > limit:
            return NodeStatus.DOWN, "heartbeat failure"
        return NodeStatus.READY, ""

    def set_status(self, node: Node, status: NodeStatus, message: str) -> None:
        def change(n: Node) -> None:
            n.status, n.message = status, message
            if status == NodeStatus.READY:
                n.last_seen = time.time()
        self.store.update_node(node.id, change)
        log.warning("node %s (%s): %s %s", node.hostname, node.id, status.value, message)
        if status == NodeStatus.DOWN:
            for task in self.store.tasks_of_node(node.id):
                if not task.state.terminal:
                    self.store.update_task_status(task.id, TaskState.ORPHANED, message="orphaned",
                                                  error=f"node {node.hostname} is down")
