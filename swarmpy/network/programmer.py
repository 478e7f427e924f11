"""Programming the nodes: one programmer per node in the whole cluster (a lease in
Redis decides which worker process holds it), the only one that changes the node's
networking.

Woken by every new snapshot of the network view, it works out what the node should
have, and applies the difference with what it has in one script over the node's
SSH session; the Docker networks it makes and removes through the node's engine.
A network is made on a node as soon as a task of it is assigned there (the task's
start job waits for it) and removed a few seconds after the last one ended.

Each pass ends with a report (`net:status:<node>`): up to which change it has
applied (a task's stop waits until every node has dropped it from VIPs and
names), which networks the node has, and the host's own nameservers.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable

from docker.errors import APIError

from swarmpy.model import Node
from swarmpy.network import host, names, render
from swarmpy.network.desired import NodeState, node_state
from swarmpy.network.dns import DNSServer
from swarmpy.network.view import NetworkView, Snapshot
from swarmpy.store import Store
from swarmpy.store.networks import overlapping

log = logging.getLogger(__name__)

LEASE_MS = 5000
# A change is applied within BATCH_WINDOW, and never sooner than MIN_INTERVAL after the last: every
# iptables command on a host takes the host's xtables lock, which the engine also needs for each
# container it starts; a pass per task of a big deploy held the engine back.
BATCH_WINDOW = 0.03
MIN_INTERVAL = 0.2
LINGER = 3.0  # seconds a network stays on a node after its last task there ended
STATUS_EVERY = 2.0
STUCK_AFTER = 30.0  # seconds after which a network the engine will not remove is said so in the log
RELIST_EVERY = 30.0  # seconds between two readings of what the node really has


class Connector:
    """How a programmer reaches its node (the worker's `Engines`): a Docker client and the SSH
    session (None for this machine's engine)."""

    def client(self, node: Node): ...

    def session(self, node: Node): ...

    def drop(self, node_id: str) -> None: ...


class NodeProgrammer(threading.Thread):
    def __init__(self, store: Store, view: NetworkView, dns: DNSServer, connector: Connector, node_id: str,
                 holder: str, dns_address: str, local: Callable[[Node], bool]):
        super().__init__(name=f"net-{node_id[:8]}", daemon=True)
        self.store, self.view, self.dns, self.connector = store, view, dns, connector
        self.node_id, self.holder, self.dns_address, self.local = node_id, holder, dns_address, local
        self.stop_event = threading.Event()
        self.facts: render.HostFacts | None = None  # None: read the node before the next change
        self.docker_nets: dict[str, dict] = {}
        self.applied: NodeState | None = None
        self.leaving: dict[str, float] = {}  # network id -> when its last task on the node ended
        # network id -> (subnet, said in the log): no longer the cluster's, and the engine keeps it
        self.stuck: dict[str, tuple[str, bool]] = {}
        self.resolvers: list[str] = []
        self.taken: list[str] = []  # subnets the node has besides the cluster's: new networks avoid them
        self.shell: host.HostShell | None = None
        self.listed_at = 0.0
        self.error = ""
        self.applied_when = 0.0
        # network id -> addresses of other nodes' tasks the node has entries for (None: not known)
        self.reachable: dict[str, frozenset[str]] | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        version, reported = -1, 0.0
        applied_at = 0.0
        while not self.stop_event.is_set():
            try:
                if not self.store.acquire_lease(f"netprog:{self.node_id}", self.holder, LEASE_MS):
                    self.facts = None
                    self.stop_event.wait(1.0)
                    continue
            except Exception as e:  # no store: the node keeps what it has
                log.info("network programmer %s: store unreachable: %s", self.node_id, e)
                self.stop_event.wait(1.0)
                continue
            snapshot = self.view.wait_newer(version, 1.0)
            if not snapshot.ready:
                continue
            if snapshot.version != version:  # changes come in bursts (a deploy): take them in one pass
                self.stop_event.wait(max(BATCH_WINDOW, MIN_INTERVAL - (time.time() - self.applied_when)))
                snapshot = self.view.current
            node = snapshot.nodes.get(self.node_id)
            if node is None:
                return  # removed from the cluster
            self._wait_dns(snapshot)
            changed = snapshot.version != version
            version = snapshot.version
            try:
                self.program(snapshot, node)
                applied_at, self.error, self.applied_when = snapshot.changed_at, "", time.time()
            except Exception as e:
                self.error = _short(e)
                log.warning("network programmer %s (%s): %s", node.hostname, self.node_id, self.error)
                self.facts = None
                if not isinstance(e, (host.HostError, APIError)):  # the connection itself failed
                    self._drop_connection()
                self.stop_event.wait(1.0)
            if changed or time.time() - reported > STATUS_EVERY:
                self.report(applied_at)
                reported = time.time()
        self._drop_connection()
        try:
            self.store.release_lease(f"netprog:{self.node_id}", self.holder)
        except Exception:
            pass

    def _wait_dns(self, snapshot: Snapshot) -> None:
        """The DNS server opens the ports of new networks from the same snapshot: wait for them."""
        deadline = time.time() + 0.5
        while self.dns.applied_version < snapshot.version and time.time() < deadline:
            time.sleep(0.005)

    def report(self, applied_at: float) -> None:
        status = {"applied_at": applied_at, "updated_at": time.time(), "holder": self.holder,
                  "networks": sorted(self.applied.networks) if self.applied else [],
                  "present": sorted(self.docker_nets), "resolvers": self.resolvers,
                  "taken": sorted(set(self.taken) | {subnet for subnet, _ in self.stuck.values() if subnet}),
                  "error": self.error}
        try:
            self.store.put_net_status(self.node_id, status)
        except Exception as e:
            log.info("network programmer %s: cannot report: %s", self.node_id, e)

    # ------------------------------------------------------------------ one pass

    def program(self, snapshot: Snapshot, node: Node) -> None:
        local = self.local(node)
        dns = {nid: ("" if local else self.dns_address, port) for nid, port in self.dns.ports.items()}
        desired = node_state(snapshot, node.id, dns)
        chains = names.Chains(snapshot.cluster_id)
        if self.facts is None or time.time() - self.listed_at > RELIST_EVERY:
            self._read(node, chains, snapshot.cluster_id)
        self._remove_leaving(snapshot, node, desired)
        failed = {}
        for nid in desired.networks:
            if nid not in self.docker_nets:
                network = snapshot.networks[nid].network
                try:
                    host.create_docker_network(self.connector.client(node), network, snapshot.cluster_id)
                except (host.HostError, APIError) as e:  # the others still go ahead
                    failed[nid] = f"network {network.name}: {_short(e)}"
                    continue
                self.docker_nets[nid] = {"Id": names.docker_network(network), "Subnet": network.subnet}
        if failed:
            desired = NodeState({nid: n for nid, n in desired.networks.items() if nid not in failed})
        if desired != self.applied:
            out = self._shell(node).check(render.apply_script(self.facts, desired, chains))
            if render.RECREATED in out:  # a device made anew has none of its entries: read the node again
                self.facts, self.applied = None, None
                return self.program(snapshot, node)
            self.facts = render.facts_of(desired, chains)
            self.applied = desired
            self.reachable = {nid: frozenset(n.neighbors) for nid, n in desired.networks.items()}
        if not desired.networks and not self.docker_nets and (self.facts.devices or any(self.facts.chains.values())):
            self._shell(node).check(render.teardown_script(self.facts, chains))
            self.facts = render.HostFacts()
        if failed:
            raise host.HostError("; ".join(failed.values()))

    def _remove_leaving(self, snapshot: Snapshot, node: Node, desired: NodeState) -> None:
        """Networks whose last task here ended go a few seconds later (a task often follows
        another); those the cluster no longer has, or whose subnet a new one here needs, at once."""
        now = time.time()
        for nid in desired.networks:
            self.leaving.pop(nid, None)
        coming = [snapshot.networks[nid].network for nid in desired.networks if nid not in self.docker_nets]
        for nid in set(self.docker_nets) - set(desired.networks):
            since = self.leaving.setdefault(nid, now)
            known = snapshot.networks.get(nid)
            clash = known is not None and overlapping(known.network.subnet, coming) is not None
            if known is not None and not clash and now - since < LINGER:
                continue
            if host.remove_docker_network(self.connector.client(node), self.docker_nets[nid]["Id"]):
                self._shell(node).check(render.remove_script({names.vxlan(nid)}))
                del self.docker_nets[nid]
                self.leaving.pop(nid, None)
                self.stuck.pop(nid, None)
            elif known is None:
                # The cluster removed it, and the engine refuses: containers still stopping, or
                # (Docker does this now and then) "active endpoints" with none attached, for good.
                # A new network of the cluster may be given its subnet, which this engine would
                # refuse ("Pool overlaps"): the subnet is reported taken until the network goes.
                subnet = self.docker_nets[nid].get("Subnet", "")
                if now - since > STUCK_AFTER and not self.stuck.get(nid, (None, False))[1]:
                    log.warning("network programmer %s: the engine will not remove %s (%s), a network the "
                                "cluster removed; its subnet stays taken", node.hostname,
                                self.docker_nets[nid].get("Name", nid), subnet or "subnet unknown")
                self.stuck[nid] = (subnet, now - since > STUCK_AFTER)

    def _read(self, node: Node, chains: names.Chains, cluster_id: str) -> None:
        """What the node has (after a (re)start, an error, and now and then): nothing is assumed."""
        shell = self._shell(node)
        self.facts = render.parse_read(shell.check(render.READ_SCRIPT), chains)
        client = self.connector.client(node)
        self.docker_nets = host.docker_networks(client, cluster_id)
        # one the engine kept and let go since (removed by hand, say) no longer holds its subnet
        self.stuck = {nid: entry for nid, entry in self.stuck.items() if nid in self.docker_nets}
        self.taken = sorted(host.engine_subnets(client, cluster_id) | self.facts.routes)
        self.resolvers = host.resolvers(shell)
        self.applied = None
        self.listed_at = time.time()

    def _shell(self, node: Node) -> host.HostShell:
        session = self.connector.session(node)
        if self.shell is None or self.shell.session is not session:
            if self.shell is not None:
                self.shell.close()
            self.shell = host.HostShell(session)
        return self.shell

    def _drop_connection(self) -> None:
        if self.shell is not None:
            self.shell.close()
            self.shell = None
        self.connector.drop(self.node_id)


def teardown(client, shell: host.HostShell, cluster_id: str) -> None:
    """Remove everything the cluster's networks made on a node (`node rm`, `leave`): its Docker
    networks (once no container uses them), devices, addresses and chains."""
    for info in host.docker_networks(client, cluster_id).values():
        host.remove_docker_network(client, info["Id"])
    chains = names.Chains(cluster_id)
    facts = render.parse_read(shell.check(render.READ_SCRIPT), chains)
    shell.check(render.teardown_script(facts, chains))


class NetworkSupervisor(threading.Thread):
    """Runs in a worker's main process: the network view, the DNS server, and one programmer
    (competing for the node's lease) per node this machine can reach."""

    def __init__(self, store: Store, holder: str, dns_address: str, can_reach: Callable[[Node], bool],
                 make_connector: Callable[[], Connector], local: Callable[[Node], bool]):
        super().__init__(name="networks", daemon=True)
        self.store, self.holder, self.dns_address = store, holder, dns_address
        self.can_reach, self.make_connector, self.local = can_reach, make_connector, local
        self.view = NetworkView(store)
        self.dns = DNSServer(self.view, visible=self.visible)
        self.programmers: dict[str, NodeProgrammer] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        self.view.start()
        self.dns.start()
        while not self.stop_event.is_set():
            nodes = {nid: n for nid, n in self.view.current.nodes.items() if self.can_reach(n)}
            if self.view.current.ready:
                for node_id in nodes.keys() - self.programmers.keys():
                    p = NodeProgrammer(self.store, self.view, self.dns, self.make_connector(), node_id, self.holder,
                                       self.dns_address, self.local)
                    self.programmers[node_id] = p
                    p.start()
                for node_id in list(self.programmers):
                    if node_id not in nodes or not self.programmers[node_id].is_alive():
                        self.programmers.pop(node_id).stop()
            self.stop_event.wait(1.0)
        for p in self.programmers.values():
            p.stop()
        self.dns.stop()
        self.view.stop()

    def stop(self) -> None:
        self.stop_event.set()

    def visible(self, network_id: str, client: str) -> Callable[[str], bool] | None:
        """Which addresses the DNS may give the node that asks (None: any): its own tasks', and
        those of other nodes' tasks it has forwarding entries for. The node's programmer runs
        here, since the node sends its queries to its programmer's DNS server."""
        snapshot = self.view.current
        picture = snapshot.networks.get(network_id)
        if picture is None:
            return None
        node_id = self._asking_node(snapshot, picture.network.subnet, client)
        programmer = self.programmers.get(node_id or "")
        reachable = programmer.reachable if programmer is not None else None
        if reachable is None:
            return None
        programmed = reachable.get(network_id, frozenset())
        remote = {m.address for m in picture.members.values() if m.node_id != node_id}
        return lambda address: address not in remote or address in programmed

    def _asking_node(self, snapshot: Snapshot, subnet: str, client: str) -> str | None:
        """Queries from other hosts come masqueraded to their node's address; those a host
        redirects to its own DNS server keep the task's address (on the network's subnet)."""
        try:
            on_subnet = ipaddress.ip_address(client) in ipaddress.ip_network(subnet)
        except ValueError:
            return None
        if on_subnet:
            return next((nid for nid, n in snapshot.nodes.items() if self.local(n)), None)
        return next((nid for nid, n in snapshot.nodes.items() if n.address == client), None)


def _short(error: Exception) -> str:
    return (str(error) or type(error).__name__).splitlines()[0][:300]
