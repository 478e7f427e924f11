"""The orchestrator's decisions for one service, Nomad-style: a snapshot in,
assertions on the plan out. Swarm's behaviour is the reference."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmpy.model import Availability, DesiredState, NodeStatus, TaskState, UpdateConfig

from tests.unit.orchestration_fixtures import (NOW, World, bump, ids, live_slots, make_node, make_nodes,
                                               make_service, make_task, plan_for, restart_policy, running,
                                               scaled, slots)

# --------------------------------------------------------------------------
# replicated services
# --------------------------------------------------------------------------


def test_fresh_service_creates_one_pending_task_per_slot():
    svc = make_service(replicas=3, spec_version=4)
    plan = plan_for(svc, [])
    assert slots(plan.create) == [1, 2, 3]
    for t in plan.create:
        assert t.state == TaskState.PENDING
        assert t.desired_state == DesiredState.RUNNING
        assert t.spec_version == 4 and t.service_id == svc.id and t.node_id is None
    assert not plan.shutdown and not plan.delete and plan.update_status is None


def test_steady_state_plans_nothing():
    svc = make_service(replicas=3)
    plan = plan_for(svc, running(svc, 3))
    assert plan.empty and plan.wake_at is None


def test_failed_task_is_replaced_in_its_slot_after_the_delay():
    svc = make_service(replicas=3, restart=restart_policy(delay=5, max_attempts=4))
    tasks = running(svc, 3)
    failed = make_task(svc, 2, node="n2", state=TaskState.FAILED, updated=NOW - 1, history=(NOW - 100,))
    tasks[1] = failed
    plan = plan_for(svc, tasks)
    assert ids(plan.shutdown) == {failed.id}
    (new,) = plan.create
    assert new.slot == 2 and new.state == TaskState.PENDING
    assert new.not_before == NOW + 4
    assert new.restart_history == [NOW - 100, NOW]
    assert plan.wake_at == NOW + 4


def test_condition_none_leaves_the_dead_task_in_its_slot():
    svc = make_service(replicas=3, restart=restart_policy("none"))
    tasks = running(svc, 3)
    tasks[2] = make_task(svc, 3, node="n3", state=TaskState.FAILED)
    plan = plan_for(svc, tasks)
    assert plan.empty
    # the service shows 2 of 3 running; the slot stays taken by its dead task
    assert sum(t.state == TaskState.RUNNING for t in tasks) == 2


def test_on_failure_leaves_a_completed_task_in_its_slot():
    svc = make_service(replicas=2, restart=restart_policy("on-failure"))
    tasks = [make_task(svc, 1, node="n1"), make_task(svc, 2, node="n2", state=TaskState.COMPLETE)]
    assert plan_for(svc, tasks).empty


def test_scale_up_fills_the_lowest_free_slots():
    svc = make_service(replicas=4)
    tasks = [make_task(svc, 1, node="n1"), make_task(svc, 3, node="n2")]
    plan = plan_for(svc, tasks)
    assert slots(plan.create) == [2, 4]
    assert not plan.shutdown


def test_scale_down_removes_tasks_not_running_first():
    svc = make_service(replicas=3)
    tasks = running(svc, 4, nodes=("n1", "n2", "n3", "n1"))
    tasks[1] = make_task(svc, 2, node="n2", state=TaskState.STARTING)
    plan = plan_for(svc, tasks)
    assert slots(plan.shutdown) == [2]
    assert not plan.create


def test_scale_down_removes_from_the_most_loaded_node():
    svc = make_service(replicas=3)
    tasks = running(svc, 4, nodes=("n1", "n1", "n2", "n3"))
    assert slots(plan_for(svc, tasks).shutdown) == [2]


def test_scale_down_balanced_takes_the_highest_slot():
    svc = make_service(replicas=3)
    tasks = running(svc, 4, nodes=("n1", "n2", "n3", "n4"))
    assert slots(plan_for(svc, tasks, make_nodes("n1", "n2", "n3", "n4")).shutdown) == [4]


def test_scale_down_keeps_the_spread():
    """1,2,3 on n1 and 4 on n2, down to 2: one task stays on each node."""
    svc = make_service(replicas=2)
    tasks = running(svc, 4, nodes=("n1", "n1", "n1", "n2"))
    plan = plan_for(svc, tasks)
    assert slots(plan.shutdown) == [2, 3]


def test_scale_to_zero_shuts_every_task_down():
    svc = make_service(replicas=0)
    tasks = running(svc, 3)
    plan = plan_for(svc, tasks)
    assert ids(plan.shutdown) == ids(tasks) and not plan.create


def test_scale_down_does_not_replace_a_dead_task_of_a_removed_slot():
    svc = make_service(replicas=2)
    tasks = running(svc, 3)
    tasks[2] = make_task(svc, 3, node="n3", state=TaskState.FAILED)
    plan = plan_for(svc, tasks)
    assert not plan.create, "a slot that goes away gets no successor"
    assert ids(plan.shutdown) == {tasks[2].id}


def test_scale_down_forgets_the_removed_slots():
    """Swarm deletes the tasks of slots removed by a scale-down once they stopped:
    `service ps` shows only the slots that are left."""
    svc = scaled(make_service(replicas=3), 2)
    tasks = running(svc, 2) + [
        make_task(svc, 3, node="n3", state=TaskState.SHUTDOWN, desired=DesiredState.SHUTDOWN),
        make_task(svc, 3, node="n3", state=TaskState.FAILED, desired=DesiredState.SHUTDOWN),
    ]
    plan = plan_for(svc, tasks)
    assert ids(plan.delete) == ids(tasks[2:])
    assert not plan.create and not plan.shutdown


def test_removed_slot_still_stopping_is_kept_until_it_stopped():
    svc = make_service(replicas=2)
    stopping = make_task(svc, 3, node="n3", state=TaskState.RUNNING, desired=DesiredState.SHUTDOWN)
    history = make_task(svc, 3, node="n3", state=TaskState.FAILED, desired=DesiredState.SHUTDOWN)
    plan = plan_for(svc, running(svc, 2) + [history, stopping])
    assert plan.empty


def test_drained_node_tasks_are_replaced_at_once():
    svc = make_service(replicas=3, restart=restart_policy(delay=30))
    nodes = make_nodes("n1", "n2", "n3")
    nodes["n2"].availability = Availability.DRAIN
    tasks = running(svc, 3)
    plan = plan_for(svc, tasks, nodes)
    assert ids(plan.shutdown) == {tasks[1].id}
    (new,) = plan.create
    assert new.slot == 2 and new.not_before <= NOW and new.node_id is None


def test_removed_node_tasks_are_replaced_at_once():
    svc = make_service(replicas=3, restart=restart_policy(delay=30))
    tasks = running(svc, 3)
    plan = plan_for(svc, tasks, make_nodes("n1", "n2"))
    assert ids(plan.shutdown) == {tasks[2].id}
    assert [(t.slot, t.not_before) for t in plan.create] == [(3, 0.0)]


def test_paused_node_keeps_its_tasks():
    svc = make_service(replicas=3)
    nodes = make_nodes("n1", "n2", "n3")
    nodes["n1"].availability = Availability.PAUSE
    assert plan_for(svc, running(svc, 3), nodes).empty


def test_task_orphaned_on_a_down_node_is_replaced_without_delay():
    svc = make_service(replicas=2, restart=restart_policy(delay=30))
    nodes = make_nodes("n1", "n2")
    nodes["n2"].status = NodeStatus.DOWN
    tasks = [make_task(svc, 1, node="n1"), make_task(svc, 2, node="n2", state=TaskState.ORPHANED, updated=NOW)]
    plan = plan_for(svc, tasks, nodes)
    assert ids(plan.shutdown) == {tasks[1].id}
    assert [(t.slot, t.not_before) for t in plan.create] == [(2, 0.0)]
    assert plan.wake_at is None


def test_slot_whose_two_tasks_died_gets_one_successor():
    """A start-first pair (old and new task of one slot) lost with their node:
    the slot needs one task again, not two."""
    v1 = make_service(replicas=1, update=UpdateConfig(order="start-first"))
    svc = bump(v1)
    old = make_task(v1, 1, node="n2", state=TaskState.ORPHANED)
    new = make_task(svc, 1, node="n2", state=TaskState.ORPHANED)
    plan = plan_for(svc, [old, new])
    assert ids(plan.shutdown) == {old.id, new.id}
    assert [(t.slot, t.spec_version) for t in plan.create] == [(1, 2)]


def test_history_keeps_five_dead_tasks_per_slot():
    """Swarm's default task history limit: 5 dead tasks per slot (DESIGN.md)."""
    svc = make_service(replicas=2)
    old = [make_task(svc, 1, node="n1", state=TaskState.FAILED, desired=DesiredState.SHUTDOWN)
           for _ in range(7)]
    five = [make_task(svc, 2, node="n2", state=TaskState.FAILED, desired=DesiredState.SHUTDOWN)
            for _ in range(5)]
    tasks = old + five + [make_task(svc, 1, node="n1"), make_task(svc, 2, node="n2")]
    plan = plan_for(svc, tasks)
    assert ids(plan.delete) == ids(old[:2])
    assert not plan.create and not plan.shutdown


