"""The ingress routing mesh: a published port answers on every manager and reaches a healthy task
wherever it runs, without dropping requests while tasks come and go."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.integration.cluster import wait_for

WEB = """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports: ["{port}:80"]
    stop_grace_period: 2s
    deploy:
      replicas: {replicas}
      restart_policy: {{delay: 0s}}
"""


def get(port: int, host: str = "127.0.0.1", timeout: float = 3) -> str:
    """One request on a new connection; the page is the serving container's hostname."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        assert response.status == 200, response.status
        return response.read().decode().strip()
    finally:
        conn.close()


def served_by(port: int, requests: int = 12, host: str = "127.0.0.1") -> set[str]:
    """Who answered a few requests (nothing while the port has no endpoint yet). On 127.0.0.1 the
    proxy answers; on the manager's other addresses, the kernel (`lb/kernel.py`)."""
    try:
        return {get(port, host, timeout=1) for _ in range(requests)}
    except (OSError, http.client.HTTPException, AssertionError):
        return set()


class RequestStream(threading.Thread):
    """Requests one after another until stopped; every failure is kept."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        super().__init__(daemon=True)
        self.port, self.host = port, host
        self.stop_event = threading.Event()
        self.served: list[str] = []
        self.failures: list[str] = []

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.served.append(get(self.port, self.host))
            except Exception as e:  # any failure a client would see
                self.failures.append(f"{time.time():.2f} {type(e).__name__}: {e}")
            time.sleep(0.01)

    def stop(self):
        self.stop_event.set()
        self.join(10)


def wait_routed(cluster, port: str, endpoints: int) -> None:
    """Every load balancer routes `port` ("18407/tcp") to this many endpoints."""
    def routed():
        status = cluster.json("lb", "status")
        return status and all(len(s["ports"].get(port, {}).get("endpoints", [])) == endpoints
                              for s in status.values())
    wait_for(routed, 10, what=f"the mesh to route {port}")


def container_hostnames(cluster, stack: str) -> set[str]:
    return {c["Id"][:12] for c in cluster.listed(stack)}


@pytest.fixture
def web(cluster, tmp_path):
    port = 18400
    cluster.deploy(cluster.write_stack(tmp_path, WEB.format(port=port, replicas=3)), "mesh")
    yield port
    cluster.cli("stack", "rm", "mesh", check=False)


def ingress_rules(cluster, netns: str | None = None) -> list[str]:
    """The cluster's rules of the mesh in this machine's kernel (or in a lab node's namespace)."""
    enter = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
    out = subprocess.run([*enter, "iptables-save"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"SWI-{cluster.cluster_id[:6]}-" in line]


def test_requests_on_the_manager_reach_every_task(cluster, web):
    host = cluster.lab.host_address
    wait_for(lambda: len(served_by(web, host=host)) == 3, 10, what="three tasks answering")
    assert {get(web, host) for _ in range(30)} == container_hostnames(cluster, "mesh")  # the kernel
    assert {get(web) for _ in range(30)} == container_hostnames(cluster, "mesh")  # the proxy, on loopback
    status = cluster.json("lb", "status")
    ports = [s["ports"]["18400/tcp"] for s in status.values()]
    assert ports and all(len(p["endpoints"]) == 3 and p["path"] == "kernel" for p in ports)
    assert all(e["state"] == "up" for p in ports for e in p["endpoints"]), ports
    # the kernel DNATs the port to each task's node and host port
    endpoints = {f"{e['address']}:{e['port']}" for e in ports[0]["endpoints"]}
    assert {line.split("--to-destination ")[1] for line in ingress_rules(cluster) if "-j DNAT" in line} == endpoints


def test_a_killed_task_costs_no_request(cluster, web):
    """On the proxy's path (loopback): it tries the next task when one refuses. The kernel cannot;
    it sends new connections to a killed task until the task's end is known (the README says so)."""
    wait_for(lambda: len(served_by(web)) == 3, 10, what="three tasks answering")
    stream = RequestStream(web)
    stream.start()
    try:
        time.sleep(0.5)
        victim = cluster.engine("node1").containers.list(filters={"label": "com.swarmpy.stack=mesh"})[0]
        victim.kill()
        wait_for(lambda: len(container_hostnames(cluster, "mesh")) == 3
                 and victim.id[:12] not in container_hostnames(cluster, "mesh"), 15, what="a replacement")
        time.sleep(1)
    finally:
        stream.stop()
    assert stream.failures == []
    assert len(stream.served) > 50


@pytest.mark.parametrize("path", ["kernel", "proxy"])
def test_scaling_under_a_stream_of_requests_fails_none(cluster, web, path):
    stream = RequestStream(web, cluster.lab.host_address if path == "kernel" else "127.0.0.1")
    stream.start()
    try:
        cluster.cli("service", "scale", "mesh_web=8")
        wait_for(lambda: len(set(stream.served[-40:])) == 8, 20, what="eight tasks answering")
        cluster.cli("service", "scale", "mesh_web=2")
        wait_for(lambda: len(container_hostnames(cluster, "mesh")) == 2, 20, what="two tasks left")
        cluster.cli("service", "scale", "mesh_web=3")
        wait_for(lambda: len(set(stream.served[-20:])) == 3, 20, what="three tasks answering")
        time.sleep(1)
    finally:
        stream.stop()
    assert stream.failures == []
    assert set(stream.served[-20:]) == container_hostnames(cluster, "mesh")


def test_a_rolling_update_through_the_kernel_fails_no_request(cluster, web, tmp_path):
    stream = RequestStream(web, cluster.lab.host_address)
    wait_for(lambda: len(served_by(web, host=cluster.lab.host_address)) == 3, 10, what="three tasks answering")
    before = container_hostnames(cluster, "mesh")
    stream.start()
    try:
        changed = WEB.format(port=web, replicas=3).replace("    deploy:", "    environment: {REV: '2'}\n    deploy:")
        cluster.deploy(cluster.write_stack(tmp_path, changed), "mesh")
        wait_for(lambda: not (set(stream.served[-20:]) & before) and len(set(stream.served[-20:])) == 3, 30,
                 what="the new tasks answering")
    finally:
        stream.stop()
    assert stream.failures == []
    assert not container_hostnames(cluster, "mesh") & before


def test_stack_rm_closes_the_port_and_takes_its_rules_away(cluster, tmp_path):
    cluster.deploy(cluster.write_stack(tmp_path, WEB.format(port=18401, replicas=1)), "closing")
    assert get(18401) and get(18401, cluster.lab.host_address)
    assert any("--dport 18401" in line for line in ingress_rules(cluster))
    cluster.cli("stack", "rm", "closing")
    for host in ("127.0.0.1", cluster.lab.host_address):
        with pytest.raises(ConnectionRefusedError):
            wait_for(lambda: get(18401, host) and False, 3, what="the port to close")
    assert not any("18401" in line for line in ingress_rules(cluster))


def test_a_failing_healthcheck_gets_no_traffic(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  healthy:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports: ["18402:80"]
    stop_grace_period: 1s
    healthcheck: {test: ["CMD", "true"], interval: 1s, retries: 1}
    deploy: {replicas: 2}
  sick:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -v -p 80 -h /www"]
    ports: ["18403:80"]
    stop_grace_period: 1s
    healthcheck: {test: ["CMD", "false"], interval: 1s, retries: 1}
    deploy: {replicas: 2}
""")
    cluster.cli("stack", "deploy", "-c", str(path), "health", "--detach")
    try:
        wait_for(lambda: len(served_by(18402, host=cluster.lab.host_address)) == 2, 20, what="the healthy tasks")
        # docker calls them unhealthy: they fail, and are replaced (by tasks no healthier)
        wait_for(lambda: len([t for t in cluster.tasks("health_sick") if t["state"] == "failed"
                              and "unhealthy" in t["error"]]) >= 2, 20, what="the sick tasks to fail as unhealthy")
        for _ in range(5):
            for host in ("127.0.0.1", cluster.lab.host_address):
                with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
                    get(18403, host)
        logs = cluster.cli("service", "logs", "health_sick").stdout
        assert "GET" not in logs  # httpd -v logs every request it serves: none came
        status = cluster.json("lb", "status")
        assert all(s["ports"]["18403/tcp"]["endpoints"] == [] for s in status.values())
    finally:
        cluster.cli("stack", "rm", "health")


def test_host_mode_ports_bypass_the_mesh(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports: [{target: 80, published: 18404, mode: host}]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      placement: {constraints: [node.hostname==node2]}
""")
    cluster.deploy(path, "hostmode")
    try:
        assert get(18404, host=cluster.lab.node("node2").address) in container_hostnames(cluster, "hostmode")
        with pytest.raises(ConnectionRefusedError):
            get(18404)
        assert "18404" not in str(cluster.json("lb", "status"))
    finally:
        cluster.cli("stack", "rm", "hostmode")


def test_a_port_in_use_is_reported_and_others_keep_working(cluster, tmp_path):
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("0.0.0.0", 18405))
    blocker.listen()
    path = cluster.write_stack(tmp_path, """
services:
  blocked:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports: ["18405:80", "18406:80"]
    stop_grace_period: 1s
""")
    try:
        cluster.deploy(path, "inuse")
        assert get(18406) in container_hostnames(cluster, "inuse")
        status = cluster.json("lb", "status")
        errors = [s["ports"]["18405/tcp"]["error"] for s in status.values()]
        assert errors and all("cannot listen on port 18405/tcp" in e for e in errors)
        assert "cannot listen on port 18405/tcp" in cluster.cli("lb", "status").stdout
        assert "cannot listen on port 18405/tcp" in cluster.cli("service", "inspect", "inuse_blocked").stdout
    finally:
        blocker.close()
        cluster.cli("stack", "rm", "inuse")


def test_proxy_protocol_v2_tells_the_backend_who_the_client_is(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  capture:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "nc -l -p 9000 > /got; exec sleep 3600"]
    ports: ["18407:9000"]
    stop_grace_period: 1s
    deploy:
      labels: {com.swarmpy.lb.proxy-protocol: "true"}
""")
    cluster.deploy(path, "pp")
    try:
        wait_routed(cluster, "18407/tcp", 1)  # a connection the mesh cannot place is closed at once
        with socket.create_connection(("127.0.0.1", 18407), timeout=5) as s:
            client_port = s.getsockname()[1]
            s.sendall(b"hello")
        (c,) = cluster.listed("pp")
        container = cluster.engine(c["node"]).containers.get(c["Id"])

        def captured():
            out = container.exec_run(["cat", "/got"]).output
            return out if out.endswith(b"hello") else None
        got = wait_for(captured, 10, what="the capture")
        assert got.startswith(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11")  # PROXY v2, TCP over IPv4
        assert got[16:20] == socket.inet_aton("127.0.0.1") and int.from_bytes(got[24:26], "big") == client_port
        assert got[28:] == b"hello"
    finally:
        cluster.cli("stack", "rm", "pp")


def test_udp_ports_are_relayed(cluster, tmp_path):
    from swarmpy.lab import images
    images.build_preset("socat")  # a UDP echo server (busybox has none); the workers send it to the nodes
    path = cluster.write_stack(tmp_path, """
services:
  echo:
    image: swarmpy/socat:latest
    ports: ["18408:9000/udp"]
    stop_grace_period: 1s
    deploy: {replicas: 2}
""")
    cluster.deploy(path, "udp")
    try:
        def echoed(host="127.0.0.1"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.5)
                s.sendto(b"over udp", (host, 18408))
                try:
                    return s.recvfrom(100)
                except OSError:
                    return None
        assert wait_for(echoed, 10, what="an echo through the proxy")[0] == b"over udp"
        host = cluster.lab.host_address
        # through the kernel: the answer comes back from the address it was sent to (un-DNATed)
        assert wait_for(lambda: echoed(host), 10, what="an echo through the kernel") == (b"over udp", (host, 18408))
        assert any("-p udp" in line and "--dport 18408" in line for line in ingress_rules(cluster))
        status = cluster.json("lb", "status")
        assert all(len(s["ports"]["18408/udp"]["endpoints"]) == 2 for s in status.values())
    finally:
        cluster.cli("stack", "rm", "udp")


def test_every_manager_and_lb_node_answers_on_the_port(cluster, web):
    node3, node2 = cluster.lab.node("node3"), cluster.lab.node("node2")
    cluster.cli("node", "promote", "node3")
    cluster.cli("node", "update", "--lb", "true", "node2")
    try:
        for host in (node3.address, node2.address):
            wait_for(lambda: len(served_by_host(web, host)) == 3, 20, what=f"the mesh on {host}")
        lbs = cluster.json("lb", "status")
        wait_for(lambda: "lb" in next(n for n in cluster.json("node", "ls") if n["hostname"] == "node2")["parts"],
                 15, what="node2's supervisor reporting its load balancer (as the load balancer's user)")
        assert {s["node_id"] for s in lbs.values()} >= {n["id"] for n in cluster.json("node", "ls")
                                                        if n["hostname"] in ("node2", "node3")}
        # a host that only balances holds no cluster token or key, and logs in to the store as a
        # load balancer only
        state = next(Path(node2.dir, "swarmpy").glob("node-*"))
        assert not any((state / f).exists() for f in ("token", "cluster.key", "ssh/id_ed25519", "tls/ca.key"))
        assert set(json.loads((state / "cluster.json").read_text())["redis_users"]) == {"lb", "sentinel-access"}
        for node in (node2, node3):  # the kernel serves the port there too
            assert any(f"--dport {web}" in line for line in ingress_rules(cluster, node.netns))
    finally:
        cluster.cli("node", "update", "--lb", "false", "node2", check=False)
        cluster.cli("node", "demote", "node3", check=False)
    wait_for(lambda: not served_by_host(web, node2.address), 20, what="node2's load balancer to stop")
    for node in (node2, node3):  # a load balancer that stops takes its rules along
        wait_for(lambda n=node: not ingress_rules(cluster, n.netns), 20, what=f"{node.name}'s rules to go")


def served_by_host(port: int, host: str) -> set[str]:
    try:
        return {get(port, host=host, timeout=1) for _ in range(9)}
    except (OSError, http.client.HTTPException, AssertionError):
        return set()
