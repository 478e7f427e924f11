"""Watching the nodes: what each engine says happened to its containers, and
whether the engine answers at all.

One watcher per node in the whole cluster (a lease in Redis decides which
worker process holds it; another takes over when it dies). It keeps the
engine's event stream open, so a container's death is a task state within a
second, and pings the engine every heartbeat period. A broken event stream
is the fastest sign of a lost engine, but one dropped connection is not a
lost node: the watcher confirms with a few quick pings before it reports the
node unreachable. The manager's node monitor decides `Down` from the reports.

Whenever it (re)connects, and every few heartbeats, the watcher also compares
the node's containers with the tasks: containers of tasks no longer wanted
there are stopped and removed, deaths missed while away are recorded.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import requests

from swarmpy.model import DesiredState, Node, TaskState
from swarmpy.store import NotFound
from swarmpy.worker import containers as labels
from swarmpy.worker.context import WorkerContext
from swarmpy.worker.engine import Engines

log = logging.getLogger(__name__)

CONFIRM_PINGS = 3  # failed pings, CONFIRM_INTERVAL apart, that make a node unreachable
CONFIRM_INTERVAL = 0.5
PING_TIMEOUT = 2.0
LEASE_MS = 5000
SYNC_EVERY = 6  # heartbeats between two full comparisons of containers and tasks


def ping(client) -> None:
    response = client.api.get(client.api._url("/_ping"), timeout=PING_TIMEOUT)
    response.raise_for_status()


class NodeWatcher(threading.Thread):
    def __init__(self, ctx: WorkerContext, node_id: str, holder: str, heartbeat: float):
        super().__init__(name=f"watch-{node_id[:8]}", daemon=True)
        self.ctx, self.store, self.node_id, self.holder = ctx, ctx.store, node_id, holder
        self.heartbeat = heartbeat
        self.engines = Engines(ctx.identity_of, timeout=30)  # its own connections: the stream holds one
        self.stop_event = threading.Event()
        self.stream_broken = threading.Event()
        self.connected = False
        self.slow_since: float | None = None  # when the engine began to answer only too slowly

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def own_label(self) -> str:
        """This cluster's containers (an engine may run other clusters' too: never touch those)."""
        return f"{labels.LABEL_CLUSTER}={self.ctx.cluster_id}"

    def run(self) -> None:
        beats = 0
        while not self.stop_event.is_set():
            try:
                if not self.store.acquire_lease(f"watch:{self.node_id}", self.holder, LEASE_MS):
                    self.connected = False
                    self.stop_event.wait(1.0)
                    continue
                node = self.store.get_node(self.node_id)
            except NotFound:
                return  # the node was removed
            except Exception as e:
                log.warning("watcher %s: store unreachable: %s", self.node_id, e)
                self.stop_event.wait(1.0)
                continue
            if not self.connected:
                self.connect(node)
                beats = 0
            else:
                self.check(node)
                beats += 1
                if self.connected and beats % SYNC_EVERY == 0:
                    self.sync(node)
            self.wait_beat()
        self.store.release_lease(f"watch:{self.node_id}", self.holder)
        self.engines.close()

    def wait_beat(self) -> None:
        """Sleep until the next heartbeat, renewing the lease every second; wake at once if the stream broke."""
        deadline = time.time() + (self.heartbeat if self.connected else 1.0)
        while not self.stop_event.is_set() and time.time() < deadline:
            if self.connected and self.stream_broken.wait(min(1.0, max(0.0, deadline - time.time()))):
                return
            if not self.connected:
                self.stop_event.wait(min(1.0, max(0.0, deadline - time.time())))
            self.store.acquire_lease(f"watch:{self.node_id}", self.holder, LEASE_MS)

    def connect(self, node: Node) -> None:
        try:
            client = self.engines.client(node)
            ping(client)
        except Exception as e:
            self.engines.drop(node.id)
            self.report_failure(node, e)
            return
        self.connected, self.slow_since = True, None
        self.stream_broken.clear()
        self.store.record_heartbeat(node.id, True)
        threading.Thread(target=self.follow_events, args=(node, client), name=f"events-{node.id[:8]}",
                         daemon=True).start()
        self.sync(node)

    def check(self, node: Node) -> None:
        """A heartbeat: ping; if it fails (or the stream broke), confirm before reporting."""
        for attempt in range(CONFIRM_PINGS):
            try:
                ping(self.engines.client(node))
                self.slow_since = None
                if not self.stream_broken.is_set():
                    self.store.record_heartbeat(node.id, True)
                    return
                # the engine answers but the stream died: reconnect it
                self.connected = False
                self.engines.drop(node.id)
                self.connect(node)
                return
            except Exception as e:
                error = e
                if not _timed_out(e):
                    self.engines.drop(node.id)
                if attempt + 1 < CONFIRM_PINGS:
                    self.stop_event.wait(CONFIRM_INTERVAL)
        if self.report_failure(node, error):
            self.connected = False
            self.engines.drop(node.id)

    def report_failure(self, node: Node, error: Exception) -> bool:
        """Report a failed contact with the engine; True when it is evidence the node is unreachable."""
        if _timed_out(error) and host_answers(node):
            # slow, not gone: the host's sshd greets us (a busy engine, a slow login shell there)
            self.slow_since = self.slow_since or time.time()
            self.store.record_heartbeat(node.id, False, f"engine answers too slowly: {_short(error)}",
                                        conclusive=False, since=self.slow_since)
            log.warning("node %s (%s): engine slow, host reachable: %s", node.hostname, node.id, _short(error))
            return False
        self.store.record_heartbeat(node.id, False, f"engine unreachable: {_short(error)}")
        log.warning("node %s (%s): unreachable: %s", node.hostname, node.id, _short(error))
        return True

    def follow_events(self, node: Node, client) -> None:
        try:
            stream = client.api.events(decode=True, filters={"type": "container", "label": self.own_label})
            for event in stream:
                if self.stop_event.is_set():
                    break
                self.on_event(node, event)
        except Exception as e:
            log.info("node %s: event stream ended: %s", node.hostname, _short(e))
        finally:
            self.stream_broken.set()

    def on_event(self, node: Node, event: dict) -> None:
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        task_id, action = attrs.get(labels.LABEL_TASK), event.get("Action") or event.get("status") or ""
        if not task_id:
            return
        try:
            if action == "die":
                self.record_exit(task_id, int(attrs.get("exitCode", -1)))
            elif action.startswith("health_status"):
                health = action.split(":", 1)[1].strip()
                task = self.store.get_task(task_id)
                if task.state == TaskState.RUNNING and health == "unhealthy" and task.desired_state == \
                        DesiredState.RUNNING:
                    # as in Swarm, an unhealthy task has failed: it is stopped, and its restart policy
                    # decides on a successor (before, it only left the load balancers, for good)
                    self.store.update_task_status(task_id, TaskState.FAILED, message="failed", health=health,
                                                  error="task: unhealthy container")
                elif task.state == TaskState.RUNNING:
                    self.store.update_task_status(task_id, TaskState.RUNNING, health=health)
            elif action == "destroy":
                self.store.update_task_status(task_id, TaskState.FAILED, message="failed",
                                              error="container removed outside swarmpy")
        except NotFound:
            pass

    def record_exit(self, task_id: str, code: int) -> None:
        task = self.store.get_task(task_id)
        if task.desired_state == DesiredState.SHUTDOWN:
            self.store.update_task_status(task_id, TaskState.SHUTDOWN, message="shutdown", exit_code=code)
        elif code == 0:
            self.store.update_task_status(task_id, TaskState.COMPLETE, message="finished", exit_code=0)
        else:
            self.store.update_task_status(task_id, TaskState.FAILED, message="failed", exit_code=code,
                                          error=f"task: non-zero exit ({code})")

    def sync(self, node: Node) -> None:
        """Bring containers and tasks into line (after a disconnection, and now and then)."""
        listed_at = time.time()
        try:
            client = self.engines.client(node)
            found = client.api.containers(all=True, filters={"label": self.own_label})
        except Exception as e:
            log.info("node %s: cannot list containers: %s", node.hostname, _short(e))
            return
        by_task = {c["Labels"][labels.LABEL_TASK]: c for c in found}
        tasks = {t.id: t for t in self.store.get_tasks(by_task)}
        for task_id, c in by_task.items():
            task = tasks.get(task_id)
            running = c["State"] in ("running", "restarting", "paused")
            try:
                if task is None or task.node_id != node.id or task.state == TaskState.ORPHANED:
                    client.api.remove_container(c["Id"], v=True, force=True)
                elif task.desired_state == DesiredState.SHUTDOWN and running:
                    if task.state.terminal:  # recorded as gone while its node was away
                        client.api.kill(c["Id"], signal="SIGKILL")
                    else:  # a regular stop, grace period and all
                        self.store.dispatch_at(task_id, time.time())
                elif c["State"] in ("exited", "dead") and task.state == TaskState.RUNNING:
                    # it died while we were not listening ("created" ones belong to a start job at work)
                    info = client.api.inspect_container(c["Id"])
                    self.record_exit(task_id, info["State"].get("ExitCode", -1))
            except Exception as e:
                log.info("node %s: sync of task %s: %s", node.hostname, task_id, _short(e))
        for task in self.store.tasks_of_node(node.id):
            # a task that started after the listing has a container the listing could not see
            if task.state == TaskState.RUNNING and task.id not in by_task and task.updated_at < listed_at - 1:
                self.store.update_task_status(task.id, TaskState.FAILED, message="failed",
                                              error="container disappeared")


def _timed_out(error: Exception) -> bool:
    return isinstance(error, (TimeoutError, requests.exceptions.Timeout)) or "timed out" in str(error).lower()


def host_answers(node: Node, timeout: float = PING_TIMEOUT) -> bool:
    """The node's host is there: its sshd greets a new connection (no login, no shell), or, for
    this machine's own engine, the machine is the one asking."""
    if node.ssh_user is None:
        return True
    try:
        with socket.create_connection((node.address, node.ssh_port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _short(error: Exception) -> str:
    return (str(error) or type(error).__name__).splitlines()[0][:200]


class WatcherSupervisor(threading.Thread):
    """Keeps one watcher thread per node this machine can reach (each competes for the node's lease)."""

    def __init__(self, ctx: WorkerContext, holder: str):
        super().__init__(name="watchers", daemon=True)
        self.ctx, self.holder = ctx, holder
        self.watchers: dict[str, NodeWatcher] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                heartbeat = float(self.ctx.store.cluster_info().get("heartbeat", 5))
                nodes = {n.id: n for n in self.ctx.store.list_nodes() if self.ctx.can_reach(n)}
                for node_id in nodes.keys() - self.watchers.keys():
                    w = NodeWatcher(self.ctx, node_id, self.holder, heartbeat)
                    self.watchers[node_id] = w
                    w.start()
                for node_id in list(self.watchers):
                    if node_id not in nodes or not self.watchers[node_id].is_alive():
                        self.watchers.pop(node_id).stop()
            except Exception as e:
                log.warning("watchers: %s", _short(e))
            self.stop_event.wait(1.0)
        for w in self.watchers.values():
            w.stop()

    def stop(self) -> None:
        self.stop_event.set()
