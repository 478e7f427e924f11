"""The manager API's answers to requests it cannot serve, and what bad input changes (nothing)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from swarmpy import pki
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
    base = f"https://127.0.0.1:{cluster.api_port}"
    session = requests.Session()
    session.verify = str(StateDir(cluster.state_dir).ca_file)
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the cluster's CA
    session.headers["Authorization"] = f"Bearer {token}"
    return base, session


def test_requests_without_the_token_get_401(cluster):
    base, s = api(cluster)
    for path in ("/nodes", "/services", "/stacks", "/secrets"):
        r = requests.get(base + path, timeout=10, verify=s.verify)
        assert r.status_code == 401 and "token" in r.json()["error"]
    r = requests.get(base + "/nodes", headers={"Authorization": "Bearer wrong"}, timeout=10, verify=s.verify)
    assert r.status_code == 401


def test_bad_bodies_get_400_naming_the_field(cluster):
    base, s = api(cluster)
    r = s.put(base + "/stacks/x", data="not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["path"] == "(body)"
    r = s.put(base + "/stacks/x", json={"prune": True}, timeout=10)
    assert r.status_code == 400 and r.json()["path"] == "stack"
    r = s.post(base + "/nodes", json={"name": "n", "ssh": {"host": "10.0.0.1", "port": "22"}}, timeout=10)
    assert r.status_code == 400 and r.json()["path"] == "ssh.port"
    stack = {"services": {"web": {"name": "web", "image": "busybox", "deploy": {
        "mode": "global", "replicas": 3,
        "placement": {"constraints": [{"field": "node.colour", "operator": "==", "value": "red"}]}}}}}
    r = s.put(base + "/stacks/bad", json={"stack": stack}, timeout=10)
    assert r.status_code == 400
    fields = {p["path"]: p["message"] for p in r.json()["problems"]}
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


def stored(s, base) -> dict:
    """What a client sees of the cluster's objects: stacks, services, secrets, configs, networks."""
    return {path: sorted(x.get("name", "") for x in s.get(base + path, timeout=10).json())
            for path in ("/stacks", "/services", "/secrets", "/configs", "/networks")}


def deploy_body(**service) -> dict:
    return {"stack": {"services": {"web": {"name": "web", "image": "swarmpy/busybox:latest", **service}}}}


def test_mutated_specs_and_names_are_refused_as_json_and_store_nothing(cluster):
    base, s = api(cluster)
    before = stored(s, base)
    refused = [
        ("put", "/stacks/mut", deploy_body(image=7), "services.web.image"),
        ("put", "/stacks/mut", deploy_body(deploy={"replicas": True}), "services.web.deploy.replicas"),
        ("put", "/stacks/mut", deploy_body(working_dir=7), "services.web.working_dir"),
        ("put", "/stacks/mut", deploy_body(working_dir="relative"), "services.web.working_dir"),
        ("put", "/stacks/mut", deploy_body(deploy={"replicas": 1_000_000_000_000}), "services.web.deploy.replicas"),
        ("put", "/stacks/mut", deploy_body(ports=[{"target": 80, "published": cluster.api_port}]),
         "services.web.ports.0.published"),
        ("put", "/stacks/" + "x" * 64, deploy_body(), "(stack name)"),
        ("put", "/stacks/-x", deploy_body(), "(stack name)"),
        ("patch", "/services/nope", {"replicas": "3"}, "replicas"),
        ("post", "/networks", {"name": "a/b"}, "name"),
    ]
    for name in ("", "..", "../../etc/passwd", "a/b", "a\x00b", "x" * 10_000):
        refused.append(("post", "/secrets", {"name": name, "data": "eA=="}, "name"))
        refused.append(("post", "/configs", {"name": name, "data": "eA=="}, "name"))
    for method, path, body, where in refused:
        r = getattr(s, method)(base + path, json=body, timeout=10)
        assert r.status_code == 400 and r.headers["Content-Type"] == "application/json", (path, body, r.text)
        assert r.json()["path"] == where, (path, body, r.json())
    assert "at most" in s.put(base + "/stacks/mut", json=deploy_body(deploy={"replicas": 10**12}),
                              timeout=10).json()["error"]
    assert stored(s, base) == before


