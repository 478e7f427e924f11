"""rq job functions: carry out one task action on one node.

Every step is idempotent: a retried job finds the task's container by its
label and carries on from where the last attempt stopped. Transient faults
(the host or its engine unreachable, engine 5xx) are retried here with
backoff; an error that retrying cannot fix rejects or fails the task with the
error, so a task is never left stuck.
"""

from __future__ import annotations

import base64
import logging
import time

import paramiko
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from requests.exceptions import ConnectionError as HTTPConnectionError, ReadTimeout

from swarmpy.model import Attachment, DesiredState, FileReference, Node, Service, Task, TaskState
from swarmpy.network import attach
from swarmpy.network.host import HostShell
from swarmpy.network.ipam import mac_of
from swarmpy.network.programmer import teardown
from swarmpy.store import NotFound as RecordNotFound
from swarmpy.worker import containers, images, taskfiles
from swarmpy.worker.context import current
from swarmpy.worker.engine import EngineError, Engines

log = logging.getLogger(__name__)

BACKOFF = (0.5, 1.0, 2.0)  # seconds before each retry of a transient fault
DRAIN_WAIT = 5.0  # seconds a stop waits at most for the load balancers and nodes to drain the task (a busy host takes over 1 s)


class Transient(Exception):
    pass


def _transient(error: Exception) -> bool:
    if isinstance(error, EngineError):
        return error.transient
    if isinstance(error, attach.NotReady):
        return True
    if isinstance(error, (HTTPConnectionError, ReadTimeout, ConnectionError, OSError, EOFError,
                          paramiko.SSHException)):
        return True  # the connection broke: a new one may do
    if isinstance(error, APIError):
        return error.status_code is None or error.status_code >= 500 and "No such" not in str(error)
    return isinstance(error, DockerException)


def _explain(error: Exception) -> str:
    text = getattr(error, "explanation", None) or str(error) or type(error).__name__
    return str(text).strip().splitlines()[0][:300]


def _with_retries(task_id: str, node_id: str, action):
    """Run `action()`, retrying transient faults; the last fault is raised."""
    ctx = current()
    for attempt, pause in enumerate((*BACKOFF, None)):
        try:
            return action()
        except Exception as e:
            if not _transient(e) or pause is None:
                raise
            log.info("task %s: %s; retrying in %.1fs", task_id, _explain(e), pause)
            if not isinstance(e, APIError):  # the connection broke, not the engine's answer
                ctx.engines.drop(node_id)  # (a drop ends every stream other jobs have open there)
            time.sleep(pause)


def find_containers(client, task_id: str) -> list[dict]:
    return client.api.containers(all=True, filters={"label": f"{containers.LABEL_TASK}={task_id}"})


def _load(task_id: str) -> tuple[Task, Node] | None:
    store = current().store
    try:
        task = store.get_task(task_id)
        node = store.get_node(task.node_id) if task.node_id else None
    except RecordNotFound:
        return None
    return (task, node) if node else None


def start_task(task_id: str) -> str:
    loaded = _load(task_id)
    if loaded is None:
        return "gone"
    task, node = loaded
    store = current().store
    if task.desired_state == DesiredState.SHUTDOWN:
        if task.state.rank < TaskState.PREPARING.rank:
            store.update_task_status(task_id, TaskState.SHUTDOWN, message="shut down before it started")
        return "not wanted"
    if task.state.rank >= TaskState.RUNNING.rank:
        return "already " + task.state.value
    try:
        service = store.get_service(task.service_id)
    except RecordNotFound:
        store.update_task_status(task_id, TaskState.SHUTDOWN, message="service removed")
        return "service removed"
    try:
        return _with_retries(task_id, node.id, lambda: _start(task, service, node))
    except (images.ImageUnavailable, attach.CannotJoin, taskfiles.NoTmpfs) as e:
        store.update_task_status(task_id, TaskState.REJECTED, message="rejected", error=str(e))
        return "rejected"
    except Exception as e:
        rejected = isinstance(e, APIError) and not _transient(e)
        state = TaskState.REJECTED if rejected else TaskState.FAILED
        store.update_task_status(task_id, state, message="starting container failed",
                                 error=f"starting container failed: {_explain(e)}")
        return state.value


