"""Rolling updates: when a service's version changes, replace its tasks slot
by slot as `update_config` says (Swarm's semantics, pure logic).

`parallelism` slots are in flight at most (0: all at once); each one that
finished waits `delay` before the next slot starts in its place (SwarmKit runs
`parallelism` updaters that each pause `delay` between slots). `stop-first`
stops a slot's old task before its successor starts; `start-first` starts the
successor and stops the old task once the successor is up. A task is up when
it runs and, if it has a healthcheck, Docker calls it healthy.

A new task of the update that ends (rejected, failed, unhealthy, or exited
although a service task should keep running) before it was up, or within
`monitor` after, is a failure; the update completes only once its last task
has been up for `monitor`. When failures / the slots the update had to change
exceed `max_failure_ratio` (SwarmKit's ratio), `failure_action` applies: pause
(no more slots until a new deploy), continue, or rollback to the previous spec
by `rollback_config` (a failing rollback pauses: a rollback is never rolled back).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swarmpy.model import Task, TaskState, has_healthcheck

if TYPE_CHECKING:  # the reconciler passes itself in
    from swarmpy.manager.reconcile import _Reconciler

# A new task that ends during the update failed it: failed, rejected, or "early
# termination" (it exited 0 although a service task should keep running).
_FAILED = (TaskState.FAILED, TaskState.REJECTED, TaskState.COMPLETE)


def is_up(task: Task, needs_health: bool) -> bool:
    return task.state == TaskState.RUNNING and (not needs_health or task.health == "healthy")


def advance(r: "_Reconciler") -> None:
    service, now, version = r.service, r.now, r.service.spec_version
    needs_health = has_healthcheck(service.spec)
    status = dict(r.update_status) if r.update_status else None
    rolling_back = bool(status and status.get("mode") == "rollback" and status.get("version") == version)
    cfg = service.spec.deploy.rollback_config if rolling_back else service.spec.deploy.update_config

    # start-first slots whose successor is up, or ended and stays so: the old task goes now.
    for slot in list(r.slots):
        live = r.live(slot)
        if len(live) > 1 and (is_up(live[-1], needs_health) or live[-1].state.terminal):
            for old in live[:-1]:
                r.shutdown(old)

    outdated = sorted((s for s in r.slots if (cur := r.current(s)) is not None
                       and not service.runs_current(cur.spec_version)),
                      key=str)
    if status is None or status.get("version") != version:
        if not outdated:
            return
        status = {"version": version, "mode": "update", "state": "updating", "started_at": now,
                  "message": "update in progress"}
    if "slots" not in status:  # the failure ratio's denominator: the slots it has to change (a rollback's too)
        r.plan.update_status = status = {**status, "slots": max(1, len(outdated))}
    if status["state"] in ("paused", "rollback_paused"):
        return
    if status["state"] in ("completed", "rollback_completed") and not outdated:
        return

    started = status["started_at"]
    ours = {slot: [t for t in ts if t.spec_version == version and t.created_at >= started]
            for slot, ts in r.slots.items()}
    in_flight, cooling = 0, []
    for slot in r.slots:
        cur = r.current(slot)
        if cur is None:
            in_flight += r.waiting_for_stop(slot)
            continue
        if cur not in ours[slot] or cur.state.terminal:
            continue
        if not is_up(cur, needs_health):
            # as SwarmKit's updater, a slot whose new task ended is done with: its restarts are not waited for
            in_flight += not any(t.state.terminal for t in ours[slot])
        elif (cur.up_at or cur.updated_at) + cfg.delay > now:
            cooling.append((cur.up_at or cur.updated_at) + cfg.delay)

    failures = sorted((t for ts in ours.values() for t in ts if _failed(t, cfg.monitor)), key=lambda t: t.updated_at)
    if (failures and cfg.failure_action != "continue"
            and len(failures) / status["slots"] > cfg.max_failure_ratio):
        _fail(r, status, failures[-1], rolling_back, cfg.failure_action)
        return

    if not outdated and in_flight == 0:
        done = "rollback_completed" if rolling_back else "completed"
        if status["state"] == done:
            return
        # the last tasks are watched for `monitor` before the update is done
        last_up = max((t.up_at for ts in ours.values() for t in ts if t.up_at), default=started)
        if last_up + cfg.monitor > now:
            r.plan.wake(last_up + cfg.monitor)
        else:
            r.plan.update_status = {**status, "state": done, "completed_at": now,
                                    "message": "rollback completed" if rolling_back else "update completed"}
            return
    if status["state"] not in ("updating", "rollback_started"):
        status = {**status, "state": "rollback_started" if rolling_back else "updating"}
        r.plan.update_status = status

    if cooling:
        r.plan.wake(min(cooling))
    room = cfg.parallelism - in_flight - len(cooling) if cfg.parallelism else len(outdated)  # 0: all at once
    for slot in outdated[:max(0, room)]:
        old = r.live(slot)
        if cfg.order == "start-first" and not all(t.state.terminal for t in old):
            r.new_task(slot)
        else:
            for t in old:
                r.shutdown(t)
            if all(t.state.terminal for t in old):
                r.new_task(slot)  # nothing to wait for


def _failed(task: Task, monitor: float) -> bool:
    """A task of the update that ended before it was up, or within `monitor` after."""
    if task.state not in _FAILED:
        return False
    return not task.up_at or task.updated_at - task.up_at <= monitor


def _fail(r, status: dict, task: Task, rolling_back: bool, action: str) -> None:
    """Apply `failure_action`; `reason` names the task and its error, for the user (the CLI's exit message)."""
    error = task.error or f"task: {task.state.value}" + ("" if task.exit_code is None else f" (exit {task.exit_code})")
    if action == "rollback" and not rolling_back and r.service.previous_spec is not None:
        message = f"update rolled back due to failure or early termination of task {task.id}"
        r.plan.rollback = True
        r.plan.update_status = {**status, "state": "rollback_started", "message": message,
                                "reason": f"{message}: {error}"}
        return
    state, what = ("rollback_paused", "rollback") if rolling_back else ("paused", "update")
    if status["state"] != state:
        message = f"{what} paused due to failure or early termination of task {task.id}"
        r.plan.update_status = {**status, "state": state, "paused_at": r.now, "message": message,
                                "reason": f"{message}: {error}"}
