"""The shell script that takes a node from what it has (`HostFacts`) to what it should
have (`NodeState`) (pure).

One script per change, run in one go over the node's SSH session: VXLAN devices
created and attached to the networks' bridges, forwarding and ARP entries of
remote tasks added and removed one by one (never flushed: the traffic of the
tasks that stay must not notice), the VIPs on the bridges, and the cluster's
iptables chains rewritten whole with `iptables-restore --noflush` (atomic per
table, kube-proxy's way). The Docker networks themselves are made and removed
through the engine's API (see `host.py`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from swarmpy.network import names
from swarmpy.network.desired import NetworkOnNode, NodeState


@dataclass
class HostFacts:
    """What swarmpy has made on a node, as last read or applied."""

    devices: set[str] = field(default_factory=set)  # VXLAN devices
    neighbors: dict[str, dict[str, str]] = field(default_factory=dict)  # vxlan device -> address -> MAC
    fdb: dict[str, dict[str, str]] = field(default_factory=dict)  # vxlan device -> MAC -> node address
    vips: dict[str, set[str]] = field(default_factory=dict)  # bridge -> /32 addresses on it
    chains: dict[str, set[str]] = field(default_factory=lambda: {"nat": set(), "filter": set()})
    routes: set[str] = field(default_factory=set)  # subnets the node routes, but over swarmpy's bridges
    rules: dict[str, list[str]] | None = None  # the rules last written (None: not known, write them)


def facts_of(state: NodeState, chains: names.Chains) -> HostFacts:
    """What a node has once `state` is applied."""
    facts = HostFacts()
    for net in state.networks.values():
        facts.devices.add(net.vxlan)
        facts.neighbors[net.vxlan] = {ip: mac for ip, (mac, _) in net.neighbors.items()}
        facts.fdb[net.vxlan] = {mac: vtep for mac, vtep in net.neighbors.values()}
        facts.vips[net.bridge] = set(net.vips)
    written = tables(state, chains)
    facts.chains = {table: set(declared) for table, (declared, _) in written.items()}
    facts.rules = {table: rules for table, (_, rules) in written.items()}
    return facts


def tables(state: NodeState, chains: names.Chains) -> dict[str, tuple[list[str], list[str]]]:
    """The cluster's chains on this node: table -> (chain names, iptables-restore rule lines)."""
    nat_chains, filter_chains = [chains.pre, chains.post], [chains.forward]
    pre, post, forward = [], [f"-A {chains.post} -m mark --mark {names.HAIRPIN_MARK} -j MASQUERADE"], []
    for net in sorted(state.networks.values(), key=lambda n: n.id):
        br = net.bridge
        if net.dns and not net.dns[0]:  # the DNS server runs on this very host
            for proto in ("udp", "tcp"):
                pre.append(f"-A {chains.pre} -i {br} -d {net.gateway}/32 -p {proto} -m {proto} --dport 53 "
                           f"-j REDIRECT --to-ports {net.dns[1]}")
        elif net.dns:
            address, port = net.dns
            for proto in ("udp", "tcp"):
                pre.append(f"-A {chains.pre} -i {br} -d {net.gateway}/32 -p {proto} -m {proto} --dport 53 "
                           f"-j DNAT --to-destination {address}:{port}")
                post.append(f"-A {chains.post} -s {net.subnet} -d {address}/32 -p {proto} -m {proto} --dport {port} "
                            "-m conntrack --ctstate DNAT -j MASQUERADE")
                # internal networks forward nothing out: their DNS queries still may go
                forward.append(f"-A {chains.forward} -i {br} -s {net.subnet} -d {address}/32 -p {proto} "
                               f"-m {proto} --dport {port} -j ACCEPT")
                forward.append(f"-A {chains.forward} -o {br} -s {address}/32 -d {net.subnet} -p {proto} "
                               f"-m {proto} --sport {port} -m conntrack --ctstate ESTABLISHED -j ACCEPT")
        for vip, backends in sorted(net.vips.items()):
            if not backends:
                continue  # nothing DNATs it: the VIP is the node's own address, which refuses at once
            service = chains.service(net.id, vip)
            nat_chains.append(service)
            pre.append(f"-A {chains.pre} -i {br} -d {vip}/32 -j {service}")
            for i, backend in enumerate(backends):
                endpoint = chains.endpoint(net.id, vip, backend)
                nat_chains.append(endpoint)
                left = len(backends) - i
                chance = f"-m statistic --mode random --probability {1 / left:.10f} " if left > 1 else ""
                pre.append(f"-A {service} {chance}-j {endpoint}")
                pre.append(f"-A {endpoint} -s {backend}/32 -j MARK --set-xmark {names.HAIRPIN_MARK}")
                pre.append(f"-A {endpoint} -j DNAT --to-destination {backend}")
    return {"nat": (nat_chains, pre + post), "filter": (filter_chains, forward)}


