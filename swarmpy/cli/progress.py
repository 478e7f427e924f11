"""Deploy progress, as `docker stack deploy --detach=false` shows it:

    web
    overall progress: 2 out of 3 tasks
    1/3: running   [==================================================>]
    2/3: starting  [=========================================>         ]
    3/3: running   [==================================================>]
    verify: Service web converged

An update that paused or rolled back ends the wait, with its reason, as
Docker's CLI does since 2023: `stack deploy` exits non-zero naming it.
"""

from __future__ import annotations

import time

from rich.console import Group
from rich.live import Live
from rich.text import Text

from swarmpy.cli.common import console, fail
from swarmpy.client import Client

BAR = 50
MAX_BARS = 20  # one bar per slot up to this many replicas, as docker does
_STEPS = ["new", "pending", "assigned", "preparing", "starting", "running"]


def _bar(state: str) -> str:
    if state not in _STEPS:
        return "[" + " " * BAR + "]"
    filled = int(BAR * (_STEPS.index(state) + 1) / len(_STEPS))
    return "[" + "=" * filled + ">" + " " * (BAR - filled) + "]"


def _live(tasks: list[dict]) -> list[dict]:
    live = [t for t in tasks if t["desired_state"] != "shutdown"]
    newest: dict = {}
    for t in sorted(live, key=lambda t: t["created_at"]):
        newest[t["slot"] if t["slot"] is not None else t["node_id"]] = t
    return [newest[k] for k in sorted(newest, key=str)]


def status(summary: dict, tasks: list[dict]) -> tuple[bool, list[str], list[str]]:
    """(converged, lines to show, errors of failed tasks) of one service."""
    mode = summary["mode"]
    # the spec versions whose tasks run the current spec (after a rollback, the tasks it left alone too)
    current_versions = summary.get("current_versions") or [summary["spec_version"]]
    slots = _live(tasks)
    errors = sorted({t["error"] for t in tasks if t["error"] and t["spec_version"] in current_versions
                     and t["state"] in ("failed", "rejected", "pending")})
    if mode.endswith("job"):
        done = sum(1 for t in slots if t["state"] == "complete" and t["spec_version"] in current_versions)
        total = summary["desired"]
        converged = total > 0 and done >= total or (total == 0)
        lines = [f"job progress: {done} out of {total} complete"]
    else:
        current = [t for t in slots if t["spec_version"] in current_versions and t["state"] == "running"]
        desired = summary["desired"]
        update = summary.get("update_status") or {}
        running = len(current) == desired == len(slots)
        converged = running and update.get("state") not in _IN_PROGRESS
        rolling_back = "rolling back update: " if update.get("state") == "rollback_started" else ""
        lines = [f"overall progress: {rolling_back}{len(current)} out of {desired} tasks"]
        if desired <= MAX_BARS:
            for i, t in enumerate(slots[:desired], 1):
                state = t["state"] if t["spec_version"] in current_versions else "pending"
                lines.append(f"{i}/{desired}: {state:<10}{_bar(state)}")
        if running and not converged:
            lines.append("verify: Waiting to verify that tasks are stable (the update's monitor period)...")
    return converged, lines, errors


_IN_PROGRESS = ("updating", "rollback_started")
_PAUSED = ("paused", "rollback_paused")


def update_outcome(summary: dict, converged: bool, since: int | None) -> tuple[str, str] | None:
    """How the service's update settled, when that ends the wait: ("failed", reason) for an update this
    command started (`since`: the service's spec_version before it) that paused, or rolled back and the
    rollback is done; ("paused", reason) for an update paused earlier (a scale waits for nothing more)."""
    update = summary.get("update_status") or {}
    state, reason = update.get("state"), update.get("reason") or update.get("message", "")
    if since is None or summary["spec_version"] <= since:  # not an update of ours
        return ("paused", reason) if state in _PAUSED and not converged else None
    if update.get("version", 0) <= since:
        return None  # the orchestrator has not taken the deploy up yet
    if state in _PAUSED or (state == "rollback_completed" and converged):
        return "failed", reason
    return None


ROUTE_GRACE = 15.0  # seconds a converged service may wait for every node to route to it


def wait_converged(client: Client, services: list[str], timeout: float = 300.0,
                   since: dict[str, int] | None = None) -> None:
    """Show progress until every service converged (its tasks run, and every node and load balancer
    routes to them: it answers by name and on its ports); exit non-zero with the task errors on timeout.
    `since`: service -> its spec_version before the deploy that updates it; such an update that paused
    or rolled back ends the wait and exits non-zero with its reason."""
    deadline = time.time() + timeout
    done: dict[str, bool] = {}
    errors: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    notes: dict[str, str] = {}
    running_since: dict[str, float] = {}
    shown: dict[str, list[Text]] = {}

    def frame() -> Group:
        parts = []
        for name in services:
            if name not in failed and name not in notes:  # a settled service keeps its last lines
                shown[name] = service_frame(name)
            parts += shown[name]
        return Group(*parts)

    def service_frame(name: str) -> list[Text]:
        summary = client.service(name)["summary"]
        converged, lines, errs = status(summary, client.service_tasks(name))
        outcome = update_outcome(summary, converged, (since or {}).get(name))
        if outcome:
            kind, reason = outcome
            (failed if kind == "failed" else notes)[name] = reason
            lines.append(f"verify: {reason}")
            converged = True
        if not converged:
            running_since.pop(name, None)
        elif not summary.get("routed", True):
            since_running = running_since.setdefault(name, time.time())
            converged = time.time() - since_running > ROUTE_GRACE
            lines.append("verify: routes to it on every node" + (" (not all yet: going on)" if converged else ""))
        done[name], errors[name] = converged, errs
        if converged and name not in failed and name not in notes:
            lines.append(f"verify: Service {name} converged")
        return [Text(name)] + [Text(line) for line in lines]

    with Live(frame(), console=console, refresh_per_second=4, transient=False) as live:
        while not all(done.values()) and time.time() < deadline:
            time.sleep(0.25)
            live.update(frame())
    if not console.is_terminal:
        console.print()  # the last frame ends without a newline off a terminal
    for name, note in notes.items():
        console.print(f"{name}: its update stays paused ({note}); a new deploy resumes it")
    if failed:
        fail("; ".join(f"service {name}: {reason}" for name, reason in failed.items()))
    if not all(done.values()):
        stuck = [n for n in services if not done[n]]
        details = "; ".join(f"{n}: {', '.join(errors[n]) or 'tasks not running yet'}" for n in stuck)
        fail(f"services did not converge within {timeout:.0f} s: {details}")
