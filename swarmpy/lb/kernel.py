"""The mesh in the kernel: published ports DNATed to their endpoints by iptables, the
way kube-proxy's iptables mode serves a NodePort; no Python on the packet path.

For each port the kernel serves, packets to any of this host's addresses (from
outside, PREROUTING; from this host, OUTPUT) jump to the port's chain, which
picks an endpoint at random (the `statistic` match, with the probability that
makes the choice uniform) and DNATs to it:

- a task on another node: to that node's address and the task's host port, and
  the packet is masqueraded on its way out (the reply must come back through
  here to be un-DNATed): the task sees this host's address, not the client's;
- a task on this host: straight to its address on its first network, over the
  network's bridge, not masqueraded: the task sees the client's address.

Connections already open keep their endpoint when it leaves the table
(conntrack remembers them), so a task drained before its stop finishes them.
Loopback addresses are left to the proxy, which listens on every port as
well: DNAT from 127.0.0.1 to another host would need `route_localnet`, a
setting of the whole host that swarmpy does not change.

Every rule is in chains named after the cluster (`SWI-<cluster>-`), rewritten
whole with `iptables-restore --noflush` (atomic per table); `remove` takes them
all away (the load balancer's stop, `leave`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import threading
from dataclasses import dataclass

from swarmpy.lb.routes import Endpoint, Route

log = logging.getLogger(__name__)

MASQ_MARK = "0x4000/0x4000"  # packets DNATed to another node, masqueraded on their way out
LOOPBACK = "127.0.0.0/8"


@dataclass(frozen=True)
class Chains:
    cluster_id: str

    @property
    def prefix(self) -> str:
        return f"SWI-{self.cluster_id[:6]}-"

    @property
    def ports(self) -> str:  # nat: PREROUTING and OUTPUT to a local address jump here
        return self.prefix + "PORTS"

    @property
    def post(self) -> str:  # nat POSTROUTING: the masquerade
        return self.prefix + "POST"

    @property
    def forward(self) -> str:  # filter FORWARD: the DNATed connections pass (Docker's policy drops)
        return self.prefix + "FWD"

    def port(self, route: Route) -> str:
        return self.prefix + "P" + _short(f"{route.port}/{route.protocol}")

    def endpoint(self, route: Route, ep: Endpoint) -> str:
        return self.prefix + "E" + _short(f"{route.port}/{route.protocol}", ep.address, str(ep.port), ep.task_id)

    def owns(self, chain: str) -> bool:
        return chain.startswith(self.prefix)


def _short(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]


def jumps(chains: Chains) -> list[tuple[str, str, str]]:
    """(table, built-in chain, rule) into the cluster's chains."""
    return [("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {chains.ports}"),
            ("nat", "OUTPUT", f"! -d {LOOPBACK} -m addrtype --dst-type LOCAL -j {chains.ports}"),
            ("nat", "POSTROUTING", f"-j {chains.post}"),
            ("filter", "FORWARD", f"-m conntrack --ctstate DNAT -j {chains.forward}")]


def tables(chains: Chains, routes: list[Route], local: set[str]) -> dict[str, tuple[list[str], list[str]]]:
    """The cluster's chains: table -> (chain names, iptables-restore lines). `routes`: the ports the
    kernel serves, with the endpoints that take traffic; `local`: this host's addresses."""
    nat, filt = [chains.ports, chains.post], [chains.forward]
    rules = [f"-A {chains.post} -m mark --mark {MASQ_MARK} -j MASQUERADE"]
    forward = []
    for route in sorted(routes, key=lambda r: r.key):
        if not route.endpoints:
            continue  # nothing DNATs the port: the proxy's listener answers (and refuses)
        proto, port_chain = route.protocol, chains.port(route)
        nat.append(port_chain)
        rules.append(f"-A {chains.ports} -p {proto} -m {proto} --dport {route.port} -j {port_chain}")
        forward.append(f"-A {chains.forward} -p {proto} -m conntrack --ctstate DNAT --ctorigdstport {route.port} "
                       "-j ACCEPT")
        for i, ep in enumerate(route.endpoints):
            chain = chains.endpoint(route, ep)
            nat.append(chain)
            left = len(route.endpoints) - i
            chance = f"-m statistic --mode random --probability {1 / left:.10f} " if left > 1 else ""
            rules.append(f"-A {port_chain} {chance}-j {chain}")
            if ep.address in local and ep.via:  # a task of this host: over its network's bridge
                rules.append(f"-A {chain} -p {proto} -j DNAT --to-destination {ep.via}:{route.target}")
            else:
                rules.append(f"-A {chain} -j MARK --set-xmark {MASQ_MARK}")
                rules.append(f"-A {chain} -p {proto} -j DNAT --to-destination {ep.address}:{ep.port}")
    return {"nat": (nat, rules), "filter": (filt, forward)}


def restore_input(chains: Chains, wanted: dict[str, tuple[list[str], list[str]]], stale: dict[str, list[str]]) -> str:
    """iptables-restore's input: the chains declared (so flushed) and filled; the stale ones
    declared too (flushed, then deleted after the restore)."""
    lines = []
    for table, (declared, rules) in wanted.items():
        lines += [f"*{table}", *(f":{c} - [0:0]" for c in declared + stale.get(table, [])), *rules, "COMMIT"]
    return "\n".join(lines) + "\n"


