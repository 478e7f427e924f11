"""What the dashboard shows and does, through the API's own routes.

Every read and every change goes through `call`: the API route's view function, run for the
session's caller after the API's access check. The page thus shows what `swarmpy` shows and
changes the cluster under the CLI's rules (scale limits, versions, modes), written once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, g, request
from werkzeug.exceptions import Forbidden

from swarmpy.manager import access, scheduler
from swarmpy.model import TaskState
from swarmpy.store import Store

LOG_LINES = 50  # the last lines of a service's logs on its page
_ENDED = {s.value for s in TaskState if s.terminal}


def call(store: Store, method: str, path: str, body: Any = None, **query: str) -> Response:
    """The API's answer to `method path`, made inside this request for the same caller. Errors
    are raised as the route raises them (the app's handlers turn them into JSON)."""
    query = {k: v for k, v in query.items() if v is not None}
    with current_app.test_request_context(path, method=method, json=body, query_string=query):
        if request.routing_exception is not None:
            raise request.routing_exception
        rule, args = request.url_rule, request.view_args or {}
        refused = access.refusal(g.caller, store, method, rule.rule, args, request.args)
        if refused:
            raise Forbidden(f"forbidden: {refused}")
        response = current_app.make_response(current_app.view_functions[rule.endpoint](**args))
        if not response.is_streamed:
            return response
        # a streamed answer (logs) is read here, while its request is still in place
        return Response(b"".join(response.iter_encoded()), response.status_code, mimetype=response.mimetype)


def get(store: Store, path: str, **query: str) -> Any:
    return call(store, "GET", path, **query).get_json()


def grid(store: Store) -> dict:
    """The nodes, each with the tasks it holds (those not ended: they hold its resources) and
    the CPU and memory the scheduler counts as reserved on it."""
    nodes = get(store, "/nodes")
    by_node = defaultdict(list)
    for task in get(store, "/tasks"):
        if task["node_id"] and task["state"] not in _ENDED:
            by_node[task["node_id"]].append(task)
    for tasks in by_node.values():
        tasks.sort(key=lambda t: (t["service_name"], t["slot"] if t["slot"] is not None else -1, t["id"]))
    records = store.list_nodes()
    assigned = [t for t in store.tasks_on_nodes(n.id for n in records) if not t.state.terminal]
    reserved = scheduler.reserved(records, store.get_services({t.service_id for t in assigned}), assigned)
    for node in nodes:
        node["tasks"] = by_node.get(node["id"], [])
        node["reserved_cpus"], node["reserved_memory"] = reserved.get(node["id"], (0.0, 0))
    nodes.sort(key=lambda n: (n["role"] != "manager", n["hostname"]))
    return {"nodes": nodes}


def stacks(store: Store) -> dict:
    """The services by stack ("" for those of no stack), with replicas and update state."""
    by_stack = defaultdict(list)
    for service in get(store, "/services"):
        by_stack[service["stack"] or ""].append(service)
    names = [s["name"] for s in get(store, "/stacks")]
    return {"stacks": [(name, sorted(by_stack.get(name, []), key=lambda s: s["name"]))
                       for name in sorted(set(names) | set(by_stack))]}


def service(store: Store, ref: str) -> dict:
    """A service: its summary, its tasks by slot (the current one first, then its history), its
    published ports and the mesh's endpoints for them."""
    inspected = get(store, f"/services/{quoted(ref)}")
    history = defaultdict(list)
    for task in get(store, f"/services/{quoted(ref)}/tasks"):
        history[task["slot"] if task["slot"] is not None else task["node"]].append(task)
    slots = [sorted(tasks, key=lambda t: -t["created_at"]) for _, tasks in
             sorted(history.items(), key=lambda kv: (isinstance(kv[0], str), kv[0]))]
    mesh = [(lb_id, port, entry) for lb_id, ports in sorted(inspected["lb"].items())
            for port, entry in sorted(ports.items())]
    return {"service": inspected, "slots": slots, "mesh": mesh}


def logs(store: Store, ref: str) -> str:
    answer = call(store, "GET", f"/services/{quoted(ref)}/logs", tail=str(LOG_LINES))
    frames = (json.loads(line) for line in answer.get_data(as_text=True).splitlines())
    return "".join(frame["line"] + "\n" for frame in frames if "line" in frame)


def quoted(ref: str) -> str:
    return quote(ref, safe="")
