"""Several -c files merged by the Compose Specification's rules."""

import pytest

from swarmpy.compose import ComposeError, load_stack
from swarmpy.model import Mount, Port

BASE = """
services:
  web:
    image: web:1
    command: ["serve", "--port", "80"]
    environment: [A=1, B=2]
    labels: {tier: front}
    ports: ["8080:80", "9090:90"]
    volumes: ["data:/data", "/srv/logs:/logs"]
    secrets: [token]
    dns: 1.1.1.1
    healthcheck: {test: ["CMD", "check", "--slow"], interval: 30s}
    deploy:
      replicas: 2
      placement: {constraints: [node.role == worker]}
      update_config: {parallelism: 2}
volumes: {data: {}, other: {}}
secrets: {token: {external: true}}
"""


def load(tmp_path, *texts, environ=None):
    paths = []
    for index, text in enumerate(texts):
        path = tmp_path / f"compose{index}.yml"
        path.write_text(text)
        paths.append(str(path))
    return load_stack(paths, environ=environ or {})[0]


def test_later_files_override_and_extend_earlier_ones(tmp_path):
    stack = load(tmp_path, BASE, """
services:
  web:
    image: web:2
    command: serve --port 81
    environment: {B: "two", C: "3"}
    labels: [tier=back, extra=yes]
    ports: ["8080:80", "7070:70"]
    volumes: ["other:/data"]
    dns: [8.8.8.8]
    healthcheck: {test: ["CMD", "check"]}
    deploy:
      replicas: 3
      placement: {constraints: ["node.labels.zone == a"]}
      update_config: {delay: 10s}
  worker:
    image: worker
""")
    web = stack.services["web"]
    assert web.image == "web:2"
    assert web.command == ["serve", "--port", "81"]  # replaced, not appended
    assert web.environment == {"A": "1", "B": "two", "C": "3"}  # list and mapping forms merge by key
    assert web.labels == {"tier": "back", "extra": "yes"}
    assert web.ports == [Port(80, 8080), Port(90, 9090), Port(70, 7070)]  # unique by ip/target/published/protocol
    assert [m.target for m in web.volumes] == ["/data", "/logs"]  # unique by target: the later source wins
    assert web.volumes[0] == Mount(type="volume", source="other", target="/data")
    assert web.dns == ["1.1.1.1", "8.8.8.8"]
    assert web.healthcheck.test == ["CMD", "check"] and web.healthcheck.interval == 30
    assert [str(c) for c in web.deploy.placement.constraints] == ["node.role==worker", "node.labels.zone==a"]
    assert (web.deploy.replicas, web.deploy.update_config.parallelism, web.deploy.update_config.delay) == (3, 2, 10)
    assert set(stack.services) == {"web", "worker"}


def test_secrets_merge_by_target(tmp_path):
    stack = load(tmp_path, BASE, """
services:
  web:
    secrets: [{source: token, mode: 0400}, {source: token, target: /etc/token}]
""")
    assert [(s.target, s.mode) for s in stack.services["web"].secrets] == [
        ("/run/secrets/token", 0o400), ("/etc/token", 0o444)]


def test_reset_removes_and_override_replaces(tmp_path):
    stack = load(tmp_path, BASE, """
services:
  web:
    ports: !reset []
    environment:
      A: !reset null
    volumes: !override ["/srv/new:/new"]
    deploy: {placement: {constraints: !reset []}}
""")
    web = stack.services["web"]
    assert web.ports == [] and web.environment == {"B": "2"}
    assert [m.target for m in web.volumes] == ["/new"]
    assert web.deploy.placement.constraints == []


def test_a_single_file_may_use_the_tags_too(tmp_path):
    stack = load(tmp_path, "services:\n  web:\n    image: !override x\n    ports: !reset ['80']\n")
    assert stack.services["web"].image == "x" and stack.services["web"].ports == []


def test_problems_name_the_file_that_holds_the_bad_value(tmp_path):
    with pytest.raises(ComposeError) as caught:
        load(tmp_path, BASE, "services:\n  web:\n    deploy: {replicas: three}\n    networks: [backend]\n")
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/compose1.yml: services.web.deploy.replicas: 'three' is not of type 'integer'"]
    with pytest.raises(ComposeError) as caught:
        load(tmp_path, BASE, "services:\n  web:\n    networks: [backend]\n")
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/compose1.yml: services.web.networks.backend: network 'backend' is not declared under top-level networks"]


def test_relative_paths_of_every_file_are_relative_to_the_first_files_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    base, override = tmp_path / "compose.yml", tmp_path / "sub" / "override.yml"
    base.write_text("services:\n  web:\n    image: x\n")
    override.write_text("services:\n  web:\n    volumes: ['./data:/data']\n")
    stack, _ = load_stack([str(base), str(override)], environ={})
    assert stack.services["web"].volumes[0].source == str(tmp_path / "data")