def test_history_counts_the_task_that_just_died():
    svc = make_service(replicas=1)
    history = [make_task(svc, 1, node="n1", state=TaskState.FAILED, desired=DesiredState.SHUTDOWN)
               for _ in range(5)]
    dying = make_task(svc, 1, node="n1", state=TaskState.FAILED)
    plan = plan_for(svc, history + [dying])
    assert ids(plan.shutdown) == {dying.id}
    assert ids(plan.delete) == {history[0].id}
    assert len(plan.create) == 1


# -- removed service

def test_removed_service_shuts_live_tasks_and_deletes_dead_ones():
    svc = make_service(replicas=3)
    live = make_task(svc, 1, node="n1")
    dead_but_wanted = make_task(svc, 2, node="n2", state=TaskState.FAILED)  # restart policy none
    stopping = make_task(svc, 3, node="n3", desired=DesiredState.SHUTDOWN)
    gone = make_task(svc, 3, node="n3", state=TaskState.SHUTDOWN, desired=DesiredState.SHUTDOWN)
    plan = plan_for(None, [live, dead_but_wanted, stopping, gone])
    assert ids(plan.shutdown) == {live.id, dead_but_wanted.id}
    assert ids(plan.delete) == {gone.id}
    assert not plan.create and not plan.forget_service


