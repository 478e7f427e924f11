"""What one node should have for the cluster's networks (pure): which networks, the
forwarding entries of the tasks on other nodes, the virtual IPs and their backends,
and where its tasks' DNS queries go.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmpy.network import names
from swarmpy.network.ipam import mac_of
from swarmpy.network.view import Snapshot


@dataclass(frozen=True)
class NetworkOnNode:
    id: str
    name: str
    subnet: str
    gateway: str
    vni: int
    mtu: int
    internal: bool
    local_vtep: str  # this node's address, where other nodes send the network's frames
    neighbors: dict[str, tuple[str, str]]  # address of a task on another node -> (its MAC, that node's address)
    vips: dict[str, tuple[str, ...]]  # virtual IP -> the addresses it balances over
    dns: tuple[str, int] | None  # where its DNS queries go: a DNS server's (address, port); address "": this host

    @property
    def bridge(self) -> str:
        return names.bridge(self.id)

    @property
    def vxlan(self) -> str:
        return names.vxlan(self.id)


@dataclass(frozen=True)
class NodeState:
    networks: dict[str, NetworkOnNode] = field(default_factory=dict)


def node_state(snapshot: Snapshot, node_id: str, dns: dict[str, tuple[str, int]]) -> NodeState:
    """`dns`: network id -> the DNS server (address, port) this node's tasks are sent to."""
    node = snapshot.nodes.get(node_id)
    if node is None:
        return NodeState()
    out = {}
    for picture in snapshot.networks_on(node_id):
        net = picture.network
        neighbors = {}
        for m in picture.members.values():
            peer = snapshot.nodes.get(m.node_id)
            if m.node_id != node_id and peer is not None:
                neighbors[m.address] = (m.mac or mac_of(m.address), peer.address)
        vips = {s.vip: s.backends for s in picture.services.values() if s.vip}
        out[net.id] = NetworkOnNode(net.id, net.name, net.subnet, net.gateway, net.vni, net.mtu, net.internal,
                                    node.address, neighbors, vips, dns.get(net.id))
    return NodeState(out)
