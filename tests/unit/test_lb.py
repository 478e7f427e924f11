"""The mesh's pure parts: which tasks take traffic, in which order endpoints are tried,
the PROXY protocol v2 header. A real proxy on loopback checks the data path."""

from __future__ import annotations

import asyncio
import ipaddress
import struct

from swarmpy.lb.balance import Balancer, Health
from swarmpy.lb.proxy import Listener
from swarmpy.lb.tcp import PROXY_V2_SIGNATURE, proxy_v2_header
from swarmpy.lb.routes import Endpoint, Route, relevant, routes_of, served
from swarmpy.model import (DeploySpec, DesiredState, Endpoint as TaskEndpoint, Healthcheck, Port, Service,
                           ServiceSpec, Task, TaskState)


def service(ports=None, labels=None, healthcheck=None) -> Service:
    spec = ServiceSpec(name="web", image="x", ports=ports or [Port(80, 8080)], healthcheck=healthcheck,
                       deploy=DeploySpec(labels=labels or {}))
    return Service(id="svc", stack="st", name="st_web", spec=spec)


def task(i: int, state=TaskState.RUNNING, desired=DesiredState.RUNNING, health=None, target=80) -> Task:
    return Task(id=f"t{i}", service_id="svc", service_name="st_web", spec_version=1, slot=i, state=state,
                desired_state=desired, health=health,
                endpoints=[TaskEndpoint(target=target, protocol="tcp", address=f"10.0.0.{i}", port=30000 + i,
                                        published=8080)])


def test_only_running_tasks_not_told_to_stop_take_traffic():
    tasks = [task(1), task(2, state=TaskState.STARTING), task(3, desired=DesiredState.SHUTDOWN),
             task(4, state=TaskState.FAILED), task(5)]
    (route,) = routes_of(service(), tasks)
    assert (route.port, route.protocol, route.target) == (8080, "tcp", 80)
    assert [e.task_id for e in route.endpoints] == ["t1", "t5"]
    assert route.endpoints[0] == Endpoint("10.0.0.1", 30001, "t1")


def test_with_a_healthcheck_only_healthy_tasks_take_traffic():
    hc = Healthcheck(test=["CMD", "true"])
    tasks = [task(1, health="starting"), task(2, health="healthy"), task(3, health="unhealthy"), task(4)]
    (route,) = routes_of(service(healthcheck=hc), tasks)
    assert [e.task_id for e in route.endpoints] == ["t2"]
    disabled = Healthcheck(test=["NONE"])
    (route,) = routes_of(service(healthcheck=disabled), tasks)
    assert len(route.endpoints) == 4


def test_host_mode_and_unpublished_ports_are_not_routed_and_labels_choose_the_strategy():
    ports = [Port(80, 8080), Port(81, 8081, mode="host"), Port(82, None)]
    routes = routes_of(service(ports=ports, labels={"com.swarmpy.lb.strategy": "least-conn",
                                                    "com.swarmpy.lb.proxy-protocol": "true"}), [task(1)])
    assert [(r.port, r.strategy, r.proxy_protocol, r.path) for r in routes] == [(8080, "least-conn", True, "proxy")]
    (plain,) = routes_of(service(), [task(1)])
    assert (plain.strategy, plain.proxy_protocol, plain.path) == ("round-robin", False, "kernel")
    (asked,) = routes_of(service(labels={"com.swarmpy.lb.path": "proxy"}), [task(1)])
    assert asked.path == "proxy"


