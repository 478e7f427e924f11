"""`service exec`: a command in a task's container, run by the engine of the task's node.

The job opens the exec on the engine (over the node's SSH session, as every
engine call) and relays its socket: what the command writes goes to the
exec's `out` stream in Redis, which the API forwards to the client; what the
client types comes back through the `in` stream. The last frame is the
command's exit code.
"""

from __future__ import annotations

import base64
import socket
import threading
import time

from docker.utils.socket import STDERR, frames_iter

from swarmpy.store import NotFound
from swarmpy.worker.context import current


def _out(store, exec_id: str, **fields) -> None:
    store.append_exec(exec_id, "out", {k: str(v) for k, v in fields.items()})


def _relay_output(store, exec_id: str, sock, tty: bool) -> None:
    for stream, data in frames_iter(sock, tty):
        if data:
            _out(store, exec_id, **{"err" if stream == STDERR else "out": base64.b64encode(data).decode()})


def _end_input(sock, tty: bool) -> None:
    """The command's stdin ends (EOF), its output still comes. A TTY's end is Ctrl-D, as typed
    (the engine ends a TTY's whole session, output too, when its input closes)."""
    if tty:
        sock.sendall(b"\x04")
    elif isinstance(sock, socket.socket):
        sock.shutdown(socket.SHUT_WR)
    else:  # a paramiko channel (an engine reached over SSH)
        sock.shutdown_write()


def run_exec(exec_id: str, node_id: str, container_id: str, cmd: list[str], tty: bool, stdin: bool,
             size: list[int] | None = None) -> str:
    ctx = current()
    store = ctx.store
    try:
        api = ctx.engines.client(store.get_node(node_id)).api
        made = api.exec_create(container_id, cmd, stdin=stdin, tty=tty, stdout=True, stderr=True)
        raw = api.exec_start(made["Id"], socket=True, tty=tty)
        sock = raw._sock if isinstance(raw, socket.SocketIO) else raw  # a unix socket's, or the SSH channel
        sock.settimeout(None)  # an idle shell is no error
        if tty and size:
            api.exec_resize(made["Id"], height=size[1], width=size[0])
    except NotFound:
        _out(store, exec_id, error="the task's node is gone")
        return "node gone"
    except Exception as e:  # noqa: BLE001 - the engine's refusal (no such container, no such command) is the answer
        _out(store, exec_id, error=f"cannot exec in the container: {e}")
        return "refused"
    _out(store, exec_id, started="1")
    reader = threading.Thread(target=_relay_output, args=(store, exec_id, sock, tty), daemon=True)
    reader.start()
    cursor = "0-0"
    try:
        while reader.is_alive() and not store.exec_closed(exec_id):
            for entry_id, entry in store.read_exec(exec_id, "in", cursor, block_ms=200):
                cursor = entry_id
                if entry.get("data"):
                    sock.sendall(base64.b64decode(entry["data"]))
                if entry.get("size") and tty:
                    width, height = (int(v) for v in entry["size"].split("x"))
                    api.exec_resize(made["Id"], height=height, width=width)
                if entry.get("eof"):
                    _end_input(sock, tty)
        reader.join(timeout=5)
        code = None
        for _ in range(50):  # the engine records the exit code a moment after the stream ends
            state = api.exec_inspect(made["Id"])
            if not state.get("Running"):
                code = state.get("ExitCode")
                break
            time.sleep(0.1)
        _out(store, exec_id, exit=-1 if code is None else code)
        return "done"
    finally:
        sock.close()
