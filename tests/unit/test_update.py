"""Rolling updates by `update_config`, pass by pass, as SwarmKit's updater does them."""

from __future__ import annotations

from swarmpy.model import Availability, DesiredState, NodeStatus, TaskState, UpdateConfig

from tests.unit.orchestration_fixtures import (NOW, World, bump, ids, make_node, make_nodes, make_service, scaled,
                                               make_task, restart_policy, running, slots)


def deployed(replicas=3, mode="replicated", restart=None, healthcheck=False, nodes=None, previous=False,
             **update) -> tuple[World, dict]:
    """v1 running everywhere, then a deploy of v2 with `update` as its update_config."""
    v1 = make_service(mode, replicas, restart=restart, healthcheck=healthcheck)
    if mode == "global":
        tasks = [make_task(v1, node=n, health="healthy" if healthcheck else None) for n in sorted(nodes)]
    else:
        tasks = running(v1, replicas, health="healthy" if healthcheck else None)
    v2 = bump(v1, update_config=UpdateConfig(**update))
    if not previous:
        v2 = v2.copy(previous_spec=None)
    world = World(v2, tasks, nodes=nodes)
    return world, {t.slot or t.node_id: t for t in tasks}


def old_live(world):
    return sorted(s for s, ts in world.live().items() if any(t.spec_version == 1 for t in ts))


# --------------------------------------------------------------------------
# stop-first
# --------------------------------------------------------------------------


def test_stop_first_one_slot_at_a_time():
    world, old = deployed(parallelism=1)
    plan = world.step()
    assert world.status["state"] == "updating" and world.status["version"] == 2
    assert world.status["started_at"] == NOW
    assert ids(plan.shutdown) == {old[1].id}
    assert not plan.create, "stop-first: the new task waits for the old one to stop"

    assert world.step(1).empty, "still stopping: nothing new"

    world.stopped(old[1])
    plan = world.step(1)
    (new,) = plan.create
    assert new.slot == 1 and new.spec_version == 2
    assert not plan.shutdown, "the next slot waits until this one is up"

    world.run(new)
    plan = world.step(1)
    assert ids(plan.shutdown) == {old[2].id}


def test_stop_first_walks_every_slot_then_completes():
    world, _ = deployed(replicas=4, parallelism=1)
    for _ in range(30):
        plan = world.step(1)
        assert len([t for ts in world.live().values() for t in ts if not t.state.terminal]) <= 4
        world.settle()
        if plan.empty and world.status["state"] == "completed":
            break
    assert world.status["state"] == "completed" and world.status["message"] == "update completed"
    assert world.versions() == {1: [2], 2: [2], 3: [2], 4: [2]}
    assert world.step(1).empty, "a completed update stays so"


def test_stop_first_replaces_a_dead_task_at_once():
    world, old = deployed(replicas=2, parallelism=1, restart=restart_policy("none"))
    world.fail(old[1])
    plan = world.step()
    assert ids(plan.shutdown) == {old[1].id}
    assert [(t.slot, t.spec_version) for t in plan.create] == [(1, 2)]


def test_global_stop_first_waits_for_the_old_task_on_its_node():
    nodes = make_nodes("n1", "n2")
    world, old = deployed(mode="global", nodes=nodes, parallelism=1)
    plan = world.step()
    assert ids(plan.shutdown) == {old["n1"].id} and not plan.create
    assert world.step(1).empty
    world.stopped(old["n1"])
    plan = world.step(1)
    assert [(t.node_id, t.spec_version) for t in plan.create] == [("n1", 2)]


# --------------------------------------------------------------------------
# start-first
# --------------------------------------------------------------------------


def test_start_first_starts_the_new_task_before_stopping_the_old():
    world, old = deployed(parallelism=1, order="start-first")
    plan = world.step()
    (new,) = plan.create
    assert new.slot == 1 and new.spec_version == 2
    assert not plan.shutdown

    world.set(new, TaskState.STARTING)
    assert world.step(1).empty

    world.run(new)
    plan = world.step(1)
    assert old[1].id in ids(plan.shutdown), "the new task runs: the old one goes"
    assert [t.slot for t in plan.create] == [2], "and the next slot starts"


