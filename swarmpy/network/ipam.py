"""Subnets and addresses of cluster networks (pure).

Subnets come from the cluster's address pool (Swarm's default: 10.0.0.0/8 in
/24s, `swarmpy init --default-addr-pool`) without overlapping each other or
the nodes' own addresses, or from the stack file (`ipam.config[].subnet`),
refused when they overlap. A network's gateway (.1) is on every node's bridge;
tasks and virtual IPs get the addresses after it.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

DEFAULT_POOL = "10.0.0.0/8"
DEFAULT_PREFIX = 24
DEFAULT_MTU = 1450  # 1500 less VXLAN's 50 bytes
VNI_RANGE = (4096, (1 << 24) - 1)


class IPAMError(Exception):
    pass


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as e:
        raise IPAMError(f"invalid subnet {text!r}: {e}") from None
    if net.prefixlen > 29:
        raise IPAMError(f"subnet {text} is too small: a network needs at least a /29")
    return net


def check_subnet(subnet: str, taken: dict[str, str], avoid: Iterable[str] = ()) -> ipaddress.IPv4Network:
    """`subnet` if it overlaps none of `taken` (subnet -> what has it: "network shop_default") and
    holds none of the `avoid` addresses (the nodes'); else IPAMError saying what it clashes with."""
    net = parse_subnet(subnet)
    for other, what in taken.items():
        if net.overlaps(ipaddress.IPv4Network(other)):
            raise IPAMError(f"subnet {subnet} overlaps {what} ({other})")
    for address in avoid:
        if ipaddress.IPv4Address(address) in net:
            raise IPAMError(f"subnet {subnet} holds the node address {address}")
    return net


def allocate_subnet(taken: Iterable[str], avoid: Iterable[str] = (), pool: str = DEFAULT_POOL,
                    prefix: int = DEFAULT_PREFIX) -> str:
    """The first free subnet of the pool after its very first one (Swarm keeps that for ingress)."""
    used = [ipaddress.IPv4Network(t) for t in taken]
    addresses = [ipaddress.IPv4Address(a) for a in avoid]
    for i, candidate in enumerate(ipaddress.IPv4Network(pool).subnets(new_prefix=prefix)):
        if i == 0:
            continue
        if any(candidate.overlaps(u) for u in used) or any(a in candidate for a in addresses):
            continue
        return str(candidate)
    raise IPAMError(f"the address pool {pool} has no free /{prefix} left")


def gateway(subnet: str) -> str:
    return str(next(ipaddress.IPv4Network(subnet).hosts()))


def new_vni(taken: Iterable[int]) -> int:
    used = set(taken)
    while True:
        vni = random.randint(*VNI_RANGE)
        if vni not in used:
            return vni


def mac_of(address: str) -> str:
    """The MAC a container gets for an address (Docker's own rule: 02:42 and the address)."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(address).packed)
