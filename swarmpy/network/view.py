"""What the store says about the cluster's networks, in the shape the node programmers and
the DNS server need, kept current from the store's event stream.

A `Snapshot` is immutable: the follower thread builds a new one after each batch of
events (re-reading only the services the events name) and swaps it in, so readers
never lock. While the store cannot be reached the last snapshot stays: what the
nodes were programmed with, and what the DNS answers, outlive a control-plane fault.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from swarmpy.model import Network, Node, Service, Task, has_healthcheck, takes_traffic
from swarmpy.store import ReadPace, SeenBehaviour, Store

log = logging.getLogger(__name__)

# seconds: a last resort under the event-driven updates (a reload reads every task); the view
# reloads at once when the event stream lost events it had not read (checked every GAP_CHECK_EVERY)
FULL_RELOAD_EVERY = 60.0
GAP_CHECK_EVERY = 1.0
READ_PACE = 0.05  # a burst of changes is taken in at most this often
LOAD_BATCH = 200  # services a reload reads at once


@dataclass(frozen=True)
class Member:
    """A task's place on a network: where its frames go, and whether it takes traffic."""

    task_id: str
    service_id: str
    node_id: str
    address: str
    mac: str
    serving: bool


@dataclass(frozen=True)
class ServiceEntry:
    """A service as seen on one network."""

    id: str
    name: str
    names: tuple[str, ...]  # what it answers to there: its short and full names and its aliases
    vip: str | None  # None with endpoint_mode dnsrr (or before one is handed out)
    backends: tuple[str, ...]  # addresses of its tasks that take traffic


@dataclass
class NetworkPicture:
    network: Network
    members: dict[str, Member] = field(default_factory=dict)  # task id -> its place here
    services: dict[str, ServiceEntry] = field(default_factory=dict)
    nodes: set[str] = field(default_factory=set)  # where tasks on it are assigned and not ended
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # DNS: lower-case name -> addresses


@dataclass(frozen=True)
class Snapshot:
    version: int = 0
    changed_at: float = 0.0  # the time of the newest change it includes
    cluster_id: str = ""
    networks: dict[str, NetworkPicture] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    ready: bool = False  # built from the store at least once

    def networks_on(self, node_id: str) -> list[NetworkPicture]:
        return [p for p in self.networks.values() if node_id in p.nodes]


@dataclass
class _Contribution:
    """One service's part of every picture: computed when its service or tasks change."""

    entries: dict[str, ServiceEntry]  # network id -> the service there
    members: dict[str, dict[str, Member]]  # network id -> task id -> member
    nodes: dict[str, set[str]]  # network id -> nodes with its live tasks
    names: dict[str, dict[str, tuple[str, ...]]]  # network id -> name -> addresses (task names)


def contribution(service: Service, tasks: list[Task], vips: dict[str, str], live: bool) -> _Contribution:
    """What a service adds to the networks it is on. A removed service (`live` False) keeps
    its members until its tasks end, but no longer answers to names."""
    needs_health = has_healthcheck(service.spec)
    short = service.spec.name
    out = _Contribution({}, {}, {}, {})
    for net in service.networks:
        members: dict[str, Member] = {}
        nodes: set[str] = set()
        names: dict[str, tuple[str, ...]] = {}
        for t in tasks:
            if t.node_id and not t.state.terminal:
                nodes.add(t.node_id)
            address = next((a for a in t.attachments if a.network_id == net.id), None)
            if address is None or t.state.terminal or not t.node_id:
                continue
            serving = takes_traffic(t, needs_health)
            members[t.id] = Member(t.id, service.id, t.node_id, address.address, address.mac, serving)
            if live and serving:
                names[t.container_name.lower()] = (address.address,)
        out.members[net.id], out.nodes[net.id], out.names[net.id] = members, nodes, names
        if not live:
            continue
        backends = tuple(m.address for m in sorted(members.values(), key=lambda m: m.address) if m.serving)
        dnsrr = service.spec.deploy.endpoint_mode == "dnsrr"
        own = dict.fromkeys(n.lower() for n in (short, service.name, *net.aliases))
        out.entries[net.id] = ServiceEntry(service.id, service.name, tuple(own), None if dnsrr else vips.get(net.id),
                                           backends)
    return out