def test_the_kernel_picks_each_endpoint_alike_masquerades_remote_ones_and_reaches_local_ones_directly():
    from swarmpy.lb import kernel
    chains = kernel.Chains("cluster0123456789")
    r = Route(port=8080, protocol="tcp", service_id="svc", service_name="st_web", target=80,
              endpoints=[Endpoint("192.168.5.2", 30001, "t1", "10.0.1.5"), Endpoint("192.168.5.3", 30002, "t2"),
                         Endpoint("192.168.5.1", 30003, "t3", "10.0.1.7")])
    empty = Route(port=9090, protocol="udp", service_id="s2", service_name="st_dns", target=53)
    (nat_chains, nat), (filter_chains, forward) = kernel.tables(chains, [r, empty], local={"192.168.5.1"}).values()
    port = chains.port(r)
    assert nat_chains[:3] == ["SWI-cluste-PORTS", "SWI-cluste-POST", port] and len(nat_chains) == 6
    assert all(len(c) <= 28 for c in nat_chains)
    assert f"-A SWI-cluste-PORTS -p tcp -m tcp --dport 8080 -j {port}" in nat
    picks = [line for line in nat if line.startswith(f"-A {port} ")]
    assert [p.split("--probability ")[1].split()[0] if "probability" in p else None for p in picks] == \
        ["0.3333333333", "0.5000000000", None]  # each endpoint a third of the new connections
    dnat = [line.split("--to-destination ")[1] for line in nat if "DNAT" in line]
    assert dnat == ["192.168.5.2:30001", "192.168.5.3:30002", "10.0.1.7:80"]  # a local task: its own address
    assert sum("MARK --set-xmark" in line for line in nat) == 2  # the two remote ones masqueraded
    assert "--dport 9090" not in " ".join(nat)  # no endpoint: left to the proxy, which refuses
    assert forward == ["-A SWI-cluste-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -j ACCEPT"]


def route(n: int, strategy="round-robin") -> Route:
    return Route(port=8080, protocol="tcp", service_id="svc", service_name="st_web", target=80, strategy=strategy,
                 endpoints=[Endpoint(f"10.0.0.{i}", 30000 + i, f"t{i}") for i in range(1, n + 1)])


def test_round_robin_starts_each_connection_at_the_next_endpoint():
    b = Balancer(Health())
    b.route = route(3)
    firsts = [b.candidates()[0].task_id for _ in range(6)]
    assert firsts == ["t1", "t2", "t3", "t1", "t2", "t3"]
    assert [e.task_id for e in b.candidates()] == ["t1", "t2", "t3"]  # the rest are the fallbacks, in order


def test_down_endpoints_are_tried_last_and_least_conn_prefers_the_idle():
    health = Health()
    b = Balancer(health)
    b.route = route(3, strategy="least-conn")
    b.open[b.route.endpoints[0]] = 5
    b.open[b.route.endpoints[1]] = 1
    assert [e.task_id for e in b.candidates()] == ["t3", "t2", "t1"]
    health.mark_down(b.route.endpoints[2])
    assert [e.task_id for e in b.candidates()] == ["t2", "t1", "t3"]
    health.mark_up(b.route.endpoints[2])
    assert b.candidates()[0].task_id == "t3"


def test_proxy_v2_header_carries_both_addresses():
    header = proxy_v2_header(("192.0.2.7", 51000), ("10.0.0.1", 8080))
    assert header[:12] == PROXY_V2_SIGNATURE
    assert header[12] == 0x21 and header[13] == 0x11  # v2 PROXY, TCP over IPv4
    length = struct.unpack("!H", header[14:16])[0]
    assert length == 12 and len(header) == 16 + 12
    assert ipaddress.ip_address(header[16:20]) == ipaddress.ip_address("192.0.2.7")
    assert ipaddress.ip_address(header[20:24]) == ipaddress.ip_address("10.0.0.1")
    assert struct.unpack("!HH", header[24:28]) == (51000, 8080)
    v6 = proxy_v2_header(("2001:db8::1", 1), ("10.0.0.1", 2))
    assert v6[13] == 0x21 and struct.unpack("!H", v6[14:16])[0] == 36


