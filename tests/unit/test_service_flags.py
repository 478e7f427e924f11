"""`service create | update` flags -> specs, with Docker's syntaxes and defaults."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from swarmpy.cli import service_flags as flags
from swarmpy.model import Constraint, FileReference, Healthcheck, Mount, Port, Preference, ServiceSpec


def parse_create(*argv: str) -> ServiceSpec:
    """The spec `service create ARGV` would send (through click, as a user types it)."""
    made = {}

    @click.command(context_settings={"allow_interspersed_args": False})
    @flags.create_options
    @click.argument("image", type=flags.IMAGE)
    @click.argument("command", nargs=-1)
    def create(image, command, detach, timeout, **opts):
        made["spec"] = flags.create_spec(image, command, opts)

    result = CliRunner().invoke(create, list(argv), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return made["spec"]


def parse_update(spec: ServiceSpec, *argv: str) -> ServiceSpec:
    made = {}

    @click.command()
    @flags.update_options
    def update(detach, timeout, force, **opts):
        made["spec"] = flags.update_spec(spec, opts)

    result = CliRunner().invoke(update, list(argv), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return made["spec"]


def refused(*argv: str) -> str:
    @click.command(context_settings={"allow_interspersed_args": False})
    @flags.create_options
    @click.argument("image", type=flags.IMAGE)
    @click.argument("command", nargs=-1)
    def create(image, command, detach, timeout, **opts):
        flags.create_spec(image, command, opts)

    result = CliRunner().invoke(create, list(argv))
    assert result.exit_code == 125, result.output  # a usage error: Docker's code
    return result.output


def test_publish_in_short_and_long_syntax():
    assert flags.parse_publish("8080:80") == [Port(target=80, published=8080)]
    assert flags.parse_publish("53:53/udp") == [Port(target=53, published=53, protocol="udp")]
    assert flags.parse_publish("80") == [Port(target=80)]
    assert flags.parse_publish("published=8080,target=80,protocol=udp,mode=host") == [
        Port(target=80, published=8080, protocol="udp", mode="host")]
    for bad in ("8080:80/xyz", "published=8080", "target=80,colour=red", "1.2.3.4:80:80", "99999:80"):
        with pytest.raises(ValueError):
            flags.parse_publish(bad)


def test_mount_as_docker_writes_it():
    assert flags.parse_mount("type=volume,source=data,target=/data,readonly") == Mount(
        type="volume", source="data", target="/data", read_only=True)
    assert flags.parse_mount("src=data,dst=/data") == Mount(type="volume", source="data", target="/data")
    assert flags.parse_mount("type=bind,source=/srv,target=/srv,ro=false,bind-propagation=rslave") == Mount(
        type="bind", source="/srv", target="/srv", bind_propagation="rslave")
    assert flags.parse_mount("type=tmpfs,target=/tmp,tmpfs-size=64m,tmpfs-mode=1777") == Mount(
        type="tmpfs", target="/tmp", tmpfs_size=64 << 20, tmpfs_mode=0o1777)
    for bad in ("type=nfs,target=/x", "source=x,target=relative", "type=bind,target=/x", "target=/x,colour=red",
                "target=/x,readonly=maybe"):
        with pytest.raises(ValueError):
            flags.parse_mount(bad)


def test_secrets_and_configs_with_docker_default_targets():
    assert flags.parse_reference("secret", "db_pw") == FileReference(source="db_pw", target="/run/secrets/db_pw")
    assert flags.parse_reference("secret", "source=db_pw,target=pw,mode=0400,uid=100") == FileReference(
        source="db_pw", target="/run/secrets/pw", uid="100", mode=0o400)
    assert flags.parse_reference("config", "source=nginx_conf,target=/etc/nginx/nginx.conf") == FileReference(
        source="nginx_conf", target="/etc/nginx/nginx.conf")
    assert flags.parse_reference("config", "site").target == "/site"
    with pytest.raises(ValueError):
        flags.parse_reference("secret", "target=/x")


def test_create_builds_the_spec_with_swarms_defaults(monkeypatch):
    monkeypatch.setenv("FROM_SHELL", "yes")
    spec = parse_create("--name", "web", "--replicas", "3", "-p", "8080:80", "-e", "A=1", "-e", "FROM_SHELL",
                        "-e", "UNSET_HERE_X", "--label", "team=a", "--constraint", "node.role==worker",
                        "--placement-pref", "spread=node.labels.zone", "--secret", "pw", "--mount",
                        "source=data,target=/data", "--limit-cpu", "0.5", "--limit-memory", "512M",
                        "--reserve-memory", "64m", "--restart-condition", "on-failure", "--restart-delay", "1m30s",
                        "--health-cmd", "wget -q -O- localhost", "--health-interval", "10s", "--health-retries", "2",
                        "--update-parallelism", "2", "--update-delay", "10s", "--update-failure-action", "rollback",
                        "--update-order", "start-first", "--rollback-monitor", "3s", "--network", "back",
                        "nginx:alpine", "nginx", "-g", "daemon off;")
    assert spec.name == "web" and spec.image == "nginx:alpine" and spec.command == ["nginx", "-g", "daemon off;"]
    assert spec.deploy.replicas == 3 and spec.deploy.mode == "replicated"
    assert spec.ports == [Port(target=80, published=8080)]
    assert spec.environment == {"A": "1", "FROM_SHELL": "yes", "UNSET_HERE_X": None}
    assert spec.deploy.labels == {"team": "a"} and spec.labels == {}
    assert spec.deploy.placement.constraints == [Constraint("node.role", "==", "worker")]
    assert spec.deploy.placement.preferences == [Preference("node.labels.zone")]
    assert spec.secrets == [FileReference(source="pw", target="/run/secrets/pw")]
    assert spec.volumes == [Mount(type="volume", source="data", target="/data")]
    assert spec.deploy.resources.limits.cpus == 0.5 and spec.deploy.resources.limits.memory == 512 << 20
    assert spec.deploy.resources.reservations.memory == 64 << 20
    assert spec.deploy.restart_policy.condition == "on-failure" and spec.deploy.restart_policy.delay == 90.0
    assert spec.healthcheck == Healthcheck(test=["CMD-SHELL", "wget -q -O- localhost"], interval=10.0, retries=2)
    uc, rc = spec.deploy.update_config, spec.deploy.rollback_config
    assert (uc.parallelism, uc.delay, uc.failure_action, uc.order, uc.monitor) == (2, 10.0, "rollback",
                                                                                  "start-first", 5.0)
    assert rc.monitor == 3.0 and rc.parallelism == 1 and rc.failure_action == "pause"
    assert spec.networks == {"back": {}}


def test_create_with_nothing_but_an_image_is_docker_defaults():
    spec = parse_create("busybox")
    assert spec.image == "busybox" and spec.command is None
    assert spec.name.startswith("busybox_") and len(spec.name) == len("busybox_") + 6
    defaults = ServiceSpec(name=spec.name, image="busybox")
    assert spec == defaults
    assert parse_create("--mode", "global", "--no-healthcheck", "busybox").healthcheck == Healthcheck(
        test=["NONE"], disable=True)


def test_bad_flags_are_usage_errors_naming_the_flag():
    assert "--publish" in refused("-p", "80:80/sctpx", "nginx")
    assert "--limit-memory" in refused("--limit-memory", "lots", "nginx")
    assert "--update-delay" in refused("--update-delay", "10 seconds", "nginx")
    assert "--mount" in refused("--mount", "type=nfs,target=/x", "nginx")
    assert "--constraint" in refused("--constraint", "node.role>=manager", "nginx")
    assert "--update-order" in refused("--update-order", "sideways", "nginx")
    assert "IMAGE" in refused("--name", "x", "Not An Image")
    assert "--no-healthcheck conflicts" in refused("--no-healthcheck", "--health-cmd", "true", "nginx")


BEFORE = ServiceSpec.from_dict({
    "name": "web", "image": "nginx:1.25", "command": ["nginx"], "environment": {"A": "1", "B": "2"},
    "labels": {"c": "1"}, "ports": [{"target": 80, "published": 8080}, {"target": 53, "published": 53,
                                                                        "protocol": "udp"}],
    "volumes": [{"type": "volume", "source": "data", "target": "/data"}],
    "secrets": [{"source": "pw", "target": "/run/secrets/pw"}],
    "deploy": {"replicas": 2, "labels": {"team": "a"},
               "placement": {"constraints": [{"field": "node.role", "operator": "==", "value": "worker"}]}}})


def test_update_changes_only_what_its_flags_name():
    assert parse_update(BEFORE) == BEFORE
    after = parse_update(BEFORE, "--env-add", "B=3", "--env-add", "C=4", "--env-rm", "A", "--image", "nginx:1.26")
    assert after.environment == {"B": "3", "C": "4"} and after.image == "nginx:1.26"
    assert after.copy(environment=BEFORE.environment, image=BEFORE.image) == BEFORE
    assert BEFORE.environment == {"A": "1", "B": "2"}  # the spec read is left as it was
    assert parse_update(BEFORE, "--replicas", "5").deploy.replicas == 5
    assert parse_update(BEFORE, "--args", "nginx -g 'daemon off;'").command == ["nginx", "-g", "daemon off;"]


def test_update_adds_and_removes_list_entries_as_docker_does():
    after = parse_update(BEFORE, "--publish-rm", "80", "--publish-add", "9090:90", "--publish-add", "5353:53/udp",
                         "--label-add", "tier=web", "--label-rm", "team", "--container-label-rm", "c",
                         "--constraint-rm", "node.role==worker", "--constraint-add", "node.labels.zone==b",
                         "--placement-pref-add", "spread=node.labels.zone", "--secret-rm", "pw",
                         "--secret-add", "source=pw2,target=pw", "--mount-add", "source=other,target=/data",
                         "--mount-add", "type=tmpfs,target=/tmp")
    assert after.ports == [Port(target=53, published=53, protocol="udp"), Port(target=90, published=9090),
                           Port(target=53, published=5353, protocol="udp")]
    assert after.deploy.labels == {"tier": "web"} and after.labels == {}
    assert after.deploy.placement.constraints == [Constraint("node.labels.zone", "==", "b")]
    assert after.deploy.placement.preferences == [Preference("node.labels.zone")]
    assert after.secrets == [FileReference(source="pw2", target="/run/secrets/pw")]
    assert after.volumes == [Mount(type="volume", source="other", target="/data"), Mount(type="tmpfs", target="/tmp")]
    again = parse_update(BEFORE, "--publish-add", "8080:81", "--mount-rm", "/data", "--publish-rm", "53/udp")
    assert again.ports == [Port(target=81, published=8080)] and again.volumes == []


def test_update_of_the_healthcheck_and_the_update_config():
    after = parse_update(BEFORE, "--health-interval", "5s", "--update-monitor", "1m", "--rollback-order",
                         "start-first", "--restart-max-attempts", "3")
    assert after.healthcheck == Healthcheck(interval=5.0)
    assert after.deploy.update_config.monitor == 60.0 and after.deploy.rollback_config.order == "start-first"
    assert after.deploy.restart_policy.max_attempts == 3
    off = parse_update(after, "--no-healthcheck")
    assert off.healthcheck == Healthcheck(test=["NONE"], disable=True)
    on = parse_update(off, "--health-cmd", "true")
    assert on.healthcheck.test == ["CMD-SHELL", "true"] and not on.healthcheck.disable
