"""`stack deploy --plan` / `stack diff`: a deploy's plan, as the manager describes it, in words.

One line per changed field (`~ shop_web: image a -> b`), the tasks each service would replace,
start or stop, and a closing count (Nomad's `job plan`)."""

from __future__ import annotations

import json
from typing import Any


def _value(v: Any) -> str:
    if v is None or v == [] or v == {}:
        return "(none)"
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"))


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _tasks(refs: list[dict]) -> str:
    return ", ".join(r["name"] for r in refs)


def render(plan: dict) -> list[str]:
    """The plan (`POST /stacks/<name>/plan`'s answer) as lines of text."""
    lines, counts, replaced = [], {"create": 0, "update": 0, "remove": 0}, 0
    for s in plan["services"]:
        name, action = s["name"], s["action"]
        if action == "create":
            many = "global" if s["mode"].startswith("global") else _count(s["replicas"], "replica")
            lines.append(f"+ {name} (new, {many})")
        elif action == "remove":
            lines.append(f"- {name} (removed: not in the file, and --prune)" +
                         (f"; stops {_count(len(s['stop']), 'task')} ({_tasks(s['stop'])})" if s["stop"] else ""))
        elif action == "keep":
            lines.append(f"  {name} (not in the file: kept; --prune would remove it)")
        elif action == "unchanged":
            lines.append(f"= {name} (unchanged)")
        else:
            lines += [f"~ {name}: {c['field']} {_value(c['old'])} -> {_value(c['new'])}" for c in s["changes"]]
            if s["replace"]:
                uc = s["update_config"]
                lines.append(f"    replaces {_count(len(s['replace']), 'task')} ({_tasks(s['replace'])}) "
                             f"under update_config: parallelism {uc['parallelism']}, {uc['order']}")
                replaced += len(s["replace"])
            if s["stop"]:
                lines.append(f"    stops {_count(len(s['stop']), 'task')} ({_tasks(s['stop'])})")
            if s["start"]:
                lines.append(f"    starts {_count(s['start'], 'new task')}")
            if not (s["replace"] or s["stop"] or s["start"]):
                lines.append("    its tasks stay as they are")
        if action in counts:
            counts[action] += 1
    for obj in plan.get("objects", []):
        lines.append(f"+ {obj['kind']} {obj['name']} (new)")
    lines.append(f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['remove']} to remove; "
                 f"{_count(replaced, 'task')} replaced.")
    return lines
