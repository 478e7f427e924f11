"""The scheduler, as Nomad tests its own: a snapshot in, assertions on the plan out."""

from __future__ import annotations

import copy
import random
from collections import Counter

import pytest

from swarmpy.manager.constraints import constraints_match, platform_matches, spread_supported
from swarmpy.manager.scheduler import Plan, explain, no_suitable_node, place
from swarmpy.model import (
    Availability,
    Constraint,
    DeploySpec,
    DesiredState,
    Endpoint,
    Node,
    NodeStatus,
    Placement,
    Platform,
    Port,
    Preference,
    Resources,
    ResourceSet,
    Service,
    ServiceSpec,
    Task,
    TaskState,
)

GIB = 1 << 30


def node(name, *, role="worker", status=NodeStatus.READY, availability=Availability.ACTIVE, cpus=4.0,
         memory=8 * GIB, os="linux", arch="x86_64", address=None, engine_labels=None, **labels) -> Node:
    return Node(id=f"id-{name}", hostname=name, address=address or f"10.0.0.{len(name)}", role=role,
                status=status, availability=availability, cpus=cpus, memory=memory, os=os,
                architecture=arch, labels=labels, engine_labels=engine_labels or {})


def service(sid="web", *, constraints=(), spread=(), cpus=None, memory=None, ports=(), max_per_node=None,
            platforms=(), mode="replicated", spec_version=1) -> Service:
    placement = Placement(
        constraints=[_constraint(c) for c in constraints],
        preferences=[Preference(s) for s in spread],
        max_replicas_per_node=max_per_node,
        platforms=[Platform(*p) for p in platforms],
    )
    deploy = DeploySpec(mode=mode, placement=placement,
                        resources=Resources(reservations=ResourceSet(cpus=cpus, memory=memory)))
    spec = ServiceSpec(name=sid, image="busybox", ports=list(ports), deploy=deploy)
    # the record's revision moves with every write (a scale); the tasks follow spec_version only
    return Service(id=sid, stack="st", name=f"st_{sid}", spec=spec, version=spec_version + 3,
                   spec_version=spec_version)


def _constraint(text: str) -> Constraint:
    for operator in ("==", "!="):
        if operator in text:
            field, value = text.split(operator)
            return Constraint(field.strip(), operator, value.strip())
    raise ValueError(text)


def pending(svc: Service, count: int, first_slot: int = 1, **fields) -> list[Task]:
    return [
        Task(id=f"{svc.id}.{slot}", service_id=svc.id, service_name=svc.name, spec_version=svc.spec_version,
             slot=slot, state=TaskState.PENDING, **fields)
        for slot in range(first_slot, first_slot + count)
    ]


def running(svc: Service, node_: Node, count: int = 1, **fields) -> list[Task]:
    fields = {"spec_version": svc.spec_version, "state": TaskState.RUNNING, **fields}
    return [
        Task(id=f"{svc.id}.run.{node_.hostname}.{k}", service_id=svc.id, service_name=svc.name,
             slot=100 + k, node_id=node_.id, **fields)
        for k in range(count)
    ]


def global_task(svc: Service, node_id: str) -> Task:
    return Task(id=f"{svc.id}.{node_id}", service_id=svc.id, service_name=svc.name,
                spec_version=svc.spec_version, node_id=node_id, state=TaskState.PENDING)


def schedule(tasks, services, nodes, assigned=()) -> Plan:
    return place(tasks, {s.id: s for s in services}, nodes, list(assigned))


def per_node(plan: Plan, nodes) -> dict[str, int]:
    """Hostname -> tasks placed there (nodes with none included)."""
    by_id = {n.id: n.hostname for n in nodes}
    counts = Counter(by_id[node_id] for node_id in plan.assignments.values())
    return {n.hostname: counts[n.hostname] for n in nodes}


def placed_on(plan: Plan, nodes) -> set[str]:
    return {h for h, count in per_node(plan, nodes).items() if count}


# -- spreading and load -------------------------------------------------------


def test_six_replicas_on_three_equal_nodes_land_two_each():
    nodes = [node("n1"), node("n2"), node("n3")]
    web = service()
    plan = schedule(pending(web, 6), [web], nodes)
    assert per_node(plan, nodes) == {"n1": 2, "n2": 2, "n3": 2}
    assert plan.failures == {}