def test_the_proxy_skips_a_refusing_endpoint_and_relays_both_ways():
    async def scenario():
        async def echo(reader, writer):
            data = await reader.read(100)
            writer.write(b"echo:" + data)
            await writer.drain()
            writer.close()

        backend = await asyncio.start_server(echo, "127.0.0.1", 0)
        good = backend.sockets[0].getsockname()[1]
        refusing = _free_port()
        r = Route(port=_free_port(), protocol="tcp", service_id="s", service_name="st_s", target=80,
                  endpoints=[Endpoint("127.0.0.1", refusing, "dead"), Endpoint("127.0.0.1", good, "alive")])
        listener = Listener(r, Health())
        await listener.open("127.0.0.1")
        answers = []
        for _ in range(4):
            reader, writer = await asyncio.open_connection("127.0.0.1", r.port)
            writer.write(b"ping")
            answers.append(await reader.read(100))
            writer.close()
        status = listener.status()
        listener.close()
        backend.close()
        return answers, status

    answers, status = asyncio.run(scenario())
    assert answers == [b"echo:ping"] * 4  # no client saw the refusing endpoint
    states = {e["task_id"]: e["state"] for e in status["endpoints"]}
    assert states == {"dead": "down", "alive": "up"}


def test_an_endpoint_that_accepts_and_closes_without_a_word_is_replaced():
    async def scenario():
        async def slams(reader, writer):  # what Docker's userland proxy does for a dead container
            writer.close()

        async def echo(reader, writer):
            writer.write(b"echo:" + await reader.read(100))
            await writer.drain()
            writer.close()

        dead = await asyncio.start_server(slams, "127.0.0.1", 0)
        alive = await asyncio.start_server(echo, "127.0.0.1", 0)
        r = Route(port=_free_port(), protocol="tcp", service_id="s", service_name="st_s", target=80,
                  endpoints=[Endpoint("127.0.0.1", dead.sockets[0].getsockname()[1], "dead"),
                             Endpoint("127.0.0.1", alive.sockets[0].getsockname()[1], "alive")])
        listener = Listener(r, Health())
        await listener.open("127.0.0.1")
        answers = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", r.port)
            writer.write(b"GET")
            answers.append(await reader.read(100))
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.1)  # the proxy's side of the last connection closes
        opened = dict(listener.balancer.open)
        listener.close()
        dead.close()
        alive.close()
        return answers, opened

    answers, opened = asyncio.run(scenario())
    assert answers == [b"echo:GET"] * 3
    assert opened == {}  # every connection counted back out


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_orphaned_tasks_of_nodes_still_down_are_the_last_resort():
    orphans = [task(1, state=TaskState.ORPHANED), task(2, state=TaskState.ORPHANED)]
    orphans[0].node_id, orphans[1].node_id = "down", "back"
    # no task may take traffic: the orphans of nodes still down keep the port answering
    (route,) = routes_of(service(), orphans, frozenset({"down"}))
    assert [e.task_id for e in route.endpoints] == ["t1"]
    # a running task is always preferred
    (route,) = routes_of(service(), [*orphans, task(3)], frozenset({"down"}))
    assert [e.task_id for e in route.endpoints] == ["t3"]


def test_the_table_kept_on_disk_reads_back_the_same():
    from swarmpy.lb.routes import dump, load
    routes = routes_of(service(labels={"com.swarmpy.lb.strategy": "least-conn"}), [task(1), task(2)])
    table = {r.key: r for r in routes}
    assert load(dump(table)) == table


def test_the_kernels_counters_are_read_per_port_from_its_rules():
    from swarmpy.lb import kernel
    chains = kernel.Chains("cluster0123456789")
    nat = ("[5:300] -A SWI-cluste-PORTS -p tcp -m tcp --dport 8080 -j SWI-cluste-Pabc\n"
           "[2:100] -A SWI-cluste-PORTS -p udp -m udp --dport 53 -j SWI-cluste-Pdef\n"
           "[9:900] -A SWP-other-PRE -p tcp -m tcp --dport 8080 -j X\n")  # not the mesh's
    forward = "[40:5000] -A SWI-cluste-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -j ACCEPT\n"
    assert kernel.read_counters(chains, nat, forward) == {(8080, "tcp"): [5, 40, 5000], (53, "udp"): [2, 0, 0]}