def test_start_first_with_a_healthcheck_waits_until_healthy():
    world, old = deployed(parallelism=1, order="start-first", healthcheck=True)
    (new,) = world.step().create
    world.run(new, health="starting")
    assert world.step(1).empty, "running but not yet healthy: the old task stays"
    world.healthy(new)
    plan = world.step(1)
    assert old[1].id in ids(plan.shutdown)


def test_start_first_new_task_that_ends_for_good_still_retires_the_old():
    """Swarm's updater removes the old task once the new one reached running or
    beyond; a new task that completed and is not restarted (on-failure) must not
    leave the old one running beside it."""
    world, old = deployed(replicas=1, parallelism=1, order="start-first", failure_action="continue",
                          restart=restart_policy("on-failure"))
    (new,) = world.step().create
    world.run(new)
    world.complete(new)
    plan = world.step(1)
    assert old[1].id in ids(plan.shutdown)
    assert not plan.create


# --------------------------------------------------------------------------
# parallelism and delay
# --------------------------------------------------------------------------


def test_parallelism_two_is_a_sliding_window():
    world, old = deployed(replicas=5, parallelism=2)
    plan = world.step()
    assert slots(plan.shutdown) == [1, 2]
    world.stopped(old[1])
    (new1,) = world.step(1).create
    world.run(new1)
    plan = world.step(1)
    assert slots(plan.shutdown) == [3], "slot 1 is done, slot 2 still in flight: one more"


def test_parallelism_zero_updates_every_slot_at_once():
    world, old = deployed(replicas=4, parallelism=0)
    assert slots(world.step().shutdown) == [1, 2, 3, 4]


def test_parallelism_zero_start_first_starts_every_slot_at_once():
    world, old = deployed(replicas=3, parallelism=0, order="start-first")
    assert slots(world.step().create) == [1, 2, 3]


def test_parallelism_zero_with_a_scale_up_in_the_same_deploy_still_updates_all():
    world, old = deployed(replicas=3, parallelism=0)
    world.service = world.service.copy(spec=world.service.spec.copy(
        deploy=world.service.spec.deploy.copy(replicas=4)))
    plan = world.step()
    assert slots(plan.create) == [4]
    assert slots(plan.shutdown) == [1, 2, 3]


def test_delay_between_slots():
    world, old = deployed(parallelism=1, delay=10)
    world.step()
    world.stopped(old[1])
    (new,) = world.step(1).create
    world.run(new)  # up at NOW + 1
    up_at = world.now
    plan = world.step(2)
    assert not plan.shutdown, "slot 1 cools down for `delay`"
    assert plan.wake_at == up_at + 10
    assert not world.step(up_at + 9.9 - world.now).shutdown
    plan = world.step(up_at + 10 - world.now)
    assert ids(plan.shutdown) == {old[2].id}


# --------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------


def start_slot_one(world, old):
    world.step()
    world.stopped(old[1])
    (new,) = world.step(1).create
    return new


def test_failure_action_pause_stops_starting_slots():
    world, old = deployed(parallelism=1, restart=restart_policy("none"))
    new = start_slot_one(world, old)
    world.fail(new)
    plan = world.step(1)
    assert world.status["state"] == "paused"
    assert new.id in world.status["message"]
    assert world.status["message"].startswith("update paused due to failure or early termination of task")
    assert not plan.shutdown and not plan.create
    for _ in range(3):
        assert not world.step(10).shutdown, "no more slots while paused"
    assert old_live(world) == [2, 3]


def test_paused_update_stays_paused_when_its_failed_task_is_gone():
    """Only a new deploy resumes a paused update, even once the failure that paused it left the history."""
    world, old = deployed(parallelism=1, restart=restart_policy("any"))
    new = start_slot_one(world, old)
    world.fail(new)
    (successor,) = world.step(1).create
    assert world.status["state"] == "paused"
    world.run(successor)
    del world.tasks[new.id]  # pruned from the history
    plan = world.step(60)
    assert not plan.shutdown and not plan.create and world.status["state"] == "paused"


def test_pause_counts_a_failure_before_the_task_ran():
    world, old = deployed(parallelism=1, restart=restart_policy("none"))
    new = start_slot_one(world, old)
    world.set(new, TaskState.REJECTED)
    world.step(1)
    assert world.status["state"] == "paused"


