"""The manager API's answers to requests it cannot serve, and what bad input changes (nothing)."""

from __future__ import annotations

import requests

from swarmpy.settings import StateDir

STACK = """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy: {replicas: 1}
"""


def api(cluster):
    token = StateDir(cluster.state_dir).token()
    base = f"http://127.0.0.1:{cluster.api_port}"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return base, session


def test_requests_without_the_token_get_401(cluster):
    base, _ = api(cluster)
    for path in ("/nodes", "/services", "/stacks", "/secrets"):
        r = requests.get(base + path, timeout=10)
        assert r.status_code == 401 and "token" in r.json()["error"]
    r = requests.get(base + "/nodes", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert r.status_code == 401


def test_bad_bodies_get_400_naming_the_field(cluster):
    base, s = api(cluster)
    r = s.put(base + "/stacks/x", data="not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["field"] == "(body)"
    r = s.put(base + "/stacks/x", json={"prune": True}, timeout=10)
    assert r.status_code == 400 and r.json()["field"] == "stack"
    r = s.post(base + "/nodes", json={"name": "n", "ssh": {"host": "10.0.0.1", "port": "22"}}, timeout=10)
    assert r.status_code == 400 and r.json()["field"] == "port"
    stack = {"services": {"web": {"name": "web", "image": "x", "deploy": {
        "mode": "global", "replicas": 3,
        "placement": {"constraints": [{"field": "node.colour", "operator": "==", "value": "red"}]}}}}}
    r = s.put(base + "/stacks/bad", json={"stack": stack}, timeout=10)
    assert r.status_code == 400
    fields = {p["field"]: p["message"] for p in r.json()["problems"]}
    assert "replicas can only be used with replicated mode" in fields["services.web.deploy.replicas"]
    assert "unknown constraint field 'node.colour'" in fields["services.web.deploy.placement.constraints.0"]
    assert s.get(base + "/stacks", timeout=10).json() == [] or "bad" not in [
        x["name"] for x in s.get(base + "/stacks", timeout=10).json()]


def test_unknown_objects_get_404(cluster):
    base, s = api(cluster)
    for path in ("/services/nope", "/nodes/nope", "/stacks/nope/services", "/secrets/nope"):
        r = s.get(base + path, timeout=10)
        assert r.status_code == 404, path
        assert "not found" in r.json()["error"]


def test_stale_versions_get_409(cluster, tmp_path):
    base, s = api(cluster)
    cluster.deploy(cluster.write_stack(tmp_path, STACK), "ver")
    try:
        service = s.get(base + "/services/ver_web", timeout=10).json()
        r = s.patch(base + "/services/ver_web", json={"version": service["version"], "replicas": 2}, timeout=10)
        assert r.status_code == 200
        r = s.patch(base + "/services/ver_web", json={"version": service["version"], "replicas": 3}, timeout=10)
        assert r.status_code == 409 and "changed since version" in r.json()["error"]
        node = s.get(base + "/nodes/node1", timeout=10).json()
        r = s.patch(base + "/nodes/node1", json={"version": node["version"] - 1, "availability": "pause"},
                    timeout=10)
        assert r.status_code == 409
        assert s.get(base + "/nodes/node1", timeout=10).json()["availability"] == "active"
    finally:
        cluster.cli("stack", "rm", "ver")


def test_invalid_compose_file_deploys_nothing(cluster, tmp_path):
    before = cluster.json("service", "ls")
    bad = cluster.write_stack(tmp_path, STACK.replace("{replicas: 1}", "{replicas: three}"), "compose.yml")
    done = cluster.cli("stack", "deploy", "-c", str(bad), "broken", check=False)
    assert done.returncode == 1
    assert f"error: {bad}: services.web.deploy.replicas: 'three' is not of type 'integer'" in done.stderr
    assert "Traceback" not in done.stderr
    assert cluster.json("service", "ls") == before
    assert "broken" not in cluster.cli("stack", "ls").stdout


def test_two_services_publishing_one_port_are_refused_naming_both(cluster, tmp_path):
    first = cluster.write_stack(tmp_path, STACK.replace("deploy:", "ports: ['18181:80']\n    deploy:"), "a.yml")
    cluster.deploy(first, "porta")
    try:
        done = cluster.cli("stack", "deploy", "-c", str(first), "portb", check=False)
        assert done.returncode == 1
        assert "porta_web" in done.stderr and "portb_web" in done.stderr and "18181" in done.stderr
        assert "portb" not in cluster.cli("stack", "ls").stdout
    finally:
        cluster.cli("stack", "rm", "porta")
