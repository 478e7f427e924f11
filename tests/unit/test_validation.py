"""The one validation of what the API is sent (the manager and the CLI both run it)."""

from __future__ import annotations

import json

import pytest

from swarmpy.model import bodies, validation
from swarmpy.model.validation import Invalid


def deploy_body(**service) -> str:
    svc = {"name": "web", "image": "nginx:1.25", **service}
    return json.dumps({"stack": {"services": {"web": svc}}})


def problems_of(raw: str, stack_name: str = "shop", **limits) -> list[tuple[str, str]]:
    try:
        body = validation.parse(bodies.StackDeploy, raw, strip="stack")
    except Invalid as e:
        return e.problems
    return validation.stack_problems(stack_name, body.stack, **limits)


def test_a_good_stack_passes_and_comes_back_typed():
    body = validation.parse(bodies.StackDeploy, deploy_body(deploy={"replicas": 3}), strip="stack")
    assert body.stack.services["web"].deploy.replicas == 3 and body.prune is False
    assert validation.stack_problems("shop", body.stack) == []


@pytest.mark.parametrize("service, path, words", [
    ({"image": 7}, "services.web.image", "valid string (got an integer)"),
    ({"deploy": {"replicas": True}}, "services.web.deploy.replicas", "valid integer (got a boolean)"),
    ({"working_dir": 7}, "services.web.working_dir", "got an integer"),
    ({"ports": [{"target": "80"}]}, "services.web.ports.0.target", "got a string"),
    ({"bogus": 1}, "services.web.bogus", "unknown key"),
])
def test_wrong_types_are_refused_naming_the_field(service, path, words):
    found = problems_of(deploy_body(**service))
    assert any(p == path and words in m for p, m in found), found


@pytest.mark.parametrize("service, path, words", [
    ({"image": "nginx:"}, "services.web.image", "not an image reference"),
    ({"working_dir": "app"}, "services.web.working_dir", "absolute"),
    ({"deploy": {"replicas": -1}}, "services.web.deploy.replicas", "negative"),
    ({"deploy": {"mode": "everywhere"}}, "services.web.deploy.mode", "unknown mode"),
    ({"ports": [{"target": 80, "published": 70000}]}, "services.web.ports.0", "between 1 and 65535"),
    ({"volumes": [{"type": "bind", "source": "data", "target": "/data"}]}, "services.web.volumes.0.source",
     "absolute"),
    ({"secrets": [{"source": "db", "target": "db"}]}, "services.web.secrets.0", "not declared"),
    ({"environment": {"A\x00B": "x"}}, "services.web.environment", "NUL"),
    ({"deploy": {"update_config": {"max_failure_ratio": 2}}}, "services.web.deploy.update_config.max_failure_ratio",
     "between 0 and 1"),
])
def test_rules_are_refused_naming_the_field(service, path, words):
    found = problems_of(deploy_body(**service))
    assert any(p == path and words in m for p, m in found), found


def test_cluster_limits_when_the_caller_knows_them():
    raw = deploy_body(deploy={"replicas": 1_000_000_000_000}, ports=[{"target": 80, "published": 2377}])
    assert problems_of(raw) == []  # the CLI knows no cluster limit: the manager does
    found = dict(problems_of(raw, max_replicas=1000, reserved_ports={(2377, "tcp"): "the manager's API"}))
    assert "at most 1000" in found["services.web.deploy.replicas"]
    assert "the manager's API" in found["services.web.ports.0.published"]


@pytest.mark.parametrize("name", ["", "..", "../../etc/passwd", "a/b", "a\x00b", "x" * 10_000, "-x", "é"])
def test_bad_names_are_refused(name):
    assert validation.name_problem("secret", name)
    assert any(p == "(stack name)" for p, _ in problems_of(deploy_body(), stack_name=name))


@pytest.mark.parametrize("name", ["db", "db_password.v2", "A-1", "x" * 63])
def test_good_names_pass(name):
    assert validation.name_problem("stack", name) is None


def test_a_stack_name_of_64_characters_is_too_long():
    assert "at most 63" in validation.name_problem("stack", "x" * 64)


def test_declared_object_names_follow_the_rule_with_the_stack_prefix():
    raw = json.dumps({"stack": {"services": {"web": {"name": "web", "image": "nginx"}},
                                "secrets": {"a/b": {"data": "eA=="}, "ok": {"name": "x" * 70}}}})
    found = dict(problems_of(raw))
    assert "invalid secret name" in found["secrets.a/b"] and "at most 64" in found["secrets.ok.name"]


def test_deep_nesting_and_bad_json_are_clear_errors():
    deep = '{"stack": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(Invalid) as e:
        validation.parse(bodies.StackDeploy, deep)
    assert e.value.path == "(body)" and "JSON" in str(e.value)
    with pytest.raises(Invalid) as e:
        validation.parse(bodies.ServiceScale, "{not json")
    assert e.value.path == "(body)"


def test_other_bodies_are_typed_too():
    with pytest.raises(Invalid) as e:
        validation.parse(bodies.ServiceScale, '{"replicas": "3"}')
    assert e.value.path == "replicas"
    with pytest.raises(Invalid) as e:
        validation.parse(bodies.NodeUpdate, '{"availability": "sleep"}')
    assert e.value.path == "availability"
    with pytest.raises(Invalid) as e:
        validation.parse(bodies.ObjectCreate, '{"name": "x"}')
    assert e.value.problems == [("data", "is required")]


@pytest.mark.parametrize("service, path", [
    ({"privileged": True}, "services.web.privileged"),
    ({"cap_add": ["NET_ADMIN", "SYS_ADMIN"]}, "services.web.cap_add.1"),
    ({"cap_add": ["all"]}, "services.web.cap_add.0"),
    ({"volumes": [{"type": "bind", "source": "/", "target": "/host"}]}, "services.web.volumes.0.source"),
    ({"volumes": [{"type": "bind", "source": "/etc", "target": "/h"}]}, "services.web.volumes.0.source"),
    ({"volumes": [{"type": "bind", "source": "/var/run/docker.sock", "target": "/s"}]},
     "services.web.volumes.0.source"),
    ({"volumes": [{"type": "bind", "source": "/var/", "target": "/v"}]}, "services.web.volumes.0.source"),
])
def test_dangerous_options_are_refused_unless_the_cluster_allows_them(service, path):
    raw = deploy_body(**service)
    found = dict(problems_of(raw, allow_privileged=False))
    assert path in found and "--allow-privileged" in found[path], found
    assert problems_of(raw, allow_privileged=True) == []


def test_ordinary_options_are_not_dangerous():
    raw = deploy_body(cap_add=["NET_ADMIN"], volumes=[{"type": "bind", "source": "/srv/data", "target": "/d"},
                                                      {"type": "volume", "source": "db", "target": "/etc"}])
    assert problems_of(raw, allow_privileged=False) == []