def networks_of(part: _Contribution) -> set[str]:
    return {*part.members, *part.entries}


def assemble(version: int, changed_at: float, cluster_id: str, networks: dict[str, Network],
             nodes: dict[str, Node], parts: dict[str, _Contribution], previous: Snapshot | None = None,
             dirty: set[str] | None = None) -> Snapshot:
    """The pictures of the networks from every service's part. Given the `previous` snapshot and the
    `dirty` networks (those the changed services were or are on), only those are built again: the
    others are the previous snapshot's (a picture is never changed once published). A deploy changes
    one stack's services; with 1,000 services, building every picture cost more than the rest."""
    kept: dict[str, NetworkPicture] = {}
    if previous is not None and dirty is not None:
        kept = {nid: p for nid, p in previous.networks.items() if nid in networks and nid not in dirty}
    fresh = {nid: NetworkPicture(n) for nid, n in networks.items() if nid not in kept}
    for part in parts.values():
        for nid, members in part.members.items():
            picture = fresh.get(nid)
            if picture is None:
                continue
            picture.members.update(members)
            picture.nodes |= part.nodes[nid]
            for name, addresses in part.names[nid].items():
                picture.names[name] = picture.names.get(name, ()) + addresses
        for nid, entry in part.entries.items():
            picture = fresh.get(nid)
            if picture is None:
                continue
            picture.services[entry.id] = entry
            answer = (entry.vip,) if entry.vip else entry.backends
            for name in entry.names:
                picture.names[name] = picture.names.get(name, ()) + answer
                picture.names[f"tasks.{name}"] = picture.names.get(f"tasks.{name}", ()) + entry.backends
    for picture in fresh.values():  # one answer per address, even when two services share a name
        picture.names = {k: tuple(dict.fromkeys(v)) for k, v in picture.names.items()}
    return Snapshot(version, changed_at, cluster_id, {**kept, **fresh}, nodes, ready=True)


def relevant(event: dict) -> bool:
    kind = event.get("kind")
    return kind in ("network", "node", "service") or (
        kind == "task" and event.get("action") in ("state", "desired", "assign") and bool(event.get("service_id")))