def test_the_kernel_gets_an_endpoint_once_it_has_accepted_and_a_port_with_none_is_left_to_the_proxy():
    from swarmpy.lb.server import Mesh
    mesh = Mesh(store=None, lb_id="lb", node_id=None)
    tcp, udp = route(3), Route(port=53, protocol="udp", service_id="dns", service_name="st_dns", target=53,
                               endpoints=[Endpoint("10.0.0.9", 30053, "u1")])
    mesh.listeners = {r.key: Listener(r, mesh.health) for r in (tcp, udp)}
    first, second, third = tcp.endpoints
    by_port = {r.port: [e.task_id for e in r.endpoints] for r in mesh.kernel_routes()}
    assert by_port == {8080: [], 53: ["u1"]}  # none has accepted yet: the proxy serves 8080; UDP cannot be tried
    assert mesh.kernel_endpoints() == {first, second, third}
    mesh.health.accepted |= {first, second}
    mesh.health.mark_down(second)  # accepted once, refused since
    assert [e.task_id for e in mesh.kernel_routes()[0].endpoints] == ["t1"]


def test_only_events_that_may_change_the_table_rebuild_it():
    table = {(80, "tcp"): Route(port=80, protocol="tcp", service_id="web1", service_name="st_web", target=80)}
    asked = []

    def publishing():
        asked.append(1)
        return {"st_web", "st_new"}

    ids = served(table)
    assert relevant({"kind": "node", "action": "update", "id": "n1"}, ids, publishing)
    assert relevant({"kind": "service", "action": "update", "id": "web1", "name": "st_web"}, ids, publishing)
    assert relevant({"kind": "service", "action": "forget", "id": "web1"}, ids, publishing)
    assert relevant({"kind": "task", "action": "desired", "id": "t1", "service_id": "web1"}, ids, publishing)
    assert relevant({"kind": "task", "action": "desired", "id": ""}, ids, publishing)  # of no service said
    assert not asked  # the table's own services need no read
    # a service that now publishes joins the table; one that does not, and its tasks, change nothing
    assert relevant({"kind": "service", "action": "create", "id": "new1", "name": "st_new"}, ids, publishing)
    assert not relevant({"kind": "service", "action": "update", "id": "api1", "name": "st_api"}, ids, publishing)
    assert not relevant({"kind": "task", "action": "state", "id": "t2", "service_id": "api1"}, ids, publishing)
    assert not relevant({"kind": "stack", "action": "update", "id": "st"}, ids, publishing)
    assert not relevant({"kind": "task", "action": "assign", "id": "api1", "service_id": "api1"}, ids, publishing)


def test_a_load_balancer_builds_its_table_anew_after_a_gap_and_lets_a_relabel_pass(monkeypatch):
    """A service event that says the behaviour it said last rebuilds nothing; after the stream lost
    events the table is built anew and the next such event is news again."""
    import threading
    from swarmpy.lb import server
    from swarmpy.model import behaviour_of

    web = service(ports=[Port(80, 8080)])
    said = {"kind": "service", "action": "update", "id": web.id, "name": web.name,
            "behaviour": behaviour_of(web.to_dict()), "time": "1.0"}
    stop = threading.Event()

    class Store:
        batches = [[("1-0", said)], [("2-0", said)], [], [("3-0", said)]]
        gaps = [None, None, None, "2-0"]  # the fourth check finds the stream trimmed past the cursor

        def last_event_id(self):
            return "0-0"

        def events_missed(self, cursor):
            return self.gaps.pop(0) if self.gaps else None

        def read_events(self, cursor, block_ms=None):
            if not self.batches:
                stop.set()
                return []
            return self.batches.pop(0)

        def publishing_names(self):
            return [web.name]

        def cluster_info(self):
            return {}

    built = []
    monkeypatch.setattr(server, "GAP_CHECK_EVERY", 0.0)
    monkeypatch.setattr(server.routes, "table", lambda store: built.append(len(Store.batches)) or {})

    class Mesh:
        kernel = None

        async def apply(self, table, changed_at):
            pass

        def keep(self, table):
            pass

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        server.follow_store(Store(), Mesh(), loop, stop, program_kernel=False)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
    # at start; for the first word of the service; not for the same again; after the gap; for it again
    assert built == [4, 3, 1, 0]
