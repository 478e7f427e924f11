"""`service exec` through the API: which task, and the relay between the client and the job.

The manager never reaches an engine itself: a job on the task's node runs the
exec (`swarmpy.worker.exec`); the client reads its output from
`GET /exec/<id>` (newline-delimited JSON frames, the last one the exit code)
and sends its stdin, its EOF and its terminal's size with `POST /exec/<id>/input`.
Plain HTTP requests through the manager, as every other call: no socket is
opened from the client to a node, and no new protocol (websocket, upgrade)
has to pass the proxies and TLS the API already passes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from swarmpy.manager import frames
from swarmpy.manager.context import ManagerContext
from swarmpy.model import DesiredState, Service, TaskState
from swarmpy.model.bodies import ExecInput, ExecStart

START_TIMEOUT = 30.0  # a job that has not opened the exec by then is not coming (no worker reaches the node)


class ExecError(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 409):
        super().__init__(message)
        self.field, self.status = field, status


def start(ctx: ManagerContext, service: Service, body: ExecStart) -> dict:
    """Open an exec in a running task of the service (the first by slot, or `body.slot`'s)."""
    store = ctx.store
    running = sorted((t for t in store.tasks_of_service(service.id)
                      if t.state == TaskState.RUNNING and t.desired_state == DesiredState.RUNNING
                      and t.node_id and t.container_id), key=lambda t: (t.slot or 0, t.created_at))
    if body.slot is not None:
        running = [t for t in running if t.slot == body.slot]
    if not running:
        raise ExecError(f"task {service.name}.{body.slot} is not running" if body.slot is not None
                        else f"service {service.name} has no running task", field="slot" if body.slot else None)
    task = running[0]
    node = store.get_node(task.node_id)
    exec_id = uuid.uuid4().hex
    store.open_exec(exec_id, {"stack": service.stack, "service": service.name, "task": task.display_name,
                              "node": node.hostname, "tty": body.tty, "created_at": time.time()})
    size = [body.width, body.height] if body.width else None
    ctx.queues.enqueue_call(store.session_queue(node.id), "swarmpy.worker.exec.run_exec",
                            (exec_id, node.id, task.container_id, body.cmd, body.tty, body.stdin, size))
    return {"id": exec_id, "task": task.display_name, "task_id": task.id, "node": node.hostname,
            "container_id": task.container_id}


def output(ctx: ManagerContext, exec_id: str) -> Iterator[str]:
    """The exec's frames, one JSON object a line: {"out"|"err": base64}, {"beat": 1} when silent,
    then {"exit": code} or {"error": why}. Leaving early (the client went) ends the exec's session."""
    store, cursor, started, deadline = ctx.store, "0-0", False, time.monotonic() + START_TIMEOUT
    beat = frames.Beat()
    try:
        while True:
            entries = store.read_exec(exec_id, "out", cursor, block_ms=1000)
            if not entries and beat.due():
                yield frames.BEAT_FRAME
            for entry_id, entry in entries:
                beat.said()
                cursor = entry_id
                if "started" in entry:
                    started = True
                    continue
                if "exit" in entry:
                    yield frames.frame(exit=int(entry["exit"]))
                    return
                yield frames.frame(**entry)
                if "error" in entry:
                    return
            if not started and time.monotonic() > deadline:
                yield frames.frame(error=f"no worker opened the exec within {START_TIMEOUT:.0f} s "
                                         "(is `swarmpy worker` running and reaching the node?)")
                return
            if store.exec_record(exec_id) is None:  # expired
                return
    finally:
        store.close_exec(exec_id)


def send(ctx: ManagerContext, exec_id: str, body: ExecInput) -> None:
    """Pass what the client sent (checked: `validation.check_exec_input`) to the exec's job."""
    frame = {"data": body.data, "eof": "1" if body.eof else "", "size": f"{body.width}x{body.height}" if body.width
             else ""}
    if frame := {k: v for k, v in frame.items() if v}:
        ctx.store.append_exec(exec_id, "in", frame)