def test_fewest_tasks_of_the_service_first_then_fewest_tasks_overall():
    nodes = [node("n1"), node("n2"), node("n3")]
    web, other = service("web"), service("other")
    # n1: busy with other work; n2: already has a web task; n3: one other task.
    assigned = running(other, nodes[0], 3) + running(web, nodes[1]) + running(other, nodes[2])
    plan = schedule(pending(web, 1), [web, other], nodes, assigned)
    assert placed_on(plan, nodes) == {"n3"}  # no web task there, and fewer tasks than n1
    # n3 (then web 1-1-1 after n1 gets one), the last goes to n2: fewest tasks overall.
    plan = schedule(pending(web, 3), [web, other], nodes, assigned)
    assert [plan.assignments[f"web.{slot}"] for slot in (1, 2, 3)] == ["id-n3", "id-n1", "id-n2"]


def test_ties_go_to_the_first_node_by_hostname():
    nodes = [node("b"), node("c"), node("a")]
    web = service()
    plan = schedule(pending(web, 1), [web], nodes)
    assert plan.assignments == {"web.1": "id-a"}


def test_down_drained_paused_and_unknown_nodes_get_nothing_new():
    nodes = [node("up"), node("down", status=NodeStatus.DOWN), node("drained", availability=Availability.DRAIN),
             node("paused", availability=Availability.PAUSE), node("new", status=NodeStatus.UNKNOWN)]
    web = service()
    plan = schedule(pending(web, 5), [web], nodes)
    assert per_node(plan, nodes) == {"up": 5, "down": 0, "drained": 0, "paused": 0, "new": 0}


def test_when_no_node_is_available_the_task_stays_pending_with_swarms_words():
    nodes = [node("down", status=NodeStatus.DOWN), node("drained", availability=Availability.DRAIN)]
    web = service()
    plan = schedule(pending(web, 2), [web], nodes)
    assert plan.assignments == {}
    assert plan.failures == {
        "web.1": "no suitable node (2 nodes not available for new tasks)",
        "web.2": "no suitable node (2 nodes not available for new tasks)",
    }


def test_no_nodes_at_all():
    web = service()
    plan = schedule(pending(web, 1), [web], [])
    assert plan.failures == {"web.1": "no suitable node (0 nodes available)"}


# -- constraints and platforms ------------------------------------------------


@pytest.mark.parametrize(
    "constraint, expected",
    [
        ("node.labels.zone==b", {"n2", "n3"}),
        ("node.labels.zone!=b", {"n1", "n4"}),  # n4 has no zone label: != holds
        ("node.labels.zone==B", {"n2", "n3"}),  # values compare ignoring case, as SwarmKit does
        ("node.LABELS.zone==b", {"n2", "n3"}),  # so does the field prefix
        ("node.role==manager", {"n1"}),
        ("node.role!=manager", {"n2", "n3", "n4"}),
        ("node.hostname==n3", {"n3"}),
        ("node.hostname!=n3", {"n1", "n2", "n4"}),
        ("node.id==id-n2", {"n2"}),
        ("engine.labels.storage==ssd", {"n1", "n3"}),
        ("node.platform.os==linux", {"n1", "n2", "n3"}),
        ("node.platform.arch==arm64", {"n4"}),
        ("node.ip==10.1.0.4", {"n4"}),
        ("node.ip==10.1.0.0/30", {"n1", "n2", "n3"}),
        ("node.ip!=10.1.0.0/30", {"n4"}),
    ],
)
def test_constraints_are_obeyed(constraint, expected):
    nodes = [
        node("n1", role="manager", zone="a", address="10.1.0.1", engine_labels={"storage": "ssd"}),
        node("n2", zone="b", address="10.1.0.2", engine_labels={"storage": "hdd"}),
        node("n3", zone="b", address="10.1.0.3", engine_labels={"storage": "ssd"}),
        node("n4", os="windows", arch="arm64", address="10.1.0.4"),
    ]
    web = service(constraints=[constraint])
    plan = schedule(pending(web, 8), [web], nodes)
    assert placed_on(plan, nodes) == expected
    assert plan.failures == {}


def test_label_keys_are_case_sensitive():
    nodes = [node("n1", zone="a")]
    web = service(constraints=["node.labels.ZONE==a"])
    plan = schedule(pending(web, 1), [web], nodes)
    assert plan.failures == {"web.1": "no suitable node (scheduling constraints not satisfied on 1 node)"}


def test_constraints_not_satisfied_message_counts_nodes():
    nodes = [node("n1", zone="a"), node("n2", zone="a"), node("n3", zone="c")]
    web = service(constraints=["node.labels.zone==b"])
    plan = schedule(pending(web, 2), [web], nodes)
    assert plan.assignments == {}
    assert set(plan.failures.values()) == {"no suitable node (scheduling constraints not satisfied on 3 nodes)"}