def _start(task: Task, service: Service, node: Node) -> str:
    ctx = current()
    store = ctx.store
    client = ctx.engines.client(node)
    store.update_task_status(task.id, TaskState.PREPARING, message="preparing")
    joined = attach.join(store, task, service)
    nameservers = None
    if joined:
        resolvers = attach.wait_ready(store, node.id, joined)
        nameservers = attach.nameservers(joined, resolvers, service.spec.dns)
    secrets, configs = _files(service)
    plan = containers.container_plan(task, service, node, store.get_stack(service.stack), configs,
                                     [(j.docker_name, j.address) for j in joined], nameservers, ctx.cluster_id,
                                     secret_mounts=_place_secrets(task, node, secrets))
    container_id, running = _create(client, node, service, plan)
    if store.update_task_status(task.id, TaskState.STARTING, message="starting", container_id=container_id) is None:
        return _superseded(client, container_id, task.id)
    if not running:
        client.api.start(container_id)
    endpoints, health = [], ("starting" if service.spec.healthcheck and not service.spec.healthcheck.disable
                             else None)
    macs = {j.docker_name: mac_of(j.address) for j in joined[:1]}
    if service.spec.ports or len(joined) > 1:  # host ports and later networks' MACs: Docker chose them
        info = client.api.inspect_container(container_id)
        endpoints = containers.endpoints_from_inspect(service.spec, node.address, info)
        health = (info["State"].get("Health") or {}).get("Status") or health
        for name, settings in ((info.get("NetworkSettings") or {}).get("Networks") or {}).items():
            macs.setdefault(name, settings.get("MacAddress") or "")
    attachments = [Attachment(j.network.id, j.address, macs.get(j.docker_name, "")) for j in joined]
    # a container that has already exited is recorded by the watcher (its `die` event), after this
    if store.update_task_status(task.id, TaskState.RUNNING, message="started", container_id=container_id,
                                endpoints=endpoints, attachments=attachments, health=health) is None:
        return _superseded(client, container_id, task.id)
    return "running"


def _create(client, node: Node, service: Service, plan: containers.ContainerPlan) -> tuple[str, bool]:
    """Create the task's container (idempotent: its name is the task's); (id, already running)."""
    ctx = current()
    known = (node.id, plan.image)
    host_config = client.api.create_host_config(**plan.host_config)

    def ensure_image() -> None:
        images.ensure_image(ctx.store, node.id, client, ctx.source_engine() if node.ssh_user else None,
                            plan.image, ctx.worker_name)
        ctx.images_on_nodes.add(known)

    def create() -> str:
        try:
            return client.api.create_container(plan.image, name=plan.name, host_config=host_config,
                                               **plan.create)["Id"]
        except NotFound as e:
            if "network" in str(e).lower():  # removed from the node while we looked: it comes back
                raise attach.NotReady(_explain(e)) from e
            raise

    if known not in ctx.images_on_nodes:  # checked once per process and node, not per task
        ensure_image()
    try:
        try:
            container_id = create()
        except ImageNotFound:  # removed from the node since we looked
            ctx.images_on_nodes.discard(known)
            ensure_image()
            container_id = create()
    except APIError as e:
        if e.status_code != 409:
            raise
        existing = client.api.inspect_container(plan.name)  # an earlier attempt made it
        return existing["Id"], bool(existing["State"].get("Running"))
    for network, address in plan.connect:
        try:
            client.api.connect_container_to_network(container_id, network, ipv4_address=address)
        except APIError as e:
            if "already exists" not in str(e):
                raise
    if plan.files:
        client.api.put_archive(container_id, "/", containers.files_archive(plan.files))
    return container_id, False


def _superseded(client, container_id: str, task_id: str) -> str:
    """The task moved on while it started. Shut down meanwhile: its container must not live on.
    Ended on its own (a quick job): the container stays, as history."""
    try:
        task = current().store.get_task(task_id)
    except RecordNotFound:
        task = None
    if task is None or task.desired_state == DesiredState.SHUTDOWN:
        client.api.remove_container(container_id, v=True, force=True)
        return "superseded"
    return task.state.value


def _files(service: Service) -> tuple[list, list]:
    """The secrets (decrypted) and the configs the service uses, with their target paths."""
    ctx = current()
    found: dict[str, list[tuple[str, bytes, FileReference]]] = {"secret": [], "config": []}
    for kind, refs in (("secret", service.spec.secrets), ("config", service.spec.configs)):
        for ref in refs:
            name = ctx.store.resolve_object_name(kind, service.stack, ref.source)
            data = ctx.store.object_data(kind, name)
            if data is None:
                raise RuntimeError(f"{kind} not found: {ref.source}")
            raw = ctx.vault.decrypt(data) if kind == "secret" else base64.b64decode(data)
            target = ref.target
            if kind == "secret" and not target.startswith("/"):
                target = f"/run/secrets/{target}"
            found[kind].append((target, raw, ref))
    return found["secret"], found["config"]


def _place_secrets(task: Task, node: Node, secrets: list[tuple[str, bytes, FileReference]]) -> list[dict]:
    """The task's secrets on a tmpfs of its host (bind mounts for its container); first, the
    secrets of the cluster's tasks that ended there since."""
    if not secrets:
        return []
    ctx = current()
    session = ctx.engines.session(node)
    shell = HostShell(session)
    try:
        there = [t for t in taskfiles.present(shell, ctx.cluster_id) if t != task.id]
        known = {t.id: t for t in ctx.store.get_tasks(there)}
        ended = [t for t in there if t not in known or known[t].state.terminal]
        taskfiles.remove(shell, ctx.cluster_id, ended)
        return taskfiles.place(shell, session, ctx.cluster_id, task.id, secrets)
    finally:
        shell.close()