def test_removed_service_is_forgotten_once_its_tasks_are_gone():
    svc = make_service(replicas=2)
    tasks = [make_task(svc, s, node="n1", state=TaskState.SHUTDOWN, desired=DesiredState.SHUTDOWN)
             for s in (1, 2)]
    plan = plan_for(None, tasks)
    assert ids(plan.delete) == ids(tasks) and plan.forget_service
    assert plan_for(None, []).forget_service


def test_a_removed_services_dead_tasks_wait_for_their_containers_to_go():
    svc = make_service(replicas=3)
    nodes = make_nodes("n1", "n2", "n3")
    nodes["n3"].status = NodeStatus.DOWN
    with_container = make_task(svc, 1, node="n1", state=TaskState.SHUTDOWN, desired=DesiredState.SHUTDOWN)
    with_container.container_id = "c1"
    container_gone = make_task(svc, 2, node="n2", state=TaskState.FAILED, desired=DesiredState.SHUTDOWN)
    on_a_down_node = make_task(svc, 3, node="n3", state=TaskState.ORPHANED, desired=DesiredState.SHUTDOWN)
    on_a_down_node.container_id = "c3"
    plan = plan_for(None, [with_container, container_gone, on_a_down_node], nodes=nodes)
    assert ids(plan.remove_containers) == {with_container.id}  # a stop job removes it first
    assert ids(plan.delete) == {container_gone.id, on_a_down_node.id}  # its node cleans up when back
    assert not plan.forget_service


def test_removed_service_walks_to_forgotten():
    svc = make_service(replicas=2)
    world = World(svc, running(svc, 2))
    world.service = None
    plan = world.step()
    assert len(plan.shutdown) == 2 and not plan.forget_service
    world.stop_all_shut(plan)
    plan = world.step()
    assert len(plan.delete) == 2 and plan.forget_service and not world.tasks