def test_pause_still_restarts_the_failed_task_by_its_policy():
    world, old = deployed(parallelism=1, restart=restart_policy("any", delay=5))
    new = start_slot_one(world, old)
    world.fail(new)
    plan = world.step(1)
    assert world.status["state"] == "paused"
    assert [(t.slot, t.spec_version) for t in plan.create] == [(1, 2)]


def test_early_termination_pauses_too():
    world, old = deployed(parallelism=1, restart=restart_policy("on-failure"))
    new = start_slot_one(world, old)
    world.run(new)
    world.complete(new)
    world.step(1)
    assert world.status["state"] == "paused" and new.id in world.status["message"]


def test_failure_action_continue_carries_on():
    world, old = deployed(parallelism=1, failure_action="continue", restart=restart_policy("none"))
    new = start_slot_one(world, old)
    world.fail(new)
    plan = world.step(1)
    assert world.status["state"] == "updating"
    assert ids(plan.shutdown) == {old[2].id}


def test_max_failure_ratio_tolerates_some_failures():
    world, old = deployed(replicas=4, parallelism=1, max_failure_ratio=0.3, restart=restart_policy("none"))
    new = start_slot_one(world, old)
    world.fail(new)
    plan = world.step(1)
    assert world.status["state"] == "updating", "1 of 4 is under 0.3"
    assert ids(plan.shutdown) == {old[2].id}


def test_max_failure_ratio_counts_the_service_slots_not_its_history():
    """Two nodes serve a global service; two drained nodes keep only history.
    One failure of two updated slots is over 0.4."""
    world, old = deployed(mode="global", nodes=make_nodes("n1", "n2"), parallelism=1, max_failure_ratio=0.4,
                          restart=restart_policy("none"))
    for n in ("d1", "d2"):
        world.nodes[n] = make_node(n, availability=Availability.DRAIN)
        t = make_task(world.service, node=n, version=1, state=TaskState.SHUTDOWN, desired=DesiredState.SHUTDOWN)
        world.tasks[t.id] = t
    world.step()
    world.stopped(old["n1"])
    (new,) = world.step(1).create
    world.fail(new)
    world.step(1)
    assert world.status["state"] == "paused"


def test_failure_action_rollback_asks_for_the_previous_spec():
    world, old = deployed(parallelism=1, failure_action="rollback", previous=True, restart=restart_policy("none"))
    new = start_slot_one(world, old)
    world.fail(new)
    plan = world.step(1)
    assert plan.rollback
    assert world.status["state"] == "rollback_started"
    assert world.status["message"] == f"update rolled back due to failure or early termination of task {new.id}"
    assert not plan.shutdown, "no more slots of the failed version"


def test_failure_action_rollback_without_a_previous_spec_pauses():
    world, old = deployed(parallelism=1, failure_action="rollback", restart=restart_policy("none"))
    new = start_slot_one(world, old)
    world.fail(new)
    plan = world.step(1)
    assert not plan.rollback and world.status["state"] == "paused"


def rolling_back(world):
    """What the orchestrator does on plan.rollback: the previous spec, as a new spec_version."""
    svc = world.service
    world.service = svc.rolled_back(version=svc.version + 1)
    world.status = {**world.status, "version": world.service.spec_version, "mode": "rollback",
                    "state": "rollback_started", "started_at": world.now}


def with_rollback_config(world, cfg):
    """The same rollback_config in both versions: a rollback runs by the restored spec's (as SwarmKit does)."""
    def put(spec):
        return spec.copy(deploy=spec.deploy.copy(rollback_config=cfg))
    svc = world.service
    world.service = svc.copy(spec=put(svc.spec), previous_spec=put(svc.previous_spec))


def test_rollback_follows_rollback_config_and_completes():
    world, old = deployed(replicas=4, parallelism=2, failure_action="rollback", previous=True,
                          restart=restart_policy("none"))
    with_rollback_config(world, UpdateConfig(parallelism=0))
    assert slots(world.step().shutdown) == [1, 2]
    world.stopped(old[1])
    world.stopped(old[2])
    new1, new2 = world.step(1).create
    world.run(new1)
    world.fail(new2)
    assert world.step(1).rollback
    rolling_back(world)
    plan = world.step(1)
    assert slots(plan.shutdown) == [1, 2], "rollback_config: parallelism 0; slots 3 and 4 are left alone"
    for _ in range(8):  # and its monitor (5 s)
        world.settle()
        world.step(1)
    assert world.status["state"] == "rollback_completed" and world.status["message"] == "rollback completed"
    assert world.versions() == {1: [3], 2: [3], 3: [1], 4: [1]}, "slots 3 and 4 still ran the spec rolled back to"