@pytest.mark.parametrize("field", ["node.unknown", "node.labels.", "labels.zone", "node.platform"])
def test_an_unknown_field_is_never_satisfied(field):
    nodes = [node("n1", zone="a")]
    web = service(constraints=[f"{field}!=x"])
    plan = schedule(pending(web, 1), [web], nodes)
    assert plan.failures == {"web.1": "no suitable node (scheduling constraints not satisfied on 1 node)"}


@pytest.mark.parametrize("operator", ["==", "!="])
def test_a_malformed_address_satisfies_neither_operator(operator):
    nodes = [node("n1", address="10.1.0.1")]
    web = service(constraints=[f"node.ip{operator}10.1.0.999"])
    plan = schedule(pending(web, 1), [web], nodes)
    assert plan.failures == {"web.1": "no suitable node (scheduling constraints not satisfied on 1 node)"}


def test_several_constraints_must_all_hold():
    nodes = [node("n1", zone="a", disk="ssd"), node("n2", zone="a", disk="hdd"), node("n3", zone="b", disk="ssd")]
    web = service(constraints=["node.labels.zone==a", "node.labels.disk==ssd"])
    assert placed_on(schedule(pending(web, 3), [web], nodes), nodes) == {"n1"}


@pytest.mark.parametrize(
    "platforms, expected",
    [
        ([], {"amd", "arm", "win"}),
        ([("linux", "arm64")], {"arm"}),
        ([("linux", "amd64")], {"amd"}),  # the node reports x86_64: the same architecture
        ([("linux", "")], {"amd", "arm"}),
        ([("", "amd64")], {"amd", "win"}),
        ([("linux", "arm64"), ("windows", "")], {"arm", "win"}),
    ],
)
def test_platforms(platforms, expected):
    nodes = [node("amd", arch="x86_64"), node("arm", arch="arm64"), node("win", os="windows", arch="amd64")]
    web = service(platforms=platforms)
    assert placed_on(schedule(pending(web, 6), [web], nodes), nodes) == expected


def test_unsupported_platform_message():
    nodes = [node("n1", arch="arm64"), node("n2", arch="arm64")]
    web = service(platforms=[("linux", "amd64")])
    plan = schedule(pending(web, 1), [web], nodes)
    assert plan.failures == {"web.1": "no suitable node (unsupported platform on 2 nodes)"}


# -- resources ----------------------------------------------------------------


def test_reservations_accumulate_until_the_node_is_full():
    nodes = [node("n1", cpus=2, memory=8 * GIB)]
    web = service(cpus=0.5)
    plan = schedule(pending(web, 5), [web], nodes)
    assert len(plan.assignments) == 4
    assert plan.failures == {"web.5": "no suitable node (insufficient resources on 1 node)"}


def test_memory_reservations_accumulate_across_nodes():
    nodes = [node("n1", memory=4 * GIB), node("n2", memory=2 * GIB)]
    web = service(memory=1 * GIB)
    plan = schedule(pending(web, 7), [web], nodes)
    assert per_node(plan, nodes) == {"n1": 4, "n2": 2}
    assert plan.failures == {"web.7": "no suitable node (insufficient resources on 2 nodes)"}


def test_reservations_of_tasks_already_running_count():
    nodes = [node("n1", cpus=2), node("n2", cpus=2)]
    db, web = service("db", cpus=1.5), service("web", cpus=1)
    plan = schedule(pending(web, 2), [db, web], nodes, running(db, nodes[0]))
    assert per_node(plan, nodes) == {"n1": 0, "n2": 2}


def test_a_task_of_an_older_spec_holds_that_specs_reservation():
    nodes = [node("n1", cpus=2)]
    web = service("web", cpus=0.5, spec_version=2)
    web.previous_spec = copy.deepcopy(web.spec)
    web.previous_spec.deploy.resources.reservations.cpus = 1.5
    plan = schedule(pending(web, 2), [web], nodes, running(web, nodes[0], spec_version=1))
    assert len(plan.assignments) == 1  # 2 - 1.5 leaves room for one 0.5 task


def test_a_service_without_reservations_always_fits():
    nodes = [node("n1", cpus=1, memory=GIB)]
    hog, web = service("hog", cpus=1, memory=GIB), service("web")
    plan = schedule(pending(web, 3), [hog, web], nodes, running(hog, nodes[0], 2))  # overcommitted
    assert len(plan.assignments) == 3


