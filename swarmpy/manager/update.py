"""Rolling updates: when a service's version changes, replace its tasks slot
by slot as `update_config` says (Swarm's semantics, pure logic).

`parallelism` slots are in flight at most (0: all at once); each one that
finished waits `delay` before the next slot starts in its place (SwarmKit runs
`parallelism` updaters that each pause `delay` between slots). `stop-first`
stops a slot's old task before its successor starts; `start-first` starts the
successor and stops the old task once the successor is up. A task is up when
it runs and, if it has a healthcheck, Docker calls it healthy. Failures of new
tasks beyond `max_failure_ratio` apply `failure_action` (pause, continue, or
rollback to the previous spec with `rollback_config`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swarmpy.model import Task, TaskState

if TYPE_CHECKING:  # the reconciler passes itself in
    from swarmpy.manager.reconcile import _Reconciler

# A new task that ends during the update failed it: failed, rejected, or "early
# termination" (it exited 0 although a service task should keep running).
_FAILED = (TaskState.FAILED, TaskState.REJECTED, TaskState.COMPLETE)


def is_up(task: Task, needs_health: bool) -> bool:
    return task.state == TaskState.RUNNING and (not needs_health or task.health == "healthy")


def advance(r: "_Reconciler") -> None:
    service, now, version = r.service, r.now, r.service.spec_version
    needs_health = bool(service.spec.healthcheck and service.spec.healthcheck.test
                        and service.spec.healthcheck.test[0] != "NONE" and not service.spec.healthcheck.disable)
    status = dict(r.update_status) if r.update_status else None
    rolling_back = bool(status and status.get("mode") == "rollback" and status.get("version") == version)
    cfg = service.spec.deploy.rollback_config if rolling_back else service.spec.deploy.update_config

    # start-first slots whose successor is up, or ended and stays so: the old task goes now.
    for slot in list(r.slots):
        live = r.live(slot)
        if len(live) > 1 and (is_up(live[-1], needs_health) or live[-1].state.terminal):
            for old in live[:-1]:
                r.shutdown(old)

    outdated = sorted((s for s in r.slots if (cur := r.current(s)) is not None and cur.spec_version < version),
                      key=str)
    if status is None or status.get("version") != version:
        if not outdated:
            return
        status = {"version": version, "mode": "update", "state": "updating", "started_at": now,
                  "message": "update in progress"}
        r.plan.update_status = status
    if status["state"] in ("paused", "rollback_paused"):
        return
    if status["state"] in ("completed", "rollback_completed") and not outdated:
        return

    started = status["started_at"]
    in_flight, cooling = 0, []
    for slot in r.slots:
        cur = r.current(slot)
        if cur is None:
            in_flight += r.waiting_for_stop(slot)
            continue
        if cur.spec_version != version or cur.created_at < started or cur.state.terminal:
            continue
        if not is_up(cur, needs_health):
            in_flight += 1
        elif cur.updated_at + cfg.delay > now:
            cooling.append(cur.updated_at + cfg.delay)

    failed = [t for ts in r.slots.values() for t in ts
              if t.spec_version == version and t.created_at >= started and t.state in _FAILED]
    total = max(1, sum(1 for s in r.slots if r.live(s) or r.waiting_for_stop(s)))  # not history-only slots
    if failed and cfg.failure_action != "continue" and len(failed) / total > cfg.max_failure_ratio:
        _fail(r, status, failed[0], rolling_back, cfg.failure_action)
        return

    if not outdated and in_flight == 0:
        if status["state"] != ("rollback_completed" if rolling_back else "completed"):
            r.plan.update_status = {**status, "state": "rollback_completed" if rolling_back else "completed",
                                    "completed_at": now,
                                    "message": "rollback completed" if rolling_back else "update completed"}
        return
    if status["state"] not in ("updating", "rollback_started"):
        r.plan.update_status = status = {**status, "state": "rollback_started" if rolling_back else "updating"}

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


def _fail(r, status: dict, task: Task, rolling_back: bool, action: str) -> None:
    if action == "rollback" and not rolling_back and r.service.previous_spec is not None:
        r.plan.rollback = True
        r.plan.update_status = {**status, "state": "rollback_started",
                                "message": f"update rolled back due to failure or early termination of task {task.id}"}
        return
    state, what = ("rollback_paused", "rollback") if rolling_back else ("paused", "update")
    if status["state"] != state:
        r.plan.update_status = {**status, "state": state, "paused_at": r.now,
                                "message": f"{what} paused due to failure or early termination of task {task.id}"}
