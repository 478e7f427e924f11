"""Cluster networks on the lab: a stack's services reach each other by name across hosts, scale
and move without losing a request, stay apart from other stacks, and leave nothing behind."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import threading
import time

import dns.message
import docker
import dns.rrset
import pytest

from swarmpy.lab import engine as lab_engine
from tests.integration.cluster import wait_for

# api answers `/` with its hostname and `/cgi-bin/db` with its hostname and what db answered.
SHOP = """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    networks: [front]
    deploy:
      placement: {constraints: [node.hostname==node1]}
  api:
    image: swarmpy/busybox:latest
    command:
      - sh
      - -c
      - |
        mkdir -p /www/cgi-bin; hostname > /www/index.html
        dd if=/dev/urandom of=/www/big bs=1M count=5 2>/dev/null
        printf '#!/bin/sh\\necho "Content-Type: text/plain"\\necho\\necho "$(hostname) $(wget -qO- http://db/)"\\n' > /www/cgi-bin/db
        chmod +x /www/cgi-bin/db
        exec httpd -f -p 80 -h /www
    stop_grace_period: 1s
    networks: [front, back]
    healthcheck: {test: ["CMD", "wget", "-qO", "/dev/null", "http://127.0.0.1/"], interval: 1s, retries: 1}
    deploy:
      replicas: {api_replicas}
      placement: {{constraints: [{api_constraint}]}}
      restart_policy: {{delay: 0s}}
  db:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
    stop_grace_period: 1s
    networks:
      back:
        aliases: [database]
    deploy:
      placement: {{constraints: [node.hostname==node3]}}
networks:
  front: {{}}
  back:
    internal: true