def failed_then_rolling_back(replicas):
    """An update with failure_action rollback whose first slot's new task failed: rolling back."""
    world, old = deployed(replicas=replicas, parallelism=1, failure_action="rollback", previous=True,
                          restart=restart_policy("none"))
    new = start_slot_one(world, old)
    world.fail(new)
    assert world.step(1).rollback
    rolling_back(world)
    return world, old


def test_a_rollback_replaces_only_the_slots_the_update_reached():
    world, old = failed_then_rolling_back(replicas=3)
    world.status.pop("slots")  # as the orchestrator writes it: the rollback counts its own
    plan = world.step(1)
    assert slots(plan.shutdown) == slots(plan.create) == [1]
    assert world.status["slots"] == 1
    assert {t.id for ts in world.live().values() for t in ts} >= {old[2].id, old[3].id}


def test_a_failing_rollback_pauses_and_never_rolls_back_again():
    world, old = deployed(parallelism=1, failure_action="rollback", previous=True, restart=restart_policy("none"))
    with_rollback_config(world, UpdateConfig(failure_action="rollback"))
    new = start_slot_one(world, old)
    world.fail(new)
    assert world.step(1).rollback
    rolling_back(world)
    (back,) = world.step(1).create  # slot 1 holds only a dead v2 task: its v1-spec successor starts at once
    assert (back.slot, back.spec_version) == (1, 3)
    world.fail(back)
    plan = world.step(1)
    assert not plan.rollback
    assert world.status["state"] == "rollback_paused"
    assert world.status["message"] == f"rollback paused due to failure or early termination of task {back.id}"


# --------------------------------------------------------------------------
# a new deploy in the middle of an update
# --------------------------------------------------------------------------


def test_new_deploy_mid_update_restarts_the_update_for_the_new_version():
    world, old = deployed(parallelism=1)
    new = start_slot_one(world, old)
    world.run(new)
    world.step(1)  # slot 2's v1 task is stopping
    world.service = bump(world.service)
    world.step(1)
    assert world.status["version"] == 3 and world.status["state"] == "updating"
    assert world.status["started_at"] == world.now
    for _ in range(30):
        world.settle()
        world.step(1)
        if world.status["state"] == "completed":
            break
    assert world.status["state"] == "completed"
    assert world.versions() == {1: [3], 2: [3], 3: [3]}


def test_new_deploy_resumes_a_paused_service():
    world, old = deployed(parallelism=1, restart=restart_policy("none"))
    new = start_slot_one(world, old)
    world.fail(new)
    world.step(1)
    assert world.status["state"] == "paused"
    world.service = bump(world.service)
    plan = world.step(1)
    assert world.status["state"] == "updating" and world.status["version"] == 3
    assert ids(plan.shutdown) == {new.id}, "slot 1's dead v2 task is outdated now"
    assert [(t.slot, t.spec_version) for t in plan.create] == [(1, 3)]


def test_no_update_status_for_a_first_deploy_or_a_scale():
    svc = make_service(replicas=2)
    world = World(svc)
    world.step()
    assert world.status is None
    world.settle()
    world.service = svc.copy(spec=svc.spec.copy(deploy=svc.spec.deploy.copy(replicas=3)), version=2)
    world.step(1)
    assert world.status is None


def test_node_down_during_an_update_does_not_stall_it():
    nodes = make_nodes("n1", "n2", "n3")
    world, old = deployed(parallelism=1, nodes=nodes)
    new = start_slot_one(world, old)
    world.run(new, node="n1")
    world.nodes["n3"] = make_node("n3", status=NodeStatus.DOWN)
    world.set(old[3], TaskState.ORPHANED)
    for _ in range(20):
        world.settle()
        if world.step(1).empty and world.status["state"] == "completed":
            break
    assert world.status["state"] == "completed"
    assert world.versions() == {1: [2], 2: [2], 3: [2]}


# --------------------------------------------------------------------------
# monitor and max_failure_ratio, as SwarmKit's updater applies them
# --------------------------------------------------------------------------


