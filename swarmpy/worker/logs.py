"""`service logs`: one job per node reads its tasks' container logs over the
node's connection and appends the lines, prefixed `web.2@node3 |`, to the
request's Redis stream, which the API forwards to the client."""

from __future__ import annotations

import logging
import threading
import time

import docker

from swarmpy.store import NotFound
from swarmpy.worker.context import current

log = logging.getLogger(__name__)


def _prefix(task, hostname: str) -> str:
    return f"{task.display_name}@{hostname} | "


def _pump(store, request_id: str, prefix: str, stream) -> None:
    rest = b""
    try:
        for chunk in stream:
            rest += chunk
            *lines, rest = rest.split(b"\n")
            for line in lines:
                store.append_log_line(request_id, prefix + line.decode(errors="replace") + "\n")
            if store.log_request_stopped(request_id):
                break
    except Exception:  # noqa: BLE001 - its stream was closed under it because the client went
        if not store.log_request_stopped(request_id):
            raise
        return
    if rest:
        store.append_log_line(request_id, prefix + rest.decode(errors="replace") + "\n")


def _open(client, store, request_id: str, task, hostname: str, follow: bool, tail: str, timestamps: bool):
    """The task's log stream, or None (its line says why) when its container is gone."""
    try:
        return client.api.logs(task.container_id, stream=True, follow=follow, timestamps=timestamps,
                               tail=tail if tail == "all" else int(tail))
    except Exception as e:  # a container of an old task may be gone
        store.append_log_line(request_id, f"{_prefix(task, hostname)}(no logs: {e})\n")
        return None


def _close(stream) -> None:
    """Ends a followed stream, so that its reader ends now and not at the task's next line. The SDK
    cannot cancel a stream read over SSH (it raises): closing its SSH channel does the same. The
    SDK's own `close` finds the channel there too."""
    try:
        stream.close()
    except docker.errors.DockerException:
        fp = getattr(getattr(stream._response.raw, "_fp", None), "fp", None)
        if fp is not None and hasattr(fp, "channel"):  # else it ended meanwhile
            fp.channel.close()


def stream_node_logs(request_id: str, node_id: str, task_ids: list[str], follow: bool, tail: str,
                     timestamps: bool, service_id: str | None = None) -> str:
    """Following with a `service_id`, the service's tasks that start on this node later are read
    too, from their first line, until the service is removed or the client goes."""
    ctx = current()
    store = ctx.store
    try:
        node = store.get_node(node_id)
        client = ctx.engines.client(node)
        tasks = sorted(store.get_tasks(task_ids), key=lambda t: (t.slot or 0, t.created_at))
        streams = [(t, s) for t in tasks
                   if (s := _open(client, store, request_id, t, node.hostname, follow, tail, timestamps))]
        if not follow:
            for task, stream in streams:
                _pump(store, request_id, _prefix(task, node.hostname), stream)
            return "done"
        threads, seen, watching, checked = [], set(task_ids), service_id is not None, 0.0

        def start(task, stream):
            thread = threading.Thread(target=_pump, args=(store, request_id, _prefix(task, node.hostname), stream),
                                      daemon=True)
            thread.start()
            threads.append(thread)
        for task, stream in streams:
            start(task, stream)
        # until every stream ended and no new task may come, or the client went away: then close
        # the streams so the readers end
        while (watching or any(t.is_alive() for t in threads)) and not store.log_request_stopped(request_id):
            if watching and time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                try:
                    store.get_service(service_id)
                except NotFound:
                    watching = False
                    continue
                for task in store.tasks_of_service(service_id):
                    if task.node_id == node_id and task.container_id and task.id not in seen:
                        seen.add(task.id)
                        if stream := _open(client, store, request_id, task, node.hostname, True, "all", timestamps):
                            streams.append((task, stream))
                            start(task, stream)
            time.sleep(0.2)
        for task, s in streams:
            try:
                _close(s)
            except Exception as e:  # noqa: BLE001 - one that will not close keeps none of the others open
                log.warning("logs of task %s: cannot close the stream: %s", task.id, e)
        return "done"
    except NotFound:
        return "node gone"
    finally:
        store.append_log_line(request_id, end=node_id)
