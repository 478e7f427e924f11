"""Network operations of the API: a stack's networks at deploy, and `network create |
ls | inspect | rm`.

A stack's networks are `<stack>_<key>` (or their `name:`), made when a service of
the stack first uses one, with a subnet from the cluster's pool unless the file
gives one; `external: true` names a network made with `network create`, which
must exist. What a deploy would make is checked whole before anything is
written: a refused deploy makes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from swarmpy.model import Network, NetworkSpec, Service, ServiceNetwork, StackSpec, new_id
from swarmpy.network import ipam, names
from swarmpy.store import Conflict, NotFound, PlanFacts, Store, vip_owner

DEFAULT_NETWORK = "default"


class NetworkError(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status


@dataclass
class StackNetworks:
    """What a deploy needs of networks: each service's networks, and the networks to make."""

    by_service: dict[str, list[ServiceNetwork]] = field(default_factory=dict)  # service key -> its networks
    new: list[Network] = field(default_factory=list)


def pool_settings(cluster: dict[str, str]) -> tuple[str, int]:
    return cluster.get("addr_pool", ipam.DEFAULT_POOL), int(cluster.get("subnet_size", ipam.DEFAULT_PREFIX))


def _avoid(facts: PlanFacts) -> list[str]:
    """Addresses a subnet must not hold: the nodes' own."""
    return [n.address for n in facts.nodes]


def _taken(facts: PlanFacts) -> dict[str, str]:
    """Subnets a new network must not overlap: the cluster's networks, and what the nodes have
    (their engines' other networks, another cluster's or Docker's own bridge, and their routes):
    an engine refuses a network whose subnet overlaps one it has."""
    nodes = {n.id: n.hostname for n in facts.nodes}
    taken = {}
    for node_id, status in facts.net_statuses.items():
        for subnet in status.get("taken") or ():
            taken.setdefault(subnet, f"a network or route on node {nodes.get(node_id, node_id)}")
    taken.update({n.subnet: f"network {n.name}" for n in facts.networks})
    return taken


def _subnet_of(spec: NetworkSpec, at: str) -> str | None:
    configs = (spec.ipam or {}).get("config") or []
    subnets = [c.get("subnet") for c in configs if isinstance(c, dict) and c.get("subnet")]
    if len(subnets) > 1:
        raise NetworkError("a network spans the cluster with one subnet: give one `ipam.config` subnet",
                           field=f"{at}.ipam.config")
    return subnets[0] if subnets else None


def _mtu(spec: NetworkSpec, at: str) -> int:
    value = (spec.driver_opts or {}).get(names.MTU_OPTION)
    if value is None:
        return ipam.DEFAULT_MTU
    if not str(value).isdigit() or not 576 <= int(value) <= 9000:
        raise NetworkError(f"{names.MTU_OPTION} must be a number from 576 to 9000, not {value!r}",
                           field=f"{at}.driver_opts")
    return int(value)


def plan_stack_networks(facts: PlanFacts, stack_name: str, stack: StackSpec) -> StackNetworks:
    existing = {n.name: n for n in facts.networks}
    taken = _taken(facts)
    avoid = _avoid(facts)
    pool, prefix = pool_settings(facts.cluster)
    plan = StackNetworks()
    made: dict[str, Network] = {}  # key -> network (new or existing)
    for svc_key, svc in stack.services.items():
        keys = list(svc.networks) or [DEFAULT_NETWORK]
        joined = []
        for key in keys:
            if key not in made:
                made[key] = _network_for(stack_name, key, stack.networks.get(key), existing, taken, avoid, pool,
                                         prefix, plan)
            options = svc.networks.get(key) or {}
            aliases = [str(a) for a in options.get("aliases") or []]
            joined.append(ServiceNetwork(made[key].id, made[key].name, aliases))
        _route_out(svc_key, svc, [made[k] for k in keys], f"services.{svc_key}.ports")
        plan.by_service[svc_key] = joined
    return plan


