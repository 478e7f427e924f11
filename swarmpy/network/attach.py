"""A task joining its service's networks: the start job's part.

The task gets an address on each network from the cluster (the same one if the
job runs again), then waits until its node's programmer has the networks there
(the Docker network, the VXLAN device, the entries of the other nodes' tasks),
so that the task can reach the others the moment it starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from swarmpy.model import Network, Service, Task
from swarmpy.network import names
from swarmpy.store import AddressesExhausted, NotFound, Store

READY_TIMEOUT = 15.0


class NotReady(Exception):
    """The node does not have the task's networks yet (trying again later may help)."""


class CannotJoin(Exception):
    """The task cannot join its networks (one was removed, or has no address left)."""


@dataclass(frozen=True)
class Joined:
    network: Network
    address: str
    docker_name: str  # the network's name on the node's engine


def join(store: Store, task: Task, service: Service) -> list[Joined]:
    """An address on each of the service's networks, in the order the service lists them."""
    joined = []
    for sn in service.networks:
        try:
            network = store.get_network(sn.id)
            joined.append(Joined(network, store.allocate_address(network, task.id),
                                 names.docker_network(network)))
        except NotFound:
            raise CannotJoin(f"network {sn.name} was removed") from None
        except AddressesExhausted as e:
            raise CannotJoin(str(e)) from None
    return joined


def wait_ready(store: Store, node_id: str, joined: list[Joined], timeout: float = READY_TIMEOUT) -> list[str]:
    """Wait until the node's programmer has these networks in place; the host's nameservers."""
    wanted = {j.network.id for j in joined}
    deadline = time.time() + timeout
    while True:
        status = store.net_status(node_id) or {}
        if wanted <= set(status.get("networks") or ()):
            return list(status.get("resolvers") or [])
        for j in joined:  # the node's engine refuses the network for good (its subnet is taken there)
            refused = _refusal(status.get("error") or "", j.network.name)
            if refused and j.network.id not in (status.get("networks") or ()):
                raise CannotJoin(refused)
        if time.time() > deadline:
            why = f" ({status['error']})" if status.get("error") else ""
            raise NotReady(f"the node's networks are not ready after {timeout:.0f} s{why}")
        time.sleep(0.02)


def _refusal(error: str, network: str) -> str | None:
    """The programmer's report that the engine would not make this network because of an overlap."""
    for part in error.split("; "):
        if part.startswith(f"network {network}:") and "overlap" in part.lower():
            return part
    return None


def nameservers(joined: list[Joined], resolvers: list[str], own: list[str]) -> list[str]:
    """What Docker's embedded resolver asks, in turn: the cluster's DNS through each network's
    gateway, then the service's own `dns:` servers or else the host's."""
    return [j.network.gateway for j in joined] + (own or resolvers)
