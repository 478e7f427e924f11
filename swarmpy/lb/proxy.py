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
import ipaddress
import logging
import socket
import struct
import time
from collections import defaultdict
from collections.abc import Callable

from swarmpy.lb.routes import Endpoint, Route

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
PROBE_EVERY = 1.0
UDP_IDLE = 30.0
HIGH_WATER = 1 << 20  # bytes buffered towards one side before the other side stops reading

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_header(client: tuple, server: tuple) -> bytes:
    """PROXY protocol v2 header (PROXY command, TCP over IPv4 or IPv6): the backend learns the client."""
    src, dst = ipaddress.ip_address(client[0]), ipaddress.ip_address(server[0])
    if src.version == 4 and dst.version == 4:
        family, body = 0x11, src.packed + dst.packed + struct.pack("!HH", client[1], server[1])
    else:
        src6 = src if src.version == 6 else ipaddress.IPv6Address(f"::ffff:{src}")
        dst6 = dst if dst.version == 6 else ipaddress.IPv6Address(f"::ffff:{dst}")
        family, body = 0x21, src6.packed + dst6.packed + struct.pack("!HH", client[1], server[1])
    return PROXY_V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


class Health:
    """Endpoints that refused a connection, until they accept one again."""

    def __init__(self):
        self.down: dict[tuple[str, int], float] = {}

    def is_down(self, ep: Endpoint) -> bool:
        return (ep.address, ep.port) in self.down

    def mark_down(self, ep: Endpoint) -> None:
        self.down.setdefault((ep.address, ep.port), time.time())

    def mark_up(self, ep: Endpoint) -> None:
        self.down.pop((ep.address, ep.port), None)

    async def probe(self, endpoints: Callable[[], set[tuple[str, int]]]) -> None:
        """Every second, try the down endpoints still in a table; forget the others."""
        while True:
            await asyncio.sleep(PROBE_EVERY)
            wanted = endpoints()
            for key in list(self.down):
                if key not in wanted:
                    self.down.pop(key, None)
                    continue
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(*key), CONNECT_TIMEOUT)
                    writer.close()
                    self.down.pop(key, None)
                except (OSError, asyncio.TimeoutError):
                    pass


class Balancer:
    """Chooses endpoints for a route's connections and counts what is open."""

    def __init__(self, health: Health):
        self.health = health
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


class _Pipe(asyncio.Protocol):
    """One side of a proxied connection; writes what it reads to its peer's transport."""

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.pending: list[bytes] = []
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)

    def data_received(self, data):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self):
        if self.peer is not None and self.peer.transport is not None and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
        return True  # keep our side open for the answer (half-close)

    def pause_writing(self):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc):
        self.closed = True
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.close()


class ClientSide(_Pipe):
    def __init__(self, balancer: Balancer, on_close: Callable[[Endpoint | None], None]):
        super().__init__()
        self.balancer, self.on_close = balancer, on_close
        self.endpoint: Endpoint | None = None

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.pause_reading()
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        route = self.balancer.route
        for ep in self.balancer.candidates():
            backend = _Pipe()
            try:
                await asyncio.wait_for(loop.create_connection(lambda: backend, ep.address, ep.port),
                                       CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                self.balancer.health.mark_down(ep)
                continue
            if self.closed:
                backend.transport.close()
                return
            self.balancer.health.mark_up(ep)
            self.endpoint = ep
            self.balancer.open[ep] += 1
            self.peer, backend.peer = backend, self
            if route is not None and route.proxy_protocol:
                backend.transport.write(proxy_v2_header(self.transport.get_extra_info("peername"),
                                                        self.transport.get_extra_info("sockname")))
            for chunk in self.pending:
                backend.transport.write(chunk)
            self.pending.clear()
            self.transport.resume_reading()
            return
        self.transport.abort()  # no endpoint took it: the client sees a reset, not a hang

    def connection_lost(self, exc):
        super().connection_lost(exc)
        if self.endpoint is not None:
            self.balancer.open[self.endpoint] -= 1
            if self.balancer.open[self.endpoint] <= 0:
                del self.balancer.open[self.endpoint]
        self.on_close(self.endpoint)


class UDPRelay(asyncio.DatagramProtocol):
    """A published UDP port: each client address gets its own socket to one endpoint."""

    def __init__(self, balancer: Balancer):
        self.balancer = balancer
        self.transport = None
        self.flows: dict[tuple, tuple[asyncio.DatagramTransport, float]] = {}

    def connection_made(self, transport):
        self.transport = transport
        asyncio.get_running_loop().create_task(self.expire())

    def datagram_received(self, data, addr):
        flow = self.flows.get(addr)
        if flow is not None:
            flow[0].sendto(data)
            self.flows[addr] = (flow[0], time.time())
            return
        asyncio.get_running_loop().create_task(self.open_flow(addr, data))

    async def open_flow(self, addr, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        for ep in self.balancer.candidates():
            relay = self

            class Back(asyncio.DatagramProtocol):
                def datagram_received(self, data, _):
                    relay.transport.sendto(data, addr)
                    if addr in relay.flows:
                        relay.flows[addr] = (relay.flows[addr][0], time.time())

            try:
                transport, _ = await loop.create_datagram_endpoint(Back, remote_addr=(ep.address, ep.port))
            except OSError:
                self.balancer.health.mark_down(ep)
                continue
            self.flows[addr] = (transport, time.time())
            transport.sendto(first)
            return

    async def expire(self) -> None:
        while self.transport is not None and not self.transport.is_closing():
            await asyncio.sleep(UDP_IDLE / 3)
            now = time.time()
            for addr, (transport, seen) in list(self.flows.items()):
                if now - seen > UDP_IDLE:
                    transport.close()
                    del self.flows[addr]


class Listener:
    """One published port on this host and where its connections go."""

    def __init__(self, route: Route, health: Health):
        self.route = route
        self.balancer = Balancer(health)
        self.balancer.route = route
        self.server: asyncio.AbstractServer | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.error: str | None = None
        self.draining: dict[Endpoint, int] = {}

    async def open(self, host: str = "0.0.0.0") -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.route.protocol == "udp":
                self.udp, _ = await loop.create_datagram_endpoint(lambda: UDPRelay(self.balancer),
                                                                  local_addr=(host, self.route.port),
                                                                  reuse_port=True)
            else:
                self.server = await loop.create_server(
                    lambda: ClientSide(self.balancer, self._closed), host, self.route.port,
                    reuse_address=True, reuse_port=True, backlog=4096)
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
                "target": self.route.target, "strategy": self.route.strategy, "error": self.error,
                "endpoints": endpoints}


def tune_socket(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
