"""/metrics without a cluster: the cluster-state families from store listings, the mesh's figures
from a real proxy on loopback through its unix socket, their merge, the route and who may read it."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from swarmpy.lb import metrics as lb_metrics
from swarmpy.lb.balance import Health
from swarmpy.lb.proxy import Listener
from swarmpy.lb.routes import Endpoint, Route
from swarmpy.manager import access, metrics
from swarmpy.manager.access import Caller
from swarmpy.model import Availability, NodeStatus
from swarmpy.settings import StateDir
from tests.unit.manager_app import TOKEN, offline_app
from tests.unit.orchestration_fixtures import make_node, make_service


def samples(families) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def key(name: str, **labels) -> tuple[str, tuple]:
    return name, tuple(sorted(labels.items()))


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return samples(text_string_to_metric_families(text))


def brief(state: str, desired: str = "running", node: str = "n1", slot: int = 1) -> dict:
    return {"state": state, "desired_state": desired, "node_id": node, "slot": slot, "spec_version": 1}


def test_the_cluster_state_as_an_operator_reads_it():
    nodes = [make_node("n1"), make_node("n2", status=NodeStatus.DOWN),
             make_node("n3", availability=Availability.DRAIN)]
    web = make_service(replicas=3, sid="web")
    briefs = {"web": [brief("running"), brief("running", slot=2), brief("pending", slot=3),
                      brief("failed", desired="shutdown", slot=1)]}
    updates = {"web": {"state": "updating", "started_at": 1.0}}
    jobs = {("n1", "start_task"): {"0.1": 0, "0.25": 1, "0.5": 2, "+Inf": 3, "sum": 9.5},
            ("gone", "start_task"): {"+Inf": 1, "sum": 1.0}}
    found = samples(metrics.state_families(nodes, [web], briefs, updates, {"n1": 4, "n2": 0}, jobs, leader=True))

    assert found["swarmpy_nodes", (("availability", "active"), ("status", "ready"))] == 1
    assert found["swarmpy_nodes", (("availability", "active"), ("status", "down"))] == 1
    assert found["swarmpy_nodes", (("availability", "drain"), ("status", "ready"))] == 1
    assert found["swarmpy_nodes", (("availability", "pause"), ("status", "ready"))] == 0  # zeros are said too
    service = (("service", "st_web"), ("stack", "st"))
    assert found["swarmpy_tasks", service + (("state", "running"),)] == 2
    assert found["swarmpy_tasks", service + (("state", "failed"),)] == 1
    assert found["swarmpy_service_replicas_desired", (("mode", "replicated"),) + service] == 3
    assert found["swarmpy_service_replicas_running", service] == 2
    assert found["swarmpy_service_update_state", service + (("state", "updating"),)] == 1
    assert found["swarmpy_job_queue_depth", (("node", "n1"),)] == 4
    job = {"job": "start_task", "node": "n1"}
    assert found[key("swarmpy_job_duration_seconds_bucket", le="0.5", **job)] == 2
    assert found[key("swarmpy_job_duration_seconds_bucket", le="+Inf", **job)] == 3
    assert found[key("swarmpy_job_duration_seconds_sum", **job)] == 9.5
    assert not [k for k in found if ("node", "gone") in k[1]]  # a removed node's jobs are not shown
    assert found["swarmpy_manager_leader", ()] == 1


def test_families_of_several_load_balancer_processes_merge_under_one_type():
    one = "# HELP swarmpy_lb_connections_total c\n# TYPE swarmpy_lb_connections_total counter\n" \
          'swarmpy_lb_connections_total{lb="h.1",port="80"} 3.0\n'
    two = one.replace("h.1", "h.2").replace("3.0", "5.0")
    merged = metrics.merge([one, "not { prometheus", two])
    text = generate_latest(SimpleNamespace(collect=lambda: merged)).decode()
    assert text.count("# TYPE swarmpy_lb_connections_total counter") == 1
    found = parse(text)
    assert found["swarmpy_lb_connections_total", (("lb", "h.1"), ("port", "80"))] == 3
    assert found["swarmpy_lb_connections_total", (("lb", "h.2"), ("port", "80"))] == 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_mesh_counts_what_passes_and_the_manager_reads_it_from_the_socket(tmp_path):
    state = StateDir(tmp_path)

    async def scenario():
        async def echo(reader, writer):
            writer.write(b"echo:" + await reader.read(100))
            await writer.drain()
            writer.close()

        backend = await asyncio.start_server(echo, "127.0.0.1", 0)
        route = Route(port=_free_port(), protocol="tcp", service_id="s", service_name="st_web", target=80,
                      endpoints=[Endpoint("127.0.0.1", _free_port(), "dead"),
                                 Endpoint("127.0.0.1", backend.sockets[0].getsockname()[1], "alive")])
        listener = Listener(route, Health())
        await listener.open("127.0.0.1")
        mesh = SimpleNamespace(lb_id="host.42", listeners={(route.port, "tcp"): listener})
        server = await lb_metrics.serve(mesh, state.metrics_socket("lb", 42))
        for _ in range(4):
            reader, writer = await asyncio.open_connection("127.0.0.1", route.port)
            writer.write(b"ping")
            await reader.read(100)
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.05)
        texts = await asyncio.get_running_loop().run_in_executor(None, metrics.read_local, state, "lb")
        server.close()
        listener.close()
        backend.close()
        return route.port, texts

    port, texts = asyncio.run(scenario())
    found = samples(metrics.merge(texts))
    at = (("lb", "host.42"), ("port", str(port)), ("protocol", "tcp"), ("service", "st_web"))
    assert found["swarmpy_lb_connections_total", at] == 4
    assert found["swarmpy_lb_bytes_total", (("direction", "in"),) + at] == 4 * len(b"ping")
    assert found["swarmpy_lb_bytes_total", (("direction", "out"),) + at] == 4 * len(b"echo:ping")
    assert found["swarmpy_lb_backend_connect_errors_total", at] >= 1  # the dead endpoint refused once
    assert found["swarmpy_lb_endpoints", at + (("state", "up"),)] == 1
    assert found["swarmpy_lb_endpoints", at + (("state", "down"),)] == 1
    assert found["swarmpy_lb_open_connections", at] == 0
    assert found["swarmpy_lb_port_listening", at] == 1
    assert found[key("swarmpy_lb_port_path", path="kernel", **dict(at))] == 1


def test_a_socket_nobody_serves_any_more_is_removed(tmp_path):
    state = StateDir(tmp_path)
    state.run_dir.mkdir()
    with socket.socket(socket.AF_UNIX) as left:  # bound, never listening: what a killed process leaves
        left.bind(str(state.metrics_socket("lb", 7)))
    assert metrics.read_local(state, "lb") == []
    assert state.metrics_sockets("lb") == []


def test_a_metrics_token_reads_metrics_and_nothing_else():
    reader = Caller(token_id="m1", metrics=True)
    assert not reader.admin
    assert access.refusal(reader, None, "GET", "/metrics", {}, {}) is None
    for method, rule in (("GET", "/info"), ("GET", "/nodes"), ("GET", "/services"), ("POST", "/tokens")):
        assert access.refusal(reader, None, method, rule, {}, {}), rule
    assert access.refusal(Caller(stack="ci"), None, "GET", "/metrics", {}, {})
    assert access.refusal(Caller(), None, "GET", "/metrics", {}, {}) is None


def test_the_route_needs_a_token_and_counts_the_requests_even_with_the_store_away():
    client = offline_app().test_client()
    assert client.get("/metrics").status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
    found = parse(answer.get_data(as_text=True))
    assert found["swarmpy_store_up", ()] == 0
    assert found["swarmpy_api_requests_total", (("method", "GET"), ("route", "/metrics"), ("status", "401"))] >= 1
    assert found["swarmpy_api_request_duration_seconds_count", (("method", "GET"), ("route", "/metrics"))] >= 1
