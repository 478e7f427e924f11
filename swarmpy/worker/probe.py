"""Looking at a host before it joins: SSH reachable, host key as expected,
an engine answering, and what the engine says of the machine."""

from __future__ import annotations

import logging
import socket
import time

from docker.errors import DockerException
from requests.exceptions import RequestException

from swarmpy.model import Availability, Node, NodeStatus, new_id
from swarmpy.worker.context import WorkerContext, current
from swarmpy.worker.engine import EngineError, SSHTarget, local_docker_client, ssh_connect, ssh_docker_client

log = logging.getLogger(__name__)


def engine_facts(client) -> dict:
    info = client.info()
    labels = {}
    for item in info.get("Labels") or []:
        k, _, v = item.partition("=")
        labels[k] = v
    return {
        "hostname": info.get("Name", ""),
        "os": info.get("OSType", ""),
        "architecture": _arch(info.get("Architecture", "")),
        "cpus": float(info.get("NCPU", 0)),
        "memory": int(info.get("MemTotal", 0)),
        "engine_version": info.get("ServerVersion", ""),
        "engine_labels": labels,
    }


def _arch(arch: str) -> str:
    return {"x86_64": "x86_64", "aarch64": "aarch64"}.get(arch, arch)


def probe_node(node_id: str, host: str, port: int, user: str, host_key: str | None,
               accept_new_key: bool) -> dict:
    """rq job of `node add`: {"ok": True, facts..., "host_key": ...} or {"ok": False, "error": why}."""
    ctx = current()
    identity = ctx.identity_of(Node(id=node_id, hostname="", address=host))
    target = SSHTarget(host=host, port=port, user=user, host_key=host_key, identity=identity)
    try:
        session, key_line = ssh_connect(target, accept_new_key=accept_new_key)
    except EngineError as e:
        return {"ok": False, "error": str(e)}
    try:
        client = ssh_docker_client(session, timeout=15)
        facts = engine_facts(client)
    except (DockerException, RequestException, OSError) as e:
        return {"ok": False, "error": f"SSH to {host} works but no Docker engine answers there "
                                      f"(`docker system dial-stdio` failed): {str(e).splitlines()[0][:200]}"}
    finally:
        session.close()
    return {"ok": True, "host_key": key_line, **facts}


def register_local_node(ctx: WorkerContext, socket_path: str, address: str, role: str = "manager",
                        labels: dict | None = None) -> Node:
    """The engine of the machine a manager runs on joins as a node, reached on its socket."""
    client = local_docker_client(socket_path, timeout=15)
    facts = engine_facts(client)
    client.close()
    machine = socket.gethostname()
    store = ctx.store
    existing = next((n for n in store.list_nodes() if n.ssh_user is None and n.machine == machine
                     and n.docker_host == socket_path), None)
    if existing is not None:
        def refresh(n: Node) -> None:
            n.address = address
            for k, v in facts.items():
                setattr(n, k, v)
        return store.update_node(existing.id, refresh)
    node = Node(id=new_id(), address=address, role=role, availability=Availability.ACTIVE,
                status=NodeStatus.UNKNOWN, ssh_user=None, docker_host=socket_path, machine=machine,
                labels=dict(labels or {}), created_at=time.time(), **facts)
    return store.put_node(node, None)
