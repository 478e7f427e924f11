"""How the deploy progress ends on a failed update (pure: summaries and tasks as the API gives them)."""

from swarmpy.cli.progress import status, update_outcome


def task(slot, version, state="running"):
    return {"slot": slot, "node_id": "n1", "spec_version": version, "state": state, "desired_state": "running",
            "created_at": float(slot), "error": ""}


def summary(spec_version, update=None, desired=4):
    return {"mode": "replicated", "spec_version": spec_version, "desired": desired, "update_status": update}


PAUSED = {"version": 2, "state": "paused", "message": "update paused due to failure or early termination of task t9",
          "reason": "update paused due to failure or early termination of task t9: No such image: x"}


def test_a_paused_update_never_converges_so_waiting_must_end_on_it():
    """The wedge seen by `service scale` and `stack deploy`: slots on the old version never count as
    converged, so a paused service kept them waiting out their 300 s timeout."""
    tasks = [task(1, 2, "rejected"), task(2, 1), task(3, 1), task(4, 1)]
    converged, _, _ = status(summary(2, PAUSED), tasks)
    assert not converged
    assert update_outcome(summary(2, PAUSED), converged, since=1) == ("failed", PAUSED["reason"])
    assert update_outcome(summary(2, PAUSED), converged, since=None) == ("paused", PAUSED["reason"])


def test_a_deploy_fails_on_its_rolled_back_update_once_the_rollback_is_done():
    rolling = {"version": 3, "state": "rollback_started", "mode": "rollback", "reason": "update rolled back: x"}
    tasks = [task(s, 3) for s in (1, 2, 3, 4)]
    converged, lines, _ = status(summary(3, rolling), tasks)
    assert not converged and lines[0] == "overall progress: rolling back update: 4 out of 4 tasks"
    assert update_outcome(summary(3, rolling), converged, since=1) is None, "still rolling back"
    done = {**rolling, "state": "rollback_completed", "message": "rollback completed"}
    converged, _, _ = status(summary(3, done), tasks)
    assert converged and update_outcome(summary(3, done), converged, since=1) == ("failed", "update rolled back: x")


def test_an_earlier_update_does_not_fail_a_new_deploy():
    tasks = [task(s, 3) for s in (1, 2)]
    old_rollback = {"version": 3, "state": "rollback_completed", "reason": "update rolled back: x"}
    converged, _, _ = status(summary(3, old_rollback, desired=2), tasks)
    assert update_outcome(summary(3, old_rollback, desired=2), converged, since=3) is None, "a scale-only deploy"
    old_pause = {**PAUSED, "version": 2}
    assert update_outcome(summary(3, old_pause, desired=2), False, since=2) is None, "not taken up yet: wait"


def test_an_update_is_not_converged_during_its_monitor_period():
    tasks = [task(s, 2) for s in (1, 2)]
    converged, lines, _ = status(summary(2, {"version": 2, "state": "updating"}, desired=2), tasks)
    assert not converged and lines[-1].startswith("verify: Waiting to verify that tasks are stable")
