"""Restart policy decisions, as Swarm makes them (SwarmKit's restart supervisor)."""

from __future__ import annotations

import pytest

from swarmpy.manager.restart import decide
from swarmpy.model import RestartPolicy, TaskState

from tests.unit.orchestration_fixtures import NOW, make_service, make_task, restart_policy

SVC = make_service()


def dead(state, exit_code=None, died=NOW - 1, history=()):
    return make_task(SVC, 1, node="n1", state=state, exit_code=exit_code, updated=died, history=history)


# How a task can end, and whether each condition replaces it. Swarm restarts on
# `any` whatever the end; on `on-failure` unless the task completed (exit 0);
# never on `none`. A task that stopped although it was still wanted (state
# shutdown, desired running) did not complete: it counts as a failure.
ENDS = {
    "failed": (TaskState.FAILED, 1),
    "complete": (TaskState.COMPLETE, 0),
    "rejected": (TaskState.REJECTED, None),
    "orphaned": (TaskState.ORPHANED, None),
    "shutdown": (TaskState.SHUTDOWN, None),
}
EXPECTED = {
    "any": {"failed": True, "complete": True, "rejected": True, "orphaned": True, "shutdown": True},
    "on-failure": {"failed": True, "complete": False, "rejected": True, "orphaned": True, "shutdown": True},
    "none": {"failed": False, "complete": False, "rejected": False, "orphaned": False, "shutdown": False},
}


@pytest.mark.parametrize("condition", sorted(EXPECTED))
@pytest.mark.parametrize("end", sorted(ENDS))
def test_condition_by_end(condition, end):
    state, code = ENDS[end]
    decision = decide(dead(state, code), restart_policy(condition, delay=5), NOW)
    assert decision.restart is EXPECTED[condition][end], decision.reason


def test_complete_with_non_zero_exit_is_a_failure():
    decision = decide(dead(TaskState.COMPLETE, exit_code=3), restart_policy("on-failure"), NOW)
    assert decision.restart


def test_delay_counts_from_the_time_the_task_died():
    decision = decide(dead(TaskState.FAILED, 1, died=NOW - 2), restart_policy(delay=5), NOW)
    assert decision.restart
    assert decision.not_before == NOW + 3


def test_delay_already_over_starts_at_once():
    decision = decide(dead(TaskState.FAILED, 1, died=NOW - 60), restart_policy(delay=5), NOW)
    assert decision.restart and decision.not_before <= NOW


def test_swarm_default_policy_is_any_with_a_five_second_delay():
    decision = decide(dead(TaskState.COMPLETE, 0, died=NOW), RestartPolicy(), NOW)
    assert decision.restart and decision.not_before == NOW + 5


@pytest.mark.parametrize("condition", ["any", "on-failure"])
def test_orphaned_task_is_replaced_without_delay(condition):
    decision = decide(dead(TaskState.ORPHANED, died=NOW), restart_policy(condition, delay=30), NOW)
    assert decision.restart
    assert decision.not_before <= NOW


def test_rejected_task_waits_the_delay():
    decision = decide(dead(TaskState.REJECTED, died=NOW), restart_policy(delay=10), NOW)
    assert decision.not_before == NOW + 10


# -- max_attempts

@pytest.mark.parametrize("earlier, restart", [(0, True), (2, True), (3, False), (7, False)])
def test_max_attempts_without_window_counts_every_restart(earlier, restart):
    history = tuple(float(i) for i in range(1, earlier + 1))  # long ago: no window, still counted
    decision = decide(dead(TaskState.FAILED, 1, history=history), restart_policy(max_attempts=3), NOW)
    assert decision.restart is restart, decision.reason


def test_attempts_run_out_after_max_attempts_restarts():
    """Three restarts allowed: the original task and three successors run, the fourth death is final."""
    policy = restart_policy(max_attempts=3)
    history: tuple = ()
    restarts = 0
    for i in range(10):
        decision = decide(dead(TaskState.FAILED, 1, died=NOW + i, history=history), policy, NOW + i)
        if not decision.restart:
            break
        restarts += 1
        history = decision.history
    assert restarts == 3


def test_restart_history_records_this_restart():
    decision = decide(dead(TaskState.FAILED, 1, history=(NOW - 20,)), restart_policy(max_attempts=5), NOW)
    assert decision.history == (NOW - 20, NOW)


def test_window_lets_old_restarts_fall_out():
    history = (NOW - 100, NOW - 50, NOW - 5)
    policy = restart_policy(max_attempts=3, window=60)
    decision = decide(dead(TaskState.FAILED, 1, died=NOW, history=history), policy, NOW)
    assert decision.restart
    assert decision.history == (NOW - 50, NOW - 5, NOW)


def test_window_full_of_restarts_gives_up():
    history = (NOW - 30, NOW - 20, NOW - 10)
    decision = decide(dead(TaskState.FAILED, 1, died=NOW, history=history),
                      restart_policy(max_attempts=3, window=60), NOW)
    assert not decision.restart


def test_giving_up_is_final_although_time_passes():
    """The window is counted back from the task's death (SwarmKit uses the task's
    own timestamp): asking again an hour later must not revive a task whose
    restarts were exhausted when it died."""
    died = NOW
    history = (died - 30, died - 20, died - 10)
    policy = restart_policy(max_attempts=3, window=60)
    assert not decide(dead(TaskState.FAILED, 1, died=died, history=history), policy, died).restart
    assert not decide(dead(TaskState.FAILED, 1, died=died, history=history), policy, died + 3600).restart


# -- jobs

@pytest.mark.parametrize("condition", ["any", "on-failure"])
def test_job_success_is_final_even_with_condition_any(condition):
    decision = decide(dead(TaskState.COMPLETE, 0), restart_policy(condition), NOW, job=True)
    assert not decision.restart


@pytest.mark.parametrize("condition", ["any", "on-failure"])
def test_failed_job_task_restarts(condition):
    decision = decide(dead(TaskState.FAILED, 2, died=NOW), restart_policy(condition, delay=4), NOW, job=True)
    assert decision.restart and decision.not_before == NOW + 4


def test_failed_job_task_with_condition_none_stays_failed():
    assert not decide(dead(TaskState.FAILED, 2), restart_policy("none"), NOW, job=True).restart