def _route_out(name: str, svc, joined: list[Network], field: str) -> None:
    if svc.ports and joined and all(n.internal for n in joined):
        raise NetworkError(f"service {name} publishes ports but all its networks are internal: "
                           "published ports need a network with a route out", field=field)


def join_existing(store: Store, svc, at: str = "spec") -> list[ServiceNetwork]:
    """The networks a service of no stack joins: ones that exist (`network create`), by name or id.
    None at all is Docker's default for `service create`: its published ports go through the
    mesh, and it answers no name on a cluster network."""
    joined = []
    for name, options in svc.networks.items():
        try:
            network = store.find_network(name)
        except NotFound:
            raise NetworkError(f"network {name!r} not found: create it first with `swarmpy network create {name}`",
                               field=f"{at}.networks.{name}", status=404) from None
        aliases = [str(a) for a in (options or {}).get("aliases") or []]
        joined.append((network, ServiceNetwork(network.id, network.name, aliases)))
    _route_out(svc.name, svc, [n for n, _ in joined], f"{at}.ports")
    return [sn for _, sn in joined]


def _network_for(stack_name: str, key: str, spec: NetworkSpec | None, existing: dict[str, Network],
                 taken: dict[str, str], avoid: list[str], pool: str, prefix: int, plan: StackNetworks) -> Network:
    at = f"networks.{key}"
    if spec is None:
        if key != DEFAULT_NETWORK:
            raise NetworkError(f"network {key!r} is not declared under top-level networks", field=at)
        spec = NetworkSpec()
    if spec.external:
        name = spec.name or key
        found = existing.get(name)
        if found is None:
            raise NetworkError(f"network {name!r} is declared as external, but could not be found: create it "
                               f"first with `swarmpy network create {name}`", field=at, status=404)
        return found
    name = spec.name or f"{stack_name}_{key}"
    found = existing.get(name)
    subnet = _subnet_of(spec, at)
    if found is not None:
        if found.stack != stack_name:
            owner = f"stack {found.stack}" if found.stack else "`swarmpy network create`"
            raise NetworkError(f"network name {name} is taken by a network of {owner}", field=at, status=409)
        if subnet and subnet != found.subnet:
            raise NetworkError(f"network {name} exists with subnet {found.subnet}: its subnet cannot change "
                               "(remove the stack first)", field=f"{at}.ipam.config", status=409)
        if bool(spec.internal) != found.internal:
            raise NetworkError(f"network {name} exists and is{'' if found.internal else ' not'} internal: that "
                               "cannot change (remove the stack first)", field=f"{at}.internal", status=409)
        return found
    if spec.driver not in (None, "overlay"):
        raise NetworkError(f"network {key}: driver {spec.driver!r} cannot span the cluster: stacks use overlay "
                           "networks (the default)", field=f"{at}.driver")
    try:
        if subnet:
            ipam.check_subnet(subnet, taken, avoid)
        else:
            subnet = ipam.allocate_subnet(taken, avoid, pool, prefix)
    except ipam.IPAMError as e:
        raise NetworkError(str(e), field=f"{at}.ipam.config" if spec.ipam else at, status=409) from None
    network = Network(id=new_id(), name=name, subnet=subnet, gateway=ipam.gateway(subnet),
                      vni=ipam.new_vni(n.vni for n in [*existing.values(), *plan.new]), stack=stack_name,
                      internal=bool(spec.internal), attachable=bool(spec.attachable), mtu=_mtu(spec, at),
                      labels=dict(spec.labels), created_at=time.time())
    taken[subnet] = f"network {name}"
    plan.new.append(network)
    return network


def vip_shape(service: Service) -> tuple[frozenset[str], str]:
    """What a service's virtual IPs follow: its networks and its endpoint mode."""
    return frozenset(n.id for n in service.networks), service.spec.deploy.endpoint_mode


