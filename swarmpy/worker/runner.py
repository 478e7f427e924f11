"""`swarmpy worker`: job processes plus the node watchers.

The parent process keeps a few job processes alive and runs the watchers of
the nodes this machine can reach. Each job process runs several rq workers,
one per thread, that run their jobs in the process itself (rq's SimpleWorker:
no fork per job, so one Docker client per node is opened once and reused; a
fork per job costs more than the short jobs themselves). Jobs mostly wait on
engines, so threads give the parallelism: with several nodes, many at once,
but never more than `per_node` on one node, which is where an engine stops
going faster and starts going slower.

Each worker listens on the queue of every node it can reach: one queue per
node, so a slow or dead host never delays another. Logs and exec sessions
last as long as their user wants: they have queues of their own per node
(`session_queue`), served by other threads that take no node slot, so that
no number of `logs -f` holds up a task's start. The queue list follows the
nodes as they come and go and leaves out the nodes already busy to their
limit (a job taken for one goes back to the head of its queue); each worker
orders the nodes at random, so that no node is everyone's first.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
import socket
import threading
import time

from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty
from rq.serializers import JSONSerializer

from swarmpy.lifetime import StopSignals, die_with_parent
from swarmpy.model import NodeStatus
from swarmpy.settings import StateDir
from swarmpy.store import Store, replication
from swarmpy.vault import Vault
from swarmpy.worker import probe
from swarmpy.network.programmer import NetworkSupervisor
from swarmpy.worker.context import WorkerContext, set_current
from swarmpy.worker.engine import Engines
from swarmpy.worker.watch import WatcherSupervisor

log = logging.getLogger(__name__)

ALIVE_TTL = 5.0
HEARTBEAT_EVERY = 30.0  # seconds between two heartbeats of an idle rq worker


class NodeSlots:
    """How many jobs this process runs at once on each node queue, against the most allowed."""

    def __init__(self, per_node: int):
        self.per_node = per_node
        self.busy: dict[str, int] = {}
        self.lock = threading.Lock()

    def take(self, queue: str) -> bool:
        """A slot on this queue's node, if one is free."""
        with self.lock:
            if self.busy.get(queue, 0) >= self.per_node:
                return False
            self.busy[queue] = self.busy.get(queue, 0) + 1
            return True

    def full(self, queue: str) -> bool:
        return self.busy.get(queue, 0) >= self.per_node

    def give(self, queue: str) -> None:
        with self.lock:
            self.busy[queue] -= 1


class ReachableNodes:
    """The nodes this machine reaches and that are not down, read at most once a second for all
    the rq workers of a job process (each looks every second)."""

    def __init__(self, ctx: WorkerContext, max_age: float = 1.0):
        self.ctx, self.max_age = ctx, max_age
        self.nodes: list = []
        self.read_at = float("-inf")
        self.lock = threading.Lock()

    def get(self) -> list:
        with self.lock:
            if time.monotonic() - self.read_at >= self.max_age:
                self.nodes = [n for n in self.ctx.store.list_nodes()
                              if self.ctx.can_reach(n) and n.status != NodeStatus.DOWN]
                self.read_at = time.monotonic()
            return self.nodes


class NodeQueueWorker(SimpleWorker):
    """An rq worker (in a thread of its job process) whose queues are the nodes this machine
    reaches and that are not busy to their limit, refreshed every second."""

    death_penalty_class = TimerDeathPenalty  # SIGALRM is for a process's main thread only

    def __init__(self, ctx: WorkerContext, slots: NodeSlots, nodes: ReachableNodes, *args, **kwargs):
        self.ctx, self.slots, self.nodes = ctx, slots, nodes
        self._beat_at = float("-inf")  # (monotonic) the last heartbeat written
        super().__init__(self.current_queue_names(), *args, **kwargs)

    def _install_signal_handlers(self):
        pass  # the process's main thread handles signals and stops its workers

    # rq writes the worker's heartbeat and state before each wait for a job, every second here:
    # with 56 idle workers a machine, those writes were most of an idle cluster's CPU and store load.
    # The worker's key lives worker_ttl + 60 s (8 min): a heartbeat every HEARTBEAT_EVERY keeps it.
    def heartbeat(self, timeout=None, pipeline=None):
        if timeout is None and pipeline is None and time.monotonic() - self._beat_at < HEARTBEAT_EVERY:
            return
        super().heartbeat(timeout, pipeline)
        self._beat_at = time.monotonic()

    def set_state(self, state, pipeline=None):
        if pipeline is None and state == self._state:
            return
        try:
            super().set_state(state, pipeline)
        except Exception:
            self._state = None  # rq set it before the write that failed: write it next time
            raise

    def execute_job(self, job, queue):
        started = time.monotonic()
        try:
            return super().execute_job(job, queue)
        finally:
            if self.takes_slot(queue.name):
                self.slots.give(queue.name)
            _observe(self.ctx.store, queue.name, job, time.monotonic() - started)

    def takes_slot(self, queue: str) -> bool:
        return queue != self.ctx.store.control_queue

    def current_queue_names(self) -> list[str]:
        names = [q for q in (self.ctx.store.queue_name(n.id) for n in self.nodes.get())
                 if not self.slots.full(q)]
        random.shuffle(names)  # no node first for every worker
        return [self.ctx.store.control_queue] + names

    def refresh_queues(self) -> None:
        names = self.current_queue_names()
        self.queues = [self.queue_class(n, connection=self.connection, serializer=self.serializer) for n in names]
        self._ordered_queues = self.queues[:]

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        # Wait at most a second at a time, so that new nodes' queues are picked up.
        while not self._stop_requested:
            self.refresh_queues()
            result = super().dequeue_job_and_maintain_ttl(1, max_idle_time=1)
            if result is None:
                continue
            job, queue = result
            if not self.takes_slot(queue.name) or self.slots.take(queue.name):
                return result
            queue.push_job_id(job.id, at_front=True)  # its node is busy enough: back for later
        return None