"""


def shop(cluster, tmp_path, name: str, api_replicas: int = 2, api_constraint: str = "node.hostname==node2"):
    """The stack, once its api tasks are healthy (only then do they get traffic)."""
    text = SHOP.replace("{api_replicas}", str(api_replicas)).replace("{api_constraint}", api_constraint)
    text = text.replace("{{", "{").replace("}}", "}")
    cluster.deploy(cluster.write_stack(tmp_path, text, f"{name}.yml"), name)
    wait_for(lambda: len(inspect(cluster, f"{name}_api")["endpoint"]["backends"]
                         [f"{name}_front"]) == api_replicas, 30, what="api healthy")


def inspect(cluster, service: str) -> dict:
    return json.loads(cluster.cli("service", "inspect", service).stdout)[0]


def container(cluster, stack: str, service: str, node: str):
    found = cluster.engine(node).containers.list(filters={"label": f"com.swarmpy.service.name={stack}_{service}"})
    assert found, f"no {stack}_{service} container on {node}"
    return found[0]


def sh(c, command: str, check: bool = True) -> str:
    code, out = c.exec_run(["sh", "-c", command])
    text = out.decode(errors="replace").strip()
    if check and code != 0:
        raise AssertionError(f"`{command}` in {c.name} exited {code}: {text}")
    return text


def lookup(c, name: str) -> set[str]:
    """The addresses a name has inside the container (busybox nslookup through Docker's resolver)."""
    out = sh(c, f"nslookup -timeout=2 -retry=1 {name} 2>&1", check=False)
    return set(re.findall(r"Address:\s+(\d+\.\d+\.\d+\.\d+)$", out, re.M)) - {"127.0.0.11"}


def hostnames(cluster, stack: str, service: str, nodes=("node1", "node2", "node3")) -> dict[str, str]:
    """Container hostname (its short id) -> the node it runs on, from the engines."""
    return {c["Id"][:12]: c["node"] for c in cluster.listed(stack, nodes)
            if c["Labels"]["com.swarmpy.service.name"] == f"{stack}_{service}"}


def address_on(c, network: str) -> str:
    """A container's address on a cluster network (engines name it `<network>-<cluster tag>`)."""
    networks = c.attrs["NetworkSettings"]["Networks"]
    found = [v["IPAddress"] for k, v in networks.items() if k.rsplit("-", 1)[0] == network]
    assert found, f"{c.name} is not on {network}"
    return found[0]


def task_addresses(cluster, service: str, network: str, nodes=("node1", "node2", "node3")) -> set[str]:
    """The addresses of a service's running containers on a network, as the engines say."""
    out = set()
    for name in nodes:
        for c in cluster.engine(name).containers.list(filters={"label": f"com.swarmpy.service.name={service}"}):
            out.add(address_on(c, network))
    return out


def host_leftovers(cluster, node: str | None) -> dict[str, set[str]]:
    """What this cluster's networks made on a host (None: this machine, where other clusters and
    Swarm may have theirs): devices, iptables chains, Docker networks."""
    cid = cluster.cluster_id
    run = ["nsenter", f"--net=/run/netns/{cluster.lab.node(node).netns}"] if node else []
    links = subprocess.run([*run, "ip", "-o", "-d", "link"], capture_output=True, text=True).stdout
    rules = subprocess.run([*run, "iptables-save"], capture_output=True, text=True).stdout
    engine = cluster.engine(node) if node else docker.from_env()
    networks = engine.networks.list(filters={"label": f"com.swarmpy.cluster={cid}"})
    bridges = {"swp" + n.attrs["Labels"]["com.swarmpy.network.id"][:12] for n in networks}
    devices = {m.group(1) for m in re.finditer(r"^\d+: ((?:swp|vxs)\w{12})[:@].*?(?:alias (\S+))?$", links, re.M)
               if m.group(1) in bridges or (m.group(2) or "").startswith(f"swarmpy:{cid}:")}
    return {"devices": devices,
            "chains": {line.split()[0][1:] for line in rules.splitlines() if line.startswith(f":SWP-{cid[:6]}-")},
            "networks": {n.name.rsplit("-", 1)[0] for n in networks}}


@pytest.fixture
def shop_stack(cluster, tmp_path):
    shop(cluster, tmp_path, "shop")
    yield "shop"
    cluster.cli("stack", "rm", "shop", check=False)


def test_services_reach_each_other_by_name_across_hosts(cluster, shop_stack):
    web = container(cluster, "shop", "web", "node1")
    apis, dbs = hostnames(cluster, "shop", "api"), hostnames(cluster, "shop", "db")
    assert set(apis.values()) == {"node2"} and set(dbs.values()) == {"node3"}
    answers = {sh(web, "wget -qO- http://api/cgi-bin/db") for _ in range(12)}
    for answer in answers:  # web on node1 -> api on node2 -> db on node3, each by name
        api_host, db_host = answer.split()
        assert api_host in apis and db_host in dbs
    assert {a.split()[0] for a in answers} == set(apis)  # the VIP balances over both tasks
    assert sh(web, "wget -qO- http://shop_api/") in apis
    # the VIP on each network, and tasks.<name> the tasks' own addresses
    endpoint = inspect(cluster, "shop_api")["endpoint"]
    vips = {v["network"]: v["address"] for v in endpoint["virtual_ips"]}
    assert lookup(web, "api") == lookup(web, "shop_api") == {vips["shop_front"]}
    assert lookup(web, "tasks.api") == task_addresses(cluster, "shop_api", "shop_front")
    assert set(endpoint["backends"]["shop_front"]) == task_addresses(cluster, "shop_api", "shop_front")
    # a 5 MB download over the overlay, from node2 to node1 (the MTU is right)
    assert sh(web, "wget -qO- http://api/big | wc -c") == str(5 * 2**20)


def vip(cluster, service: str, network: str) -> str:
    endpoint = inspect(cluster, service)["endpoint"]
    return next(v["address"] for v in endpoint["virtual_ips"] if v["network"] == network)


def test_names_stay_on_their_networks_and_internal_has_no_way_out(cluster, shop_stack):
    web, db = container(cluster, "shop", "web", "node1"), container(cluster, "shop", "db", "node3")
    api = container(cluster, "shop", "api", "node2")
    assert lookup(api, "db") == lookup(api, "database") == {vip(cluster, "shop_db", "shop_back")}
    assert lookup(web, "db") == set()  # db is on `back` only, which web is not on
    db_address = address_on(db, "shop_back")
    assert "apart" in sh(web, f"timeout 3 wget -qO- http://{db_address}/ || echo apart", check=False)
    # `back` is internal: db reaches api by name there, and nothing outside the cluster
    assert sh(db, "wget -qO- http://api/") in hostnames(cluster, "shop", "api")
    node1 = cluster.lab.node("node1")  # a host outside the cluster's networks: its sshd greets whoever connects
    knock = f"timeout 3 nc {node1.address} {node1.ssh_port} </dev/null; true"
    assert "SSH-2.0" in sh(web, knock, check=False)
    assert "SSH-2.0" not in sh(db, knock, check=False)


def test_dnsrr_names_answer_with_every_task(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  rr:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy: {replicas: 3, endpoint_mode: dnsrr}
""")
    cluster.deploy(path, "rr")
    try:
        c = cluster.engine(cluster.listed("rr")[0]["node"]).containers.get(cluster.listed("rr")[0]["Id"])
        addresses = task_addresses(cluster, "rr_rr", "rr_default")
        assert len(addresses) == 3
        assert lookup(c, "rr") == lookup(c, "tasks.rr") == addresses
        assert inspect(cluster, "rr_rr")["endpoint"]["virtual_ips"][0]["address"] is None
    finally:
        cluster.cli("stack", "rm", "rr")


TWO_NETWORKS = """
services:
  app:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    networks: {networks}
    deploy: {{replicas: 1, labels: {{round: "{round}"}}}}
networks:
  front: {{}}
  back: {{}}
"""


def test_a_redeploy_keeps_the_vips_and_a_dropped_network_goes(cluster, tmp_path):
    def deploy(networks: str, round: int) -> dict[str, str]:
        cluster.deploy(cluster.write_stack(tmp_path, TWO_NETWORKS.format(networks=networks, round=round),
                                           f"r{round}.yml"), "drop")
        return {v["network"]: v["address"] for v in inspect(cluster, "drop_app")["endpoint"]["virtual_ips"]}

    try:
        first = deploy("[front, back]", 1)
        assert set(first) == {"drop_front", "drop_back"} and all(first.values())
        assert deploy("[front, back]", 2) == first  # only a label changed
        assert deploy("[front]", 3) == {"drop_front": first["drop_front"]}
        wait_for(lambda: "drop_back" not in {n["name"] for n in cluster.json("network", "ls")}, 15,
                 what="the network no service uses any more to go")
        assert "drop_front" in {n["name"] for n in cluster.json("network", "ls")}
    finally:
        cluster.cli("stack", "rm", "drop")


class Stream:
    """Requests from inside a container, one after another, each on a new connection; what failed is kept."""

    def __init__(self, c, url: str):
        self.c, self.url = c, url
        sh(c, "rm -f /tmp/stream.log /tmp/stream.stop")
        loop = (f"while [ ! -f /tmp/stream.stop ]; do if out=$(timeout 5 wget -qO- {url} 2>&1); then echo ok $out; "
                f"else echo FAIL $(date +%s) $out; fi; sleep 0.02; done > /tmp/stream.log 2>&1")
        c.exec_run(["sh", "-c", loop], detach=True)

    def lines(self) -> list[str]:
        return sh(self.c, "cat /tmp/stream.log", check=False).splitlines()

    def stop(self) -> list[str]:
        sh(self.c, "touch /tmp/stream.stop")
        time.sleep(1)
        return self.lines()


def test_scaling_under_a_stream_of_requests_by_name_loses_none(cluster, shop_stack):
    web = container(cluster, "shop", "web", "node1")
    stream = Stream(web, "http://api/")
    try:
        wait_for(lambda: len(stream.lines()) > 20, 10, what="the stream to start")
        for replicas in (5, 1):
            cluster.cli("service", "scale", f"shop_api={replicas}")
            wait_for(lambda: len(hostnames(cluster, "shop", "api")) == replicas, 30, what=f"{replicas} api tasks")
            wait_for(lambda: len({line.split()[1] for line in stream.lines()[-40:] if line.startswith("ok")})
                     == replicas, 20, what=f"requests answered by {replicas} tasks")
    finally:
        lines = stream.stop()
    failed = [line for line in lines if not line.startswith("ok")]
    assert failed == [] and len(lines) > 100
    assert lookup(web, "tasks.api") == task_addresses(cluster, "shop_api", "shop_front")


def test_a_lost_node_moves_the_service_and_its_name_follows(cluster, tmp_path):
    shop(cluster, tmp_path, "move", api_replicas=1, api_constraint="node.labels.zone==b")
    killed = None
    try:
        web = container(cluster, "move", "web", "node1")
        before = hostnames(cluster, "move", "api")
        killed = next(iter(before.values()))
        lab_engine.kill(cluster.lab.node(killed))
        other = "node3" if killed == "node2" else "node2"

        def moved():
            now = hostnames(cluster, "move", "api", nodes=(other,))
            return now and sh(web, "wget -qO- http://api/ 2>/dev/null || true", check=False) in now
        wait_for(moved, 60, interval=0.5, what="api to answer from the other node")
        # the VIP's rules and the DNS's answers follow from one pass, a moment apart
        running = task_addresses(cluster, "move_api", "move_front", nodes=(other,))
        assert len(running) == 1
        wait_for(lambda: lookup(web, "tasks.api") == running, 3, interval=0.2,
                 what=lambda: f"tasks.api to be {running}: {sh(web, 'nslookup tasks.api 2>&1', check=False)}")
    finally:
        if killed:
            lab_engine.start(cluster.lab, cluster.lab.node(killed))
            lab_engine.wait_ready(cluster.lab.node(killed))
            wait_for(lambda: all(n["status"] == "ready" for n in cluster.json("node", "ls")), 60,
                     what="the node back")
        cluster.cli("stack", "rm", "move", check=False)


def test_stacks_are_apart_and_an_external_network_joins_them(cluster, tmp_path):
    cluster.cli("network", "create", "t-shared", "--subnet", "10.77.0.0/24")
    one = cluster.write_stack(tmp_path, """
services:
  a:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
    stop_grace_period: 1s
    networks: [default, shared]
    deploy: {placement: {constraints: [node.hostname==node2]}}
networks:
  shared: {external: true, name: t-shared}
""", "one.yml")
    two = cluster.write_stack(tmp_path, """
services:
  b:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy: {placement: {constraints: [node.hostname==node3]}}
""", "two.yml")
    cluster.deploy(one, "one")
    cluster.deploy(two, "two")
    try:
        b = container(cluster, "two", "b", "node3")
        a_default = task_addresses(cluster, "one_a", "one_default").pop()
        assert lookup(b, "one_a") == set() and lookup(b, "a") == set()
        assert "apart" in sh(b, f"timeout 3 wget -qO- http://{a_default}/ || echo apart", check=False)
        listing = {n["name"]: n for n in cluster.json("network", "ls")}
        assert listing["t-shared"]["subnet"] == "10.77.0.0/24" and listing["t-shared"]["nodes"] == ["node2"]
        path = cluster.write_stack(tmp_path, two.read_text().replace(
            "    deploy:", "    networks: [default, shared]\n    deploy:") +
            "networks:\n  shared: {external: true, name: t-shared}\n", "two-shared.yml")
        cluster.deploy(path, "two")
        b = container(cluster, "two", "b", "node3")
        assert sh(b, "wget -qO- http://one_a/") in hostnames(cluster, "one", "a")
        assert lookup(b, "a") == {vip(cluster, "one_a", "t-shared")}
        refused = cluster.cli("network", "rm", "t-shared", check=False)
        assert refused.returncode == 1 and "in use by services one_a, two_b" in refused.stderr
    finally:
        cluster.cli("stack", "rm", "one", "two", check=False)
    cluster.cli("network", "rm", "t-shared")
    assert "t-shared" not in {n["name"] for n in cluster.json("network", "ls")}


def test_names_outside_the_cluster_go_to_the_hosts_servers(cluster, tmp_path):
    """A name the cluster does not know is asked of the service's own `dns:` servers (else the host's)."""
    address = cluster.lab.host_address
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((address, 53))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = server.recvfrom(4096)
            except OSError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            if query.question[0].name.to_text() == "outside.test." and query.question[0].rdtype == 1:
                reply.answer.append(dns.rrset.from_text("outside.test.", 60, "IN", "A", "192.0.2.44"))
            server.sendto(reply.to_wire(), peer)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    path = cluster.write_stack(tmp_path, f"""
services:
  client:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    dns: [{address}]
""")
    cluster.deploy(path, "outside")
    try:
        c = cluster.engine(cluster.listed("outside")[0]["node"]).containers.get(cluster.listed("outside")[0]["Id"])
        assert lookup(c, "outside.test") == {"192.0.2.44"}
        assert lookup(c, "client") == {inspect(cluster, "outside_client")["endpoint"]
                                        ["virtual_ips"][0]["address"]}
    finally:
        cluster.cli("stack", "rm", "outside")
        stop.set()
        thread.join()
        server.close()


def test_the_managers_own_engine_joins_like_any_node(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  here:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy: {placement: {constraints: [node.role==manager]}}
  there:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
    stop_grace_period: 1s
    deploy: {placement: {constraints: [node.hostname==node2]}}
""")
    cluster.cli("node", "update", "--availability", "active", cluster.local_node)
    try:
        cluster.deploy(path, "local")
        here = docker.from_env().containers.list(
            filters={"label": "com.swarmpy.service.name=local_here"})[0]
        assert sh(here, "wget -qO- http://there/") in hostnames(cluster, "local", "there")
    finally:
        cluster.cli("stack", "rm", "local", check=False)
        cluster.cli("node", "update", "--availability", "drain", cluster.local_node)


