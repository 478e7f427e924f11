"""`swarmpy stack config`: the normalized stack on stdout, warnings and errors on stderr."""

import json

import pytest
import yaml
from click.testing import CliRunner

from swarmpy.cli import main

STACK = """
services:
  web:
    image: nginx:${TAG:-1.25}
    build: .
    ports: ["8080:80"]
    deploy:
      replicas: 2
      placement: {constraints: [node.role == worker]}
"""


def runner() -> CliRunner:
    """stdout and stderr apart (click 8.2 always; 8.1 when asked)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAG", raising=False)

    def run(text, *args):
        (tmp_path / "compose.yml").write_text(text)
        return runner().invoke(main, ["stack", "config", "-c", "compose.yml", *args])

    return run


def test_prints_the_normalized_stack_as_yaml(run):
    result = run(STACK)
    assert result.exit_code == 0, result.stderr
    stack = yaml.safe_load(result.stdout)
    web = stack["services"]["web"]
    assert web["image"] == "nginx:1.25"
    assert web["ports"] == [{"target": 80, "published": 8080, "protocol": "tcp", "mode": "ingress"}]
    assert web["deploy"]["replicas"] == 2
    assert web["deploy"]["placement"]["constraints"] == [{"field": "node.role", "operator": "==", "value": "worker"}]
    assert web["deploy"]["restart_policy"] == {"condition": "any", "delay": 5.0, "max_attempts": 0, "window": 0.0}
    assert "command" not in web and "environment" not in web and "networks" not in stack  # None and empty dropped
    assert result.stderr == "warning: compose.yml: services.web.build: ignored by swarmpy (build images before deploying)\n"


def test_json_format(run):
    result = run(STACK, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["services"]["web"]["deploy"]["replicas"] == 2


def test_errors_are_one_line_each_with_exit_code_1(run):
    result = run("services:\n  web:\n    image: nginx\n    deploy:\n      replicas: three\n    wrongField: 1\n")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: compose.yml: services.web.deploy.replicas: 'three' is not of type 'integer'",
        "error: compose.yml: services.web.wrongField: unknown key",
    ]


@pytest.mark.parametrize(
    "text, line",
    [
        ("services: [\n", "error: compose.yml: (root): invalid YAML: expected the node content, "
                          "but found '<stream end>' (line 2, column 1)"),
        ("services:\n  web:\n    image: x\n    command: ${CMD:?set CMD}\n",
         "error: compose.yml: services.web.command: required variable CMD is missing a value: set CMD"),
        ("services:\n  web:\n    image: x\n    deploy:\n      placement:\n        constraints: [node.role=manager]\n",
         "error: compose.yml: services.web.deploy.placement.constraints.0: 'node.role=manager' is not a constraint: "
         "write <field> == <value> or <field> != <value>"),
    ],
)
def test_bad_files_never_show_a_traceback(run, text, line):
    result = run(text)
    assert (result.exit_code, result.stderr.splitlines()) == (1, [line])


def test_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner().invoke(main, ["stack", "config", "-c", "nope.yml"])
    assert (result.exit_code, result.stderr) == (1, "error: nope.yml: (root): file not found\n")


def test_a_global_service_prints_no_replica_count(run):
    result = run("services:\n  agent:\n    image: busybox\n    deploy: {mode: global}\n")
    assert result.exit_code == 0, result.stderr
    deploy = yaml.safe_load(result.stdout)["services"]["agent"]["deploy"]
    assert deploy["mode"] == "global" and "replicas" not in deploy


def test_a_bad_value_names_the_unset_variable_that_made_it(run, monkeypatch):
    monkeypatch.delenv("ELASTICSEARCH_VERSION", raising=False)
    result = run("services:\n  es:\n    image: elasticsearch:${ELASTICSEARCH_VERSION}\n")
    assert result.exit_code == 1
    assert "services.es.image: 'elasticsearch:' is not an image reference" in result.stderr
    assert "the variable ELASTICSEARCH_VERSION is not set" in result.stderr
