"""`service logs`: one job per node reads its tasks' container logs over the
node's connection and appends the lines, prefixed `web.2@node3 |`, to the
request's Redis stream, which the API forwards to the client."""

from __future__ import annotations

import threading
import time

from swarmpy.store import NotFound
from swarmpy.worker.context import current


def _prefix(task, hostname: str) -> str:
    return f"{task.display_name}@{hostname} | "


def _pump(store, request_id: str, prefix: str, stream) -> None:
    rest = b""
    for chunk in stream:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            store.append_log_line(request_id, prefix + line.decode(errors="replace") + "\n")
        if store.log_request_stopped(request_id):
            break
    if rest:
        store.append_log_line(request_id, prefix + rest.decode(errors="replace") + "\n")


def stream_node_logs(request_id: str, node_id: str, task_ids: list[str], follow: bool, tail: str,
                     timestamps: bool) -> str:
    ctx = current()
    store = ctx.store
    try:
        node = store.get_node(node_id)
        client = ctx.engines.client(node)
        tasks = sorted(store.get_tasks(task_ids), key=lambda t: (t.slot or 0, t.created_at))
        streams = []
        for task in tasks:
            try:
                stream = client.api.logs(task.container_id, stream=True, follow=follow, timestamps=timestamps,
                                         tail=tail if tail == "all" else int(tail))
            except Exception as e:  # a container of an old task may be gone
                store.append_log_line(request_id, f"{_prefix(task, node.hostname)}(no logs: {e})\n")
                continue
            streams.append((task, stream))
        if not follow:
            for task, stream in streams:
                _pump(store, request_id, _prefix(task, node.hostname), stream)
            return "done"
        threads = [threading.Thread(target=_pump, args=(store, request_id, _prefix(t, node.hostname), s),
                                    daemon=True) for t, s in streams]
        for t in threads:
            t.start()
        # until every stream ended, or the client went away: then close them so the readers end
        while any(t.is_alive() for t in threads) and not store.log_request_stopped(request_id):
            time.sleep(0.2)
        for _, s in streams:
            s.close()
        return "done"
    except NotFound:
        return "node gone"
    finally:
        store.append_log_line(request_id, end=node_id)
