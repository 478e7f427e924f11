"""Node operations of the API: add, remove, promote, demote, logs.

The manager never touches a host itself: what needs SSH or a Docker engine is
a job for a worker (probing a host, starting a manager on it, reading logs),
and the API waits for its answer.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator

from swarmpy.manager import frames
from swarmpy.manager.context import ManagerContext
from swarmpy.model import Node, NodeStatus, Service, new_id
from swarmpy.store import NotFound, replication

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 30.0
PROMOTE_TIMEOUT = 60.0


class NodeError(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError as e:
        raise NodeError(f"cannot resolve {host}: {e.strerror or e}", field="ssh.host") from e


def default_identity(ctx: ManagerContext) -> str | None:
    key = ctx.state.ssh_dir / "id_ed25519"
    return key.read_text() if key.exists() else None


def add(ctx: ManagerContext, name: str, host: str, port: int, user: str, labels: dict, identity: str | None,
        host_key: str | None, accept_host_key: bool) -> Node:
    store = ctx.store
    address = _resolve(host)
    for n in store.list_nodes():
        if n.hostname == name:
            raise NodeError(f"a node named {name} exists already ({n.id})", field="name", status=409)
        if n.ssh_user is not None and n.address == address and n.ssh_port == port:
            raise NodeError(f"{address}:{port} is node {n.hostname} already", field="ssh.host", status=409)
    node_id = new_id()
    identity = identity or default_identity(ctx)
    if identity:
        store.set_node_identity(node_id, ctx.vault.encrypt(identity.encode()))
    try:
        result = ctx.queues.call("swarmpy.worker.probe.probe_node",
                                 (node_id, address, port, user, host_key, accept_host_key), timeout=PROBE_TIMEOUT)
    except (TimeoutError, RuntimeError) as e:
        store.set_node_identity(node_id, None)
        raise NodeError(f"cannot add node {name}: {e}", status=503) from e
    if not result.get("ok"):
        store.set_node_identity(node_id, None)
        raise NodeError(f"cannot add node {name}: {result.get('error')}", field="ssh")
    node = Node(id=node_id, hostname=name, address=address, ssh_user=user, ssh_port=port,
                host_key=result["host_key"], labels={str(k): str(v) for k, v in labels.items()},
                os=result["os"], architecture=result["architecture"], cpus=result["cpus"],
                memory=result["memory"], engine_version=result["engine_version"],
                engine_labels=result["engine_labels"], status=NodeStatus.UNKNOWN, created_at=time.time())
    return store.put_node(node, None)


def _manager_alive(ctx: ManagerContext, node: Node) -> bool:
    return any(info.get("node_id") == node.id for info in ctx.store.alive("manager").values())


CLEAN_TIMEOUT = 60.0


def remove(ctx: ManagerContext, node: Node, force: bool) -> dict:
    """Forget the node, then remove what the cluster made there (its containers, its networks),
    when it can still be reached; a node that is down keeps them (say so)."""
    if node.role == "manager" and _manager_alive(ctx, node):
        raise NodeError(f"node {node.hostname} is a manager: demote it first", status=409)
    if node.status == NodeStatus.READY and not force:
        raise NodeError(f"node {node.hostname} is not down and can't be removed (use --force, or drain it first)",
                        status=409)
    identity = ctx.store.node_identity(node.id)
    ctx.store.delete_node(node.id)
    _forget_sentinels_of(ctx, node)  # a dead manager's: the others count it no more
    if node.ssh_user is None or node.status != NodeStatus.READY:
        return {"removed": node.id, "cleaned": False,
                "message": f"node {node.hostname} is {node.status.value}: what ran there was left as it is"}
    try:
        result = ctx.queues.call("swarmpy.worker.jobs.clean_node", (node.to_dict(), identity), timeout=CLEAN_TIMEOUT)
    except (TimeoutError, RuntimeError) as e:
        result = {"ok": False, "error": str(e)}
    if not result.get("ok"):
        return {"removed": node.id, "cleaned": False,
                "message": f"cannot remove the cluster's containers and networks from {node.hostname}: "
                           f"{result.get('error')}"}
    return {"removed": node.id, "cleaned": True, "containers": result.get("containers", 0)}


def promote(ctx: ManagerContext, node: Node) -> Node:
    if node.ssh_user is None:
        raise NodeError(f"node {node.hostname} is this machine's own engine: run `swarmpy manager` here instead")
    if node.role == "manager" and _manager_alive(ctx, node):
        return node
    if node.status != NodeStatus.READY:
        raise NodeError(f"node {node.hostname} is {node.status.value}: only a ready node can be promoted", status=409)
    result = _on_host(ctx, node, "start_manager", "promote")

    def change(n: Node) -> None:
        n.role, n.manager_addr = "manager", result.get("api_url")
    node = ctx.store.update_node(node.id, change)
    deadline = time.time() + 20
    while time.time() < deadline and not _manager_alive(ctx, node):
        time.sleep(0.2)
    if not _manager_alive(ctx, node):
        raise NodeError(f"the manager started on {node.hostname} did not report in within 20 s "
                        f"(see {result.get('log', 'its log')})", status=503)
    if result.get("sentinel"):  # one more Sentinel: every Sentinel's quorum follows
        ctx.store.add_sentinels(result["sentinel"])
        replication.set_quorum(ctx.config, ctx.store.sentinels())
        # the new replica is a manager's only once every Sentinel could fail over to it
        replica = (node.address, replication.master_address(ctx.config)[1])
        late = replication.wait_replica_known(ctx.config, ctx.store.sentinels(), replica, result["sentinel"])
        if late:
            log.warning("promote %s: Sentinels %s do not know its replica yet", node.hostname, ", ".join(late))
    return node


def demote(ctx: ManagerContext, node: Node) -> Node:
    if node.role != "manager":
        return node
    if node.ssh_user is None:
        raise NodeError(f"node {node.hostname} is this machine's own engine: stop its manager with `swarmpy leave`")
    managers = [n for n in ctx.store.list_nodes() if n.role == "manager" and n.id != node.id]
    if not managers:
        raise NodeError(f"node {node.hostname} is the last manager: it cannot be demoted", status=409)
    own = [s for s in ctx.store.sentinels() if replication.address(s)[0] == node.address]
    others = [s for s in ctx.store.sentinels() if s not in own]
    if own and not replication.fail_over_from(ctx.config, node.address, others):
        raise NodeError(f"the store's master is on {node.hostname} and no replica took over: "
                        "it cannot be demoted now", status=503)
    _on_host(ctx, node, "stop_manager", "demote")
    if own:
        time.sleep(3)  # it stops 2 s after the job answered
    _forget_sentinels_of(ctx, node)

    def change(n: Node) -> None:
        n.role, n.manager_addr = "worker", None
    return ctx.store.update_node(node.id, change)


def _forget_sentinels_of(ctx: ManagerContext, node: Node) -> None:
    """The node's Sentinel leaves the set: the others forget it and its replica, and count one less."""
    own = [s for s in ctx.store.sentinels() if replication.address(s)[0] == node.address]
    if not own:
        return
    for s in own:
        ctx.store.remove_sentinel(s)
    others = ctx.store.sentinels()
    replication.forget(ctx.config, others)
    replication.set_quorum(ctx.config, others)


