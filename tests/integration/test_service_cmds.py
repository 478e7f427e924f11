"""`service create | update | rollback`, as a Swarm user types them, on the lab: what the engines run."""

from __future__ import annotations

import ipaddress
import json

from tests.integration.cluster import wait_for
from tests.integration.test_api import api
from tests.integration.test_mesh import served_by

PORT = 18431
SERVE = "mkdir -p /www; echo $GREETING > /www/index.html; exec httpd -f -p 80 -h /www"
NODES = ("node1", "node2", "node3")


def running(cluster, service: str) -> list[dict]:
    """The engines' own view: the service's running containers, inspected, on every lab node."""
    found = []
    for node in NODES:
        engine = cluster.engine(node)
        for c in engine.api.containers(filters={"label": f"com.swarmpy.service.name={service}"}):
            found.append(engine.api.inspect_container(c["Id"]))
    return found


def greetings(cluster, service: str) -> list[str]:
    return sorted(next(e.split("=", 1)[1] for e in c["Config"]["Env"] if e.startswith("GREETING="))
                  for c in running(cluster, service))


def inspect(cluster, kind: str, ref: str):
    return json.loads(cluster.cli(kind, "inspect", ref).stdout)


def listed(cluster) -> dict[str, dict]:
    return {s["name"]: s for s in cluster.json("service", "ls")}


def test_create_update_rollback_round_trip(cluster):
    made = cluster.cli("service", "create", "--name", "hello", "--replicas", "2", "-p", f"{PORT}:80",
                       "-e", "GREETING=one", "--stop-grace-period", "1s", "--restart-delay", "0s",
                       "--update-parallelism", "2", "--label", "team=web",
                       "swarmpy/busybox:latest", "sh", "-c", SERVE)
    try:
        assert "verify: Service hello converged" in made.stdout  # it waited, with docker's progress
        assert greetings(cluster, "hello") == ["one", "one"]
        first = running(cluster, "hello")
        assert all(c["Config"]["Cmd"] == ["sh", "-c", SERVE] for c in first)
        assert {c["Config"]["Labels"]["com.swarmpy.stack"] for c in first} == {""}
        row = listed(cluster)["hello"]
        assert (row["stack"], row["replicas"], row["mode"]) == ("", "2/2", "replicated")
        assert f"*:{PORT}->80/tcp" in row["ports"]
        assert "hello" not in cluster.cli("stack", "ls").stdout  # it belongs to no stack
        wait_for(lambda: served_by(PORT) == {"one"}, 30, what="the mesh to serve the new service")

        # update: only what the flags name changes, and the tasks roll
        cluster.cli("service", "update", "--env-add", "GREETING=two", "--replicas", "3", "hello")
        assert greetings(cluster, "hello") == ["two", "two", "two"]
        inspected = inspect(cluster, "service", "hello")[0]
        assert inspected["spec_version"] == 2 and inspected["spec"]["deploy"]["labels"] == {"team": "web"}
        assert inspected["spec"]["ports"] == [{"target": 80, "published": PORT, "protocol": "tcp", "mode": "ingress"}]
        wait_for(lambda: served_by(PORT) == {"two"}, 30, what="the mesh to serve the updated tasks")
        assert not {c["Id"] for c in first} & {c["Id"] for c in running(cluster, "hello")}

        # rollback: the previous spec again, on the engines
        rolled = cluster.cli("service", "rollback", "hello")
        assert "rollback: manually requested rollback" in rolled.stdout
        assert greetings(cluster, "hello") == ["one", "one"]
        status = inspect(cluster, "service", "hello")[0]["update_status"]
        wait_for(lambda: inspect(cluster, "service", "hello")[0]["update_status"]["state"]
                 == "rollback_completed", 20, what="the rollback to complete")
        assert status["mode"] == "rollback"
        wait_for(lambda: served_by(PORT) == {"one"}, 30, what="the mesh to serve the rolled-back tasks")

        # --force replaces the tasks with no change; the other service commands work on it
        before = {c["Id"] for c in running(cluster, "hello")}
        cluster.cli("service", "update", "--force", "hello")
        assert greetings(cluster, "hello") == ["one", "one"]
        assert not before & {c["Id"] for c in running(cluster, "hello")}
        cluster.cli("service", "scale", "hello=1")
        wait_for(lambda: greetings(cluster, "hello") == ["one"], 15, what="the scaled-down task to stop")
        assert "hello.1" in cluster.cli("service", "ps", "hello").stdout
    finally:
        cluster.cli("service", "rm", "hello", check=False)
    wait_for(lambda: not running(cluster, "hello"), 30, what="the containers to go")
    assert "hello" not in listed(cluster)


