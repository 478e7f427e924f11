"""Deploy progress, as `docker stack deploy --detach=false` shows it:

    web
    overall progress: 2 out of 3 tasks
    1/3: running   [==================================================>]
    2/3: starting  [=========================================>         ]
    3/3: running   [==================================================>]
    verify: Service web converged
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


def _live(tasks: list[dict], spec_version: int) -> list[dict]:
    live = [t for t in tasks if t["desired_state"] != "shutdown"]
    newest: dict = {}
    for t in sorted(live, key=lambda t: t["created_at"]):
        newest[t["slot"] if t["slot"] is not None else t["node_id"]] = t
    return [newest[k] for k in sorted(newest, key=str)]


def status(summary: dict, tasks: list[dict]) -> tuple[bool, list[str], list[str]]:
    """(converged, lines to show, errors of failed tasks) of one service."""
    mode, spec_version = summary["mode"], summary["spec_version"]
    slots = _live(tasks, spec_version)
    errors = sorted({t["error"] for t in tasks if t["error"] and t["spec_version"] == spec_version
                     and t["state"] in ("failed", "rejected", "pending")})
    if mode.endswith("job"):
        done = sum(1 for t in slots if t["state"] == "complete" and t["spec_version"] == spec_version)
        total = summary["desired"]
        converged = total > 0 and done >= total or (total == 0)
        lines = [f"job progress: {done} out of {total} complete"]
    else:
        current = [t for t in slots if t["spec_version"] == spec_version and t["state"] == "running"]
        desired = summary["desired"]
        update = summary.get("update_status") or {}
        converged = (len(current) == desired == len(slots)
                     and update.get("state") not in ("updating", "rollback_started"))
        lines = [f"overall progress: {len(current)} out of {desired} tasks"]
        if desired <= MAX_BARS:
            for i, t in enumerate(slots[:desired], 1):
                state = t["state"] if t["spec_version"] == spec_version else "pending"
                lines.append(f"{i}/{desired}: {state:<10}{_bar(state)}")
    return converged, lines, errors


ROUTE_GRACE = 15.0  # seconds a converged service may wait for every node to route to it


def wait_converged(client: Client, services: list[str], timeout: float = 300.0) -> None:
    """Show progress until every service converged (its tasks run, and every node and load balancer
    routes to them: it answers by name and on its ports); exit non-zero with the task errors on timeout."""
    deadline = time.time() + timeout
    done: dict[str, bool] = {}
    errors: dict[str, list[str]] = {}
    running_since: dict[str, float] = {}

    def frame() -> Group:
        parts = []
        for name in services:
            summary = client.service(name)["summary"]
            converged, lines, errs = status(summary, client.service_tasks(name))
            if not converged:
                running_since.pop(name, None)
            elif not summary.get("routed", True):
                since = running_since.setdefault(name, time.time())
                converged = time.time() - since > ROUTE_GRACE
                lines.append("verify: routes to it on every node" + (" (not all yet: going on)" if converged else ""))
            done[name], errors[name] = converged, errs
            parts.append(Text(name))
            parts += [Text(line) for line in lines]
            if converged:
                parts.append(Text(f"verify: Service {name} converged"))
        return Group(*parts)

    with Live(frame(), console=console, refresh_per_second=4, transient=False) as live:
        while not all(done.values()) and time.time() < deadline:
            time.sleep(0.25)
            live.update(frame())
    if not console.is_terminal:
        console.print()  # the last frame ends without a newline off a terminal
    if not all(done.values()):
        stuck = [n for n in services if not done[n]]
        details = "; ".join(f"{n}: {', '.join(errors[n]) or 'tasks not running yet'}" for n in stuck)
        fail(f"services did not converge within {timeout:.0f} s: {details}")