def set_lb(ctx: ManagerContext, node: Node, on: bool) -> None:
    """A load balancer on a node that is not a manager (`node update --lb true`)."""
    if node.ssh_user is None:
        return
    _on_host(ctx, node, "start_lb" if on else "stop_lb", f"{'start' if on else 'stop'} a load balancer on")


def _on_host(ctx: ManagerContext, node: Node, job: str, doing: str) -> dict:
    """Run one of `swarmpy.worker.hosts`' jobs on a worker that reaches the node; its answer, or NodeError."""
    try:
        result = ctx.queues.call(f"swarmpy.worker.hosts.{job}", (node.id,), timeout=PROMOTE_TIMEOUT,
                                 queue=ctx.store.queue_name(node.id))
    except (TimeoutError, RuntimeError) as e:
        raise NodeError(f"cannot {doing} {node.hostname}: {e}", status=503) from e
    if not result.get("ok"):
        raise NodeError(f"cannot {doing} {node.hostname}: {result.get('error')}")
    return result


def stream_logs(ctx: ManagerContext, service: Service, follow: bool, tail: str,
                timestamps: bool) -> Iterator[str]:
    """The service's logs from every task as frames (`frames`): {"line": "web.2@node3 | ..."}, and
    beats while nothing comes (how a follow notices that its client went).

    One job per node reads its tasks' containers over that node's connection
    and appends lines to a Redis stream this generator forwards. Following,
    each node's job also reads the service's tasks that start there later;
    a node where the service had no task gets its job when one starts there."""
    store = ctx.store
    request_id = uuid.uuid4().hex
    pending: set[str] = set()  # the nodes whose job still reads

    def read_nodes(tasks, tail: str) -> None:
        by_node: dict[str, list[str]] = {}
        for t in tasks:
            if t.node_id and t.container_id and t.node_id not in pending:
                by_node.setdefault(t.node_id, []).append(t.id)
        for node_id, task_ids in by_node.items():
            try:
                store.get_node(node_id)
            except NotFound:
                continue
            pending.add(node_id)
            ctx.queues.enqueue_call(store.session_queue(node_id), "swarmpy.worker.logs.stream_node_logs",
                                    (request_id, node_id, task_ids, follow, tail, timestamps,
                                     service.id if follow else None))

    read_nodes(store.tasks_of_service(service.id), tail)
    ended: set[str] = set()  # a node's job that ended is not started again
    cursor, checked, beat = "0-0", time.monotonic(), frames.Beat()
    try:
        while pending - ended or follow:
            entries = store.read_log_lines(request_id, cursor, block_ms=1000)
            if not entries and beat.due():
                yield frames.BEAT_FRAME
            for entry_id, entry in entries:
                cursor = entry_id
                if entry.get("end"):
                    ended.add(entry["end"])
                else:
                    beat.said()
                    yield frames.frame(line=entry["line"].removesuffix("\n"))
            if follow and time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                try:
                    store.get_service(service.id)
                except NotFound:  # removed: what its tasks still say is read to its end
                    follow = False
                    continue
                read_nodes(store.tasks_of_service(service.id), "all")
    finally:
        store.stop_log_request(request_id)