# --------------------------------------------------------------------------
# global services
# --------------------------------------------------------------------------


def labelled(zone):
    return lambda service, node: node.labels.get("zone") == zone


def global_nodes():
    nodes = {
        "ok": make_node("ok", zone="a"),
        "paused": make_node("paused", availability=Availability.PAUSE, zone="a"),
        "down": make_node("down", status=NodeStatus.DOWN, zone="a"),
        "drained": make_node("drained", availability=Availability.DRAIN, zone="a"),
        "other": make_node("other", zone="b"),
        "ok2": make_node("ok2", zone="a"),
    }
    return nodes


def test_global_one_task_per_ready_active_satisfying_node():
    svc = make_service("global")
    plan = plan_for(svc, [], global_nodes(), satisfies=labelled("a"))
    assert sorted(t.node_id for t in plan.create) == ["ok", "ok2"]
    assert all(t.slot is None and t.state == TaskState.PENDING for t in plan.create)


def test_global_steady_state_plans_nothing():
    svc = make_service("global")
    tasks = [make_task(svc, node="ok"), make_task(svc, node="ok2")]
    assert plan_for(svc, tasks, global_nodes(), satisfies=labelled("a")).empty


def test_global_task_on_a_node_that_stops_satisfying_is_shut_down():
    svc = make_service("global")
    tasks = [make_task(svc, node="ok"), make_task(svc, node="ok2")]
    plan = plan_for(svc, tasks, global_nodes(), satisfies=lambda s, n: labelled("a")(s, n) and n.id != "ok2")
    assert ids(plan.shutdown) == {tasks[1].id}
    assert not plan.create


def test_global_task_on_a_drained_node_is_shut_down_and_not_moved():
    svc = make_service("global")
    nodes = make_nodes("n1", "n2")
    tasks = [make_task(svc, node="n1"), make_task(svc, node="n2")]
    nodes["n2"].availability = Availability.DRAIN
    plan = plan_for(svc, tasks, nodes)
    assert ids(plan.shutdown) == {tasks[1].id} and not plan.create


def test_global_paused_node_keeps_its_task():
    svc = make_service("global")
    nodes = make_nodes("n1", "n2")
    nodes["n2"].availability = Availability.PAUSE
    assert plan_for(svc, [make_task(svc, node="n1"), make_task(svc, node="n2")], nodes).empty


def test_global_task_orphaned_on_a_down_node_is_not_placed_elsewhere():
    svc = make_service("global")
    nodes = make_nodes("n1", "n2")
    nodes["n2"].status = NodeStatus.DOWN
    orphan = make_task(svc, node="n2", state=TaskState.ORPHANED)
    plan = plan_for(svc, [make_task(svc, node="n1"), orphan], nodes)
    assert ids(plan.shutdown) == {orphan.id}
    assert not plan.create


def test_global_node_back_gets_a_new_task():
    svc = make_service("global")
    nodes = make_nodes("n1", "n2")
    orphan = make_task(svc, node="n2", state=TaskState.ORPHANED, desired=DesiredState.SHUTDOWN)
    plan = plan_for(svc, [make_task(svc, node="n1"), orphan], nodes)
    assert [t.node_id for t in plan.create] == ["n2"]


def test_global_failed_task_is_replaced_on_its_node():
    svc = make_service("global", restart=restart_policy(delay=5))
    failed = make_task(svc, node="n2", state=TaskState.FAILED, updated=NOW)
    plan = plan_for(svc, [make_task(svc, node="n1"), failed], make_nodes("n1", "n2"))
    assert ids(plan.shutdown) == {failed.id}
    assert [(t.node_id, t.slot, t.not_before) for t in plan.create] == [("n2", None, NOW + 5)]


def test_global_removed_node_task_is_shut_down():
    svc = make_service("global")
    tasks = [make_task(svc, node="n1"), make_task(svc, node="gone")]
    plan = plan_for(svc, tasks, make_nodes("n1"))
    assert ids(plan.shutdown) == {tasks[1].id} and not plan.create


# --------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------


