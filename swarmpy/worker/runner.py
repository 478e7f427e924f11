"""`swarmpy worker`: job processes plus the node watchers.

The parent process keeps N job processes alive and runs the watchers of the
nodes this machine can reach. Each job process is an rq worker that runs jobs
in its own process (rq's SimpleWorker: no fork per job, so one Docker client
per node is opened once and reused; a fork per job would cost more than the
job for the short ones) and listens on the queue of every node it can reach:
one queue per node, so a slow or dead host never delays another. The queue
list follows the nodes as they come and go, and every process starts its
rotation at a different node.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from swarmpy.lifetime import die_with_parent
from swarmpy.model import NodeStatus
from swarmpy.settings import StateDir
from swarmpy.store import Store
from swarmpy.vault import Vault
from swarmpy.worker import probe
from swarmpy.worker.context import WorkerContext, set_current
from swarmpy.worker.watch import WatcherSupervisor

log = logging.getLogger(__name__)

ALIVE_TTL = 5.0


class NodeQueueWorker(SimpleWorker):
    """An rq worker whose queues are the nodes this machine reaches, refreshed every second."""

    def __init__(self, ctx: WorkerContext, index: int, *args, **kwargs):
        self.ctx, self.index = ctx, index
        super().__init__(self.current_queue_names(), *args, **kwargs)

    def current_queue_names(self) -> list[str]:
        nodes = [n for n in self.ctx.store.list_nodes()
                 if self.ctx.can_reach(n) and n.status != NodeStatus.DOWN]
        names = [self.ctx.store.queue_name(n.id) for n in nodes]
        if names:
            k = self.index % len(names)
            names = names[k:] + names[:k]
        return [self.ctx.store.control_queue] + names

    def refresh_queues(self) -> None:
        names = self.current_queue_names()
        if names != self.queue_names():
            self.queues = [self.queue_class(n, connection=self.connection, serializer=self.serializer)
                           for n in names]
            self._ordered_queues = self.queues[:]

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        # Wait at most a second at a time, so that new nodes' queues are picked up.
        while not self._stop_requested:
            self.refresh_queues()
            result = super().dequeue_job_and_maintain_ttl(1, max_idle_time=1)
            if result is not None:
                return result
        return None


def _keep_alive(store: Store, name: str, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            store.mark_alive("worker", name, {"pid": os.getpid(), "host": socket.gethostname()}, ALIVE_TTL)
        except Exception:
            pass


def make_context(state: StateDir) -> WorkerContext:
    config = state.load()
    vault = Vault.from_file(state.key_file) if state.key_file.exists() else None
    return WorkerContext.create(Store.from_url(config.redis_url), vault, state)


def job_process(state_path: str, index: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    die_with_parent(parent)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    state = StateDir(state_path)
    ctx = make_context(state)
    set_current(ctx)
    store = ctx.store
    redis_url = state.load().redis_url
    name = f"{socket.gethostname()}.{os.getpid()}"
    ctx.worker_name = name
    stop = threading.Event()
    store.mark_alive("worker", name, {"pid": os.getpid()}, ALIVE_TTL)
    threading.Thread(target=_keep_alive, args=(store, name, stop), daemon=True).start()
    worker = NodeQueueWorker(ctx, index, connection=redis.Redis.from_url(redis_url), name=name,
                             serializer=JSONSerializer)
    try:
        worker.work(logging_level="WARNING")
    finally:
        stop.set()
        store.forget_alive("worker", name)


def run(state: StateDir, processes: int = 8, local_node: dict | None = None) -> None:
    """The worker's parent: start the job processes, watch the nodes, restart what dies."""
    ctx = make_context(state)
    set_current(ctx)
    if local_node is not None:
        probe.register_local_node(ctx, **local_node)
    spawn = multiprocessing.get_context("spawn")
    children: dict[int, multiprocessing.Process] = {}
    stopping = threading.Event()

    def start(index: int) -> None:
        p = spawn.Process(target=job_process, args=(str(state.path), index, os.getpid()), name=f"swarmpy-job-{index}",
                          daemon=True)
        p.start()
        children[index] = p

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for i in range(processes):
        start(i)
    watchers = WatcherSupervisor(ctx, holder=f"{socket.gethostname()}.{os.getpid()}")
    watchers.start()
    log.info("worker: %d job processes, watching nodes", processes)
    while not stopping.wait(1.0):
        for i, p in list(children.items()):
            if not p.is_alive():
                log.warning("worker: job process %d exited (%s); starting another", i, p.exitcode)
                start(i)
    watchers.stop()
    for p in children.values():
        p.terminate()
    deadline = time.time() + 10
    for p in children.values():
        p.join(max(0.1, deadline - time.time()))
        if p.is_alive():
            p.kill()
