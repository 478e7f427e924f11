"""TCP connections through the mesh: two asyncio protocols that hand bytes to each other's
transport, with the transports' own flow control; no per-byte Python work."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import time
from collections.abc import Callable

from swarmpy.lb.balance import CONNECT_TIMEOUT, Balancer
from swarmpy.lb.routes import Endpoint, Route

HIGH_WATER = 1 << 20  # bytes buffered towards one side before the other side stops reading
REPLAY_MAX = 64 << 10  # client bytes kept for another endpoint until the first one answers
SILENT_CLOSE = 2.0  # seconds: an endpoint that resets this soon without answering did not take the connection
RESET_CHECK = 0.02  # seconds after sending to a half-closed endpoint to look for its reset

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


class _Pipe(asyncio.Protocol):
    """One side of a proxied connection; writes what it reads to its peer's transport."""

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)

    def forward(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def data_received(self, data):
        self.forward(data)

    def pause_writing(self):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class BackendSide(_Pipe):
    def __init__(self, client: "ClientSide"):
        super().__init__()
        self.peer = client
        self.answered = 0  # bytes the endpoint sent back
        self.connected_at = time.monotonic()
        self.eof = False
        self.reset = False

    def data_received(self, data):
        if not self.answered and self.peer.replayable:
            self.peer.replayable = False  # answered: from now on bytes only pass through
            self.peer.sent.clear()
        self.answered += len(data)
        self.peer.balancer.traffic.bytes_out += len(data)
        self.forward(data)

    def eof_received(self):
        self.eof = True
        if not self.answered:
            # No word yet. A refusal in disguise (closed at once) resets what we send it; a server
            # that only shut its own side (like `nc` with nothing to say) keeps reading. Look again
            # once what the client sent has had time to meet either.
            self.check_soon()
            return True
        if self.peer.client_eof:
            return False  # both directions are done
        if not self.peer.closed and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
        return True  # keep our side open for the client's half (half-close)

    def check_soon(self) -> None:
        asyncio.get_running_loop().call_later(RESET_CHECK, self.check_refused)

    def check_refused(self) -> None:
        if self.closed or self.answered:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.reset = True  # it reset what we sent: nobody was there
            self.transport.abort()

    def connection_lost(self, exc):
        self.closed = True
        self.reset = self.reset or exc is not None
        self.peer.backend_lost(self)


class ClientSide(_Pipe):
    """A client's connection. Its bytes are kept until the endpoint answers anything, so that
    an endpoint that accepted but closed without a word can be replaced by the next one."""

    def __init__(self, balancer: Balancer, on_close: Callable[[Endpoint | None], None]):
        super().__init__()
        self.balancer, self.on_close = balancer, on_close
        self.endpoint: Endpoint | None = None
        self.sent = bytearray()  # to the current endpoint, while it has answered nothing
        self.replayable = True
        self.client_eof = False
        self.tried: set[Endpoint] = set()

    def connection_made(self, transport):
        super().connection_made(transport)
        self.balancer.traffic.connections += 1
        transport.pause_reading()
        asyncio.get_running_loop().create_task(self.connect())

    def data_received(self, data):
        self.balancer.traffic.bytes_in += len(data)
        if self.replayable:
            if len(self.sent) + len(data) <= REPLAY_MAX:
                self.sent += data
            else:
                self.replayable = False
                self.sent.clear()
        self.forward(data)
        if self.peer is not None and self.peer.eof and not self.peer.answered:
            self.peer.check_soon()  # sent to an endpoint that has closed its side: does it reset?

    def eof_received(self):
        self.client_eof = True
        if self.peer is not None and self.peer.eof:
            return False  # both directions are done: close, and the endpoint's side with it
        if self.peer is not None and not self.peer.closed and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
        return True

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        route = self.balancer.route
        for ep in self.balancer.candidates():
            if ep in self.tried:
                continue
            self.tried.add(ep)
            backend = BackendSide(self)
            try:
                await asyncio.wait_for(loop.create_connection(lambda: backend, ep.address, ep.port),
                                       CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                self.balancer.traffic.connect_errors += 1
                self.balancer.health.mark_down(ep)
                continue
            if self.closed:
                backend.transport.close()
                return
            self.attach(ep, backend, route)
            return
        self.balancer.traffic.unserved += 1
        self.transport.abort()  # no endpoint took it: the client sees a reset, not a hang

    def attach(self, ep: Endpoint, backend: BackendSide, route: Route | None) -> None:
        self.endpoint, self.peer = ep, backend
        if backend.eof:
            backend.check_soon()
        self.balancer.open[ep] += 1
        if route is not None and route.proxy_protocol:
            backend.transport.write(proxy_v2_header(self.transport.get_extra_info("peername"),
                                                    self.transport.get_extra_info("sockname")))
        if self.sent:
            backend.transport.write(bytes(self.sent))
        if self.client_eof and backend.transport.can_write_eof():
            backend.transport.write_eof()
        self.transport.resume_reading()

    def release(self) -> None:
        ep, self.endpoint = self.endpoint, None
        if ep is not None:
            self.balancer.open[ep] -= 1
            if self.balancer.open[ep] <= 0:
                del self.balancer.open[ep]
            self.on_close(ep)

    def backend_lost(self, backend: BackendSide) -> None:
        if backend is not self.peer:
            return
        ep = self.endpoint
        self.release()
        self.peer = None
        refused = (backend.answered == 0 and backend.reset
                   and time.monotonic() - backend.connected_at < SILENT_CLOSE)
        if not self.closed and refused and self.replayable and ep is not None:
            # accepted, then reset without a word: a refusal in disguise (Docker's userland
            # proxy does this for a container that just died); the client's bytes go elsewhere
            self.balancer.traffic.connect_errors += 1
            self.balancer.health.mark_down(ep)
            self.transport.pause_reading()
            asyncio.get_running_loop().create_task(self.connect())
        elif not self.closed:
            self.transport.close()

    def connection_lost(self, exc):
        self.closed = True
        if self.peer is not None and not self.peer.closed:
            self.peer.transport.close()
        else:
            self.release()