def test_stack_rm_leaves_nothing_of_its_networks_on_any_host(cluster, tmp_path):
    hosts = ["node1", "node2", "node3", None]  # None: this machine, the manager's own engine
    before = {h: host_leftovers(cluster, h) for h in hosts}
    shop(cluster, tmp_path, "gone")
    made = {h: host_leftovers(cluster, h) for h in hosts}
    assert {"gone_front", "gone_back"} <= made["node2"]["networks"]
    assert len(made["node2"]["devices"] - before["node2"]["devices"]) == 4  # two bridges, two VXLAN devices
    cluster.cli("stack", "rm", "gone")

    def clean():
        now = {h: host_leftovers(cluster, h) for h in hosts}
        return all(now[h][k] <= before[h][k] for h in hosts for k in now[h]) and now
    wait_for(clean, 30, what="every host clean of the stack's networks")
    wait_for(lambda: not {"gone_front", "gone_back"} & {n["name"] for n in cluster.json("network", "ls")}, 10,
             what="the stack's networks gone from the cluster")


def test_a_network_an_engine_will_not_remove_keeps_its_subnet_from_the_next(cluster, tmp_path):
    """The cluster removed a network, and a node's engine keeps it: here a container that is not
    the cluster's is attached to it, and Docker at times keeps one with none attached ("has active
    endpoints"). The next network was given its subnet, which that engine refused ("Pool
    overlaps"): a stack there never started. The subnet stays taken until the network goes."""
    pinned = """
services:
  s:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy: {placement: {constraints: [node.hostname==node2]}}
"""
    cluster.deploy(cluster.write_stack(tmp_path, pinned, "kept.yml"), "kept")
    subnet = {n["name"]: n for n in cluster.json("network", "ls")}["kept_default"]["subnet"]
    engine = cluster.engine("node2")

    def kept_on_node2() -> list[str]:
        return [n.name for n in engine.networks.list() if n.name.startswith("kept_default")]
    squatter = engine.containers.run("swarmpy/busybox:latest", ["sleep", "3600"], detach=True,
                                     network=kept_on_node2()[0], labels={"test": "squatter"})
    try:
        cluster.cli("stack", "rm", "kept")

        def subnet_taken() -> bool:
            probe = cluster.cli("network", "create", "t-probe", "--subnet", subnet, check=False)
            if probe.returncode == 0:
                cluster.cli("network", "rm", "t-probe")
            return probe.returncode == 1 and "node node2" in probe.stderr
        wait_for(subnet_taken, 30, what=f"{subnet} reported taken on node2")
        cluster.cli("stack", "deploy", "-c", str(cluster.write_stack(tmp_path, pinned, "next.yml")), "next",
                    timeout=90)
        assert {n["name"]: n for n in cluster.json("network", "ls")}["next_default"]["subnet"] != subnet
        assert container(cluster, "next", "s", "node2").status == "running" and kept_on_node2()
    finally:
        squatter.remove(force=True)
        cluster.cli("stack", "rm", "next", check=False)
    wait_for(lambda: not kept_on_node2(), 30, what="the kept network to go once nothing holds it")
    wait_for(lambda: not subnet_taken(), 30, what=f"{subnet} free again")


