"""What a stack token may call (the rules; the integration test drives them through the CLI)."""

from __future__ import annotations

from swarmpy.manager import access
from swarmpy.manager.access import Caller
from swarmpy.model import NetworkSpec, ObjectSpec, ServiceSpec, StackSpec

CI = Caller(stack="ci", token_id="t1")


def refusal(caller, method, rule, view_args=None, args=None):
    return access.refusal(caller, None, method, rule, view_args or {}, args or {})


def test_the_cluster_token_may_do_everything():
    assert refusal(Caller(), "POST", "/nodes") is None
    assert refusal(Caller(), "PUT", "/stacks/<name>", {"name": "any"}) is None


def test_a_stack_token_reaches_its_own_stack_only():
    assert refusal(CI, "PUT", "/stacks/<name>", {"name": "ci"}) is None
    assert refusal(CI, "DELETE", "/stacks/<path:name>", {"name": "ci"}) is None
    assert refusal(CI, "GET", "/stacks/<name>/tasks", {"name": "ci"}) is None
    assert "stack ci" in refusal(CI, "PUT", "/stacks/<name>", {"name": "prod"})
    assert refusal(CI, "GET", "/services", args={"stack": "ci"}) is None
    assert "?stack=ci" in refusal(CI, "GET", "/services")
    assert refusal(CI, "GET", "/tasks", args={"stack": "ci", "node": "n1"})
    for method, rule in (("GET", "/nodes"), ("POST", "/secrets"), ("GET", "/secrets"), ("POST", "/tokens"),
                         ("PATCH", "/cluster"), ("GET", "/events"), ("POST", "/networks")):
        assert refusal(CI, method, rule), (method, rule)


def test_a_stack_tokens_deploy_stays_inside_its_stack():
    web = ServiceSpec(name="web", image="nginx")
    inside = StackSpec(services={"web": web}, secrets={"pw": ObjectSpec(data="eA==")},
                       networks={"back": NetworkSpec(name="ci_back")})
    assert access.deploy_refusals(CI, "ci", inside) == []
    outside = StackSpec(services={"web": web}, secrets={"pw": ObjectSpec(external=True, name="prod_pw")},
                        configs={"cf": ObjectSpec(name="prod_cf", data="eA==")},
                        networks={"n": NetworkSpec(external=True)})
    found = dict(access.deploy_refusals(CI, "ci", outside))
    assert set(found) == {"secrets.pw", "configs.cf.name", "networks.n"}
    assert access.deploy_refusals(Caller(), "ci", outside) == []


def test_tokens_are_kept_by_digest_and_known_by_prefix():
    assert access.digest("swpt_x") != "swpt_x" and len(access.digest("swpt_x")) == 64
    assert access.identify(None, "cluster-token", "cluster-token") == Caller()
    assert access.identify(None, "cluster-token", "not-a-stack-token") is None
    assert access.identify(None, "cluster-token", "") is None


def test_a_stack_token_plans_and_execs_in_its_own_stack_only():
    assert refusal(CI, "POST", "/stacks/<name>/plan", {"name": "ci"}) is None
    assert refusal(CI, "POST", "/stacks/<name>/plan", {"name": "prod"})

    class Store:
        def exec_record(self, exec_id):
            return {"ci-exec": {"stack": "ci"}, "prod-exec": {"stack": "prod"}}.get(exec_id)

    for rule in ("/exec/<exec_id>", "/exec/<exec_id>/input"):
        method = "GET" if rule == "/exec/<exec_id>" else "POST"
        assert access.refusal(CI, Store(), method, rule, {"exec_id": "ci-exec"}, {}) is None
        assert access.refusal(CI, Store(), method, rule, {"exec_id": "prod-exec"}, {})
        assert access.refusal(CI, Store(), method, rule, {"exec_id": "nosuch"}, {})
