"""UDP through the mesh: one socket per client address towards one endpoint, closed when idle."""

from __future__ import annotations

import asyncio
import time

from swarmpy.lb.balance import Balancer

UDP_IDLE = 30.0


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
        self.balancer.traffic.bytes_in += len(data)
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
                    relay.balancer.traffic.bytes_out += len(data)
                    relay.transport.sendto(data, addr)
                    if addr in relay.flows:
                        relay.flows[addr] = (relay.flows[addr][0], time.time())

            try:
                transport, _ = await loop.create_datagram_endpoint(Back, remote_addr=(ep.address, ep.port))
            except OSError:
                self.balancer.traffic.connect_errors += 1
                self.balancer.health.mark_down(ep)
                continue
            self.balancer.traffic.connections += 1
            self.flows[addr] = (transport, time.time())
            transport.sendto(first)
            return
        self.balancer.traffic.unserved += 1  # no endpoint: the datagram is dropped

    async def expire(self) -> None:
        while self.transport is not None and not self.transport.is_closing():
            await asyncio.sleep(UDP_IDLE / 3)
            now = time.time()
            for addr, (transport, seen) in list(self.flows.items()):
                if now - seen > UDP_IDLE:
                    transport.close()
                    del self.flows[addr]