def test_resource_failures_come_before_constraint_failures_as_in_swarm():
    nodes = [node("small", cpus=1, zone="a"), node("big", cpus=8, zone="a"), node("off", status=NodeStatus.DOWN)]
    web = service(cpus=2, constraints=["node.labels.zone==b"])
    plan = schedule(pending(web, 1), [web], nodes)
    # small fails on resources (checked first), big on constraints, off is not available;
    # one node each, so the reasons come in Swarm's filter order.
    assert plan.failures == {"web.1": "no suitable node (1 node not available for new tasks; "
                                      "insufficient resources on 1 node; "
                                      "scheduling constraints not satisfied on 1 node)"}


def test_several_reasons_most_frequent_first():
    nodes = [node("n1", cpus=1), node("n2", cpus=1), node("n3", cpus=8, status=NodeStatus.DOWN)]
    web = service(cpus=2)
    plan = schedule(pending(web, 1), [web], nodes)
    assert plan.failures == {
        "web.1": "no suitable node (insufficient resources on 2 nodes; 1 node not available for new tasks)"
    }


# -- host ports and max replicas ---------------------------------------------


def test_host_mode_ports_are_one_per_node():
    nodes = [node("n1"), node("n2")]
    web = service(ports=[Port(target=80, published=8080, mode="host")])
    plan = schedule(pending(web, 3), [web], nodes)
    assert per_node(plan, nodes) == {"n1": 1, "n2": 1}
    assert plan.failures == {"web.3": "no suitable node (host-mode port already in use on 2 nodes)"}


def test_host_ports_in_use_by_running_tasks_block_the_node():
    nodes = [node("n1"), node("n2"), node("n3")]
    web = service("web", ports=[Port(target=80, published=8080, mode="host")])
    other = service("other")
    assigned = running(web, nodes[0])  # holds 8080 by its spec
    # Known endpoints are the truth for a running task, whatever its spec.
    assigned += running(other, nodes[1], endpoints=[Endpoint(80, "tcp", "10.0.0.2", 8080, 8080, "host")])
    assigned += running(other, nodes[2], 3)  # the busiest node, yet the only one with 8080 free
    plan = schedule(pending(web, 1, first_slot=2), [web, other], nodes, assigned)
    assert placed_on(plan, nodes) == {"n3"}


def test_ingress_ports_and_other_protocols_do_not_conflict():
    nodes = [node("n1")]
    tcp = service("tcp", ports=[Port(target=80, published=8080, mode="host")])
    udp = service("udp", ports=[Port(target=80, published=8080, protocol="udp", mode="host")])
    mesh = service("mesh", ports=[Port(target=80, published=8080)])
    plan = schedule(pending(tcp, 1) + pending(udp, 1) + pending(mesh, 2), [tcp, udp, mesh], nodes)
    assert plan.failures == {} and len(plan.assignments) == 4


def test_max_replicas_per_node():
    nodes = [node("n1"), node("n2")]
    web = service(max_per_node=2)
    plan = schedule(pending(web, 5), [web], nodes, running(web, nodes[0]))
    assert per_node(plan, nodes) == {"n1": 1, "n2": 2}
    assert set(plan.failures) == {"web.4", "web.5"}
    assert set(plan.failures.values()) == {"no suitable node (max replicas per node limit exceed)"}


def test_max_replicas_with_other_reasons():
    nodes = [node("n1"), node("n2", zone="x"), node("n3", zone="x")]
    web = service(max_per_node=1, constraints=["node.labels.zone!=x"])
    plan = schedule(pending(web, 2), [web], nodes)
    assert plan.failures == {"web.2": "no suitable node (scheduling constraints not satisfied on 2 nodes; "
                                      "max replicas per node limit exceed)"}


# -- spread preferences -------------------------------------------------------


def test_spread_over_zones_with_uneven_node_counts():
    nodes = [node("a1", zone="a"), node("b1", zone="b"), node("b2", zone="b"), node("b3", zone="b")]
    web = service(spread=["node.labels.zone"])
    plan = schedule(pending(web, 4), [web], nodes)
    assert per_node(plan, nodes) == {"a1": 2, "b1": 1, "b2": 1, "b3": 0}
    # Without the preference, each node gets one.
    plain = service()
    assert per_node(schedule(pending(plain, 4), [plain], nodes), nodes) == {"a1": 1, "b1": 1, "b2": 1, "b3": 1}


