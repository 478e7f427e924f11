"""Restart policy: whether a dead task is replaced, and when (Swarm's rules).

Pure logic: the orchestrator asks, this answers; nothing here touches Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmpy.model import RestartPolicy, Task, TaskState

# A task whose node was lost did not fail: it is replaced at once, without the
# restart delay that guards against crash loops.
_LOST = (TaskState.ORPHANED,)


@dataclass(frozen=True)
class RestartDecision:
    restart: bool
    not_before: float = 0.0  # when the replacement may start
    history: tuple[float, ...] = ()  # restart times the replacement carries on
    reason: str = ""


def decide(task: Task, policy: RestartPolicy, now: float, job: bool = False) -> RestartDecision:
    """Should `task`, now dead, be replaced?

    - condition `none`: never; `on-failure`: unless it completed (exit 0); a task
      that failed, was rejected, lost its node or stopped while still wanted did
      not complete; `any`: always, except that a job's success is final.
    - `max_attempts` counts restarts of the slot within `window` (0: ever),
      looking back from the task's death, so that a decision never changes later.
    - The replacement starts `delay` after the task died (at once if its node was lost).
    """
    succeeded = task.state == TaskState.COMPLETE and task.exit_code in (None, 0)
    if policy.condition == "none":
        return RestartDecision(False, reason="restart policy: none")
    if succeeded and (job or policy.condition == "on-failure"):
        return RestartDecision(False, reason="completed")

    died_at = task.updated_at or now
    history = tuple(t for t in task.restart_history if policy.window <= 0 or died_at - t < policy.window)
    if policy.max_attempts and len(history) >= policy.max_attempts:
        return RestartDecision(False, history=history, reason="max attempts reached")

    delay = 0.0 if task.state in _LOST else policy.delay
    keep = policy.max_attempts or 1
    return RestartDecision(True, not_before=max(now, died_at + delay) if delay else 0.0,
                           history=(history + (now,))[-keep:], reason="restart")
