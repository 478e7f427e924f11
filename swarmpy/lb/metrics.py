"""The mesh's figures for Prometheus, served to the manager of this host.

A load balancer is a process of its own, and the manager's `/metrics` is the one
scrape target of the host: each load balancer process serves its figures on a
unix socket in the state dir's run/ dir (`lb-metrics.<pid>.sock`; connect, read
the Prometheus text to its end), and the manager appends what every socket there
says. A unix socket rather than a loopback port: no port to choose or to clash
with another cluster's on the same machine, and only the state dir's owner can
reach it. Rather than Redis: the counters change at the rate of the traffic and
cost nothing until someone scrapes.

A load balancer on a host with no manager (`node update --lb true`) has no
manager of its host to ask it: it pushes its text to the store every
PUSH_EVERY seconds instead (`--push-metrics`, `lb:metrics:<lb>`, expiring
after three pushes), and the leader's `/metrics` adds the texts there, so that
each figure has one scrape target.

Every figure is read from the listeners when scraped (`Balancer.traffic`, the
endpoints' health), and carries an `lb` label (host.pid, as in `/lb`): processes
sharing ports (`--processes N`) each count their own. The counts are the proxy's:
on a port the kernel serves (`swarmpy_lb_port_path`), only loopback clients go
through the proxy; the kernel's own are counted apart, from its rules' counters
(`swarmpy_lb_kernel_*`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)

LABELS = ["lb", "port", "protocol", "service"]
ENDPOINT_STATES = ("up", "down", "draining")


class MeshCollector:
    """The figures of a `Mesh`'s listeners, as they are at the time of the scrape."""

    def __init__(self, mesh):
        self.mesh = mesh

    def collect(self):
        families = {
            "open": GaugeMetricFamily("swarmpy_lb_open_connections", "Connections open now through a published port",
                                      labels=LABELS),
            "connections": CounterMetricFamily("swarmpy_lb_connections", "Connections (TCP) or flows (UDP) taken "
                                               "on a published port", labels=LABELS),
            "bytes": CounterMetricFamily("swarmpy_lb_bytes", "Bytes through a published port, from (in) and to "
                                         "(out) the clients", labels=LABELS + ["direction"]),
            "errors": CounterMetricFamily("swarmpy_lb_backend_connect_errors", "Endpoints that refused, timed out "
                                          "or reset a connection without a word", labels=LABELS),
            "unserved": CounterMetricFamily("swarmpy_lb_unserved_connections", "Connections no endpoint took "
                                            "(the client saw a reset)", labels=LABELS),
            "endpoints": GaugeMetricFamily("swarmpy_lb_endpoints", "A published port's endpoints by state",
                                           labels=LABELS + ["state"]),
            "listening": GaugeMetricFamily("swarmpy_lb_port_listening", "1 when the port is open, 0 when it cannot "
                                           "listen (another program holds it)", labels=LABELS),
            "kernel_connections": CounterMetricFamily("swarmpy_lb_kernel_connections", "Connections (TCP) or "
                                                      "flows (UDP) the kernel DNATed on a published port",
                                                      labels=LABELS),
            "kernel_bytes": CounterMetricFamily("swarmpy_lb_kernel_forwarded_bytes", "Bytes the kernel forwarded "
                                                "for a published port, both ways (not those of this host's own "
                                                "clients, which are not forwarded)", labels=LABELS),
            "path": GaugeMetricFamily("swarmpy_lb_port_path", "1 for the path that serves the port's remote clients: "
                                      "kernel (iptables DNAT: counted in swarmpy_lb_kernel_*) or proxy",
                                      labels=LABELS + ["path"]),
        }
        kernel = self.mesh.kernel.counters() if getattr(self.mesh, "kernel", None) is not None else {}
        for (port, protocol), listener in sorted(self.mesh.listeners.items()):
            labels = [self.mesh.lb_id, str(port), protocol, listener.route.service_name]
            traffic, status = listener.balancer.traffic, listener.status()
            families["open"].add_metric(labels, sum(e["connections"] for e in status["endpoints"]))
            families["connections"].add_metric(labels, traffic.connections)
            families["bytes"].add_metric(labels + ["in"], traffic.bytes_in)
            families["bytes"].add_metric(labels + ["out"], traffic.bytes_out)
            families["errors"].add_metric(labels, traffic.connect_errors)
            families["unserved"].add_metric(labels, traffic.unserved)
            for state in ENDPOINT_STATES:
                families["endpoints"].add_metric(labels + [state],
                                                 sum(1 for e in status["endpoints"] if e["state"] == state))
            families["listening"].add_metric(labels, 0 if listener.error else 1)
            families["path"].add_metric(labels + [listener.route.path], 1)
            if listener.route.path == "kernel":
                connections, _, forwarded = kernel.get((port, protocol), [0, 0, 0])
                families["kernel_connections"].add_metric(labels, connections)
                families["kernel_bytes"].add_metric(labels, forwarded)
        yield from families.values()


def registry(mesh) -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=False)
    found.register(MeshCollector(mesh))
    return found


PUSH_EVERY = 10.0  # seconds between the pushes of a load balancer on a host with no manager


async def push_forever(store, mesh) -> None:
    """Write the mesh's figures to the store every PUSH_EVERY seconds (a host with no manager)."""
    figures = registry(mesh)
    loop = asyncio.get_running_loop()
    while True:
        try:
            text = generate_latest(figures).decode()
            await loop.run_in_executor(None, store.put_lb_metrics, mesh.lb_id, text, 3 * PUSH_EVERY)
        except Exception as e:  # noqa: BLE001 - the store is away: the next push says it all again
            log.warning("lb: cannot push figures: %s", e)
        await asyncio.sleep(PUSH_EVERY)


async def serve(mesh, path: Path) -> asyncio.AbstractServer | None:
    """Serve the mesh's figures on a unix socket at `path`: each connection gets the text, then EOF."""
    figures = registry(mesh)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(generate_latest(figures))
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the manager gave up waiting
        finally:
            writer.close()

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # left by a process of the same pid that was killed
        server = await asyncio.start_unix_server(answer, str(path))
        os.chmod(path, 0o600)
        return server
    except OSError as e:  # a state dir too deep for a socket's path: the mesh still serves
        log.warning("lb: cannot serve figures at %s: %s", path, e)
        return None
