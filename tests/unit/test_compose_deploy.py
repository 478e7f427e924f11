"""The deploy section: Swarm's defaults kept, partial sections filled in, resources parsed."""

import pytest

from swarmpy.compose import ComposeError, load_stack
from swarmpy.model import DeploySpec, Platform, RestartPolicy, UpdateConfig


def service(tmp_path, text, environ=None):
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: x\n" + text)
    stack, _ = load_stack([str(tmp_path / "compose.yml")], environ=environ or {})
    return stack.services["web"]


def problems(tmp_path, text):
    with pytest.raises(ComposeError) as caught:
        service(tmp_path, text)
    return [(p.path, p.message) for p in caught.value.problems]


def test_silence_means_swarms_defaults(tmp_path):
    web = service(tmp_path, "")
    assert web.deploy == DeploySpec()
    assert web.deploy.restart_policy == RestartPolicy("any", 5.0, 0, 0.0)
    assert web.deploy.update_config == web.deploy.rollback_config == UpdateConfig(1, 0.0, "pause", 5.0, 0.0, "stop-first")
    assert web.stop_grace_period == 10.0


def test_partial_sections_keep_the_defaults_of_what_they_leave_out(tmp_path):
    web = service(tmp_path, """
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 3}
      update_config: {parallelism: 2, delay: 10s, order: start-first}
      rollback_config: {monitor: 1m}
""")
    assert web.deploy.restart_policy == RestartPolicy("on-failure", 5.0, 3, 0.0)
    assert web.deploy.update_config == UpdateConfig(2, 10.0, "pause", 5.0, 0.0, "start-first")
    assert web.deploy.rollback_config == UpdateConfig(1, 0.0, "pause", 60.0, 0.0, "stop-first")


def test_everything_of_deploy(tmp_path):
    web = service(tmp_path, """
    deploy:
      mode: replicated
      replicas: 6
      endpoint_mode: dnsrr
      labels: [com.example=web, flag]
      placement:
        constraints: [node.role == worker]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: '0.5', memory: 512m, pids: 100}
        reservations: {cpus: 0.25, memory: 1.5GB}
      restart_policy: {condition: none, delay: 1m30s, window: 2m}
""")
    deploy = web.deploy
    assert (deploy.mode, deploy.replicas, deploy.endpoint_mode) == ("replicated", 6, "dnsrr")
    assert deploy.labels == {"com.example": "web", "flag": ""}
    assert [str(c) for c in deploy.placement.constraints] == ["node.role==worker"]
    assert deploy.placement.preferences[0].spread == "node.labels.zone"
    assert deploy.placement.max_replicas_per_node == 2
    assert (deploy.resources.limits.cpus, deploy.resources.limits.memory, deploy.resources.limits.pids) == (0.5, 512 << 20, 100)
    assert (deploy.resources.reservations.cpus, deploy.resources.reservations.memory) == (0.25, 3 << 29)
    assert (deploy.restart_policy.condition, deploy.restart_policy.delay, deploy.restart_policy.window) == ("none", 90.0, 120.0)


@pytest.mark.parametrize("mode", ["global", "replicated-job", "global-job"])
def test_modes(tmp_path, mode):
    assert service(tmp_path, f"    deploy: {{mode: {mode}}}\n").deploy.mode == mode


def test_replicas_with_mode_global_is_a_problem(tmp_path):
    assert problems(tmp_path, "    deploy: {mode: global, replicas: 2}\n") == [
        ("services.web.deploy.replicas", "replicas cannot be set with mode global")]


@pytest.mark.parametrize(
    "text, path, message",
    [
        ("    deploy: {replicas: three}\n", "services.web.deploy.replicas", "'three' is not of type 'integer'"),
        ("    deploy: {mode: sometimes}\n", "services.web.deploy.mode", "'sometimes' is not one of"),
        ("    deploy: {resources: {limits: {memory: lots}}}\n", "services.web.deploy.resources.limits.memory",
         "'lots' is not a byte size"),
        ("    deploy: {resources: {limits: {cpus: half}}}\n", "services.web.deploy.resources.limits.cpus",
         "'half' is not a number of CPUs"),
        ("    deploy: {restart_policy: {delay: soon}}\n", "services.web.deploy.restart_policy.delay",
         "'soon' is not a duration"),
        ("    deploy: {rollback_config: {failure_action: rollback}}\n",
         "services.web.deploy.rollback_config.failure_action", "a rollback cannot roll back"),
        ("    deploy: {placement: {preferences: [{spread: zone}]}}\n",
         "services.web.deploy.placement.preferences.0.spread", "unknown node attribute 'zone'"),
        ("    deploy: {update_config: {order: random}}\n", "services.web.deploy.update_config.order", "is not one of"),
        ("    stop_grace_period: forever\n", "services.web.stop_grace_period", "'forever' is not a duration"),
    ],
)
def test_bad_values_name_their_key(tmp_path, text, path, message):
    (found,) = problems(tmp_path, text)
    assert found[0] == path and message in found[1]


def test_service_level_keys_fill_deploy_and_must_agree_with_it(tmp_path):
    web = service(tmp_path, "    scale: 4\n    cpus: 1.5\n    mem_limit: 1g\n    mem_reservation: 256m\n"
                            "    pids_limit: 50\n    platform: linux/arm64\n")
    assert web.deploy.replicas == 4
    assert (web.deploy.resources.limits.cpus, web.deploy.resources.limits.memory, web.deploy.resources.limits.pids) == (
        1.5, 1 << 30, 50)
    assert web.deploy.resources.reservations.memory == 256 << 20
    assert web.deploy.placement.platforms == [Platform("linux", "arm64")]
    assert problems(tmp_path, "    scale: 2\n    deploy: {replicas: 3}\n") == [
        ("services.web.scale", "scale 2 differs from deploy.replicas 3")]
    assert problems(tmp_path, "    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 2g}}}\n") == [
        ("services.web.mem_limit", "mem_limit '1g' differs from deploy.resources.limits.memory")]


def test_pids_limit(tmp_path):
    assert service(tmp_path, "    pids_limit: -1\n").deploy.resources.limits.pids is None
    assert problems(tmp_path, "    pids_limit: many\n") == [("services.web.pids_limit", "'many' is not a whole number of processes")]


def test_replicas_from_a_variable(tmp_path):
    assert service(tmp_path, "    deploy: {replicas: '${N:-2}'}\n", {"N": "5"}).deploy.replicas == 5