def read_counters(chains: Chains, nat: str, filt: str) -> dict[tuple[int, str], list[int]]:
    """(port, protocol) -> [new connections, packets, bytes] from `iptables-save -c` of the two
    tables: the port's jump in the nat table counts first packets only (the kernel looks a
    connection's NAT up once), the forward rule every packet it forwards, both ways."""
    counts: dict[tuple[int, str], list[int]] = {}
    jump = re.compile(rf"^\[(\d+):\d+\] -A {re.escape(chains.ports)} -p (\w+) -m \w+ --dport (\d+) -j ")
    forward = re.compile(rf"^\[(\d+):(\d+)\] -A {re.escape(chains.forward)} -p (\w+) .*--ctorigdstport (\d+) -j ACCEPT")
    for line in nat.splitlines():
        if m := jump.match(line):
            counts.setdefault((int(m[3]), m[2]), [0, 0, 0])[0] += int(m[1])
    for line in filt.splitlines():
        if m := forward.match(line):
            entry = counts.setdefault((int(m[4]), m[3]), [0, 0, 0])
            entry[1] += int(m[1])
            entry[2] += int(m[2])
    return counts


class KernelPath:
    """The kernel's rules for the ports this host serves; `apply` is called with each new table."""

    def __init__(self, cluster_id: str, run=subprocess.run):
        self.chains = Chains(cluster_id)
        self.run = run
        self.applied: dict[str, tuple[list[str], list[str]]] | None = None
        self.error: str | None = None
        self.counted: dict[tuple[int, str], list[int]] = {}  # what rules rewritten since had counted
        self.lock = threading.Lock()

    def counters(self) -> dict[tuple[int, str], list[int]]:
        """Per port, since this load balancer started: [new connections, packets, bytes forwarded]."""
        save = ["iptables-save", "-c", "-t"]
        now = read_counters(self.chains, self.run(save + ["nat"], capture_output=True, text=True).stdout,
                            self.run(save + ["filter"], capture_output=True, text=True).stdout)
        return {key: [a + b for a, b in zip(self.counted.get(key, [0, 0, 0]), now.get(key, [0, 0, 0]))]
                for key in self.counted.keys() | now.keys()}

    def apply(self, routes: list[Route]) -> bool:
        """Program these ports (and no other); False when the kernel refused (the proxy serves then)."""
        with self.lock:  # called from the event loop's executor threads: one change at a time
            return self._apply(routes)

    def _apply(self, routes: list[Route]) -> bool:
        wanted = tables(self.chains, routes, local_addresses(self.run))
        if wanted == self.applied:
            return True
        try:
            self.counted = self.counters()  # a rewritten chain counts from zero again
            have = self._present()
            stale = {t: sorted(have.get(t, set()) - set(declared)) for t, (declared, _) in wanted.items()}
            self._check(["iptables-restore", "-w", "--noflush"], restore_input(self.chains, wanted, stale))
            for table, gone in stale.items():
                for chain in gone:
                    self.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True)
            for table, builtin, rule in jumps(self.chains):
                if self.run(["iptables", "-w", "-t", table, "-C", builtin, *rule.split()],
                            capture_output=True).returncode != 0:
                    self._check(["iptables", "-w", "-t", table, "-I", builtin, "1", *rule.split()])
        except (OSError, RuntimeError) as e:
            self.applied, self.error = None, str(e)
            log.warning("lb: the kernel path failed: %s", e)
            return False
        self.applied, self.error = wanted, None
        return True

    def remove(self) -> None:
        """Every rule and chain of the cluster's ingress on this host."""
        remove(self.chains.cluster_id, self.run)
        self.applied = None

    def _present(self) -> dict[str, set[str]]:
        present: dict[str, set[str]] = {}
        for table in ("nat", "filter"):
            out = self.run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
            present[table] = {line[1:].split()[0] for line in out.splitlines()
                              if line.startswith(":") and self.chains.owns(line[1:].split()[0])}
        return present

    def _check(self, command: list[str], stdin: str | None = None) -> None:
        done = self.run(command, input=stdin, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:2])}: {(done.stderr or done.stdout).strip()[:300]}")


def remove(cluster_id: str, run=subprocess.run) -> None:
    """Take away the jumps, then flush and delete the chains (`leave`, and a load balancer's stop)."""
    chains = Chains(cluster_id)
    for table, builtin, rule in jumps(chains):
        while run(["iptables", "-w", "-t", table, "-D", builtin, *rule.split()], capture_output=True).returncode == 0:
            pass
    for table in ("nat", "filter"):
        out = run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
        found = [line[1:].split()[0] for line in out.splitlines()
                 if line.startswith(":") and chains.owns(line[1:].split()[0])]
        for verb in ("-F", "-X"):
            for chain in found:
                run(["iptables", "-w", "-t", table, verb, chain], capture_output=True)


def local_addresses(run=subprocess.run) -> set[str]:
    out = run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    return {words[3].split("/")[0] for words in (line.split() for line in out.splitlines()) if len(words) > 3}
