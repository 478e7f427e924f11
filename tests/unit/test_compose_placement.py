"""Placement constraints, preferences and platforms in Swarm's syntax."""

import pytest

from swarmpy.compose import ComposeError, load_stack
from swarmpy.compose.placement import parse_constraint, parse_platform, parse_preference
from swarmpy.model import Constraint, Platform, Preference


@pytest.mark.parametrize(
    "text, constraint",
    [
        ("node.role == manager", Constraint("node.role", "==", "manager")),
        ("node.role==worker", Constraint("node.role", "==", "worker")),
        ("node.hostname != web-1", Constraint("node.hostname", "!=", "web-1")),
        ("node.id==abc123", Constraint("node.id", "==", "abc123")),
        ("node.platform.os == linux", Constraint("node.platform.os", "==", "linux")),
        ("node.platform.arch != arm64", Constraint("node.platform.arch", "!=", "arm64")),
        ("node.labels.zone == eu-1", Constraint("node.labels.zone", "==", "eu-1")),
        ("node.labels.traefik-public.certificates == true", Constraint("node.labels.traefik-public.certificates", "==", "true")),
        ("engine.labels.disk == ssd", Constraint("engine.labels.disk", "==", "ssd")),
        ("Node.Labels.Zone == b", Constraint("node.labels.Zone", "==", "b")),
    ],
)
def test_constraints(text, constraint):
    assert parse_constraint(text) == constraint


@pytest.mark.parametrize(
    "text, message",
    [
        ("node.role=manager", "is not a constraint"),
        ("node.labels.cpu >= 4", "is not a constraint"),
        ("node.role ==", "is not a constraint"),
        ("node.role == manager == x", "is not a constraint"),
        ("node=foo", "is not a constraint"),
        ("node.name == x", "unknown node attribute 'node.name'"),
        ("node.labels. == x", "unknown node attribute"),
        ("node.role == boss", "node.role is manager or worker"),
    ],
)
def test_bad_constraints(text, message):
    with pytest.raises(ValueError, match=message):
        parse_constraint(text)


def test_preferences_and_platforms():
    assert parse_preference("node.labels.zone") == Preference("node.labels.zone")
    with pytest.raises(ValueError):
        parse_preference("zone")
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64")
    assert parse_platform("windows") == Platform("windows", "")


def test_a_bad_operator_names_the_constraint_in_the_file(tmp_path):
    (tmp_path / "compose.yml").write_text(
        "services:\n  web:\n    image: x\n    deploy:\n      placement:\n"
        "        constraints: [node.role == manager, node.role=manager]\n")
    with pytest.raises(ComposeError) as caught:
        load_stack([str(tmp_path / "compose.yml")], environ={})
    (problem,) = caught.value.problems
    assert problem.path == "services.web.deploy.placement.constraints.1"
    assert "'node.role=manager' is not a constraint" in problem.message
