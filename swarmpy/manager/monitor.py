"""The node monitor (leader): turns what the watchers report into node states.

A node is `Ready` while its engine answers its heartbeats. It is `Down` on
evidence about the node: the watcher saw its engine refuse or its host
vanish (seconds, not three heartbeat periods), or no report came for three
heartbeat periods (the watcher itself is gone or cut off). The tasks of a
node that goes down become `Orphaned`, and the orchestrator places them again
elsewhere at once.

Evidence about the watcher is not evidence about the node (the data plane
must outlive the control plane's own trouble):
- an engine that only answers slowly while its host still answers SSH
  (a busy engine, a slow login shell on the host) is inconclusive: the node
  stays as it was for INCONCLUSIVE_LIMIT heartbeats before it is declared down;
- when every node reached over SSH that was ready (two or more) fails at
  once, the likelier fault is ours (the watchers' worker, their network, the
  store): none is declared down, and the monitor says so;
- after the store was unreachable, or when this manager has just become the
  leader, the watchers get three heartbeat periods to report again before a
  missing report counts.
"""

from __future__ import annotations

import logging
import time

from swarmpy.manager.component import Component
from swarmpy.model import Node, NodeStatus, TaskState

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3
INCONCLUSIVE_LIMIT = 12


class NodeMonitor(Component):
    name = "monitor"
    full_pass_every = 0.25

    def __init__(self, store):
        super().__init__(store)
        self.quiet_until = 0.0  # no missing report counts before this (set at start, after store trouble)
        self.suspecting = False

    def start(self):
        self.quiet_until = time.time() + MISSED_HEARTBEATS * self._heartbeat()
        return super().start()

    def _heartbeat(self) -> float:
        try:
            return float(self.store.cluster_info().get("heartbeat", 5))
        except Exception:  # noqa: BLE001 - the store is away: the default
            return 5.0

    def reconcile_all(self) -> None:
        now = time.time()
        try:
            heartbeat = float(self.store.cluster_info().get("heartbeat", 5))
            reports = self.store.heartbeats()
            nodes = self.store.list_nodes()
        except Exception:
            self.quiet_until = time.time() + MISSED_HEARTBEATS * 5.0  # the watchers could not report either
            raise
        changes, suspect = assess(nodes, reports, heartbeat, now, quiet=now < self.quiet_until)
        if suspect:
            if not self.suspecting:
                log.warning("monitor: every ready node fails at once: suspecting the watchers, not the nodes "
                            "(none is declared down)")
            self.suspecting = True
            return
        if self.suspecting:
            log.warning("monitor: the watchers report again; judging nodes on their own reports")
            self.suspecting = False
            self.quiet_until = max(self.quiet_until, now + MISSED_HEARTBEATS * heartbeat)
            return
        for node, status, message in changes:
            self.set_status(node, status, message)

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


def judge(node: Node, report: dict | None, heartbeat: float, now: float,
          quiet: bool = False) -> tuple[NodeStatus, str]:
    limit = MISSED_HEARTBEATS * heartbeat
    if report is None:
        if now - node.created_at <= limit or quiet:
            return node.status, node.message
        return NodeStatus.DOWN, "heartbeat failure: no watcher reached this node"
    if now - report["time"] > limit:
        if quiet:
            return node.status, node.message
        return NodeStatus.DOWN, "heartbeat failure"
    if not report["ok"]:
        if report.get("conclusive", True):
            return NodeStatus.DOWN, report.get("message") or "engine unreachable"
        if now - report.get("since", report["time"]) > INCONCLUSIVE_LIMIT * heartbeat:
            return NodeStatus.DOWN, report.get("message") or "engine does not answer"
        return node.status, node.message
    return NodeStatus.READY, ""


def assess(nodes: list[Node], reports: dict[str, dict], heartbeat: float, now: float,
           quiet: bool = False) -> tuple[list[tuple[Node, NodeStatus, str]], bool]:
    """The status changes the reports call for, and whether to suspect the watchers instead: every
    node reached over SSH that was ready (two or more) failing at once (this machine's own engine,
    on its socket, says nothing of the network to the others)."""
    verdicts = {n.id: judge(n, reports.get(n.id), heartbeat, now, quiet) for n in nodes}
    ready = [n for n in nodes if n.status == NodeStatus.READY and n.ssh_user is not None]
    if len(ready) >= 2 and all(verdicts[n.id][0] == NodeStatus.DOWN for n in ready):
        return [], True
    return [(n, *verdicts[n.id]) for n in nodes if verdicts[n.id][0] != n.status], False
