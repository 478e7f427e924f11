"""Where a route's connections go: endpoint health (marked down on refusal, probed back up)
and the choice of endpoint (round-robin or least-conn)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from swarmpy.lb.routes import Endpoint, Route

CONNECT_TIMEOUT = 2.0
PROBE_EVERY = 1.0


class Health:
    """Endpoints that refused a connection, until they accept one again. Marks are per task:
    a new task that Docker gives the same host port starts clean."""

    def __init__(self):
        self.down: dict[Endpoint, float] = {}
        # endpoints that have accepted a connection since they came: the kernel gets only those (a task
        # is running before its server listens, and the kernel cannot try the next one on a refusal)
        self.accepted: set[Endpoint] = set()

    def is_down(self, ep: Endpoint) -> bool:
        return ep in self.down

    def mark_down(self, ep: Endpoint) -> None:
        self.down.setdefault(ep, time.time())

    def mark_up(self, ep: Endpoint) -> None:
        self.down.pop(ep, None)

    async def probe(self, endpoints: Callable[[], set[Endpoint]]) -> None:
        """Every second, try the down endpoints still in a table; forget the others."""
        while True:
            await asyncio.sleep(PROBE_EVERY)
            wanted = endpoints()
            for ep in list(self.down):
                if ep not in wanted:
                    self.down.pop(ep, None)
                    continue
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(ep.address, ep.port),
                                                       CONNECT_TIMEOUT)
                    writer.close()
                    self.down.pop(ep, None)
                except (OSError, asyncio.TimeoutError):
                    pass


    async def check(self, endpoints: set[Endpoint]) -> bool:
        """Try every endpoint (the kernel, unlike the proxy, cannot see a refusal and try the next
        one): those that do not accept are down until they do. True when that changed anything."""
        async def accepts(ep: Endpoint) -> bool:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(ep.address, ep.port), CONNECT_TIMEOUT)
                writer.close()
                return True
            except (OSError, asyncio.TimeoutError):
                return False
        ordered = list(endpoints)
        results = await asyncio.gather(*(accepts(ep) for ep in ordered))
        before = set(self.down)
        accepted = set(self.accepted)
        for ep, ok in zip(ordered, results):
            if ok:
                self.mark_up(ep)
                self.accepted.add(ep)
            else:
                self.mark_down(ep)
        return set(self.down) != before or self.accepted != accepted


@dataclass
class Traffic:
    """What went through one published port, for /metrics: plain ints, so the data path pays an
    addition per chunk and nothing more (the figures are read when scraped)."""
    connections: int = 0  # taken (TCP), or flows opened (UDP)
    bytes_in: int = 0  # from the clients
    bytes_out: int = 0  # to the clients
    connect_errors: int = 0  # an endpoint refused, timed out, or reset without a word
    unserved: int = 0  # connections no endpoint took


class Balancer:
    """Chooses endpoints for a route's connections and counts what is open."""

    def __init__(self, health: Health):
        self.health = health
        self.traffic = Traffic()
        self.route: Route | None = None
        self.next = 0
        self.open: dict[Endpoint, int] = defaultdict(int)

    def candidates(self) -> list[Endpoint]:
        """Endpoints to try for one connection, best first; down ones only as a last resort."""
        route = self.route
        if route is None or not route.endpoints:
            return []
        eps = route.endpoints
        if route.strategy == "least-conn":
            order = sorted(eps, key=lambda e: self.open.get(e, 0))
        else:
            start = self.next % len(eps)
            self.next += 1
            order = eps[start:] + eps[:start]
        up = [e for e in order if not self.health.is_down(e)]
        return up + [e for e in order if self.health.is_down(e)]