def test_limits_and_bad_queries_get_clear_json_errors(cluster):
    base, s = api(cluster)
    before = stored(s, base)
    r = s.put(base + "/stacks/big", data=b"{" + b" " * (9 * 1024 * 1024) + b"}",
              headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "too large" in r.json()["error"]
    r = s.put(base + "/stacks/deep", data='{"stack": ' + "[" * 50_000 + "]" * 50_000 + "}",
              headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["path"] == "(body)"
    for query, name in (("block=abc", "block"), ("block=-1", "block"), ("since=garbage", "since")):
        r = s.get(f"{base}/events?{query}", timeout=10)
        assert r.status_code == 400 and r.json()["path"] == name, (query, r.text)
    r = s.get(base + "/services/x/logs?tail=lots", timeout=10)
    assert r.status_code in (400, 404) and r.headers["Content-Type"] == "application/json"
    r = s.post(base + "/nodes/x/nope", timeout=10)
    assert r.status_code in (404, 405) and "error" in r.json()
    assert stored(s, base) == before


def test_a_refused_deploy_writes_no_secret(cluster, tmp_path):
    base, s = api(cluster)
    first = cluster.write_stack(tmp_path, STACK.replace("deploy:", "ports: ['18182:80']\n    deploy:"), "a.yml")
    cluster.deploy(first, "holder")
    try:
        body = deploy_body(ports=[{"target": 80, "published": 18182}], secrets=[{"source": "pw", "target": "pw"}])
        body["stack"]["secrets"] = {"pw": {}}
        body["objects"] = {"secrets": {"pw": "c2VjcmV0"}}
        r = s.put(base + "/stacks/thief", json=body, timeout=10)
        assert r.status_code == 400 and "18182" in r.json()["error"]
        assert "thief_pw" not in [x["name"] for x in s.get(base + "/secrets", timeout=10).json()]
        # a secret that exists with other content refuses the deploy (409), and writes nothing else
        s.post(base + "/secrets", json={"name": "thief_pw", "data": "b2xk"}, timeout=10).raise_for_status()
        body["stack"]["services"]["web"]["ports"] = []
        body["stack"]["configs"] = {"cf": {}}
        body["stack"]["services"]["web"]["configs"] = [{"source": "cf", "target": "/cf"}]
        body["objects"]["configs"] = {"cf": "eA=="}
        r = s.put(base + "/stacks/thief", json=body, timeout=10)
        assert r.status_code == 409 and "other content" in r.json()["error"]
        assert "thief_cf" not in [x["name"] for x in s.get(base + "/configs", timeout=10).json()]
        assert "thief" not in [x["name"] for x in s.get(base + "/stacks", timeout=10).json()]
    finally:
        s.delete(base + "/secrets/thief_pw", timeout=10)
        cluster.cli("stack", "rm", "holder")


def test_objects_named_before_names_were_checked_can_be_listed_and_removed(cluster):
    """Written straight into the store, as an older manager let them in."""
    from swarmpy.store import Store
    base, s = api(cluster)
    store = Store.from_config(StateDir(cluster.state_dir).load())
    odd = {"..": "id-dotdot", "": "id-empty", "a/b": "id-slash", "../../etc/passwd": "id-passwd"}
    for name, oid in odd.items():
        store.put_object("config", {"id": oid, "name": name, "labels": {}, "stack": None, "digest": "x",
                                    "size": 1, "created_at": 0.0}, "eA==")
    listed = {c["name"] for c in s.get(base + "/configs", timeout=10).json()}
    assert set(odd) <= listed
    assert s.get(base + "/configs/a%2Fb", timeout=10).json()["id"] == "id-slash"
    for name, oid in odd.items():
        r = s.delete(f"{base}/configs/{oid}", timeout=10)
        assert r.status_code == 200 and r.json()["removed"] == name
    assert not set(odd) & {c["name"] for c in s.get(base + "/configs", timeout=10).json()}


def test_the_replica_cap_is_a_cluster_setting(cluster, tmp_path):
    done = cluster.cli("cluster", "update", "--max-replicas", "4")
    try:
        assert "4" in done.stdout
        big = cluster.write_stack(tmp_path, STACK.replace("{replicas: 1}", "{replicas: 5}"), "big.yml")
        refused = cluster.cli("stack", "deploy", "-c", str(big), "capped", check=False)
        assert refused.returncode == 1 and "at most 4" in refused.stderr and "Traceback" not in refused.stderr
        assert "capped" not in cluster.cli("stack", "ls").stdout
        cluster.deploy(cluster.write_stack(tmp_path, STACK, "small.yml"), "capped")
        scaled = cluster.cli("service", "scale", "capped_web=9", check=False)
        assert scaled.returncode == 1 and "from 0 to 4" in scaled.stderr
        cluster.cli("stack", "rm", "capped")
    finally:
        cluster.cli("cluster", "update", "--max-replicas", "10000")


def test_dangerous_options_need_the_clusters_leave(cluster, tmp_path):
    risky = cluster.write_stack(tmp_path, STACK.replace("deploy:", "privileged: true\n    volumes: ['/:/host:ro']\n"
                                                                   "    deploy:"), "risky.yml")
    refused = cluster.cli("stack", "deploy", "-c", str(risky), "risky", check=False)
    assert refused.returncode == 1 and "services.web.privileged" in refused.stderr
    assert "services.web.volumes.0.source" in refused.stderr and "--allow-privileged" in refused.stderr
    assert "risky" not in cluster.cli("stack", "ls").stdout
    cluster.cli("cluster", "update", "--allow-privileged")
    try:
        cluster.deploy(risky, "risky", "--detach")  # accepted: whether this lab's engines run it is not the point
        (web,) = json.loads(cluster.cli("service", "inspect", "risky_web").stdout)
        assert web["dangerous_options"] == ["privileged: true", "a bind of the host's /"]
        assert "gives its tasks the host" in cluster.cli("service", "inspect", "--pretty", "risky_web").stdout
        cluster.cli("stack", "rm", "risky")
    finally:
        cluster.cli("cluster", "update", "--refuse-privileged")


def test_a_stack_token_deploys_and_reads_its_own_stack_only(cluster, tmp_path):
    token = cluster.cli("token", "create", "--stack", "ci").stdout.strip()
    assert token.startswith("swpt_")
    stack = cluster.write_stack(tmp_path, STACK, "ci.yml")
    try:
        cluster.cli("stack", "deploy", "-c", str(stack), "ci", token=token)
        assert "ci_web" in cluster.cli("stack", "services", "ci", token=token).stdout
        cluster.cli("service", "scale", "ci_web=2", token=token)
        for args in (("stack", "deploy", "-c", str(stack), "other"), ("node", "ls"), ("secret", "ls"),
                     ("service", "ls"), ("stack", "ps", "holder"), ("token", "ls")):
            done = cluster.cli(*args, check=False, token=token)
            assert done.returncode == 1 and "forbidden" in done.stderr and "only deploy and read stack ci" in \
                done.stderr, (args, done.stderr)
        outside = cluster.write_stack(tmp_path, STACK.replace("deploy:", "secrets: [pw]\n    deploy:")
                                      + "secrets:\n  pw: {external: true, name: holder_pw}\n", "outside.yml")
        done = cluster.cli("stack", "deploy", "-c", str(outside), "ci", check=False, token=token)
        assert done.returncode == 1 and "external secret holder_pw" in done.stderr
        assert "other" not in cluster.cli("stack", "ls").stdout
        listed = cluster.json("token", "ls")
        assert [t["stack"] for t in listed] == ["ci"] and token not in json.dumps(listed)
        cluster.cli("stack", "rm", "ci", token=token)
    finally:
        for t in cluster.json("token", "ls"):
            cluster.cli("token", "rm", t["id"])
        cluster.cli("stack", "rm", "ci", check=False)
    done = cluster.cli("stack", "ls", check=False, token=token)
    assert done.returncode == 1 and "unauthorized" in done.stderr


def test_the_api_speaks_https_with_the_clusters_own_ca_only(cluster, tmp_path):
    base, s = api(cluster)
    assert s.get(base + "/health", timeout=10).ok
    with pytest.raises(requests.exceptions.SSLError):  # a client that trusts the system's CAs only
        requests.get(base + "/health", timeout=10)
    with pytest.raises(requests.ConnectionError):  # plain HTTP on the API's port gets no answer
        requests.get(base.replace("https://", "http://") + "/health", timeout=10)
    # the CLI refuses plain HTTP to another host, and a manager its CA did not sign
    done = cluster.cli("node", "ls", check=False, host=f"http://{cluster.lab.host_address}:{cluster.api_port}")
    assert done.returncode == 1 and "over HTTPS" in done.stderr
    other = tmp_path / "other"
    other.mkdir()
    pki.create_ca(other / "ca.crt", other / "ca.key", "other")
    env_ca = dict(cluster.env, SWARMPY_CA=str(other / "ca.crt"))
    done = subprocess.run([sys.executable, "-m", "swarmpy", "node", "ls"], env=env_ca, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "not one the cluster's CA signed" in done.stderr
