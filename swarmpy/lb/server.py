"""`swarmpy lb`: the ingress routing mesh on this host.

A thread follows the store's event stream and rebuilds the routing table
when tasks, services or nodes change (within a second of the change, from
the stream, not from polling); the event loop applies it: new published
ports are opened, removed ones closed, endpoints swapped in place. Every
second, and at once after each change, the load balancer writes its status
to the store: its ports and endpoints, and up to which change it has applied
(the stop of a task waits for every load balancer to have drained it).

The data plane outlives the control plane: while the store does not answer,
the table stays as it was (and the health checks keep judging its
endpoints); a load balancer that starts while the store is away serves the
last table it applied, kept in its state dir.

Ports are served by the kernel (`kernel.py`: iptables DNAT, no Python on the
packet path) unless their service asks for what only the proxy does (least
connections, the PROXY protocol); the proxy listens on every port all the same,
for loopback clients and for when the kernel refuses its rules. For the kernel
path, every endpoint is probed each second (the kernel cannot skip one that
refuses, as the proxy does), and one that does not accept leaves the rules.

With `--processes N`, N processes share each port (SO_REUSEPORT), one per core;
the first programs the kernel.
Each serves its figures to the manager of the host (`swarmpy.lb.metrics`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from pathlib import Path

from swarmpy.lb import metrics, routes
from swarmpy.lb.balance import PROBE_EVERY
from swarmpy.lb.kernel import KernelPath
from swarmpy.lb.proxy import Health, Listener
from swarmpy.lifetime import StopSignals, die_with_parent
from swarmpy.settings import StateDir
from swarmpy.store import ReadPace, SeenBehaviour, Store, replication

log = logging.getLogger(__name__)

CLUSTER_ID_FILE = "cluster-id"  # in the state dir's run/
STATUS_EVERY = 1.0
STATUS_TTL = 5.0


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


class Mesh:
    def __init__(self, store: Store, lb_id: str, node_id: str | None, host: str = "0.0.0.0",
                 table_file: Path | None = None, shared: bool = False):
        self.store, self.lb_id, self.node_id, self.host = store, lb_id, node_id, host
        self.shared = shared  # the ports are shared with sibling processes (SO_REUSEPORT)
        self.listeners: dict[tuple[int, str], Listener] = {}
        self.health = Health()
        self.applied_at = 0.0
        self.table_file = table_file
        self.kernel: KernelPath | None = None  # made once the cluster's id is known (it names the rules)

    def keep(self, table: dict[tuple[int, str], routes.Route]) -> None:
        """The table as last applied, for a restart while the store is away."""
        if self.table_file is None:
            return
        try:
            tmp = self.table_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(routes.dump(table))
            tmp.replace(self.table_file)
        except OSError as e:
            log.warning("lb: cannot keep the table in %s: %s", self.table_file, e)

    def note_cluster(self, cluster_id: str) -> None:
        """The id that names the kernel's rules, for `leave` when the store does not answer then."""
        if self.table_file is not None:
            try:
                self.table_file.with_name(CLUSTER_ID_FILE).write_text(cluster_id + "\n")
            except OSError as e:
                log.warning("lb: cannot note the cluster's id: %s", e)

    def kept(self) -> dict[tuple[int, str], routes.Route] | None:
        try:
            return routes.load(self.table_file.read_text()) if self.table_file else None
        except (OSError, ValueError, TypeError, KeyError):
            return None

    async def apply(self, table: dict[tuple[int, str], routes.Route], applied_at: float) -> None:
        for key in list(self.listeners):
            if key not in table:
                self.listeners.pop(key).close()
        for key, route in table.items():
            listener = self.listeners.get(key)
            if listener is None or listener.error:
                if listener is not None:
                    listener.close()
                listener = self.listeners[key] = Listener(route, self.health, self.shared)
                await listener.open(self.host)
            else:
                listener.update(route)
        await self.program_kernel()  # endpoints that went are out of the kernel before the report says so
        self.applied_at = max(self.applied_at, applied_at)
        self.report()
        if new := self.kernel_endpoints() - self.health.accepted:  # the kernel takes them once they accept
            asyncio.get_running_loop().create_task(self.admit(new))

    async def admit(self, endpoints: set) -> None:
        if await self.health.check(endpoints):
            await self.program_kernel()

    def kernel_endpoints(self) -> set:
        return {e for listener in self.listeners.values() if listener.route.path == "kernel"
                and listener.route.protocol == "tcp" for e in listener.route.endpoints}

    def kernel_routes(self) -> list[routes.Route]:
        """The ports the kernel serves, with their endpoints that have accepted a connection and not
        refused one since (UDP ones cannot be tried: all of them). A port with none is left to the
        proxy, which listens on it too and tries each endpoint in turn."""
        out = []
        for listener in self.listeners.values():
            route = listener.route
            if route.path == "kernel" and not listener.error:  # a port we hold: never another program's
                ready = [e for e in route.endpoints if route.protocol == "udp"
                         or (e in self.health.accepted and not self.health.is_down(e))]
                out.append(dataclasses.replace(route, endpoints=ready))
        return out

    async def program_kernel(self) -> None:
        if self.kernel is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.kernel.apply, self.kernel_routes())

    async def check_kernel_endpoints(self) -> None:
        """Each second, every TCP endpoint of the kernel's ports is tried; the rules follow."""
        while True:
            await asyncio.sleep(PROBE_EVERY)
            endpoints = self.kernel_endpoints()
            self.health.accepted &= endpoints  # forget the endpoints that went
            if endpoints and await self.health.check(endpoints):
                await self.program_kernel()

    def endpoints(self) -> set:
        return {e for lst in self.listeners.values() for e in lst.route.endpoints}

    def status(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "node_id": self.node_id,
                "applied_at": self.applied_at, "updated_at": time.time(),
                "kernel_error": self.kernel.error if self.kernel else None,
                "ports": {f"{port}/{proto}": lst.status() for (port, proto), lst in sorted(self.listeners.items())}}

    def report(self) -> None:
        try:
            self.store.put_lb_status(self.lb_id, self.status(), ttl_s=STATUS_TTL)
        except Exception as e:
            log.warning("lb: cannot write status: %s", e)

    async def report_forever(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY)
            await asyncio.get_running_loop().run_in_executor(None, self.report)


