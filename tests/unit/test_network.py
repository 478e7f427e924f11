"""Cluster networks, the pure parts: subnets, what each node should have, the script that
programs it, and the DNS answers."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from swarmpy.model import (Attachment, DeploySpec, DesiredState, Healthcheck, Network, Node, Service, ServiceNetwork,
                           ServiceSpec, Task, TaskState)
from swarmpy.network import dns as cluster_dns
from swarmpy.network import ipam, names, render
from swarmpy.network.desired import node_state
from swarmpy.network.view import assemble, contribution

NET = Network(id="net1aaaaaaaaaaaaaaaaaaaaa", name="shop_default", subnet="10.0.1.0/24", gateway="10.0.1.1",
              vni=4242, stack="shop")
NODES = {n: Node(id=n, hostname=n, address=f"192.168.5.{i}") for i, n in enumerate(["n1", "n2", "n3"], 1)}


def service(name="api", replicas=2, mode="vip", healthcheck=None, aliases=()):
    spec = ServiceSpec(name=name, image="busybox", healthcheck=healthcheck,
                       deploy=DeploySpec(replicas=replicas, endpoint_mode=mode))
    return Service(id=f"svc-{name}", stack="shop", name=f"shop_{name}", spec=spec,
                   networks=[ServiceNetwork(NET.id, NET.name, list(aliases))])


def task(svc, slot, node, address, state=TaskState.RUNNING, health=None, desired=DesiredState.RUNNING):
    return Task(id=f"{svc.spec.name}-{slot}", service_id=svc.id, service_name=svc.name, spec_version=1, slot=slot,
                node_id=node, state=state, health=health, desired_state=desired,
                attachments=[Attachment(NET.id, address, ipam.mac_of(address))])


def snapshot(*parts):
    return assemble(1, 0.0, "cluster0123456", {NET.id: NET}, NODES, dict(enumerate(parts)))


# ---------------------------------------------------------------------- subnets


def test_subnets_come_from_the_pool_in_order_past_its_first_and_around_what_is_taken():
    assert ipam.allocate_subnet([]) == "10.0.1.0/24"
    assert ipam.allocate_subnet(["10.0.1.0/24", "10.0.2.0/23"]) == "10.0.4.0/24"
    assert ipam.allocate_subnet([], avoid=["10.0.1.7"]) == "10.0.2.0/24"
    assert ipam.allocate_subnet([], pool="172.20.0.0/16", prefix=26) == "172.20.0.64/26"
    with pytest.raises(ipam.IPAMError, match="no free"):
        ipam.allocate_subnet(["10.9.0.64/26"], pool="10.9.0.0/25", prefix=26)


@pytest.mark.parametrize("subnet, message", [
    ("10.0.1.0/25", "overlaps network shop_default"),
    ("10.0.0.0/16", "overlaps network shop_default"),
    ("192.168.5.0/24", "holds the node address 192.168.5.1"),
    ("10.7.0.1/24", "invalid subnet"),
    ("nonsense", "invalid subnet"),
    ("10.7.0.0/30", "too small"),
])
def test_a_subnet_is_refused_when_it_clashes_or_is_no_subnet(subnet, message):
    with pytest.raises(ipam.IPAMError, match=message):
        ipam.check_subnet(subnet, {"10.0.1.0/24": "network shop_default"}, ["192.168.5.1"])


def test_a_free_subnet_passes_and_addresses_have_dockers_mac():
    assert str(ipam.check_subnet("10.0.2.0/24", {"10.0.1.0/24": "x"})) == "10.0.2.0/24"
    assert ipam.gateway("10.0.2.0/24") == "10.0.2.1"
    assert ipam.mac_of("10.0.1.5") == "02:42:0a:00:01:05"
    taken = set(range(ipam.VNI_RANGE[0], ipam.VNI_RANGE[0] + 1000))
    assert all(ipam.VNI_RANGE[0] + 1000 <= ipam.new_vni(taken) <= ipam.VNI_RANGE[1] for _ in range(200))


# ---------------------------------------------------------------------- what the networks say


def test_names_answer_the_vip_and_tasks_answer_the_tasks_that_take_traffic():
    api = service(aliases=["backend"])
    tasks = [task(api, 1, "n1", "10.0.1.5"), task(api, 2, "n2", "10.0.1.6"),
             task(api, 3, "n3", "10.0.1.7", desired=DesiredState.SHUTDOWN)]  # leaving: no traffic
    picture = snapshot(contribution(api, tasks, {NET.id: "10.0.1.2"}, live=True)).networks[NET.id]
    for name in ("api", "shop_api", "backend"):
        assert picture.names[name] == ("10.0.1.2",)
        assert picture.names[f"tasks.{name}"] == ("10.0.1.5", "10.0.1.6")
    assert picture.names["shop_api.1.api-1"] == ("10.0.1.5",)
    assert picture.nodes == {"n1", "n2", "n3"}
    assert set(picture.members) == {"api-1", "api-2", "api-3"}  # still reachable while it drains


def test_health_gates_traffic_and_dnsrr_answers_with_the_tasks():
    check = Healthcheck(test=["CMD", "true"])
    db = service("db", mode="dnsrr", healthcheck=check)
    tasks = [task(db, 1, "n1", "10.0.1.5", health="healthy"), task(db, 2, "n2", "10.0.1.6", health="starting"),
             task(db, 3, "n2", "10.0.1.9", state=TaskState.FAILED)]
    picture = snapshot(contribution(db, tasks, {}, live=True)).networks[NET.id]
    assert picture.names["db"] == ("10.0.1.5",)
    assert picture.names["tasks.db"] == ("10.0.1.5",)
    assert "db-3" not in picture.members


def test_a_removed_service_keeps_its_running_tasks_reachable_but_answers_no_name():
    api = service()
    picture = snapshot(contribution(api, [task(api, 1, "n1", "10.0.1.5")], {NET.id: "10.0.1.2"},
                                    live=False)).networks[NET.id]
    assert "api" not in picture.names and "api-1" in picture.members


def test_two_services_answering_to_one_alias_answer_with_both():
    a, b = service("a", aliases=["shared"]), service("b", aliases=["shared"])
    picture = snapshot(contribution(a, [], {NET.id: "10.0.1.2"}, True),
                       contribution(b, [], {NET.id: "10.0.1.3"}, True)).networks[NET.id]
    assert picture.names["shared"] == ("10.0.1.2", "10.0.1.3")
    assert picture.names["tasks.shared"] == ()


def test_a_snapshot_rebuilds_only_the_networks_it_is_told_changed():
    other = Network(id="net2bbbbbbbbbbbbbbbbbbbbb", name="shop_back", subnet="10.0.2.0/24", gateway="10.0.2.1",
                    vni=4243, stack="shop")
    networks = {NET.id: NET, other.id: other}
    api, db = service("api"), service("db")
    db.networks = [ServiceNetwork(other.id, other.name, [])]
    parts = {"api": contribution(api, [task(api, 1, "n1", "10.0.1.5")], {NET.id: "10.0.1.2"}, True),
             "db": contribution(db, [], {other.id: "10.0.2.2"}, True)}
    first = assemble(1, 0.0, "c", networks, NODES, parts)
    parts["api"] = contribution(api, [task(api, 1, "n1", "10.0.1.5"), task(api, 2, "n2", "10.0.1.6")],
                                {NET.id: "10.0.1.2"}, True)
    second = assemble(2, 0.0, "c", networks, NODES, parts, previous=first, dirty={NET.id})
    assert second.networks[other.id] is first.networks[other.id]  # untouched: the same picture
    assert second.networks[NET.id].names["tasks.api"] == ("10.0.1.5", "10.0.1.6")
    assert first.networks[NET.id].names["tasks.api"] == ("10.0.1.5",)  # a published picture never changes
    whole = assemble(2, 0.0, "c", networks, NODES, parts)
    assert {nid: (p.names, p.members, p.nodes) for nid, p in second.networks.items()} == \
        {nid: (p.names, p.members, p.nodes) for nid, p in whole.networks.items()}


# ---------------------------------------------------------------------- one node


def test_a_node_gets_its_networks_remote_tasks_vips_and_dns():
    api = service()
    tasks = [task(api, 1, "n1", "10.0.1.5"), task(api, 2, "n2", "10.0.1.6")]
    snap = snapshot(contribution(api, tasks, {NET.id: "10.0.1.2"}, live=True))
    state = node_state(snap, "n1", {NET.id: ("192.168.5.100", 40000)})
    net = state.networks[NET.id]
    assert net.neighbors == {"10.0.1.6": ("02:42:0a:00:01:06", "192.168.5.2")}  # not its own task
    assert net.vips == {"10.0.1.2": ("10.0.1.5", "10.0.1.6")}
    assert (net.local_vtep, net.dns, net.bridge) == ("192.168.5.1", ("192.168.5.100", 40000), "swpnet1aaaaaaaa")
    assert node_state(snap, "n3", {}).networks == {}  # no task of it there


def test_the_script_builds_devices_entries_vips_and_chains_and_then_only_changes():
    api = service()
    chains = names.Chains("cluster0123456")
    two = node_state(snapshot(contribution(api, [task(api, 1, "n1", "10.0.1.5"), task(api, 2, "n2", "10.0.1.6")],
                                           {NET.id: "10.0.1.2"}, True)), "n1", {NET.id: ("192.168.5.100", 40000)})
    script = render.apply_script(render.HostFacts(), two, chains)
    assert ("ip link add vxsnet1aaaaaaaa type vxlan id 4242 local 192.168.5.1 dstport 4789 nolearning proxy "
            "noudpcsum") in script
    assert "master swpnet1aaaaaaaa up" in script and "nf_call_iptables 1" in script
    assert "neigh replace 10.0.1.6 lladdr 02:42:0a:00:01:06 dev vxsnet1aaaaaaaa nud permanent" in script
    assert "fdb replace 02:42:0a:00:01:06 dev vxsnet1aaaaaaaa dst 192.168.5.2 self permanent" in script
    assert "addr replace 10.0.1.2/32 dev swpnet1aaaaaaaa" in script
    assert "--probability 0.5000000000" in script and "-j DNAT --to-destination 10.0.1.6" in script
    assert "--dport 53 -j DNAT --to-destination 192.168.5.100:40000" in script
    assert "iptables -w -t nat -I PREROUTING 1 -j SWP-cluste-PRE" in script

    one = node_state(snapshot(contribution(api, [task(api, 1, "n1", "10.0.1.5")], {NET.id: "10.0.1.2"}, True)),
                     "n1", {NET.id: ("192.168.5.100", 40000)})
    diff = render.apply_script(render.facts_of(two, chains), one, chains)
    assert "neigh del 10.0.1.6 dev vxsnet1aaaaaaaa" in diff and "fdb del 02:42:0a:00:01:06" in diff
    assert "neigh replace" not in diff and "addr replace" not in diff  # what stays is not touched
    stale = {c for c in render.facts_of(two, chains).chains["nat"]} - render.facts_of(one, chains).chains["nat"]
    assert stale and all(f"iptables -w -t nat -X {c}" in diff for c in stale)


def test_a_dns_server_on_the_same_host_is_reached_by_redirect():
    api = service()
    state = node_state(snapshot(contribution(api, [task(api, 1, "n1", "10.0.1.5")], {}, True)), "n1",
                       {NET.id: ("", 40000)})
    nat = render.tables(state, names.Chains("cluster0123456"))["nat"][1]
    assert any("--dport 53 -j REDIRECT --to-ports 40000" in rule for rule in nat)


def test_reading_a_node_keeps_only_this_clusters_devices_and_chains():
    chains = names.Chains("cluster0123456")
    out = "\n".join([
        "== links",
        "7: vxsnet1aaaaaaaa: <UP> mtu 1450 \\    link/ether 1a:2b alias swarmpy:cluster0123456:net1aaaa",
        "8: vxsotherclusterx: <UP> mtu 1450 \\    link/ether 1a:2c alias swarmpy:othercluster:x",
        "== neigh",
        "10.0.1.6 dev vxsnet1aaaaaaaa lladdr 02:42:0a:00:01:06 PERMANENT",
        "10.9.0.6 dev vxsotherclusterx lladdr 02:42:0a:09:00:06 PERMANENT",
        "== fdb",
        "02:42:0a:00:01:06 dev vxsnet1aaaaaaaa dst 192.168.5.2 self permanent",
        "== addr",
        "9: swpnet1aaaaaaaa    inet 10.0.1.2/32 scope global swpnet1aaaaaaaa",
        "9: swpnet1aaaaaaaa    inet 10.0.1.1/24 brd 10.0.1.255 scope global swpnet1aaaaaaaa",
        "== routes", "10.169.0.0/24 dev eth0 proto kernel scope link src 10.169.0.2",
        "10.0.1.0/24 dev swpnet1aaaaaaaa proto kernel scope link src 10.0.1.1",
        "172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown",
        "== nat", ":SWP-cluste-PRE - [0:0]", ":SWP-othercl-PRE - [0:0]", ":DOCKER - [0:0]",
        "== filter", ":SWP-cluste-FWD - [0:0]", "== end"])
    facts = render.parse_read(out, chains)
    assert facts.devices == {"vxsnet1aaaaaaaa"}
    assert facts.neighbors == {"vxsnet1aaaaaaaa": {"10.0.1.6": "02:42:0a:00:01:06"}}
    assert facts.fdb == {"vxsnet1aaaaaaaa": {"02:42:0a:00:01:06": "192.168.5.2"}}
    assert facts.vips == {"swpnet1aaaaaaaa": {"10.0.1.2"}}
    assert facts.chains == {"nat": {"SWP-cluste-PRE"}, "filter": {"SWP-cluste-FWD"}}
    assert facts.routes == {"10.169.0.0/24", "172.17.0.0/16"}  # what new networks must avoid: not ours
    teardown = render.teardown_script(facts, chains)
    assert "ip link del vxsnet1aaaaaaaa" in teardown and "vxsotherclusterx" not in teardown
    assert "SWP-othercl" not in teardown


# ---------------------------------------------------------------------- DNS


def ask(picture, name, rdtype="A", **kwargs):
    query = dns.message.make_query(name, rdtype, **kwargs)
    return dns.message.from_wire(cluster_dns.answer(picture, query.to_wire()))


def test_dns_answers_the_networks_names_and_servfails_the_rest():
    api = service()
    picture = snapshot(contribution(api, [task(api, 1, "n1", "10.0.1.5")], {NET.id: "10.0.1.2"}, True)).networks[NET.id]
    reply = ask(picture, "API.")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert [r.address for r in reply.answer[0]] == ["10.0.1.2"] and reply.answer[0].ttl == 0
    assert [r.address for r in ask(picture, "tasks.shop_api").answer[0]] == ["10.0.1.5"]
    aaaa = ask(picture, "api", "AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR and not aaaa.answer  # known name, no IPv6: no fall-through
    assert ask(picture, "example.com").rcode() == dns.rcode.SERVFAIL  # not ours: the next server answers
    assert ask(None, "api").rcode() == dns.rcode.SERVFAIL
    assert cluster_dns.answer(picture, b"\x00garbage") is None


def test_a_node_is_told_only_the_addresses_of_remote_tasks_it_has_entries_for():
    from types import SimpleNamespace

    from swarmpy.network.programmer import NetworkSupervisor
    api = service()
    snap = snapshot(contribution(api, [task(api, 1, "n1", "10.0.1.5"), task(api, 2, "n2", "10.0.1.6")],
                                 {NET.id: "10.0.1.2"}, True))
    supervisor = NetworkSupervisor(None, "me", "192.168.5.1", lambda n: True, lambda: None,
                                   local=lambda n: n.id == "n1")
    supervisor.view.current = snap
    n1, n2 = SimpleNamespace(reachable={NET.id: frozenset()}), SimpleNamespace(reachable=None)
    supervisor.programmers = {"n1": n1, "n2": n2}
    picture = snap.networks[NET.id]

    def addresses(client, name="tasks.api"):
        query = dns.message.make_query(name, "A").to_wire()
        reply = dns.message.from_wire(cluster_dns.answer(picture, query, keep=supervisor.visible(NET.id, client)))
        return sorted(r.address for r in reply.answer[0]) if reply.answer else []

    assert addresses("192.168.5.2") == ["10.0.1.5", "10.0.1.6"]  # n2's programmer has not said: no filter
    n2.reachable = {NET.id: frozenset()}
    assert addresses("192.168.5.2") == ["10.0.1.6"]  # n1's task is not programmed on n2 yet
    assert addresses("192.168.5.2", "api") == ["10.0.1.2"]  # a VIP is always there
    n2.reachable = {NET.id: frozenset({"10.0.1.5"})}
    assert addresses("192.168.5.2") == ["10.0.1.5", "10.0.1.6"]
    assert addresses("10.0.1.5") == ["10.0.1.5"]  # redirected on n1 itself (the source is a task)
    assert addresses("192.168.9.9") == ["10.0.1.5", "10.0.1.6"]  # no node of ours: no filter


def test_a_long_answer_is_truncated_over_udp_and_whole_over_tcp():
    api = service(replicas=60)
    tasks = [task(api, i, "n1", f"10.0.1.{10 + i}") for i in range(60)]
    picture = snapshot(contribution(api, tasks, {}, True)).networks[NET.id]
    query = dns.message.make_query("tasks.api", "A").to_wire()
    udp = dns.message.from_wire(cluster_dns.answer(picture, query))
    assert udp.flags & dns.flags.TC and not udp.answer
    whole = dns.message.from_wire(cluster_dns.answer(picture, query, max_size=None))
    assert len(whole.answer[0]) == 60
    big = ask(picture, "tasks.api", use_edns=0, payload=4096)
    assert len(big.answer[0]) == 60


def test_a_network_the_engine_refuses_for_an_overlap_is_told_apart():
    from swarmpy.network.attach import _refusal
    error = ('network web_front: 400 Client Error: Bad Request ("Pool overlaps with other one on this address '
             'space"); network web_back: timed out')
    assert _refusal(error, "web_front").startswith("network web_front: 400")
    assert _refusal(error, "web_back") is None  # a time-out may pass
    assert _refusal(error, "web") is None
