"""The leader's control loops in a process of their own, a child of the manager.

The API answers on every manager; on the leader the control loops react to each
change it makes. In one process they shared one GIL, so each deploy's reactions
held up the API's next requests (a deploy call's p50 and p99). Here the API's
process only answers, and this one runs `Leadership` and its loops.

The loops read the store's events through one shared reader (`feed.EventFeed`).
The child campaigns under its manager's id (the leader lease is the manager's,
as `node ls` shows it), dies with the manager (PR_SET_PDEATHSIG: the lease is
released at once, and a failover follows), and is started again by the manager
when it dies, with the supervisor's backoff. Its histograms are served on a
unix socket (`run/loops-metrics.<pid>.sock`) for the manager's `/metrics`.
"""

from __future__ import annotations

import logging
import os
import socketserver
import subprocess
import sys
import threading
import time

from prometheus_client import CollectorRegistry, generate_latest

from swarmpy.lifetime import FIRST_BACKOFF, StopSignals, describe_exit, next_backoff, stop_child
from swarmpy.manager.allocator import NetworkAllocator
from swarmpy.manager.component import SWITCH_INTERVAL
from swarmpy.manager.dispatcher import Dispatcher, JobQueues
from swarmpy.manager.feed import EventFeed
from swarmpy.manager.leader import Leadership
from swarmpy.manager.metrics import LOOPS_MEASURED
from swarmpy.manager.monitor import NodeMonitor
from swarmpy.manager.orchestrator import Orchestrator
from swarmpy.manager.scheduling import SchedulerLoop
from swarmpy.settings import StateDir
from swarmpy.store import Store, replication

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0


def run(state: StateDir, manager_id: str) -> None:
    """The child: lead when the lease is ours, until SIGTERM (or the manager's death)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = state.load()
    store = Store.from_config(config)

    feed = EventFeed(store)

    def components():
        queues = JobQueues(store, connection=replication.client(config, decode_responses=False))
        loops = [NodeMonitor(store), Orchestrator(store), SchedulerLoop(store), Dispatcher(store, queues),
                 NetworkAllocator(store)]
        for loop in loops:
            loop.feed = feed
        return loops

    stops = StopSignals()
    socket_path = state.metrics_socket("loops", os.getpid())
    figures = serve_figures(socket_path)
    feed.start()
    leadership = Leadership(store, manager_id, components)
    leadership.start()
    try:
        while not stops.wait(1.0):
            pass
    finally:
        leadership.stop()
        leadership.join(timeout=10)
        feed.stop()
        if figures is not None:
            figures.shutdown()
            socket_path.unlink(missing_ok=True)


def serve_figures(path) -> socketserver.BaseServer | None:
    """The loops' histograms on a unix socket: each connection gets the text, then EOF."""
    registry = CollectorRegistry(auto_describe=False)
    for metric in LOOPS_MEASURED:
        registry.register(metric)

    class Answer(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                self.request.sendall(generate_latest(registry))
            except OSError:
                pass  # the manager gave up waiting

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # left by a killed process of the same pid
        server = socketserver.ThreadingUnixStreamServer(str(path), Answer)
        os.chmod(path, 0o600)
    except OSError as e:  # a state dir too deep for a socket's path: the loops still run
        log.warning("loops: cannot serve figures at %s: %s", path, e)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="figures", daemon=True).start()
    return server


class LoopsProcess(threading.Thread):
    """In the manager: keeps its control loops' process running, and stops it with the manager."""

    def __init__(self, state: StateDir, manager_id: str):
        super().__init__(name="loops-process", daemon=True)
        self.command = [sys.executable, "-m", "swarmpy", "manager-loops", "--state-dir", str(state.path),
                        "--manager-id", manager_id, "--parent", str(os.getpid()),
                        "--log-level", logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()]
        self.process: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self.stopping.is_set():
            with self.lock:
                if self.stopping.is_set():
                    return
                started = time.monotonic()
                self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL)
            code = self.process.wait()
            if self.stopping.is_set():
                return
            pause, backoff = next_backoff(backoff, time.monotonic() - started)
            log.warning("manager: the control loops' process %s; starting it again in %.1f s",
                        describe_exit(code), pause)
            self.stopping.wait(pause)

    def stop(self) -> None:
        """SIGTERM (its loops stop and the lease is released), SIGKILL after STOP_TIMEOUT."""
        with self.lock:
            self.stopping.set()
            process = self.process
        if process is not None:
            stop_child(process, STOP_TIMEOUT)