GAP_CHECK_EVERY = 1.0  # seconds between checks that the stream still holds what was not read
READ_PACE = 0.05  # a burst of changes rebuilds the table at most this often (kube-proxy's minSyncPeriod)


def follow_store(store: Store, mesh: Mesh, loop: asyncio.AbstractEventLoop, stop: threading.Event,
                 program_kernel: bool = True) -> None:
    """Rebuild the table whenever the event stream says something relevant changed."""
    cursor = "0-0"
    first = True
    served: set[str] = set()
    seen = SeenBehaviour()  # a service event that changes no route (a label of the user's) is let pass
    pace = ReadPace(READ_PACE)
    checked = 0.0
    while not stop.is_set():
        try:
            lost = None
            if not first and time.time() - checked >= GAP_CHECK_EVERY:
                checked, lost = time.time(), store.events_missed(cursor)
            if first or lost is not None:  # whatever happened before: the table is built anew
                if lost is not None:
                    log.warning("lb: the event stream lost events it had not read; building the table anew")
                cursor = store.last_event_id() if first else lost
                changed_at, first = time.time(), False
                seen.forget()
            else:
                events = pace.read(store, cursor, 1000, stop)
                if not events:
                    continue
                cursor = events[-1][0]
                publishing = functools.cache(lambda: set(store.publishing_names()))
                hits = [e for _, e in events if not seen.unchanged(e) and routes.relevant(e, served, publishing)]
                if not hits:
                    continue
                changed_at = max(float(e.get("time", 0)) for e in hits)
            # the cluster's id names the rules (a load balancer may start before `init` has written it)
            if mesh.kernel is None and program_kernel and (cluster_id := store.cluster_info().get("id")):
                mesh.kernel = KernelPath(cluster_id)
                mesh.note_cluster(cluster_id)
            table = routes.table(store)
            served = routes.served(table)
            asyncio.run_coroutine_threadsafe(mesh.apply(table, changed_at), loop).result(timeout=30)
            mesh.keep(table)
        except Exception as e:
            log.warning("lb: cannot follow the store (%s); retrying, the table as it is", e)
            if not mesh.applied_at and (kept := mesh.kept()) is not None:
                log.warning("lb: serving the table kept from before the start (%d ports)", len(kept))
                asyncio.run_coroutine_threadsafe(mesh.apply(kept, 0.0), loop).result(timeout=30)
                mesh.applied_at = -1.0  # applied, from the past: nothing is acknowledged with it
            first = True
            stop.wait(1.0)


def serve(state_path: str, node_id: str | None, host: str = "0.0.0.0", parent: int | None = None,
          shared: bool = False, program_kernel: bool = True, push_metrics: bool = False) -> None:
    if parent is not None:
        die_with_parent(parent)
    state = StateDir(state_path)
    store = Store.from_config(state.load(), replication.LB)
    lb_id = f"{socket.gethostname()}.{os.getpid()}"
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    mesh = Mesh(store, lb_id, node_id, host, state.run_dir / "lb-table.json", shared)
    stop = threading.Event()
    threading.Thread(target=follow_store, args=(store, mesh, loop, stop, program_kernel), name="lb-follow",
                     daemon=True).start()
    loop.create_task(mesh.report_forever())
    loop.create_task(mesh.health.probe(mesh.endpoints))
    if program_kernel:
        loop.create_task(mesh.check_kernel_endpoints())
    if push_metrics:  # no manager on this host to ask for them
        loop.create_task(metrics.push_forever(store, mesh))
    figures = state.metrics_socket("lb", os.getpid())
    figures_server = loop.run_until_complete(metrics.serve(mesh, figures))  # kept: a collected server closes
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        stop.set()
        for listener in mesh.listeners.values():
            listener.close()
        if mesh.kernel is not None:  # a load balancer that stops takes its rules along (killed: they stay)
            mesh.kernel.remove()
        if figures_server is not None:
            figures_server.close()
        figures.unlink(missing_ok=True)
        try:
            store.forget_lb(lb_id)
        except Exception:
            pass


def run(state: StateDir, node_id: str | None = None, processes: int = 1, host: str = "0.0.0.0",
        push_metrics: bool = False) -> None:
    if processes <= 1:
        serve(str(state.path), node_id, host, push_metrics=push_metrics)
        return
    spawn = multiprocessing.get_context("spawn")

    def start(first: bool) -> multiprocessing.Process:
        child = spawn.Process(target=serve, args=(str(state.path), node_id, host, os.getpid(), True, first,
                                                  push_metrics),
                              daemon=True)
        child.start()
        return child
    children = [start(i == 0) for i in range(processes)]
    stops = StopSignals()
    while not stops.wait(1.0):
        for i, child in enumerate(children):
            if not child.is_alive():
                children[i] = start(i == 0)
    for child in children:
        child.terminate()
        child.join(5)