class NetworkView(threading.Thread):
    """Follows the store and keeps `current` up to date; `wait_newer` wakes its readers."""

    def __init__(self, store: Store):
        super().__init__(name="network-view", daemon=True)
        self.store = store
        self.current = Snapshot()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._networks: dict[str, Network] = {}
        self._nodes: dict[str, Node] = {}
        self._parts: dict[str, _Contribution] = {}
        self._on_network: dict[str, set[str]] = {}  # network id -> the services whose part is on it
        self._cluster_id = ""
        self._seen = SeenBehaviour()  # a service event that changes no picture (a label) is let pass
        self._pace = ReadPace(READ_PACE)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def wait_newer(self, version: int, timeout: float) -> Snapshot:
        with self._cond:
            if self.current.version <= version and not self._stop.is_set():
                self._cond.wait(timeout)
            return self.current

    def run(self) -> None:
        cursor, last_full, last_gap_check = None, 0.0, 0.0
        while not self._stop.is_set():
            try:
                if cursor is not None and time.time() - last_gap_check >= GAP_CHECK_EVERY:
                    last_gap_check = time.time()
                    if self.store.events_missed(cursor) is not None:
                        log.warning("network view: the event stream lost events it had not read; reloading")
                        cursor = None
                if cursor is None or time.time() - last_full > FULL_RELOAD_EVERY:
                    cursor = cursor or self.store.last_event_id()
                    started = time.time()  # a change made while it reads may be missing: not later
                    self._seen.forget()
                    self._load_all()
                    last_full = time.time()
                    self._publish(started)
                    continue
                events = self._pace.read(self.store, cursor, 1000, self._stop)
                if not events:
                    continue
                cursor = events[-1][0]
                hits = [e for _, e in events if relevant(e) and not self._seen.unchanged(e)]
                if hits:
                    dirty = self._apply(hits)
                    self._publish(max(float(e.get("time", 0)) for e in hits), dirty)
            except Exception as e:  # the last snapshot stays in force
                log.warning("network view: cannot read the store (%s); keeping what it said last", e)
                cursor = None
                self._stop.wait(1.0)

    def _publish(self, changed_at: float, dirty: set[str] | None = None) -> None:
        """A new snapshot: every picture built again, or only the `dirty` networks' (from the parts
        on them alone)."""
        parts = self._parts if dirty is None else {
            sid: self._parts[sid] for nid in dirty for sid in self._on_network.get(nid, ())}
        snapshot = assemble(self.current.version + 1, max(changed_at, self.current.changed_at), self._cluster_id,
                            self._networks, self._nodes, parts, self.current, dirty)
        with self._cond:
            self.current = snapshot
            self._cond.notify_all()

    def _load_all(self) -> None:
        store = self.store
        self._cluster_id = store.cluster_info().get("id", "")
        self._networks = {n.id: n for n in store.list_networks()}
        self._nodes = {n.id: n for n in store.list_nodes()}
        services = {s.id: (s, True) for s in store.list_services() if s.networks}
        services.update({s.id: (s, False) for s in store.removed_services() if s.networks})
        self._parts, self._on_network = {}, {}
        ordered = sorted(services.items())  # in batches: no reply so large that it holds up the store
        for start in range(0, len(ordered), LOAD_BATCH):
            self._put_parts(self._contributions(dict(ordered[start:start + LOAD_BATCH])))

    def _put_parts(self, parts: dict[str, _Contribution]) -> None:
        self._parts.update(parts)
        for sid, part in parts.items():
            for nid in networks_of(part):
                self._on_network.setdefault(nid, set()).add(sid)

    def _pop_part(self, sid: str) -> _Contribution | None:
        part = self._parts.pop(sid, None)
        for nid in networks_of(part) if part else ():
            self._on_network[nid].discard(sid)
            if not self._on_network[nid]:
                del self._on_network[nid]
        return part

    def _apply(self, events: list[dict]) -> set[str] | None:
        """Takes in the events; returns the networks whose pictures they change (None: every one)."""
        kinds = {e["kind"] for e in events}
        everything = "network" in kinds
        if everything:
            self._networks = {n.id: n for n in self.store.list_networks()}
        if "node" in kinds:
            self._nodes = {n.id: n for n in self.store.list_nodes()}
        dirty = {e["id"] if e["kind"] == "service" else e.get("service_id") for e in events
                 if e["kind"] in ("service", "task")} - {None, ""}
        if not dirty:
            return None if everything else set()
        live, removed = self.store.get_services_live_or_removed(dirty)
        services = {sid: (s, True) for sid, s in live.items() if s.networks}
        services.update({sid: (s, False) for sid, s in removed.items() if s.networks})
        before = [part for sid in dirty if (part := self._pop_part(sid))]
        after = self._contributions(services)
        self._put_parts(after)
        if everything:
            return None
        return {nid for part in before + list(after.values()) for nid in networks_of(part)}

    def _contributions(self, services: dict[str, tuple[Service, bool]]) -> dict[str, _Contribution]:
        if not services:
            return {}
        tasks = self.store.tasks_of_services(services)
        vips = self.store.service_vips({sid: [n.id for n in s.networks] for sid, (s, _) in services.items()})
        return {sid: contribution(s, tasks.get(sid, []), vips.get(sid, {}), live)
                for sid, (s, live) in services.items()}
