"""/metrics on a real cluster, as an operator's Prometheus reads it: scraped with the cluster token
and with a metrics token, parsed with prometheus_client's parser, the figures checked against a
known stack and traffic through the mesh; then stacks/monitoring.yml's Prometheus scraping the
manager, asked through the mesh."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from swarmpy.lab import images as lab_images
from swarmpy.settings import StateDir
from tests.integration.cluster import free_port, wait_for
from tests.integration.test_mesh import WEB, served_by

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def scrape(cluster, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the cluster's CA
    return session.get(f"https://127.0.0.1:{cluster.api_port}/metrics", headers=headers, timeout=30,
                       verify=str(StateDir(cluster.state_dir).ca_file))


def figures(cluster, token: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, its labels) -> value, as the parser reads the page."""
    answer = scrape(cluster, token)
    assert answer.status_code == 200, answer.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def total(found: dict, name: str, **labels) -> float:
    """The sum of a sample over the label values not given (as `sum by` would)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in found.items() if n == name and wanted <= have)


@pytest.fixture(scope="module")
def web(cluster, tmp_path_factory):
    port = free_port()
    cluster.deploy(cluster.write_stack(tmp_path_factory.mktemp("met"), WEB.format(port=port, replicas=2)), "met")
    wait_for(lambda: len(served_by(port)) == 2, 30, what="both web tasks answering through the mesh")
    yield port
    cluster.cli("stack", "rm", "met")


@pytest.fixture(scope="module")
def metrics_token(cluster):
    made = cluster.cli("token", "create", "--metrics")
    yield made.stdout.strip()
    token_id = next(t["id"] for t in cluster.json("token", "ls") if t["stack"] is None)
    cluster.cli("token", "rm", token_id)


def test_who_may_read_metrics(cluster, metrics_token):
    cluster_token = StateDir(cluster.state_dir).token()
    assert scrape(cluster, cluster_token).status_code == 200
    assert scrape(cluster, metrics_token).status_code == 200
    assert scrape(cluster, None).status_code == 401
    assert scrape(cluster, "wrong").status_code == 401
    stack_token = cluster.cli("token", "create", "--stack", "met").stdout.strip()
    assert scrape(cluster, stack_token).status_code == 403
    cluster.cli("token", "rm", next(t["id"] for t in cluster.json("token", "ls") if t["stack"] == "met"))
    session = requests.Session()
    session.trust_env = False
    nodes = session.get(f"https://127.0.0.1:{cluster.api_port}/nodes", timeout=10,
                        headers={"Authorization": f"Bearer {metrics_token}"},
                        verify=str(StateDir(cluster.state_dir).ca_file))
    assert nodes.status_code == 403  # a metrics token reads /metrics and nothing else


def test_the_cluster_stack_and_mesh_as_prometheus_sees_them(cluster, web, metrics_token):
    before = figures(cluster, metrics_token)
    assert total(before, "swarmpy_store_up") == 1
    assert total(before, "swarmpy_manager_leader") == 1  # the only manager
    assert total(before, "swarmpy_nodes", status="ready", availability="active") == 3
    assert total(before, "swarmpy_nodes", status="ready", availability="drain") == 1  # this machine's node
    assert total(before, "swarmpy_nodes", status="down") == 0
    service = {"service": "met_web", "stack": "met"}
    assert total(before, "swarmpy_service_replicas_desired", **service) == 2
    assert total(before, "swarmpy_service_replicas_running", **service) == 2
    assert total(before, "swarmpy_tasks", state="running", **service) == 2
    assert total(before, "swarmpy_job_duration_seconds_count", job="start_task") >= 2
    queued = {dict(labels)["node"] for n, labels in before if n == "swarmpy_job_queue_depth"}
    assert {"node1", "node2", "node3"} <= queued
    for loop in ("reconcile", "scheduling", "dispatch"):
        assert total(before, f"swarmpy_{loop}_duration_seconds_count") >= 1, loop
    assert total(before, "swarmpy_store_round_trip_seconds") > 0
    port = {"port": str(web), "protocol": "tcp", "service": "met_web"}
    assert total(before, "swarmpy_lb_endpoints", state="up", **port) == 2
    assert total(before, "swarmpy_lb_port_listening", **port) == 1

    assert len(served_by(web, requests=10)) == 2  # ten requests through this host's load balancer
    after = figures(cluster, metrics_token)
    assert total(after, "swarmpy_lb_connections_total", **port) - total(before, "swarmpy_lb_connections_total",
                                                                        **port) >= 10
    assert total(after, "swarmpy_lb_bytes_total", direction="out", **port) > \
        total(before, "swarmpy_lb_bytes_total", direction="out", **port)
    scrapes = {"method": "GET", "route": "/metrics", "status": "200"}
    assert total(after, "swarmpy_api_requests_total", **scrapes) > total(before, "swarmpy_api_requests_total",
                                                                         **scrapes)
    assert total(after, "swarmpy_api_request_duration_seconds_count", method="GET", route="/metrics") >= 1

    # the port's other clients go through the kernel, which counts them in its rules
    assert total(after, "swarmpy_lb_port_path", path="kernel", **port) == 1
    assert len(served_by(web, requests=10, host=cluster.lab.host_address)) == 2
    kernel = figures(cluster, metrics_token)
    assert total(kernel, "swarmpy_lb_kernel_connections_total", **port) - \
        total(after, "swarmpy_lb_kernel_connections_total", **port) >= 10


def test_a_host_that_only_balances_has_its_figures_on_the_leaders_page(cluster, web, metrics_token):
    """A load balancer on a host with no manager pushes its figures; the leader's /metrics has them."""
    cluster.cli("node", "update", "--lb", "true", "node2")
    node2 = next(n["id"] for n in cluster.json("node", "ls") if n["hostname"] == "node2")

    def node2_lb():
        return next((lb for lb, status in cluster.json("lb", "status").items() if status["node_id"] == node2), None)
    try:
        lb = wait_for(node2_lb, 30, what="node2's load balancer")
        port = {"port": str(web), "protocol": "tcp", "service": "met_web", "lb": lb}
        wait_for(lambda: total(figures(cluster, metrics_token), "swarmpy_lb_endpoints", state="up", **port) == 2, 40,
                 what="node2's figures on the leader's /metrics")
        before = figures(cluster, metrics_token)
        assert len(served_by(web, requests=10, host=cluster.lab.node("node2").address)) == 2  # through its kernel
        wait_for(lambda: total(figures(cluster, metrics_token), "swarmpy_lb_kernel_connections_total", **port)
                 - total(before, "swarmpy_lb_kernel_connections_total", **port) >= 10, 30,
                 what="node2's next push to count the requests")
    finally:
        cluster.cli("node", "update", "--lb", "false", "node2", check=False)
    wait_for(lambda: not [k for k in figures(cluster, metrics_token) if ("lb", lb) in k[1]], 30,
             what="node2's figures to leave with its load balancer")