def update_slot_one(world, old, health=None):
    """Slot 1's new task starts and is up (healthy, with a healthcheck) at world.now."""
    new = start_slot_one(world, old)
    return world.run(new, health=health)


def test_a_task_that_fails_within_monitor_after_it_was_up_fails_the_update():
    world, old = deployed(parallelism=1, monitor=10, restart=restart_policy("none"))
    new = update_slot_one(world, old)
    world.step(1)
    world.fail(world.get(new))  # 2 s after it was up
    world.step(1)
    assert world.status["state"] == "paused" and new.id in world.status["message"]
    assert world.status["reason"] == f"{world.status['message']}: task: failed (exit 1)"


def test_a_task_that_fails_after_monitor_is_no_failure_of_the_update():
    world, old = deployed(replicas=2, parallelism=1, monitor=3, restart=restart_policy("any"))
    new = update_slot_one(world, old)
    assert ids(world.step(1).shutdown) == {old[2].id}
    world.now += 5
    world.set(new, TaskState.FAILED, exit_code=1, error="task: non-zero exit (1)")
    world.stopped(old[2])
    plan = world.step(1)
    assert world.status["state"] == "updating", "the update goes on"
    assert sorted((t.slot, t.spec_version) for t in plan.create) == [(1, 2), (2, 2)]


def test_the_update_completes_only_once_its_last_batch_was_monitored():
    world, old = deployed(replicas=1, parallelism=1, monitor=5)
    new = update_slot_one(world, old)
    up_at = world.now
    plan = world.step(1)
    assert world.status["state"] == "updating" and plan.wake_at == up_at + 5
    assert world.step(3.9 - (world.now - up_at)).wake_at == up_at + 5
    assert world.status["state"] == "updating"
    world.step(up_at + 5 - world.now)
    assert world.status["state"] == "completed" and world.status["completed_at"] == up_at + 5
    assert world.get(new).state == TaskState.RUNNING


def test_the_last_batch_failing_during_monitor_rolls_back():
    world, old = deployed(replicas=1, parallelism=1, monitor=5, failure_action="rollback", previous=True,
                          restart=restart_policy("any"))
    new = update_slot_one(world, old)
    world.step(1)
    world.set(new, TaskState.FAILED, exit_code=2, error="task: non-zero exit (2)")
    plan = world.step(1)
    assert plan.rollback and world.status["state"] == "rollback_started"
    assert world.status["reason"].endswith(f"task {new.id}: task: non-zero exit (2)")


def test_max_failure_ratio_is_failures_over_the_slots_the_update_changes():
    """SwarmKit: failures / the slots to update; 1/4 is within 0.3, 2/4 is over it."""
    world, old = deployed(replicas=4, parallelism=1, max_failure_ratio=0.3, restart=restart_policy("none"))
    assert world.step().update_status["slots"] == 4
    world.stopped(old[1])
    (first,) = world.step(1).create
    world.fail(first)
    plan = world.step(1)
    assert world.status["state"] == "updating" and ids(plan.shutdown) == {old[2].id}
    world.stopped(old[2])
    (second,) = world.step(1).create
    world.fail(second)
    world.step(1)
    assert world.status["state"] == "paused" and second.id in world.status["message"]


def test_a_failed_slot_restarting_is_not_waited_for_by_continue():
    """SwarmKit's updater moves on once the slot's new task ended; its restarts are the restart policy's."""
    world, old = deployed(replicas=3, parallelism=1, failure_action="continue", restart=restart_policy("any", delay=5))
    new = start_slot_one(world, old)
    world.fail(new)
    plan = world.step(1)
    assert [(t.slot, t.spec_version) for t in plan.create] == [(1, 2)], "its successor, after the delay"
    assert ids(plan.shutdown) == {new.id, old[2].id}, "and the next slot starts"


def test_an_unhealthy_new_task_is_a_failure():
    world, old = deployed(parallelism=1, healthcheck=True, restart=restart_policy("any"))
    new = start_slot_one(world, old)
    world.run(new, health="starting")
    assert world.step(1).empty, "starting: in flight"
    world.set(new, TaskState.FAILED, health="unhealthy", error="task: unhealthy container")
    world.step(1)
    assert world.status["state"] == "paused"
    assert world.status["reason"].endswith("task: unhealthy container")


