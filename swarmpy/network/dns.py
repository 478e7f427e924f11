"""The cluster's DNS: every network's names, answered from the network view.

One UDP and one TCP socket per network, on a port of their own: a task's query
reaches its node's gateway on that network, and the node DNATs it here (the
programmer of the node knows the ports), so the port says which network asks
and only that network's names are answered: `<service>`, `<stack>_<service>`
and aliases (the VIP, or with `endpoint_mode: dnsrr` the tasks' addresses),
`tasks.<service>` (the running tasks' addresses) and the tasks' container names.

Any other name gets SERVFAIL: Docker's embedded resolver then asks its next
server, the host's own, so names outside the cluster resolve as before.
Answers have a TTL of 0, so no one keeps a stale one. A task's address is given
to a node only once that node has the task's forwarding entries (`visible`): a
client that got it earlier would send its first packet into nothing and wait a
second for its kernel to try again.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from swarmpy.network.view import NetworkPicture, NetworkView

log = logging.getLogger(__name__)


Keep = Callable[[str], bool]  # whether an address may be given to the node that asks


def answer(picture: NetworkPicture | None, wire: bytes, max_size: int | None = 512,
           keep: Keep | None = None) -> bytes | None:
    """The reply to one query on one network (None: not a DNS query)."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.RA
    if len(query.question) != 1 or query.opcode() != dns.opcode.QUERY:
        reply.set_rcode(dns.rcode.FORMERR if len(query.question) != 1 else dns.rcode.NOTIMP)
        return reply.to_wire()
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    addresses = picture.names.get(name) if picture is not None else None
    if addresses is None:
        reply.set_rcode(dns.rcode.SERVFAIL)  # not the cluster's: the resolver asks its next server
        return reply.to_wire()
    reply.flags |= dns.flags.AA
    if keep is not None:
        addresses = [a for a in addresses if keep(a)]
    if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and addresses:
        reply.answer.append(dns.rrset.from_text_list(question.name, 0, dns.rdataclass.IN, dns.rdatatype.A,
                                                     list(addresses)))
    if max_size is not None:
        limit = max(512, query.payload if query.edns >= 0 else 512)
        try:
            return reply.to_wire(max_size=limit)
        except dns.exception.TooBig:
            reply.answer = []
            reply.flags |= dns.flags.TC  # the resolver asks again over TCP
    return reply.to_wire()


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: "DNSServer", network_id: str):
        self.server, self.network_id = server, network_id

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        out = answer(self.server.picture(self.network_id), data, keep=self.server.keep(self.network_id, addr[0]))
        if out is not None:
            self.transport.sendto(out, addr)


class DNSServer(threading.Thread):
    """Opens a port per network as networks come and goes; `ports` tells the programmers where."""

    def __init__(self, view: NetworkView, host: str = "0.0.0.0",
                 visible: Callable[[str, str], Keep | None] | None = None):
        """`visible(network id, client address)`: which addresses the asking node can reach
        (None: any)."""
        super().__init__(name="dns", daemon=True)
        self.view, self.host, self.visible = view, host, visible
        self.ports: dict[str, int] = {}
        self.applied_version = 0
        self._sockets: dict[str, tuple[asyncio.DatagramTransport, asyncio.AbstractServer]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()

    def picture(self, network_id: str) -> NetworkPicture | None:
        return self.view.current.networks.get(network_id)

    def keep(self, network_id: str, client: str) -> Keep | None:
        return self.visible(network_id, client) if self.visible is not None else None

    def run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._follow())
        finally:
            for udp, tcp in self._sockets.values():
                udp.close()
                tcp.close()
            self._loop.close()

    def stop(self) -> None:
        self._stop.set()

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        version = -1
        while not self._stop.is_set():
            snapshot = await loop.run_in_executor(None, self.view.wait_newer, version, 1.0)
            if snapshot.version == version:
                continue
            version = snapshot.version
            for nid in list(self._sockets):
                if nid not in snapshot.networks:
                    udp, tcp = self._sockets.pop(nid)
                    udp.close()
                    tcp.close()
                    self.ports.pop(nid, None)
            for nid in snapshot.networks:
                if nid not in self._sockets:
                    try:
                        await self._open(nid)
                    except OSError as e:
                        log.warning("dns: cannot open a port for network %s: %s", nid, e)
            self.applied_version = version

    async def _open(self, network_id: str) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # the same port number for UDP and TCP
            udp, _ = await loop.create_datagram_endpoint(lambda: _UDP(self, network_id), local_addr=(self.host, 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                tcp = await asyncio.start_server(lambda r, w: self._tcp(network_id, r, w), self.host, port)
            except OSError:
                udp.close()
                continue
            self._sockets[network_id] = (udp, tcp)
            self.ports[network_id] = port
            return
        raise OSError("no port free for both UDP and TCP")

    async def _tcp(self, network_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = (writer.get_extra_info("peername") or ("",))[0]
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))[0]
                out = answer(self.picture(network_id), await reader.readexactly(size), max_size=None,
                             keep=self.keep(network_id, client))
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