def test_the_monitoring_stack_scrapes_the_manager(cluster, metrics_token, monkeypatch):
    lab_images.build_preset("prometheus")
    lab_images.load_images(cluster.lab, [lab_images.PRESETS["prometheus"]])
    cluster.cli("secret", "create", "swarmpy_metrics_token", "-", input=metrics_token)
    port = free_port()
    monkeypatch.setitem(cluster.env, "SWARMPY_MANAGERS", f"{cluster.lab.host_address}:{cluster.api_port}")
    monkeypatch.setitem(cluster.env, "PROMETHEUS_PORT", str(port))
    cluster.deploy(STACKS / "monitoring.yml", "monitoring")
    session = requests.Session()
    session.trust_env = False
    base = f"http://127.0.0.1:{port}/api/v1"

    def targets() -> list[dict] | None:
        try:
            active = session.get(f"{base}/targets", timeout=3).json()["data"]["activeTargets"]
        except (OSError, ValueError, KeyError, requests.RequestException):
            return None  # not answering through the mesh yet
        return active if active and all(t["health"] == "up" for t in active) else None

    try:
        active = wait_for(targets, 90, what=lambda: f"Prometheus's targets up (last: {_last(session, base)})")
        assert [t["scrapeUrl"] for t in active] == [f"https://{cluster.lab.host_address}:{cluster.api_port}/metrics"]
        result = session.get(f"{base}/query", params={"query": 'swarmpy_nodes{status="ready"}'},
                             timeout=5).json()["data"]["result"]
        assert sum(float(r["value"][1]) for r in result) == 4  # the lab's three and this machine's
    finally:
        cluster.cli("stack", "rm", "monitoring")
        cluster.cli("secret", "rm", "swarmpy_metrics_token")


def _last(session, base: str) -> str:
    try:
        return str([(t["scrapeUrl"], t["health"], t["lastError"])
                    for t in session.get(f"{base}/targets", timeout=3).json()["data"]["activeTargets"]])
    except Exception as e:  # noqa: BLE001 - only for the failure's message
        return repr(e)
