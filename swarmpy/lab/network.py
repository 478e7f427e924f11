"""The lab's network on this machine: a bridge, one netns per node, one rule.

Nodes get no default route and no NAT: their subnet exists only on the
bridge and in their namespaces, so lab traffic never leaves this machine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os

from swarmpy.lab.shell import LabError, output, run

# Docker on the host sets FORWARD's policy to DROP and br_netfilter sends
# bridged frames through it: node-to-node traffic needs this one rule.
_CHAIN = "FORWARD"


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine routes, in any table."""
    routes = json.loads(output(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]")
    return [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r.get("dst", "default") != "default"]


def pick_pool(name: str, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """A free 10.x.0.0/16 for the lab, tried first at a place derived from its name.

    Its first /24 is the default node subnet and the /24s after it are the
    nodes' container bridges (`--bip`), so labs never share any of them.
    """
    start = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 150
    for step in range(150):
        pool = ipaddress.ip_network(f"10.{100 + (start + step) % 150}.0.0/16")
        if not any(pool.overlaps(t) for t in taken):
            return pool
    raise LabError("no free 10.100-249.0.0/16 left for a lab; take a lab down or pass --subnet")


def check_subnet(subnet: str, nodes: int, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as e:
        raise LabError(f"bad --subnet {subnet!r}: {e}") from None
    if net.num_addresses - 3 < nodes:  # network, broadcast and the host's address
        raise LabError(f"--subnet {subnet} is too small for {nodes} nodes and the host")
    clash = next((t for t in taken if net.overlaps(t)), None)
    if clash:
        raise LabError(f"--subnet {subnet} overlaps {clash}, already in use on this machine")
    return net


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def create_bridge(bridge: str, host_cidr: str) -> None:
    if link_exists(bridge):
        raise LabError(f"a link named {bridge} exists already: another lab's? (`ip link del {bridge}` if stale)")
    run(["ip", "link", "add", bridge, "type", "bridge"])
    run(["ip", "addr", "add", host_cidr, "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])


def create_node_netns(netns: str, host_link: str, bridge: str, cidr: str) -> None:
    """A namespace whose `eth0` is plugged into the bridge; only the lab subnet is routed."""
    run(["ip", "netns", "add", netns])
    run(["ip", "link", "add", host_link, "type", "veth", "peer", "name", "eth0", "netns", netns])
    run(["ip", "link", "set", host_link, "master", bridge, "up"])
    run(["ip", "-n", netns, "addr", "add", cidr, "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])


def create_uts(path: str, hostname: str) -> None:
    """A UTS namespace kept alive by a bind mount on `path`, with `hostname` set."""
    open(path, "a").close()
    run(["unshare", f"--uts={path}", "hostname", hostname])


def allow_forwarding(bridge: str, comment: str) -> None:
    """`comment` (no spaces) marks the rule as the lab's."""
    run(["iptables", "-w", "-I", _CHAIN, "-i", bridge, "-o", bridge,
         "-m", "comment", "--comment", comment, "-j", "ACCEPT"])


def remove_forwarding(bridge: str, comment: str) -> None:
    """Delete every rule that names the bridge or carries the lab's comment."""
    for line in output(["iptables", "-w", "-S", _CHAIN]).splitlines():
        args = line.split()
        if args[:1] == ["-A"] and (bridge in args or comment in args):
            run(["iptables", "-w", "-D", *args[1:]], check=False)


def forwarding_rules(bridge: str) -> list[str]:
    return [line for line in output(["iptables", "-w", "-S", _CHAIN]).splitlines() if bridge in line.split()]


def netns_list() -> list[str]:
    return [line.split()[0] for line in output(["ip", "netns", "list"]).splitlines() if line.strip()]


def netns_pids(netns: str) -> list[int]:
    done = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in done.stdout.split()]


def delete_netns(netns: str) -> None:
    """Deleting the namespace deletes its end of the veth pair, and so the pair."""
    if os.path.exists(f"/run/netns/{netns}"):
        run(["ip", "netns", "del", netns], check=False)


def delete_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "del", name], check=False)