def test_nodes_lacking_the_label_form_their_own_group():
    nodes = [node("a1", zone="a"), node("b1", zone="b"), node("x1"), node("x2")]
    web = service(spread=["node.labels.zone"])
    plan = schedule(pending(web, 6), [web], nodes)
    assert per_node(plan, nodes) == {"a1": 2, "b1": 2, "x1": 1, "x2": 1}


def test_spread_counts_the_tasks_already_running_in_each_group():
    nodes = [node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b")]
    web = service(spread=["node.labels.zone"])
    plan = schedule(pending(web, 3, first_slot=3), [web], nodes, running(web, nodes[0], 2))
    # b evens up to 2; then the zones tie, a goes first, and a2 has fewer web tasks than a1.
    assert per_node(plan, nodes) == {"a1": 0, "a2": 1, "b1": 2}


def test_a_full_group_yields_to_the_others():
    nodes = [node("a1", zone="a", cpus=1), node("b1", zone="b", cpus=8)]
    web = service(spread=["node.labels.zone"], cpus=1)
    plan = schedule(pending(web, 4), [web], nodes)
    assert per_node(plan, nodes) == {"a1": 1, "b1": 3}


def test_nested_preferences_spread_racks_within_zones():
    nodes = [
        node("a-r1-1", zone="a", rack="r1"), node("a-r1-2", zone="a", rack="r1"), node("a-r2-1", zone="a", rack="r2"),
        node("b-r1-1", zone="b", rack="r1"),
    ]
    web = service(spread=["node.labels.zone", "node.labels.rack"])
    plan = schedule(pending(web, 8), [web], nodes)
    # Zone a gets 4 and b gets 4; within a, racks r1 and r2 get 2 each.
    assert per_node(plan, nodes) == {"a-r1-1": 1, "a-r1-2": 1, "a-r2-1": 2, "b-r1-1": 4}


def test_spread_on_engine_labels_and_unsupported_descriptors_ignored():
    assert spread_supported("engine.labels.dc") and not spread_supported("node.hostname")
    nodes = [node("n1", engine_labels={"dc": "x"}), node("n2", engine_labels={"dc": "y"}),
             node("n3", engine_labels={"dc": "y"})]
    web = service(spread=["engine.labels.dc", "node.hostname"])
    assert per_node(schedule(pending(web, 4), [web], nodes), nodes) == {"n1": 2, "n2": 1, "n3": 1}


def test_spread_with_a_constraint_uses_only_the_groups_that_fit():
    nodes = [node("a1", zone="a", ssd="yes"), node("b1", zone="b", ssd="yes"), node("c1", zone="c")]
    web = service(spread=["node.labels.zone"], constraints=["node.labels.ssd==yes"])
    assert per_node(schedule(pending(web, 4), [web], nodes), nodes) == {"a1": 2, "b1": 2, "c1": 0}


# -- global services and jobs -------------------------------------------------


def test_global_tasks_stay_on_their_node():
    nodes = [node("n1"), node("n2"), node("n3")]
    agent = service("agent", mode="global")
    tasks = [global_task(agent, n.id) for n in nodes]
    plan = schedule(tasks, [agent], nodes, running(service("x"), nodes[0], 5))
    assert plan.assignments == {t.id: t.node_id for t in tasks}


def test_global_tasks_that_do_not_fit_their_node_say_why():
    nodes = [node("ok"), node("drained", availability=Availability.DRAIN), node("small", cpus=0.5),
             node("other", zone="b")]
    agent = service("agent", mode="global", cpus=1)
    tasks = [global_task(agent, n.id) for n in nodes] + [global_task(agent, "id-gone")]
    plan = schedule(tasks, [agent], nodes)
    assert plan.assignments == {"agent.id-ok": "id-ok", "agent.id-other": "id-other"}
    # SwarmKit's words for a preassigned task: the explanation for its one node.
    assert plan.failures == {
        "agent.id-drained": "1 node not available for new tasks",
        "agent.id-small": "insufficient resources on 1 node",
        "agent.id-gone": "node id-gone not found",
    }


def test_a_global_task_gets_the_first_reason_in_swarms_order():
    nodes = [node("tiny", cpus=0.5, zone="b")]
    agent = service("agent", mode="global", cpus=1, constraints=["node.labels.zone==a"])
    plan = schedule([global_task(agent, "id-tiny")], [agent], nodes)
    assert plan.failures == {"agent.id-tiny": "insufficient resources on 1 node"}  # resources before constraints


def test_global_tasks_checked_against_constraints_and_ports():
    nodes = [node("a", zone="a"), node("b", zone="b")]
    agent = service("agent", mode="global", constraints=["node.labels.zone==a"],
                    ports=[Port(target=80, published=80, mode="host")])
    web = service("web", ports=[Port(target=80, published=80, mode="host")])
    plan = schedule([global_task(agent, "id-a"), global_task(agent, "id-b")] + pending(web, 2), [agent, web], nodes)
    assert plan.assignments == {"agent.id-a": "id-a", "web.1": "id-b"}
    assert plan.failures == {
        "agent.id-b": "scheduling constraints not satisfied on 1 node",
        "web.2": "no suitable node (host-mode port already in use on 2 nodes)",
    }


def test_jobs_are_placed_like_any_task():
    nodes = [node("n1"), node("n2")]
    job = service("job", mode="replicated-job")
    plan = schedule(pending(job, 4, desired_state=DesiredState.COMPLETE), [job], nodes)
    assert per_node(plan, nodes) == {"n1": 2, "n2": 2}


def test_tasks_desired_shutdown_are_left_alone_and_unknown_services_fail():
    nodes = [node("n1")]
    web = service()
    tasks = pending(web, 1) + pending(web, 1, first_slot=2, desired_state=DesiredState.SHUTDOWN)
    tasks.append(Task(id="lost", service_id="gone", service_name="st_gone", spec_version=1, slot=1))
    plan = schedule(tasks, [web], nodes)
    assert plan.assignments == {"web.1": "id-n1"}
    assert plan.failures == {"lost": "service gone not found"}


def test_tasks_on_their_way_out_hold_resources_but_do_not_count_as_load():
    nodes = [node("n1", cpus=2), node("n2", cpus=2)]
    web, light = service("web", cpus=1), service("light")
    leaving = running(web, nodes[0], 2, desired_state=DesiredState.SHUTDOWN)  # hold all of n1's cpus
    staying = running(web, nodes[1], 1)
    done = running(web, nodes[1], 1, state=TaskState.COMPLETE)  # terminal: holds nothing
    plan = schedule(pending(web, 2) + pending(light, 1), [web, light], nodes, leaving + staying + done)
    # light goes first (service order) to n1, whose leaving tasks are no load; web finds one cpu on n2.
    assert plan.assignments == {"light.1": "id-n1", "web.1": "id-n2"}
    assert plan.failures == {"web.2": "no suitable node (insufficient resources on 2 nodes)"}


# -- purity and determinism ---------------------------------------------------


def _mixed_cluster(seed: int, node_count: int = 30, task_count: int = 120):
    rng = random.Random(seed)
    nodes = [
        node(f"n{i:03d}", role=rng.choice(["manager", "worker", "worker"]),
             status=rng.choice([NodeStatus.READY] * 8 + [NodeStatus.DOWN]),
             availability=rng.choice([Availability.ACTIVE] * 8 + [Availability.DRAIN, Availability.PAUSE]),
             cpus=rng.choice([1, 2, 4]), memory=rng.choice([1, 2, 4]) * GIB,
             arch=rng.choice(["x86_64", "x86_64", "arm64"]),
             **({"zone": rng.choice("abc"), "rack": rng.choice(["r1", "r2"])} if rng.random() < 0.9 else {}))
        for i in range(node_count)
    ]
    services = []
    for i in range(rng.randint(2, 7)):
        services.append(service(
            f"s{i}",
            constraints=rng.choice([[], [], [f"node.labels.zone=={rng.choice('abc')}"],
                                    [f"node.labels.zone!={rng.choice('abc')}"], ["node.role==worker"]]),
            spread=rng.choice([[], [], ["node.labels.zone"], ["node.labels.zone", "node.labels.rack"]]),
            cpus=rng.choice([None, None, 0.5, 1]),
            memory=rng.choice([None, None, GIB // 2]),
            ports=rng.choice([[], [], [Port(target=80, published=9000 + i, mode="host")]]),
            max_per_node=rng.choice([None, None, 2, 3]),
            platforms=rng.choice([[], [], [("linux", "amd64")]]),
        ))
    assigned = []
    for svc in services:
        for n in rng.sample(nodes, rng.randint(0, min(4, len(nodes)))):
            if n.status is NodeStatus.READY:
                assigned += running(svc, n)
    tasks = []
    for svc in services:
        tasks += pending(svc, rng.randint(0, task_count // len(services)), first_slot=1)
    agent = service("agent", mode="global", cpus=rng.choice([None, 1]))
    services.append(agent)
    tasks += [global_task(agent, n.id) for n in rng.sample(nodes, len(nodes) // 2)]
    return tasks, services, nodes, assigned


def test_inputs_are_not_mutated():
    tasks, services, nodes, assigned = _mixed_cluster(seed=1)
    before = [[x.to_dict() for x in group] for group in (tasks, services, nodes, assigned)]
    plan = schedule(tasks, services, nodes, assigned)
    assert plan.assignments
    after = [[x.to_dict() for x in group] for group in (tasks, services, nodes, assigned)]
    assert after == before


def test_the_plan_depends_on_the_snapshot_not_on_the_order_of_its_lists():
    tasks, services, nodes, assigned = _mixed_cluster(seed=2)
    first = schedule(tasks, services, nodes, assigned)
    rng = random.Random(0)
    for _ in range(3):
        shuffled = [rng.sample(group, len(group)) for group in (tasks, services, nodes, assigned)]
        again = schedule(*shuffled)
        assert again.assignments == first.assignments
        assert again.failures == first.failures


# -- against a reference: the same rules, written the slow and obvious way ----


def _reference(tasks, services, nodes, assigned) -> Plan:
    """Every task checks every node, in SwarmKit's filter order; best by Swarm's ranking."""
    services = {s.id: s for s in services}
    nodes = sorted(nodes, key=lambda n: (n.hostname, n.id))
    total, per_service, cpu, memory, ports = Counter(), Counter(), {}, {}, {}
    for n in nodes:
        cpu[n.id], memory[n.id], ports[n.id] = round(n.cpus * 1e9), n.memory, set()

    def demand(task):
        spec = services[task.service_id].spec
        reserved = spec.deploy.resources.reservations
        return (round((reserved.cpus or 0) * 1e9), reserved.memory or 0,
                {(p.protocol, p.published) for p in spec.ports if p.mode == "host" and p.published}, spec)

    def take(task, node_id):
        task_cpu, task_memory, task_ports, _ = demand(task)
        total[node_id] += 1
        per_service[task.service_id, node_id] += 1
        cpu[node_id] -= task_cpu
        memory[node_id] -= task_memory
        ports[node_id] |= task_ports

    def first_failure(task, n):
        """The index of the first filter the node fails, in SwarmKit's order, or None."""
        task_cpu, task_memory, task_ports, spec = demand(task)
        placement = spec.deploy.placement
        passes = [
            n.status is NodeStatus.READY and n.availability is Availability.ACTIVE,
            not ((task_cpu or task_memory) and (task_cpu > cpu[n.id] or task_memory > memory[n.id])),
            constraints_match(placement.constraints, n),
            platform_matches(placement.platforms, n),
            not (task_ports & ports[n.id]),
            not (placement.max_replicas_per_node
                 and per_service[task.service_id, n.id] >= placement.max_replicas_per_node),
        ]
        return passes.index(False) if False in passes else None

    def fits(task, n):
        return first_failure(task, n) is None

    def tally(task, candidates):
        return Counter(f for f in (first_failure(task, n) for n in candidates) if f is not None)

    for task in assigned:
        take(task, task.node_id)
    plan = Plan()
    order = sorted(tasks, key=lambda t: (t.node_id is None, t.service_id, t.slot or 0, t.id))
    for task in order:
        if task.node_id:
            n = next(n for n in nodes if n.id == task.node_id)
            if fits(task, n):
                take(task, n.id)
                plan.assignments[task.id] = n.id
            else:
                plan.failures[task.id] = explain(tally(task, [n]))
            continue
        candidates = [n for n in nodes if fits(task, n)]
        spread = [p.spread for p in services[task.service_id].spec.deploy.placement.preferences]
        for level in range(1, len(spread) + 1):
            def group(n, level=level):
                return tuple(n.labels.get(s.removeprefix("node.labels."), "") for s in spread[:level])

            def tasks_in(path, level=level):
                return sum(per_service[task.service_id, n.id] for n in nodes if group(n, level) == path)

            best = min({group(n) for n in candidates}, key=lambda path: (tasks_in(path), path), default=None)
            candidates = [n for n in candidates if group(n) == best]
        if not candidates:
            plan.failures[task.id] = no_suitable_node(tally(task, nodes))
            continue
        rank = {n.id: i for i, n in enumerate(nodes)}
        best = min(candidates, key=lambda n: (per_service[task.service_id, n.id], total[n.id], rank[n.id]))
        take(task, best.id)
        plan.assignments[task.id] = best.id
    return plan


@pytest.mark.parametrize("seed", range(60))
def test_same_plan_as_the_obvious_algorithm(seed):
    tasks, services, nodes, assigned = _mixed_cluster(seed, node_count=random.Random(seed).randint(1, 25))
    plan = schedule(tasks, services, nodes, assigned)
    expected = _reference(tasks, services, nodes, assigned)
    assert plan.assignments == expected.assignments
    assert plan.failures == expected.failures


# -- hundreds of nodes ----------------------------------------------------------


def test_invariants_on_five_hundred_nodes_and_five_thousand_tasks():
    rng = random.Random(7)
    nodes = [
        node(f"n{i:03d}", cpus=rng.choice([2, 4, 8]), memory=rng.choice([4, 8]) * GIB,
             status=NodeStatus.DOWN if i % 50 == 0 else NodeStatus.READY,
             availability=Availability.DRAIN if i % 70 == 1 else Availability.ACTIVE,
             zone=rng.choice("abcd"))
        for i in range(500)
    ]
    services = [
        service("plain1"), service("plain2"), service("plain3"),
        service("zone-b", constraints=["node.labels.zone==b"]),
        service("not-a", constraints=["node.labels.zone!=a"]),
        service("spread", spread=["node.labels.zone"]),
        service("cpu", cpus=1.5, memory=GIB),
        service("max", max_per_node=1),
        service("port", ports=[Port(target=80, published=80, mode="host")]),
        service("big", cpus=3),
    ]
    counts = {"plain1": 700, "plain2": 400, "plain3": 1000, "zone-b": 600, "not-a": 500, "spread": 500,
              "cpu": 600, "max": 500, "port": 100, "big": 100}
    tasks = [t for s in services for t in pending(s, counts[s.id])]
    assert len(tasks) == 5000
    plan = schedule(tasks, services, nodes)
    by_id, by_service = {n.id: n for n in nodes}, {s.id: s for s in services}
    usable = [n for n in nodes if n.status is NodeStatus.READY and n.availability is Availability.ACTIVE]

    assert set(plan.assignments) | set(plan.failures) == {t.id for t in tasks}
    load = {n.id: Counter() for n in nodes}
    for task in tasks:
        if task.id in plan.assignments:
            load[plan.assignments[task.id]][task.service_id] += 1

    def reserved(node_id, what):
        return sum((getattr(by_service[s].spec.deploy.resources.reservations, what) or 0) * count
                   for s, count in load[node_id].items())

    for node_id, tasks_here in load.items():
        n = by_id[node_id]
        if tasks_here:
            assert n in usable
            assert reserved(node_id, "cpus") <= n.cpus and reserved(node_id, "memory") <= n.memory
            assert tasks_here["max"] <= 1 and tasks_here["port"] <= 1
            assert tasks_here["zone-b"] == 0 or n.labels["zone"] == "b"
            assert tasks_here["not-a"] == 0 or n.labels["zone"] != "a"
    # Unconstrained services without reservations are balanced within one task per node.
    for sid in ("plain1", "plain2", "plain3"):
        spread = [load[n.id][sid] for n in usable]
        assert max(spread) - min(spread) <= 1, sid
    # So are the zones of the spread service.
    zones = Counter()
    for n in nodes:
        zones[n.labels["zone"]] += load[n.id]["spread"]
    assert max(zones.values()) - min(zones.values()) <= 1
    # Only what truly cannot fit fails: "max" (1 per node) and "big" (3 cpus) run out of nodes.
    failed = Counter(task_id.split(".")[0] for task_id in plan.failures)
    assert set(failed) <= {"max", "big", "cpu"}
    assert failed["max"] == 500 - len(usable)
    assert set(plan.failures.values()) <= {
        "no suitable node (max replicas per node limit exceed; 18 nodes not available for new tasks)",
        "no suitable node (insufficient resources on 482 nodes; 18 nodes not available for new tasks)",
    }
    # And it is true: no usable node has room left for a task of a service that failed.
    for sid in failed:
        wants = by_service[sid].spec.deploy.resources.reservations
        for n in usable:
            room = (n.cpus - reserved(n.id, "cpus") >= (wants.cpus or 0)
                    and n.memory - reserved(n.id, "memory") >= (wants.memory or 0))
            assert not room or (sid == "max" and load[n.id]["max"] == 1)