def ensure_vips(store: Store, services: list[Service]) -> None:
    """A virtual IP on each network of each `vip` service (the same one again if it has one)."""
    wanted = {s.id: [sn.id for sn in s.networks] for s in services
              if s.networks and s.spec.deploy.endpoint_mode != "dnsrr"}
    held = store.service_vips(wanted) if wanted else {}  # one round trip: a redeploy has them all
    for s in services:
        allocated = False
        for nid in wanted.get(s.id, []):
            if nid in held[s.id]:
                continue
            try:
                network = store.get_network(nid)
            except NotFound:
                continue
            store.allocate_address(network, vip_owner(s.id))
            allocated = True
        if allocated:
            store.publish("service", "vip", s.id, stack=s.stack)


# ---------------------------------------------------------------------- network create / ls / inspect / rm


def create(store: Store, name: str, subnet: str | None, attachable: bool, internal: bool,
           labels: dict[str, str], mtu: int | None) -> Network:
    if store.network_id_by_name(name):
        raise NetworkError(f"network {name} exists already", field="name", status=409)
    facts = store.plan_facts()
    existing, taken = facts.networks, _taken(facts)
    try:
        if subnet:
            ipam.check_subnet(subnet, taken, _avoid(facts))
        else:
            subnet = ipam.allocate_subnet(taken, _avoid(facts), *pool_settings(facts.cluster))
    except ipam.IPAMError as e:
        raise NetworkError(str(e), field="subnet", status=409) from None
    if mtu is not None and not 576 <= mtu <= 9000:
        raise NetworkError("mtu must be from 576 to 9000", field="mtu")
    network = Network(id=new_id(), name=name, subnet=subnet, gateway=ipam.gateway(subnet),
                      vni=ipam.new_vni(n.vni for n in existing), internal=internal, attachable=attachable,
                      mtu=mtu or ipam.DEFAULT_MTU, labels=labels, created_at=time.time())
    try:
        store.create_network(network)
    except Conflict as e:
        raise NetworkError(str(e), field="subnet" if "subnet" in str(e) else "name", status=409) from None
    return network


def users(store: Store, network: Network) -> list[str]:
    """Services (removed ones still stopping included) on the network."""
    services = store.list_services() + store.removed_services()
    return sorted({s.name for s in services if any(n.id == network.id for n in s.networks)})


def remove(store: Store, network: Network) -> None:
    if network.stack:
        raise NetworkError(f"network {network.name} belongs to stack {network.stack}: it goes with "
                           f"`swarmpy stack rm {network.stack}`", status=409)
    using = users(store, network)
    if using:
        raise NetworkError(f"network {network.name} is in use by service{'s' if len(using) > 1 else ''} "
                           f"{', '.join(using)}: remove {'them' if len(using) > 1 else 'it'} first", status=409)
    store.delete_network(network)


def view(store: Store, network: Network, statuses: dict[str, dict] | None = None,
         nodes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A network as `network ls` and `inspect` show it: with the nodes it spans."""
    statuses = store.net_statuses() if statuses is None else statuses
    nodes = {n.id: n for n in store.list_nodes()} if nodes is None else nodes
    spans = sorted(nodes[nid].hostname for nid, s in statuses.items()
                   if network.id in (s.get("present") or ()) and nid in nodes)
    d = network.to_dict()
    d.update(scope="swarm", nodes=spans)
    return d


def inspect(store: Store, network: Network) -> dict[str, Any]:
    d = view(store, network)
    owners = store.address_owners(network.id)
    services = [s for s in store.list_services() if any(n.id == network.id for n in s.networks)]
    tasks = store.tasks_of_services([s.id for s in services])
    d["services"] = {}
    for s in services:
        d["services"][s.name] = {
            "id": s.id, "vip": owners.get(vip_owner(s.id)),
            "tasks": [{"id": t.id, "name": t.display_name, "node_id": t.node_id, "state": t.state.value,
                       "address": next((a.address for a in t.attachments if a.network_id == network.id), None)}
                      for t in tasks.get(s.id, []) if not t.state.terminal]}
    return d