def job(replicas=5, max_concurrent=2, **kw):
    return make_service("replicated-job", replicas, max_concurrent=max_concurrent, **kw)


def active(tasks):
    return [t for t in tasks if t.desired_state != DesiredState.SHUTDOWN and not t.state.terminal]


def test_replicated_job_runs_at_most_max_concurrent():
    svc = job()
    plan = plan_for(svc, [])
    assert slots(plan.create) == [1, 2]
    assert all(t.desired_state == DesiredState.COMPLETE for t in plan.create)


def test_replicated_job_starts_the_next_slot_when_one_completes():
    svc = job()
    tasks = [make_task(svc, 1, node="n1", state=TaskState.COMPLETE), make_task(svc, 2, node="n2")]
    plan = plan_for(svc, tasks)
    assert slots(plan.create) == [3]
    assert len(active(tasks + plan.create)) == 2


def test_replicated_job_without_max_concurrent_runs_every_slot():
    assert slots(plan_for(job(max_concurrent=None), []).create) == [1, 2, 3, 4, 5]


def test_replicated_job_completed_slots_are_not_rerun():
    svc = job(restart=restart_policy("any"))
    tasks = [make_task(svc, s, node="n1", state=TaskState.COMPLETE) for s in range(1, 6)]
    assert plan_for(svc, tasks).empty


def test_replicated_job_walks_to_completion_with_two_at_a_time():
    svc = job()
    world = World(svc)
    seen_active = []
    for _ in range(10):
        plan = world.step()
        for t in world.run_all_new(plan):
            world.complete(t)
        seen_active.append(len(plan.create))
    assert max(seen_active) <= 2
    assert sorted(t.slot for t in world.tasks.values() if t.state == TaskState.COMPLETE) == [1, 2, 3, 4, 5]
    assert world.step().empty


def test_failed_job_task_restarts_in_its_slot():
    svc = job(restart=restart_policy("on-failure", delay=3))
    failed = make_task(svc, 1, node="n1", state=TaskState.FAILED, exit_code=2, updated=NOW)
    tasks = [failed, make_task(svc, 2, node="n2")]
    plan = plan_for(svc, tasks)
    assert ids(plan.shutdown) == {failed.id}
    (new,) = plan.create
    assert new.slot == 1 and new.not_before == NOW + 3
    assert len(active(tasks + plan.create)) == 2


def test_failed_job_task_with_condition_none_stays_failed_and_keeps_its_slot():
    svc = job(restart=restart_policy("none"))
    tasks = [make_task(svc, 1, node="n1", state=TaskState.FAILED), make_task(svc, 2, node="n2")]
    plan = plan_for(svc, tasks)
    assert slots(plan.create) == [3] and not plan.shutdown


def test_new_job_version_reruns_every_slot():
    v1 = job()
    tasks = [make_task(v1, s, node="n1", state=TaskState.COMPLETE) for s in range(1, 6)]
    plan = plan_for(bump(v1), tasks)
    assert ids(plan.shutdown) == ids(tasks)
    assert slots(plan.create) == [1, 2] and {t.spec_version for t in plan.create} == {2}


def test_global_job_runs_once_per_node():
    svc = make_service("global-job")
    plan = plan_for(svc, [], make_nodes("n1", "n2"))
    assert sorted(t.node_id for t in plan.create) == ["n1", "n2"]
    assert all(t.desired_state == DesiredState.COMPLETE for t in plan.create)
    done = [make_task(svc, node=n, state=TaskState.COMPLETE) for n in ("n1", "n2")]
    assert plan_for(svc, done, make_nodes("n1", "n2")).empty


def test_global_job_runs_on_a_node_that_joins():
    svc = make_service("global-job")
    done = [make_task(svc, node=n, state=TaskState.COMPLETE) for n in ("n1", "n2")]
    plan = plan_for(svc, done, make_nodes("n1", "n2", "n3"))
    assert [t.node_id for t in plan.create] == ["n3"]


def test_global_job_new_version_reruns_on_every_node():
    v1 = make_service("global-job")
    done = [make_task(v1, node=n, state=TaskState.COMPLETE) for n in ("n1", "n2")]
    plan = plan_for(bump(v1), done, make_nodes("n1", "n2"))
    assert ids(plan.shutdown) == ids(done)
    assert sorted(t.node_id for t in plan.create) == ["n1", "n2"]