# ---------------------------------------------------------------------- refused, and nothing half-made


def test_bad_networks_are_refused_and_nothing_is_made(cluster, tmp_path):
    cluster.cli("network", "create", "t-taken", "--subnet", "10.78.0.0/24")
    try:
        networks_before = {n["name"] for n in cluster.json("network", "ls")}
        overlapping = cluster.write_stack(tmp_path, """
services:
  s: {image: swarmpy/busybox:latest, command: ["sleep", "60"], networks: [own, other]}
networks:
  own: {}
  other:
    ipam: {config: [{subnet: 10.78.0.128/25}]}
""", "overlap.yml")
        done = cluster.cli("stack", "deploy", "-c", str(overlapping), "bad1", check=False)
        assert done.returncode == 1 and "subnet 10.78.0.128/25 overlaps network t-taken (10.78.0.0/24)" in done.stderr
        unknown = cluster.write_stack(tmp_path, """
services:
  s: {image: swarmpy/busybox:latest, command: ["sleep", "60"], networks: [ext]}
networks:
  ext: {external: true, name: no-such-net}
""", "unknown.yml")
        done = cluster.cli("stack", "deploy", "-c", str(unknown), "bad2", check=False)
        assert done.returncode == 1 and "'no-such-net' is declared as external, but could not be found" in done.stderr
        assert {n["name"] for n in cluster.json("network", "ls")} == networks_before  # not even bad1_own
        assert not {"bad1", "bad2"} & {s["name"] for s in cluster.json("stack", "ls")}
        twice = cluster.cli("network", "create", "t-again", "--subnet", "10.78.0.64/26", check=False)
        assert twice.returncode == 1 and "overlaps network t-taken" in twice.stderr
        # a subnet a node has already (here node1's Docker bridge): its engine would refuse it
        bip = ipaddress.ip_interface(cluster.lab.node("node1").bip).network
        on_node = cluster.cli("network", "create", "t-node", "--subnet", str(bip), check=False)
        assert on_node.returncode == 1 and f"overlaps a network or route on node node1 ({bip})" in on_node.stderr
    finally:
        cluster.cli("network", "rm", "t-taken", check=False)


def test_a_stacks_network_goes_only_with_its_stack(cluster, shop_stack):
    done = cluster.cli("network", "rm", "shop_front", check=False)
    assert done.returncode == 1 and "belongs to stack shop" in done.stderr
    assert "shop_front" in {n["name"] for n in cluster.json("network", "ls")}