class SessionWorker(NodeQueueWorker):
    """An rq worker (a thread of a job process) for the sessions (logs, exec) of the nodes this
    machine reaches: no node slot, as a session mostly waits on its user."""

    def takes_slot(self, queue: str) -> bool:
        return False

    def current_queue_names(self) -> list[str]:
        names = [self.ctx.store.session_queue(n.id) for n in self.nodes.get()]
        random.shuffle(names)
        return names


def _observe(store: Store, queue: str, job, seconds: float) -> None:
    """The job's duration, for the managers' /metrics (per node and kind of job)."""
    node_id = store.node_of_queue(queue)
    if node_id is None:
        return
    try:
        store.observe_job(node_id, job.func_name.rsplit(".", 1)[-1], seconds)
    except Exception as e:  # noqa: BLE001 - a figure lost is no reason to fail the job
        log.debug("worker: cannot record the duration of job %s: %s", job.id, e)


def _keep_alive(store: Store, names: list[str], stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            store.mark_alive_many("worker", names, {"pid": os.getpid(), "host": socket.gethostname()}, ALIVE_TTL)
        except Exception:
            pass


def make_context(state: StateDir) -> WorkerContext:
    config = state.load()
    vault = Vault.from_file(state.key_file) if state.key_file.exists() else None
    return WorkerContext.create(Store.from_config(config, replication.WORKER), vault, state)


def job_process(state_path: str, parent: int, threads: int, per_node: int, sessions: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    # a job process without its worker would go on taking jobs that the next worker's processes
    # take too: it goes at once, and its unfinished jobs are retried
    die_with_parent(parent, signal.SIGKILL)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    state = StateDir(state_path)
    ctx = make_context(state)
    set_current(ctx)
    # the process is what holds locks (a dead process frees them); each thread is an rq worker
    ctx.worker_name = f"{socket.gethostname()}.{os.getpid()}"
    names = [f"{ctx.worker_name}.{t}" for t in range(threads)]
    session_names = [f"{ctx.worker_name}.s{t}" for t in range(sessions)]
    alive_names = [ctx.worker_name, *names, *session_names]
    stop = threading.Event()
    ctx.store.mark_alive_many("worker", alive_names, {"pid": os.getpid()}, ALIVE_TTL)
    threading.Thread(target=_keep_alive, args=(ctx.store, alive_names, stop), daemon=True).start()
    connection = replication.client(state.load(), replication.WORKER, decode_responses=False,
                                    max_connections=(threads + sessions) * 4)
    slots, nodes = NodeSlots(per_node), ReachableNodes(ctx)
    workers = [NodeQueueWorker(ctx, slots, nodes, connection=connection, name=name, serializer=JSONSerializer)
               for name in names]
    workers += [SessionWorker(ctx, slots, nodes, connection=connection, name=name, serializer=JSONSerializer)
                for name in session_names]
    runners = [threading.Thread(target=w.work, kwargs={"logging_level": "WARNING"}, daemon=True) for w in workers]
    for r in runners:
        r.start()
    stops = StopSignals(signal.SIGTERM)
    while not stops.wait(1.0) and any(r.is_alive() for r in runners):
        pass
    stop.set()
    for w in workers:
        w._stop_requested = True  # each finishes its job, then leaves
    for r in runners:
        r.join(30)
    for name in alive_names:
        ctx.store.forget_alive("worker", name)


def run(state: StateDir, processes: int = 2, threads: int = 12, per_node: int = 4,
        local_node: dict | None = None, sessions: int = 16) -> None:
    """The worker's parent: start the job processes, watch the nodes, restart what dies."""
    ctx = make_context(state)
    set_current(ctx)
    if local_node is not None:
        probe.register_local_node(ctx, **local_node)
    spawn = multiprocessing.get_context("spawn")
    children: dict[int, multiprocessing.Process] = {}

    def start(index: int) -> None:
        p = spawn.Process(target=job_process, args=(str(state.path), os.getpid(), threads, per_node, sessions),
                          name=f"swarmpy-job-{index}",
                          daemon=True)
        p.start()
        children[index] = p

    stops = StopSignals()
    for i in range(processes):
        start(i)
    holder = f"{socket.gethostname()}.{os.getpid()}"
    watchers = WatcherSupervisor(ctx, holder=holder)
    watchers.start()
    networks = NetworkSupervisor(ctx.store, holder, state.load().advertise_addr, ctx.can_reach,
                                 lambda: Engines(ctx.identity_of, timeout=30), ctx.is_local)
    networks.start()
    log.info("worker: %d job processes, watching nodes", processes)
    while not stops.wait(1.0):
        for i, p in list(children.items()):
            if not p.is_alive():
                log.warning("worker: job process %d exited (%s); starting another", i, p.exitcode)
                start(i)
    watchers.stop()
    networks.stop()
    for p in children.values():
        p.terminate()
    deadline = time.time() + 10
    for p in children.values():
        p.join(max(0.1, deadline - time.time()))
        if p.is_alive():
            p.kill()
