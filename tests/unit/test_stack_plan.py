"""What a deploy changes: nothing for an unchanged file, new tasks only when the tasks' part
changed, published ports assigned and kept, conflicts refused naming both services."""

from __future__ import annotations

import pytest

from swarmpy.manager.stacks import StackError, plan_stack, scale
from swarmpy.model.validation import stack_problems
from swarmpy.model import Constraint, DeploySpec, Placement, Port, ServiceSpec, StackSpec


def stack(**services: ServiceSpec) -> StackSpec:
    return StackSpec(services=services)


def web(image="busybox:1", replicas=2, ports=None, **deploy) -> ServiceSpec:
    return ServiceSpec(name="web", image=image, ports=list(ports or []),
                       deploy=DeploySpec(replicas=replicas, **deploy))


def ports_of(services) -> dict:
    """The cluster's published-port index as the store keeps it."""
    return {(p.published, p.protocol): s.name for s in services for p in s.spec.ports
            if p.mode == "ingress" and p.published}


def deployed(name: str, spec: StackSpec, others=()):
    plan = plan_stack(name, spec, [], ports_of(others), prune=False)
    return plan.changed


def test_a_new_stack_creates_its_services():
    plan = plan_stack("shop", stack(web=web()), [], {}, prune=False)
    assert [s.name for s in plan.changed] == ["shop_web"] and plan.unchanged == [] and plan.expected == {}
    assert plan.record["services"] == [plan.changed[0].id]


def test_an_unchanged_redeploy_changes_nothing():
    (svc,) = deployed("shop", stack(web=web()))
    plan = plan_stack("shop", stack(web=web()), [svc], {}, prune=False)
    assert plan.changed == [] and plan.unchanged == [svc]


def test_a_new_image_bumps_the_tasks_version_and_replicas_only_the_record():
    (svc,) = deployed("shop", stack(web=web()))
    (updated,) = plan_stack("shop", stack(web=web(image="busybox:2")), [svc], {}, prune=False).changed
    assert (updated.version, updated.spec_version, updated.previous_spec) == (2, 2, svc.spec)
    (scaled,) = plan_stack("shop", stack(web=web(replicas=5)), [svc], {}, prune=False).changed
    assert (scaled.version, scaled.spec_version, scaled.previous_spec) == (2, 1, None)
    plan = plan_stack("shop", stack(web=web(image="busybox:2")), [svc], {}, prune=False)
    assert plan.expected == {svc.id: svc.version}  # written only if nobody changed it meanwhile


def test_prune_removes_services_no_longer_in_the_file():
    both = stack(web=web(), api=ServiceSpec(name="api", image="x"))
    services = deployed("shop", both)
    kept = plan_stack("shop", stack(web=web()), services, {}, prune=False)
    assert kept.removed == [] and len(kept.unchanged) == 2
    pruned = plan_stack("shop", stack(web=web()), services, {}, prune=True)
    assert [s.name for s in pruned.removed] == ["shop_api"]


def test_published_ports_left_out_come_from_swarms_range_and_stay():
    (svc,) = deployed("shop", stack(web=web(ports=[Port(80)])))
    assert 30000 <= svc.spec.ports[0].published <= 32767
    plan = plan_stack("shop", stack(web=web(ports=[Port(80)])), [svc], {}, prune=False)
    assert plan.changed == []  # the same port again: nothing changed
    (other,) = deployed("blog", stack(web=web(ports=[Port(80)])), others=[svc])
    assert other.spec.ports[0].published != svc.spec.ports[0].published


def test_two_services_publishing_one_port_are_refused_naming_both():
    (svc,) = deployed("shop", stack(web=web(ports=[Port(80, 8080)])))
    with pytest.raises(StackError) as refused:
        plan_stack("blog", stack(web=web(ports=[Port(80, 8080)])), [], ports_of([svc]), prune=False)
    message = str(refused.value)
    assert "shop_web" in message and "blog_web" in message and "8080" in message
    # the same number over UDP, or in host mode, is no conflict
    deployed("blog", stack(web=web(ports=[Port(80, 8080, protocol="udp")])), others=[svc])
    deployed("blog", stack(web=web(ports=[Port(80, 8080, mode="host")])), others=[svc])


def test_a_service_the_file_drops_keeps_its_port_unless_pruned():
    api = ServiceSpec(name="api", image="x", ports=[Port(80)])
    services = deployed("shop", stack(api=api))
    (old,) = services
    taken = old.spec.ports[0].published
    # `api` left the file but stays (no prune): a new service neither gets its port nor may ask for it
    (new,) = plan_stack("shop", stack(shop=ServiceSpec(name="shop", image="x", ports=[Port(80)])), services,
                        ports_of(services), prune=False).changed
    assert new.spec.ports[0].published != taken
    with pytest.raises(StackError, match=f"port {taken}/tcp is already published by service shop_api"):
        plan_stack("shop", stack(shop=ServiceSpec(name="shop", image="x", ports=[Port(80, taken)])), services,
                   ports_of(services), prune=False)
    pruned = plan_stack("shop", stack(shop=ServiceSpec(name="shop", image="x", ports=[Port(80, taken)])),
                        services, ports_of(services), prune=True)
    assert pruned.changed[0].spec.ports[0].published == taken and pruned.removed == services


def test_what_the_manager_refuses():
    bad = web(mode="global", replicas=3,
              placement=Placement(constraints=[Constraint("node.colour", "==", "red"),
                                               Constraint("node.role", "=~", "x")]))
    problems = dict(stack_problems("shop", stack(web=bad)))
    assert "replicas can only be used with replicated mode" in problems["services.web.deploy.replicas"]
    assert "unknown constraint field 'node.colour'" in problems["services.web.deploy.placement.constraints.0"]
    assert "bad operator '=~'" in problems["services.web.deploy.placement.constraints.1"]
    assert stack_problems("shop", StackSpec()) == [("services", "the stack has no services")]


def test_scale_is_for_replicated_services():
    (svc,) = deployed("shop", stack(web=web()))
    assert scale(svc, 7).spec.deploy.replicas == 7
    (agent,) = deployed("shop", stack(web=web(mode="global", replicas=1)))
    with pytest.raises(StackError, match="scale can only be used with replicated mode"):
        scale(agent, 3)


def test_pointing_a_secret_at_another_object_rolls_the_tasks():
    from swarmpy.model import FileReference, ObjectSpec
    uses = web(image="busybox:1")
    uses.secrets = [FileReference(source="pw", target="pw")]
    v1 = StackSpec(services={"web": uses}, secrets={"pw": ObjectSpec(name="pw_v1")})
    first = plan_stack("shop", v1, [], {}, prune=False)
    (svc,) = first.changed
    again = plan_stack("shop", v1, [svc], {}, prune=False, stored=first.record)
    assert again.changed == [] and again.unchanged == [svc]
    v2 = StackSpec(services={"web": uses}, secrets={"pw": ObjectSpec(name="pw_v2")})
    (rolled,) = plan_stack("shop", v2, [svc], {}, prune=False, stored=first.record).changed
    assert rolled.spec_version == svc.spec_version + 1