def test_detach_returns_at_once_and_a_network_can_be_joined(cluster):
    cluster.cli("network", "create", "svcnet")
    try:
        create = ("service", "create", "-d", "--name", "netted", "--network", "svcnet", "--mode", "global",
                  "--stop-grace-period", "1s", "--secret", "source=svc_pw,target=pw,mode=0400",
                  "swarmpy/busybox:latest", "sleep", "3600")
        made = cluster.cli(*create, check=False)
        assert made.returncode == 1 and "secret not found: svc_pw" in made.stderr  # it must exist first
        cluster.cli("secret", "create", "svc_pw", "-", input="s3cret")
        made = cluster.cli(*create)
        assert "converged" not in made.stdout
        wait_for(lambda: len(running(cluster, "netted")) == 3, 60, what="one task on each node")
        subnet = ipaddress.ip_network(inspect(cluster, "network", "svcnet")[0]["subnet"])
        for c in running(cluster, "netted"):  # on svcnet only, with an address of its subnet
            (only,) = c["NetworkSettings"]["Networks"].values()
            assert ipaddress.ip_address(only["IPAddress"]) in subnet
        vips = inspect(cluster, "service", "netted")[0]["endpoint"]["virtual_ips"]
        assert [v["network"] for v in vips] == ["svcnet"] and ipaddress.ip_address(vips[0]["address"]) in subnet
        task = running(cluster, "netted")[0]
        node = next(n for n in NODES if any(c["Id"] == task["Id"] for c in cluster.engine(n).api.containers()))
        api_ = cluster.engine(node).api
        assert api_.exec_start(api_.exec_create(task["Id"], "cat /run/secrets/pw")) == b"s3cret"
        assert "netted" in json.dumps(inspect(cluster, "network", "svcnet"))
    finally:
        cluster.cli("service", "rm", "netted", check=False)
        wait_for(lambda: not running(cluster, "netted"), 30, what="the containers to go")
        cluster.cli("secret", "rm", "svc_pw", check=False)
        wait_for(lambda: cluster.cli("network", "rm", "svcnet", check=False).returncode == 0, 30,
                 what="the network to be free")


def test_bad_flags_and_bodies_are_refused_and_change_nothing(cluster, tmp_path):
    before = listed(cluster)
    done = cluster.cli("service", "create", "-p", "80:80/xyz", "swarmpy/busybox:latest", check=False)
    assert done.returncode == 125 and "--publish" in done.stderr and "xyz" in done.stderr
    done = cluster.cli("service", "create", "--name", "big", "--replicas", "100000", "swarmpy/busybox:latest",
                       check=False)
    assert done.returncode == 1 and "deploy.replicas" in done.stderr and "at most" in done.stderr
    done = cluster.cli("service", "update", "--limit-memory", "lots", "nosuch", check=False)
    assert done.returncode == 125 and "--limit-memory" in done.stderr
    done = cluster.cli("service", "update", "--env-add", "A=1", "nosuch", check=False)
    assert done.returncode == 1 and "service nosuch not found" in done.stderr
    done = cluster.cli("service", "rollback", "nosuch", check=False)
    assert done.returncode == 1 and "not found" in done.stderr

    base, session = api(cluster)
    for body, path in (({"spec": {"name": "x", "image": 7}}, "spec.image"),
                       ({"spec": {"name": "x", "image": "busybox", "colour": "red"}}, "spec.colour"),
                       ({"spec": {"name": "x", "image": "busybox", "ports": [{"target": 80, "published": 4789,
                                                                        "protocol": "udp"}]}},  # VXLAN's
                        "spec.ports.0.published"),
                       ({"spec": {"name": "bad name", "image": "busybox"}}, "spec"),
                       ({"spec": {"name": "x", "image": "busybox", "deploy": {"mode": "sideways"}}},
                        "spec.deploy.mode")):
        r = session.post(f"{base}/services", json=body)
        assert r.status_code == 400 and r.json()["path"] == path, (body, r.status_code, r.text)
    r = session.post(f"{base}/services/nosuch/update", json={"spec": {"name": "x", "image": "busybox"}})
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
    assert listed(cluster) == before

    # a name is cluster-wide: a stack's service may not take a stackless one's, nor the reverse
    cluster.cli("service", "create", "-d", "--name", "clash_web", "swarmpy/busybox:latest", "sleep", "3600")
    try:
        path = cluster.write_stack(tmp_path, "services:\n  web:\n    image: swarmpy/busybox:latest\n")
        done = cluster.cli("stack", "deploy", "-d", "-c", str(path), "clash", check=False)
        assert done.returncode == 1 and "clash_web is taken" in done.stderr
        r = session.post(f"{base}/services", json={"spec": {"name": "clash_web", "image": "busybox"}})
        assert r.status_code == 409 and "exists already" in r.json()["error"]
        # a stack token reaches no service of no stack, and may not create one
        token = cluster.cli("token", "create", "--stack", "ci").stdout.strip()
        for args in (("service", "create", "-d", "--name", "sneaky", "swarmpy/busybox:latest"),
                     ("service", "update", "--env-add", "A=1", "clash_web"), ("service", "rollback", "clash_web")):
            done = cluster.cli(*args, check=False, token=token)
            assert done.returncode == 1 and "forbidden" in done.stderr, args
    finally:
        for t in cluster.json("token", "ls"):
            cluster.cli("token", "rm", t["id"], check=False)
        cluster.cli("service", "rm", "clash_web", check=False)
        cluster.cli("stack", "rm", "clash", check=False)
