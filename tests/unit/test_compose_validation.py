"""The project's own schema: every key of the specification, unknown keys refused, clear messages."""

import json

import jsonschema
import pytest

from swarmpy.compose import ComposeError, load_stack
from swarmpy.compose.validation import schema, validate

# Every service key of the Compose Specification's services reference.
SPEC_SERVICE_KEYS = """annotations attach build blkio_config cpu_count cpu_percent cpu_shares cpu_period cpu_quota
cpu_rt_runtime cpu_rt_period cpus cpuset cap_add cap_drop cgroup cgroup_parent command configs container_name
credential_spec depends_on deploy develop device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint
env_file environment expose extends external_links extra_hosts gpus group_add healthcheck hostname image init ipc
isolation labels label_file links logging mac_address mem_limit mem_reservation mem_swappiness memswap_limit models
network_mode networks oom_kill_disable oom_score_adj pid pids_limit platform ports post_start pre_stop privileged
profiles provider pull_policy read_only restart runtime scale secrets security_opt shm_size stdin_open
stop_grace_period stop_signal storage_opt sysctls tmpfs tty ulimits use_api_socket user userns_mode uts volumes
volumes_from working_dir""".split()


def test_the_schema_is_a_valid_json_schema_covering_the_specification():
    jsonschema.Draft7Validator.check_schema(schema())
    service = schema()["definitions"]["service"]["properties"]
    assert sorted(service) == sorted(SPEC_SERVICE_KEYS)
    deploy = schema()["definitions"]["deploy"]["properties"]
    assert sorted(deploy) == sorted(["mode", "endpoint_mode", "replicas", "labels", "rollback_config",
                                     "update_config", "resources", "restart_policy", "placement"])
    assert sorted(schema()["properties"]) == sorted(
        ["version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models"])


def messages(document):
    return [f"{p.path}: {p.message}" for p in validate(document, "compose.yml")]


@pytest.mark.parametrize(
    "document, expected",
    [
        ({"services": {"simple": {"image": "x", "wrongField": 1}}}, ["services.simple.wrongField: unknown key"]),
        ({"notaservice": 1, "services": {}}, ["notaservice: unknown key"]),
        ({"services": {"web": {"deploy": {"replicas": "three"}}}}, ["services.web.deploy.replicas: 'three' is not of type 'integer'"]),
        ({"services": {"web": {"deploy": {"placement": {"constraints": "node.role==manager"}}}}},
         ["services.web.deploy.placement.constraints: 'node.role==manager' is not of type 'array'"]),
        ({"services": {"web": {"command": 5}}}, ["services.web.command: 5 is not of type 'null', 'string', 'array'"]),
        ({"services": {"web": {"ports": [{"target": 80, "bad": 1}]}}}, ["services.web.ports.0.bad: unknown key"]),
        ({"services": {"web": {"ulimits": {"nofile": {"soft": 1}}}}}, ["services.web.ulimits.nofile: 'hard' is a required property"]),
        ({"services": {"web": {"environment": {"A": [1]}}}},
         ["services.web.environment.A: [1] is not of type 'string', 'number', 'boolean', 'null'"]),
        ({"services": {"a b": {}}}, ["services.a b: invalid name: use only letters, digits, '.', '_' and '-'"]),
        ({"services": {"web": {"deploy": {"placement": {"x-aws-role": "r"}}, "x-foo": 1}}, "x-top": 2}, []),
        ({"services": {"web": {"volumes": [{"type": "bind"}]}}}, ["services.web.volumes.0: 'target' is a required property"]),
        ({"networks": {"n": {"ipam": {"config": [{"subnet": "10.0.0.0/8", "aux_addresses": {"h": "10.0.0.5"}}]}}}}, []),
    ],
)
def test_messages_name_the_bad_key(document, expected):
    assert messages(document) == expected


def test_the_error_line_of_the_issue(tmp_path):
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: nginx\n    deploy:\n      replicas: three\n")
    with pytest.raises(ComposeError) as caught:
        load_stack([str(tmp_path / "compose.yml")], environ={})
    assert str(caught.value) == f"{tmp_path}/compose.yml: services.web.deploy.replicas: 'three' is not of type 'integer'"
    assert json.dumps(caught.value.problems[0].__dict__)  # plain data


def test_a_compose_specification_file_beyond_docker_v3_is_valid():
    document = {
        "name": "shop",
        "services": {"web": {
            "image": "x", "platform": "linux/amd64", "profiles": ["debug"], "pull_policy": "always",
            "depends_on": {"db": {"condition": "service_healthy", "restart": True}},
            "labels": {"traefik.enable": True}, "develop": {"watch": [{"path": "./src", "action": "sync", "target": "/src"}]},
            "deploy": {"resources": {"limits": {"cpus": 0.5}, "reservations": {"devices": [{"capabilities": ["gpu"], "count": "all"}]}}},
            "gpus": "all", "cgroup": "private", "post_start": [{"command": "./hook.sh"}],
        }},
    }
    assert messages(document) == []