# Jumps from the built-in chains (and Docker's DOCKER-USER) into the cluster's chains: (table, chain,
# rule). Docker's FORWARD sees every frame between tasks (bridged frames go through iptables), and
# the cluster's forwarding rules are only for DNATed DNS queries: only those jump.
def _jumps(chains: names.Chains) -> list[tuple[str, str, str]]:
    return [("nat", "PREROUTING", f"-j {chains.pre}"), ("nat", "POSTROUTING", f"-j {chains.post}"),
            ("filter", "DOCKER-USER", f"-m conntrack --ctstate DNAT -j {chains.forward}")]


def apply_script(have: HostFacts, state: NodeState, chains: names.Chains) -> str:
    """Commands that make the node match `state`; networks that go are removed by `remove_script`."""
    lines = []
    ip_batch, bridge_batch = [], []
    for net in sorted(state.networks.values(), key=lambda n: n.id):
        lines += _device(net, chains.cluster_id)
        vx = net.vxlan
        old_neighbors, old_fdb = have.neighbors.get(vx, {}), have.fdb.get(vx, {})
        new_fdb = {mac: vtep for mac, vtep in net.neighbors.values()}
        for ip in sorted(set(old_neighbors) - set(net.neighbors)):
            ip_batch.append(f"neigh del {ip} dev {vx}")
        for ip, (mac, _) in sorted(net.neighbors.items()):
            if old_neighbors.get(ip) != mac:
                ip_batch.append(f"neigh replace {ip} lladdr {mac} dev {vx} nud permanent")
        for mac in sorted(set(old_fdb) - set(new_fdb)):
            bridge_batch.append(f"fdb del {mac} dev {vx} self")
        for mac, vtep in sorted(new_fdb.items()):
            if old_fdb.get(mac) != vtep:
                bridge_batch.append(f"fdb replace {mac} dev {vx} dst {vtep} self permanent")
        old_vips = have.vips.get(net.bridge, set())
        for vip in sorted(old_vips - set(net.vips)):
            ip_batch.append(f"addr del {vip}/32 dev {net.bridge}")
        for vip in sorted(set(net.vips) - old_vips):
            ip_batch.append(f"addr replace {vip}/32 dev {net.bridge}")
    if ip_batch:
        lines.append(_heredoc("ip -force -batch -", ip_batch))
    if bridge_batch:
        lines.append(_heredoc("bridge -force -batch -", bridge_batch))
    lines += _iptables(have, state, chains)
    return "\n".join(lines) + "\n"


def _device(net: NetworkOnNode, cluster_id: str) -> list[str]:
    """The network's VXLAN device on its bridge, named as the cluster's by its alias, and hairpin on
    the bridge's container ports (a task that reaches itself through its own VIP gets its packets
    back through the port they left by)."""
    vx, br = shlex.quote(net.vxlan), shlex.quote(net.bridge)
    # No UDP checksum on the outer header: IPv4 does not need one, the inner packet carries its own,
    # and computing it in software for every frame cost 12% of the throughput on the lab.
    # A device made otherwise (another address, an older swarmpy) is made again, and said so.
    return [
        f"ip -d link show {vx} 2>/dev/null | grep -q 'vxlan id {net.vni} local {net.local_vtep} .*noudpcsum' || "
        f"{{ ip link del {vx} 2>/dev/null && echo {RECREATED} {vx}; ip link add {vx} type vxlan id {net.vni} "
        f"local {net.local_vtep} dstport {names.VXLAN_PORT} nolearning proxy noudpcsum; }}",
        f"ip link set {vx} alias {names.device_alias(cluster_id, net.id)} mtu {net.mtu} master {br} up",
        # a VIP's replies come straight from the task, bridged: they must meet conntrack to be un-DNATed
        f"ip link set {br} type bridge nf_call_iptables 1",
        f"for p in $(ip -o link show master {br} type veth | cut -d: -f2 | cut -d@ -f1); do "
        f"bridge link set dev $p hairpin on; done",
    ]


RECREATED = "SWARMPY_RECREATED"  # the script made a device again: its entries must be written again


