"""Cluster networks: records, names, the addresses handed out on each, and what the
network programmers report of each node."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

import redis

from swarmpy.model import Network
from swarmpy.store.base import Conflict, NotFound, StoreBase, _dumps

# Hand out one address of a network to `owner` (a task id, or `vip:<service id>`), the same one
# again if it has one. Addresses go round the subnet from where the last one was taken, so a
# freed address is the last to be given again (stale ARP entries in clients age out meanwhile).
# KEYS: addrs (ip -> owner), owners (owner -> ip), next (offset). ARGV: owner, base (the
# network address as an integer), size (addresses in the subnet), first (lowest offset to give).
_ALLOCATE_SCRIPT = """
local have = redis.call('HGET', KEYS[2], ARGV[1])
if have then return have end
local base, size, first = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local span = size - 1 - first
local start = tonumber(redis.call('GET', KEYS[3]) or first)
for i = 0, span - 1 do
  local off = first + ((start - first + i) % span)
  local n = base + off
  local ip = string.format('%d.%d.%d.%d', math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
                           math.floor(n / 256) % 256, n % 256)
  if redis.call('HSETNX', KEYS[1], ip, ARGV[1]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[1], ip)
    redis.call('SET', KEYS[3], off + 1)
    return ip
  end
end
return false
"""

_RELEASE_SCRIPT = """
local ip = redis.call('HGET', KEYS[2], ARGV[1])
if not ip then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], ip) == ARGV[1] then redis.call('HDEL', KEYS[1], ip) end
return 1
"""

FIRST_ADDRESS = 2  # .0 is the network, .1 the gateway on every node


class AddressesExhausted(Exception):
    pass


def vip_owner(service_id: str) -> str:
    return f"vip:{service_id}"


class NetworkRecords(StoreBase):
    """Keys: networks, network:names, network:<id>:addrs|owners|next, net:status:<node id>."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._allocate = self.redis.register_script(_ALLOCATE_SCRIPT)
        self._release_address = self.redis.register_script(_RELEASE_SCRIPT)

    def _networks_key(self) -> str:
        return self.key("networks")

    def _network_names_key(self) -> str:
        return self.key("network", "names")

    # ------------------------------------------------------------------ records

    def get_network(self, id: str) -> Network:
        raw = self._get_raw(self._networks_key(), id)
        if raw is None:
            raise NotFound(f"network {id} not found")
        return Network.from_dict(json.loads(raw))

    def list_networks(self) -> list[Network]:
        return self._networks_of(self.redis.hvals(self._networks_key()))

    @staticmethod
    def _networks_of(raws) -> list[Network]:
        return sorted((Network.from_dict(json.loads(v)) for v in raws), key=lambda n: n.name)

    def network_id_by_name(self, name: str) -> str | None:
        return self.redis.hget(self._network_names_key(), name)

    def find_network(self, ref: str) -> Network:
        """A network by name, id or id prefix, as `docker network` commands accept."""
        nid = self.network_id_by_name(ref)
        if nid:
            return self.get_network(nid)
        ids = [i for i in self.redis.hkeys(self._networks_key()) if i.startswith(ref)] if ref else []
        if len(ids) == 1:
            return self.get_network(ids[0])
        raise NotFound(f"network {ref} not found" if not ids else f"network {ref} is ambiguous")

    def network_keys(self) -> list[str]:
        """The keys to watch for a transaction to fail if a network is created or removed meanwhile
        (subnets must not overlap)."""
        return [self._networks_key(), self._network_names_key()]

    def add_networks(self, networks: Iterable[Network], pipeline) -> None:
        for n in networks:
            pipeline.hset(self._networks_key(), n.id, _dumps(n.to_dict()))
            pipeline.hset(self._network_names_key(), n.name, n.id)
            self.publish("network", "create", n.id, pipeline=pipeline, name=n.name)

    def create_network(self, network: Network) -> None:
        """A network of its own (`swarmpy network create`): refused if its name or subnet is taken."""
        with self.redis.pipeline(transaction=True) as p:
            p.watch(*self.network_keys())
            if p.hexists(self._network_names_key(), network.name):
                p.reset()
                raise Conflict(f"network {network.name} exists already")
            clash = overlapping(network.subnet, (Network.from_dict(json.loads(v))
                                                 for v in p.hvals(self._networks_key())))
            if clash:
                p.reset()
                raise Conflict(f"subnet {network.subnet} overlaps network {clash.name} ({clash.subnet})")
            p.multi()
            self.add_networks([network], p)
            try:
                p.execute()
            except redis.WatchError as e:
                raise Conflict("the networks changed while this one was made; try again") from e

    def delete_network(self, network: Network, pipeline=None) -> None:
        """Forget a network and every address handed out on it."""
        p = pipeline or self.pipeline()
        p.hdel(self._networks_key(), network.id)
        if self.redis.hget(self._network_names_key(), network.name) == network.id:
            p.hdel(self._network_names_key(), network.name)
        p.delete(*(self.key("network", network.id, part) for part in ("addrs", "owners", "next")))
        self.publish("network", "remove", network.id, pipeline=p, name=network.name)
        if pipeline is None:
            p.execute()

    def delete_unused_network(self, network: Network) -> bool:
        """Delete a network no service (removed ones still stopping included) uses and no live task
        is on; atomically, so that a deploy taking it up meanwhile wins. True when it went."""
        watched = [self.key("services"), self.key("services", "removed"), self.key("network", network.id, "owners")]
        with self.redis.pipeline(transaction=True) as p:
            p.watch(*watched)
            for raw in p.hvals(self.key("services")) + p.hvals(self.key("services", "removed")):
                if any(n.get("id") == network.id for n in json.loads(raw).get("networks") or []):
                    p.reset()
                    return False
            owners = [o for o in p.hkeys(self.key("network", network.id, "owners")) if not o.startswith("vip:")]
            if any(not t.state.terminal for t in self.get_tasks(owners)):
                p.reset()
                return False
            p.multi()
            self.delete_network(network, pipeline=p)
            try:
                p.execute()
            except redis.WatchError:
                return False
        return True

    # ------------------------------------------------------------------ addresses

    def allocate_address(self, network: Network, owner: str) -> str:
        """An address of the network for `owner` (the same one each time it asks)."""
        net = ipaddress.IPv4Network(network.subnet)
        keys = [self.key("network", network.id, part) for part in ("addrs", "owners", "next")]
        ip = self._allocate(keys=keys, args=[owner, int(net.network_address), net.num_addresses, FIRST_ADDRESS])
        if not ip:
            raise AddressesExhausted(f"network {network.name} ({network.subnet}) has no address left")
        return ip

    def release_address(self, network_id: str, owner: str) -> bool:
        keys = [self.key("network", network_id, part) for part in ("addrs", "owners")]
        return bool(self._release_address(keys=keys, args=[owner]))

    def address_owners(self, network_id: str) -> dict[str, str]:
        """owner -> address, for every address handed out on the network."""
        return self.redis.hgetall(self.key("network", network_id, "owners"))

    def addresses_of(self, owner: str, network_ids: Iterable[str]) -> dict[str, str]:
        """network id -> the address `owner` holds there (networks where it holds none are left out)."""
        network_ids = list(network_ids)
        with self.redis.pipeline(transaction=False) as p:
            for nid in network_ids:
                p.hget(self.key("network", nid, "owners"), owner)
            found = p.execute()
        return {nid: ip for nid, ip in zip(network_ids, found) if ip}

    def service_vips(self, service_networks: dict[str, list[str]]) -> dict[str, dict[str, str]]:
        """service id -> {network id: virtual IP}, for services given with their network ids."""
        pairs = [(sid, nid) for sid, nids in service_networks.items() for nid in nids]
        with self.redis.pipeline(transaction=False) as p:
            for sid, nid in pairs:
                p.hget(self.key("network", nid, "owners"), vip_owner(sid))
            found = p.execute()
        out: dict[str, dict[str, str]] = {sid: {} for sid in service_networks}
        for (sid, nid), ip in zip(pairs, found):
            if ip:
                out[sid][nid] = ip
        return out

    # ------------------------------------------------------------------ what the programmers report

    def put_net_status(self, node_id: str, status: dict[str, Any], ttl_s: float = 10) -> None:
        self.redis.set(self.key("net", "status", node_id), _dumps(status), px=int(ttl_s * 1000))

    def net_status(self, node_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.key("net", "status", node_id))
        return json.loads(raw) if raw else None

    def net_statuses(self) -> dict[str, dict[str, Any]]:
        """node id -> its programmer's last report (applied up to, networks present, error)."""
        return {node_id: json.loads(v) for node_id, v in self._values_under("net", "status").items()}

    def routes_behind(self, since: float, networks: set[str], ingress: bool) -> list[str]:
        """Which senders of traffic have not applied the changes up to `since` yet: the nodes'
        programmers with one of `networks` there (VIPs, names), and, when `ingress`, the load
        balancers (as "lb <id>")."""
        behind = [f"lb {lb_id}" for lb_id, s in (self.lb_statuses().items() if ingress else ())
                  if s.get("applied_at", 0) < since]
        return behind + [node_id for node_id, s in (self.net_statuses().items() if networks else ())
                         if s.get("applied_at", 0) < since and networks & set(s.get("networks") or ())]

    def forget_net_status(self, node_id: str) -> None:
        self.redis.delete(self.key("net", "status", node_id))


def overlapping(subnet: str, networks: Iterable[Network]) -> Network | None:
    net = ipaddress.IPv4Network(subnet)
    return next((n for n in networks if net.overlaps(ipaddress.IPv4Network(n.subnet))), None)