def _remove_secrets(task: Task, node: Node) -> None:
    shell = HostShell(current().engines.session(node))
    try:
        taskfiles.remove(shell, current().cluster_id, [task.id])
    finally:
        shell.close()


def stop_task(task_id: str) -> str:
    """Stop the task's container: its stop signal now, SIGKILL when the grace period ran out;
    and when the service is gone, remove the container too.

    The job never waits out the grace period (a worker would sit idle for it):
    it asks the dispatcher to send it again at the deadline. The watcher
    records the container's death as SHUTDOWN, whichever comes first."""
    loaded = _load(task_id)
    if loaded is None:
        return "gone"
    task, node = loaded
    store = current().store
    try:
        service = store.get_service(task.service_id, removed=True)
        grace, signal = service.spec.stop_grace_period, service.spec.stop_signal or "SIGTERM"
        service_has_secrets = bool(service.spec.secrets)
    except RecordNotFound:
        grace, signal, service_has_secrets = 10.0, "SIGTERM", True  # not known: look
    now = time.time()
    if not task.stop_requested_at and _still_routed_to(task, now):
        store.dispatch_at(task_id, now + 0.05)
        return "draining"

    removed = store.service_removed(task.service_id)

    def stop() -> bool:
        """True once nothing of the task runs any more (and, for a removed service, nothing is left)."""
        client = current().engines.client(node)
        found = find_containers(client, task_id)
        running = [c for c in found if c["State"] in ("running", "restarting", "paused")]
        if not running:
            for c in found if removed else ():
                client.api.remove_container(c["Id"], v=True, force=True)
            return True
        for c in running:
            if task.stop_requested_at and now >= task.stop_requested_at + grace - 0.05:
                client.api.kill(c["Id"], signal="SIGKILL")
            elif not task.stop_requested_at:
                client.api.kill(c["Id"], signal=signal)
        return False

    try:
        done = _with_retries(task_id, node.id, stop)
    except NotFound:
        done = True  # the container went while we looked
    except Exception as e:
        log.warning("task %s: stop failed: %s", task_id, _explain(e))
        raise  # the dispatcher sends it again; the watcher cleans up when the node returns
    if done:
        if service_has_secrets:
            _remove_secrets(task, node)
        if task.state.terminal:  # it had ended already (or failed unhealthy): only its container had to stop
            store.update_task_status(task_id, task.state, container_id=None if removed else task.container_id)
        else:
            store.update_task_status(task_id, TaskState.SHUTDOWN, message="shutdown",
                                     container_id=None if removed else task.container_id)
        return "shutdown"
    if not task.stop_requested_at:
        store.update_task_status(task_id, task.state, message="stopping", stop_requested_at=now)
        store.dispatch_at(task_id, now + grace)
    return "stopping"


def _still_routed_to(task: Task, now: float) -> bool:
    """Does a load balancer, or a node's VIPs and names, still send to this task? Each takes a task
    out before the task stops, so that no new connection meets a stopping server."""
    behind = current().store.routes_behind(task.desired_at, {a.network_id for a in task.attachments},
                                           any(e.mode == "ingress" for e in task.endpoints))
    if behind and now > task.desired_at + DRAIN_WAIT:
        log.warning("task %s: stops although %s still route to it after %.0f s", task.id, ", ".join(behind),
                    DRAIN_WAIT)
        return False
    return bool(behind)


def remove_container(node_id: str, container_id: str) -> str:
    ctx = current()
    try:
        node = ctx.store.get_node(node_id)
    except RecordNotFound:
        return "node gone"

    def remove():
        try:
            ctx.engines.client(node).api.remove_container(container_id, v=True, force=True)
        except NotFound:
            pass

    _with_retries(container_id, node_id, remove)
    return "removed"


def clean_node(node: dict, identity: str | None) -> dict:
    """What `node rm` leaves to do: the cluster's containers on the node, and its networks there
    (the node record is gone already; `identity` is its SSH key as the vault encrypted it)."""
    ctx = current()
    gone = Node.from_dict(node)
    engines = Engines(lambda n: ctx.vault.decrypt(identity).decode() if identity else None, timeout=30)
    try:
        client = engines.client(gone)
        found = client.api.containers(all=True, filters={"label": f"{containers.LABEL_CLUSTER}={ctx.cluster_id}"})
        for c in found:
            client.api.remove_container(c["Id"], v=True, force=True)
        shell = HostShell(engines.session(gone))
        teardown(client, shell, ctx.cluster_id)
        taskfiles.remove_all(shell, ctx.cluster_id)
        return {"ok": True, "containers": len(found)}
    except Exception as e:
        return {"ok": False, "error": _explain(e)}
    finally:
        engines.close()
