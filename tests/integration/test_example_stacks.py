"""The example stacks in stacks/ deploy on a 3-node lab as they are and answer through the mesh;
the lab's nginx image (the benchmarks' backend) answers HTTP."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path

import docker
import pytest

from swarmpy.lab import images as lab_images
from tests.integration.cluster import wait_for
from tests.integration.test_mesh import get, served_by

STACKS = Path(__file__).resolve().parents[2] / "stacks"
WEB_PORT, APP_WEB_PORT, APP_DB_PORT, SHOP_PORT = 8080, 18080, 16379, 8081


@pytest.fixture(scope="module")
def example_images(cluster):
    """The presets the stacks use, built on this machine and loaded into every lab node up front."""
    for preset in ("busybox", "redis"):
        lab_images.build_preset(preset)
    lab_images.load_images(cluster.lab, [lab_images.PRESETS["redis"]])


def _answers(address: str) -> bool:
    try:
        return bool(get(80, host=address, timeout=1))
    except (OSError, http.client.HTTPException):
        return False  # not listening yet


def test_nginx_image_answers_with_its_hostname(lab_machine):
    lab_images.build_preset("nginx")
    engine = docker.from_env()
    container = engine.containers.run(lab_images.PRESETS["nginx"], detach=True)
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        wait_for(lambda: _answers(address), 10, what="nginx answering")
        conn = http.client.HTTPConnection(address, 80, timeout=3)
        try:
            for _ in range(3):  # on one keep-alive connection, as the benchmark asks
                conn.request("GET", "/")
                response = conn.getresponse()
                assert (response.status, response.read()) == (200, f"{container.id[:12]}\n".encode())
                assert response.getheader("Content-Type") == "text/plain"
        finally:
            conn.close()
    finally:
        container.remove(force=True)
        engine.close()


def test_web_stack_answers_from_three_containers(cluster, example_images):
    cluster.deploy(STACKS / "web.yml", "demo")
    try:
        wait_for(lambda: len(served_by(WEB_PORT)) == 3, 20, what="three tasks answering on 8080")
        served = {get(WEB_PORT) for _ in range(30)}
        assert served == {c["Id"][:12] for c in cluster.listed("demo")}
        assert sum(cluster.running("demo").values()) == 3
    finally:
        cluster.cli("stack", "rm", "demo")
    assert cluster.listed("demo", running_only=False) == []


def _password() -> str:
    """The example password, from the secret's file: a `requirepass` line of redis's configuration."""
    lines = (STACKS / "app" / "db_password.txt").read_text().splitlines()
    return next(line.split()[1] for line in lines if line.startswith("requirepass "))


def redis_replies(port: int, *commands: list[str]) -> list[str]:
    """Send commands in RESP over one new connection; the first line of each reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        replies = sock.makefile("rb")
        out = []
        for command in commands:
            parts = [f"*{len(command)}\r\n".encode()]
            for arg in command:
                parts.append(f"${len(arg.encode())}\r\n{arg}\r\n".encode())
            sock.sendall(b"".join(parts))
            out.append(replies.readline().decode().rstrip("\r\n"))
        return out


def _redis_answers(port: int) -> list[str] | None:
    try:
        return redis_replies(port, ["PING"])
    except OSError:
        return None  # no endpoint in the mesh's table yet


def test_app_stack_database_behind_a_secret_and_web_from_a_config(cluster, example_images):
    password = _password()
    cluster.deploy(STACKS / "app.yml", "app")
    try:
        assert cluster.services("app")["app_db"]["replicas"] == "1/1"
        assert wait_for(lambda: _redis_answers(APP_DB_PORT), 15, what="redis through the mesh") \
            == ["-NOAUTH Authentication required."]
        assert redis_replies(APP_DB_PORT, ["AUTH", "wrong"], ["PING"])[1].startswith("-NOAUTH")
        assert redis_replies(APP_DB_PORT, ["AUTH", password], ["PING"], ["SET", "k", "v"], ["GET", "k"]) \
            == ["+OK", "+PONG", "+OK", "$1"]

        page = (STACKS / "app" / "index.html").read_text().strip()
        wait_for(lambda: served_by(APP_WEB_PORT, requests=2), 20, what="the web service through the mesh")
        assert {get(APP_WEB_PORT) for _ in range(6)} == {page}
        assert cluster.running("app", "web") and sum(cluster.running("app", "web").values()) == 2

        listings = [cluster.cli(*args).stdout for args in (
            ("stack", "ps", "app"), ("stack", "services", "app"), ("service", "inspect", "app_db"),
            ("service", "ps", "app_db"), ("secret", "ls"), ("secret", "ls", "--format", "json"),
            ("secret", "inspect", "app_db_password"))]
        assert "app_db_password" in listings[4]
        assert not [text for text in listings if password in text]
        db = [c for c in cluster.listed("app") if c["Labels"]["com.swarmpy.service.name"] == "app_db"]
        assert len(db) == 1
        assert password not in str(cluster.engine(db[0]["node"]).containers.get(db[0]["Id"]).attrs)
    finally:
        cluster.cli("stack", "rm", "app")
    assert cluster.listed("app", running_only=False) == []
    assert "app_db_password" not in cluster.cli("secret", "ls").stdout


def test_shop_stack_talks_by_name_over_its_two_networks(cluster, example_images):
    """nginx (through the mesh) -> api on `front` -> redis on the internal `back`, each by name."""
    lab_images.build_preset("nginx")
    lab_images.load_images(cluster.lab, [lab_images.PRESETS["nginx"]])
    cluster.deploy(STACKS / "shop.yml", "shop")
    try:
        apis = {c["Id"][:12] for c in cluster.listed("shop") if c["Labels"]["com.swarmpy.service.name"] == "shop_api"}
        assert len(apis) == 3

        def visit() -> str | None:
            try:
                return get(SHOP_PORT, timeout=3)
            except (OSError, http.client.HTTPException, AssertionError):
                return None  # the api not healthy yet: nginx answers 502
        wait_for(visit, 30, what="the shop to answer through the mesh")
        def all_routed() -> bool:  # every api task healthy, and nginx's node sends to each by the VIP
            api = json.loads(cluster.cli("service", "inspect", "shop_api").stdout)[0]
            return len(api["endpoint"]["backends"]["shop_front"]) == 3 and api["summary"]["routed"]
        wait_for(all_routed, 30, what="every api task healthy and routed")
        answers = [visit() for _ in range(30)]
        counts = [int(a.rsplit(" ", 1)[1]) for a in answers]
        assert counts == sorted(counts) and len(set(counts)) == 30  # one Redis counted every visit
        assert {a.split()[1].rstrip(":") for a in answers} == apis  # the api's VIP balanced over its tasks
        networks = {n["name"]: n for n in cluster.json("network", "ls")}
        assert networks["shop_back"]["internal"] and not networks["shop_front"]["internal"]
        web = next(c for c in cluster.listed("shop") if c["Labels"]["com.swarmpy.service.name"] == "shop_web")
        attached = cluster.engine(web["node"]).containers.get(web["Id"]).attrs["NetworkSettings"]["Networks"]
        assert [name.rsplit("-", 1)[0] for name in attached] == ["shop_front"]  # not on `back`
    finally:
        cluster.cli("stack", "rm", "shop")
    assert cluster.listed("shop", running_only=False) == []
