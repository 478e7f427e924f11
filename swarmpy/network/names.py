"""Names of what swarmpy makes on a host for its networks, all derived from ids, so
that what was made can always be found again (and another cluster's never touched).

IFNAMSIZ is 16 with the '\\0': device names have at most 15 characters;
iptables chain names at most 28.
"""

from __future__ import annotations

import hashlib

from swarmpy.model import Network

LABEL_CLUSTER = "com.swarmpy.cluster"
LABEL_NETWORK = "com.swarmpy.network.id"
MTU_OPTION = "com.docker.network.driver.mtu"
VXLAN_PORT = 4789
HAIRPIN_MARK = "0x2000/0x2000"  # a task reaching itself through its own VIP is masqueraded


def cluster_tag(cluster_id: str) -> str:
    return cluster_id[:6]


def docker_network(network: Network) -> str:
    """A network's name on an engine: the start of its id after its name. Engines are shared (by
    clusters side by side, by Docker Swarm), and a network made again under the same name must not
    meet the one before it, still on the node while its last containers go."""
    return f"{network.name}-{network.id[:8]}"


def bridge(network_id: str) -> str:
    return "swp" + network_id[:12]


def vxlan(network_id: str) -> str:
    return "vxs" + network_id[:12]


def device_alias(cluster_id: str, network_id: str) -> str:
    """What a VXLAN device's alias says: whose it is (another cluster's devices are never touched)."""
    return f"swarmpy:{cluster_id}:{network_id}"


def is_ours(device: str) -> bool:
    return len(device) == 15 and device[:3] in ("swp", "vxs")


def _short(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


class Chains:
    """A cluster's iptables chains on one host."""

    def __init__(self, cluster_id: str):
        self.cluster_id = cluster_id
        self.prefix = f"SWP-{cluster_tag(cluster_id)}-"
        self.pre = self.prefix + "PRE"  # nat PREROUTING: VIPs and the DNS of each network
        self.post = self.prefix + "POST"  # nat POSTROUTING: hairpin and DNS masquerade
        self.forward = self.prefix + "FWD"  # filter DOCKER-USER: DNS from internal networks

    def service(self, network_id: str, vip: str) -> str:
        return self.prefix + "S" + _short(network_id, vip)

    def endpoint(self, network_id: str, vip: str, backend: str) -> str:
        return self.prefix + "E" + _short(network_id, vip, backend)

    def owns(self, chain: str) -> bool:
        return chain.startswith(self.prefix)