def _iptables(have: HostFacts, state: NodeState, chains: names.Chains) -> list[str]:
    """The cluster's chains rewritten, unless they are what the node has (every iptables command takes
    the host's xtables lock, which the engine needs too)."""
    wanted = tables(state, chains)
    if have.rules == {table: rules for table, (_, rules) in wanted.items()} and \
            have.chains == {table: set(declared) for table, (declared, _) in wanted.items()}:
        return []
    restore, stale = [], {}
    for table, (declared, rules) in wanted.items():
        # chains that go are declared (so flushed) in the same restore that drops the jumps to
        # them, then deleted
        stale[table] = sorted(have.chains.get(table, set()) - set(declared))
        restore += [f"*{table}", *(f":{c} - [0:0]" for c in declared + stale[table]), *rules, "COMMIT"]
    lines = [_heredoc("iptables-restore -w --noflush", restore)]
    for table, gone in stale.items():
        lines += [f"iptables -w -t {table} -X {c} 2>/dev/null" for c in gone]
    for table, builtin, rule in _jumps(chains):
        guard = f"iptables -w -t {table} -n -L {builtin} >/dev/null 2>&1 && " if builtin == "DOCKER-USER" else ""
        lines.append(f"{guard}{{ iptables -w -t {table} -C {builtin} {rule} 2>/dev/null || "
                     f"iptables -w -t {table} -I {builtin} 1 {rule}; }}")
    return lines


def remove_script(devices: set[str]) -> str:
    """Delete VXLAN devices of networks that left the node (their Docker networks are gone first)."""
    return "".join(f"ip link del {shlex.quote(d)} 2>/dev/null\n" for d in sorted(devices))


def teardown_script(have: HostFacts, chains: names.Chains) -> str:
    """Everything swarmpy's networks left on the node: the jumps, the chains, the devices."""
    lines = []
    for table, builtin, rule in _jumps(chains):
        lines.append(f"while iptables -w -t {table} -D {builtin} {rule} 2>/dev/null; do :; done")
    for table in ("nat", "filter"):
        found = sorted(have.chains.get(table, set()))
        lines += [f"iptables -w -t {table} -F {c} 2>/dev/null" for c in found]
        lines += [f"iptables -w -t {table} -X {c} 2>/dev/null" for c in found]
    lines.append(remove_script(have.devices).rstrip("\n"))
    return "\n".join(line for line in lines if line) + "\n"


def _heredoc(command: str, lines: list[str]) -> str:
    return f"{command} <<'SWARMPY_EOF'\n" + "\n".join(lines) + "\nSWARMPY_EOF"


# ---------------------------------------------------------------------- reading a node

READ_SCRIPT = r"""
echo '== links'; ip -o -d link show type vxlan 2>/dev/null
echo '== neigh'; ip neigh show nud permanent 2>/dev/null
echo '== fdb'; bridge fdb show 2>/dev/null | grep ' dst '
echo '== addr'; ip -o -4 addr show 2>/dev/null
echo '== routes'; ip -4 route show table main 2>/dev/null
echo '== nat'; iptables-save -t nat 2>/dev/null | grep '^:'
echo '== filter'; iptables-save -t filter 2>/dev/null | grep '^:'
echo '== end'
"""


def parse_read(text: str, chains: names.Chains) -> HostFacts:
    """HostFacts from READ_SCRIPT's output: only what carries swarmpy's names (and this cluster's chains)."""
    facts = HostFacts()
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("== "):
            section = line[3:]
            continue
        words = line.split()
        if not words:
            continue
        if section == "links" and len(words) > 1:
            device = words[1].rstrip(":").split("@")[0]
            alias = words[words.index("alias") + 1] if "alias" in words[:-1] else ""
            if alias.startswith(names.device_alias(chains.cluster_id, "")):
                facts.devices.add(device)
        elif section == "neigh" and "dev" in words and "lladdr" in words:
            device = words[words.index("dev") + 1]
            if device in facts.devices:
                facts.neighbors.setdefault(device, {})[words[0]] = words[words.index("lladdr") + 1]
        elif section == "fdb" and "dev" in words and "dst" in words:
            device = words[words.index("dev") + 1]
            if device in facts.devices and words[0] != "00:00:00:00:00:00":
                facts.fdb.setdefault(device, {})[words[0]] = words[words.index("dst") + 1]
        elif section == "addr" and len(words) > 3 and words[2] == "inet":
            device, address = words[1], words[3]
            if device.startswith("swp") and names.is_ours(device) and address.endswith("/32"):
                facts.vips.setdefault(device, set()).add(address[:-3])
        elif section == "routes" and "/" in words[0] and "dev" in words:
            device = words[words.index("dev") + 1]
            if not (device.startswith("swp") and names.is_ours(device)):
                facts.routes.add(words[0])
        elif section in ("nat", "filter") and line.startswith(":"):
            chain = line[1:].split()[0]
            if chains.owns(chain):
                facts.chains[section].add(chain)
    return facts
