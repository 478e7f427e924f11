"""The mesh's data plane: a TCP and UDP proxy on asyncio protocols (uvloop when
installed). Bytes go from one transport to the other as they come, with the
transports' own flow control; no per-byte Python work.

Each connection goes to one endpoint of the route: round-robin, or the one
with the fewest open connections. An endpoint that refuses is skipped for
that connection (the next one is tried: the client sees no error) and marked
down until a probe finds it accepting again.
"""

from __future__ import annotations

import asyncio
import logging

from swarmpy.lb.balance import Balancer, Health
from swarmpy.lb.routes import Endpoint, Route
from swarmpy.lb.tcp import ClientSide
from swarmpy.lb.udp import UDPRelay

log = logging.getLogger(__name__)


class Listener:
    """One published port on this host and where its connections go."""

    def __init__(self, route: Route, health: Health, shared: bool = False):
        self.route = route
        self.balancer = Balancer(health)
        self.balancer.route = route
        self.server: asyncio.AbstractServer | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.error: str | None = None
        # SO_REUSEPORT only among the processes of one load balancer (`--processes N`): otherwise a
        # port another program (another cluster's load balancer) holds the same way would be
        # shared with it silently, the kernel splitting connections between the two
        self.shared = shared
        self.draining: dict[Endpoint, int] = {}

    async def open(self, host: str = "0.0.0.0") -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.route.protocol == "udp":
                self.udp, _ = await loop.create_datagram_endpoint(lambda: UDPRelay(self.balancer),
                                                                  local_addr=(host, self.route.port),
                                                                  reuse_port=self.shared)
            else:
                self.server = await loop.create_server(
                    lambda: ClientSide(self.balancer, self._closed), host, self.route.port,
                    reuse_address=True, reuse_port=self.shared, backlog=4096)
            self.error = None
        except OSError as e:
            self.error = f"cannot listen on port {self.route.port}/{self.route.protocol}: {e.strerror or e}"
            log.warning("lb: %s", self.error)

    def update(self, route: Route) -> None:
        gone = set(self.route.endpoints) - set(route.endpoints)
        for ep in gone:
            if self.balancer.open.get(ep):
                self.draining[ep] = self.balancer.open[ep]
        self.route = route
        self.balancer.route = route

    def _closed(self, ep: Endpoint | None) -> None:
        if ep in self.draining:
            left = self.balancer.open.get(ep, 0)
            if left:
                self.draining[ep] = left
            else:
                del self.draining[ep]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.udp is not None:
            self.udp.close()

    def status(self) -> dict:
        open_ = self.balancer.open
        endpoints = [{"address": e.address, "port": e.port, "task_id": e.task_id,
                      "state": "down" if self.balancer.health.is_down(e) else "up",
                      "connections": open_.get(e, 0)} for e in self.route.endpoints]
        endpoints += [{"address": e.address, "port": e.port, "task_id": e.task_id, "state": "draining",
                       "connections": n} for e, n in self.draining.items()]
        return {"service_id": self.route.service_id, "service": self.route.service_name,
                "target": self.route.target, "path": self.route.path, "strategy": self.route.strategy,
                "error": self.error, "endpoints": endpoints}