# --------------------------------------------------------------------------
# property: whatever the tasks' states, one pass converges the slot count
# --------------------------------------------------------------------------

STATES = [TaskState.PENDING, TaskState.ASSIGNED, TaskState.STARTING, TaskState.RUNNING, TaskState.COMPLETE,
          TaskState.FAILED, TaskState.REJECTED, TaskState.ORPHANED, TaskState.SHUTDOWN]

task_strategy = st.tuples(
    st.integers(1, 8),  # slot
    st.sampled_from(STATES),
    st.booleans(),  # desired shutdown
    st.sampled_from(["n1", "n2", "n3", "gone", None]),
    st.integers(1, 2),  # spec_version (2 is the service's)
)


@settings(max_examples=300, deadline=None)
@given(tasks=st.lists(task_strategy, max_size=16), replicas=st.integers(0, 6),
       condition=st.sampled_from(["any", "on-failure"]), order=st.sampled_from(["stop-first", "start-first"]),
       parallelism=st.integers(0, 3), drained=st.booleans())
def test_one_pass_leaves_each_wanted_slot_with_a_live_task(tasks, replicas, condition, order, parallelism,
                                                           drained):
    svc = make_service(replicas=replicas, spec_version=2, restart=restart_policy(condition),
                       update=UpdateConfig(parallelism=parallelism, order=order))
    nodes = make_nodes("n1", "n2", "n3")
    if drained:
        nodes["n3"].availability = Availability.DRAIN
    world = World(svc, nodes=nodes)
    for slot, state, shut, node, version in tasks:
        if state == TaskState.PENDING:
            node = None
        t = make_task(svc, slot, node=node, state=state, version=version,
                      desired=DesiredState.SHUTDOWN if shut else DesiredState.RUNNING)
        world.tasks[t.id] = t
    for _ in range(30):  # each pass: wanted tasks come up, shut-down tasks stop
        plan = world.step(dt=1)
        if not world.settle() and plan.empty:
            break
    assert plan.empty, "reconcile keeps changing its mind"
    live = live_slots(world.tasks.values())
    assert len(live) == replicas
    for slot, ts in live.items():
        assert len(ts) == 1, f"slot {slot} has {len(ts)} live tasks"
        assert ts[0].spec_version == 2
        # a task that completed keeps its slot under on-failure; any other wanted task runs
        assert ts[0].state == TaskState.RUNNING or (condition == "on-failure" and ts[0].state == TaskState.COMPLETE)
        assert ts[0].node_id != "n3" or not drained or ts[0].state.terminal, "runs on a drained node"


@settings(max_examples=300, deadline=None)
@given(tasks=st.lists(task_strategy, max_size=16), replicas=st.integers(0, 6),
       order=st.sampled_from(["stop-first", "start-first"]))
def test_a_single_plan_never_doubles_a_slot_outside_start_first(tasks, replicas, order):
    svc = make_service(replicas=replicas, spec_version=2, update=UpdateConfig(parallelism=0, order=order))
    snapshot = [make_task(svc, slot, node=node, state=state, version=version,
                          desired=DesiredState.SHUTDOWN if shut else DesiredState.RUNNING)
                for slot, state, shut, node, version in tasks]
    # one live task per slot at most to begin with, as the orchestrator leaves them
    seen, start = set(), []
    for t in snapshot:
        if t.desired_state == DesiredState.RUNNING:
            if t.slot in seen:
                continue
            seen.add(t.slot)
        start.append(t)
    plan = plan_for(svc, start)
    shut = ids(plan.shutdown)
    after = [t for t in start if t.id not in shut and t.id not in ids(plan.delete)] + plan.create
    assert not ids(plan.create) & shut, "a task created and shut down in the same plan"
    for slot, ts in live_slots(after).items():
        if len(ts) > 1:
            assert order == "start-first" and len(ts) == 2
            old, new = sorted(ts, key=lambda t: t.created_at)
            assert old.spec_version == 1 and not old.state.terminal and new.spec_version == 2