def test_a_rejected_new_task_names_its_error():
    world, old = deployed(parallelism=1, restart=restart_policy("any", delay=5))
    new = start_slot_one(world, old)
    world.set(new, TaskState.REJECTED, error="No such image: swarmpy/does-not-exist:1")
    world.step(1)
    assert world.status["reason"] == (f"update paused due to failure or early termination of task {new.id}: "
                                      "No such image: swarmpy/does-not-exist:1")


def test_a_rollback_keeps_its_reason_and_completes_after_its_own_monitor():
    world, old = deployed(replicas=2, parallelism=1, failure_action="rollback", previous=True,
                          restart=restart_policy("none"))
    with_rollback_config(world, UpdateConfig(parallelism=0, monitor=2))
    new = start_slot_one(world, old)
    world.set(new, TaskState.REJECTED, error="No such image: x")
    assert world.step(1).rollback
    rolling_back(world)
    world.status.pop("slots")  # as the orchestrator writes it: the rollback counts its own
    plan = world.step(1)
    assert world.status["slots"] == 1 and slots(plan.create) == [1], "slot 2 never left the restored spec"
    for _ in range(3):
        world.settle()
        world.step(0.5)
    assert world.status["state"] == "rollback_started", "its monitor runs"
    for _ in range(5):
        world.settle()
        world.step(1)
    assert world.status["state"] == "rollback_completed"
    assert world.status["reason"].endswith(f"task {new.id}: No such image: x")
    assert world.versions() == {1: [3], 2: [1]}


# --------------------------------------------------------------------------
# nothing wedges: scale and a new deploy during or after a failed update
# --------------------------------------------------------------------------


def paused_world(replicas=4):
    world, old = deployed(replicas=replicas, parallelism=1, restart=restart_policy("any", delay=1))
    new = start_slot_one(world, old)
    world.set(new, TaskState.REJECTED, error="No such image: x")
    world.step(1)
    assert world.status["state"] == "paused"
    return world, old


def test_scale_down_during_a_paused_update():
    world, old = paused_world()
    world.service = scaled(world.service, 2)
    plan = world.step(1)
    assert 1 in slots(plan.shutdown) and len(plan.shutdown) == 2, "the failing slot goes first"
    assert not plan.create and world.status["state"] == "paused"
    world.stop_all_shut(plan)
    plan = world.step(1)
    assert not plan.create and not plan.shutdown, "the scaled-away slots are forgotten, nothing else"
    assert len(world.live()) == 2 and all(v == [1] for v in world.versions().values())


def test_scale_up_during_a_paused_update_adds_tasks_of_the_new_spec():
    world, old = paused_world(replicas=2)
    world.service = scaled(world.service, 4)
    plan = world.step(1)
    assert sorted((t.slot, t.spec_version) for t in plan.create) == [(3, 2), (4, 2)]
    assert world.status["state"] == "paused" and old[2].id not in ids(plan.shutdown)


def test_a_new_deploy_after_a_rollback_updates_again():
    world, old = failed_then_rolling_back(replicas=2)
    for _ in range(10):
        world.settle()
        world.step(1)
    assert world.status["state"] == "rollback_completed"
    world.service = bump(world.service)
    world.step(1)
    assert world.status["state"] == "updating" and world.status["version"] == 4
    for _ in range(20):
        world.settle()
        world.step(1)
    assert world.status["state"] == "completed" and world.versions() == {1: [4], 2: [4]}


def test_a_crash_looping_slot_does_not_wedge_an_update_that_tolerates_failures():
    """The wedge: the slot's restart successors counted as in flight, so with failures tolerated
    (continue) the update stayed 'updating' for ever with every other slot on the old version."""
    world, _ = deployed(replicas=4, parallelism=1, failure_action="continue", restart=restart_policy("any", delay=1))
    for i in range(60):
        world.step(0.5)
        for t in list(world.tasks.values()):
            if t.state.terminal:
                continue
            if t.desired_state == DesiredState.SHUTDOWN:
                world.stopped(t)
            elif t.state != TaskState.RUNNING and t.not_before <= world.now:
                world.set(t, TaskState.REJECTED, error="No such image: x")  # every new task
    assert world.status["state"] == "completed"
    assert all(t.spec_version == 2 for ts in world.live().values() for t in ts), "every slot was updated"
